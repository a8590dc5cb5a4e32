"""The per-process cache of OpenID providers' discovery documents and key sets."""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone

import pytest
import time_machine

from idp.federation import oidc
from idp.federation.connector import FederationRefused, UpstreamConfig, UpstreamSettingsInvalid
from idp.federation.http import UpstreamHttp
from idp.federation.oidc_metadata import _Cache, _Entry
from tests.federation.standins.oidc_provider import running, sign_in, upstream_urls

HTTP = UpstreamHttp(allow_private=True, timeout=5)


@pytest.fixture
def provider():
    yield from running("generic")


@pytest.fixture
def connector(provider):
    upstream = UpstreamConfig(id="up-1", slug="corp", kind="oidc", display_name="Corp",
                              settings={"issuer": provider.issuer, "client_id": provider.client_id},
                              secrets={"client_secret": provider.client_secret})
    return oidc.KIND.open(upstream, upstream_urls("corp"), HTTP)


def later(seconds: int):
    return time_machine.travel(datetime.now(timezone.utc) + timedelta(seconds=seconds))


def test_sign_ins_share_one_discovery_and_key_set_fetch(provider, connector):
    """Issue 10 brief: discovery and JWKS are cached per process, not fetched per sign-in."""
    sign_in(connector)
    sign_in(connector)
    assert (provider.hits["discovery"], provider.hits["jwks"]) == (1, 1)


def test_discovery_is_fetched_again_after_an_hour(provider, connector):
    """Discovery 1.0 section 4: the configuration can change; the cached copy lives an hour."""
    sign_in(connector)
    with later(3601):
        sign_in(connector)
    assert provider.hits["discovery"] == 2


def test_key_set_is_fetched_again_after_ten_minutes(provider, connector):
    """RFC 7517 5: keys rotate; the cached set lives ten minutes, the discovery document longer."""
    sign_in(connector)
    with later(601):
        sign_in(connector)
    assert (provider.hits["discovery"], provider.hits["jwks"]) == (1, 2)


def test_a_rotated_key_is_fetched_at_once(provider, connector):
    """Core 10.1.1: a token signed with a new kid makes the RP fetch the provider's keys again."""
    sign_in(connector)
    provider.rotate_keys()
    assert sign_in(connector).subject == "user-ada"
    assert provider.hits["jwks"] == 2


def test_unknown_kids_refetch_the_key_set_at_most_once_a_minute(provider, connector):
    """Core 10.1.1 and the brief ("never more often than needed"): made-up kids cannot hammer the provider."""
    sign_in(connector)
    provider.sign_with_unpublished_key = True
    for _ in range(3):
        with pytest.raises(FederationRefused) as caught:
            sign_in(connector)
        assert caught.value.reason == "signature_invalid"
    assert provider.hits["jwks"] == 2
    with later(61), pytest.raises(FederationRefused):
        sign_in(connector)
    assert provider.hits["jwks"] == 3


def test_saving_settings_asks_the_provider_again(provider, connector):
    """Discovery 1.0 section 4.3: validation sees the provider's current document, not a cached one."""
    sign_in(connector)
    provider.metadata = {"issuer": "https://other.example"}
    with pytest.raises(UpstreamSettingsInvalid):
        oidc.KIND.validate({"issuer": provider.issuer, "client_id": "c"}, {"client_secret": "s"}, HTTP)


def test_concurrent_sign_ins_share_the_cache(provider, connector):
    """The cache is used from the server's threads at once; every sign-in gets the same answer."""
    with ThreadPoolExecutor(max_workers=6) as pool:
        subjects = set(pool.map(lambda _: sign_in(connector).subject, range(12)))
    assert subjects == {"user-ada"}


def test_cache_is_bounded_and_evicts_the_least_recently_used():
    """A bounded cache: many upstreams (or an attacker creating them) cannot grow memory without end."""
    cache = _Cache(max_entries=2)
    cache.put("a", _Entry(1, 0.0))
    cache.put("b", _Entry(2, 0.0))
    cache.get("a")
    cache.put("c", _Entry(3, 0.0))
    assert (cache.get("a").value, cache.get("b"), cache.get("c").value) == (1, None, 3)
