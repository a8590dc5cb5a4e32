"""Started upstream sign-ins: state bound to one browser and one upstream, used once, expiring (RFC 6749 10.12)."""
from __future__ import annotations

import pytest
import time_machine

from idp.extensions import db
from idp.models import Upstream, UpstreamLogin
from idp.services import upstream_logins
from idp.services.upstream_logins import FederatedSignInRefused

BROWSER, OTHER = "a" * 64, "c" * 64


@pytest.fixture
def upstream(ctx):
    row = Upstream(slug="acme", kind="oidc", display_name="Acme", settings={})
    db.session.add(row)
    db.session.flush()
    yield row
    db.session.rollback()


def start(upstream, state: str = "the-state", **kwargs):
    return upstream_logins.start_login(upstream, state=state, browser_hash=BROWSER, saved={"nonce": "n"}, **kwargs)


def reason(call) -> str:
    with pytest.raises(FederatedSignInRefused) as info:
        call()
    return info.value.reason


def test_state_and_saved_data_are_never_stored_in_clear(upstream):
    """Only the state's hash is stored, and the connector's saved data (nonce, PKCE verifier) is encrypted."""
    row = start(upstream)
    assert row.state_hash != "the-state" and "the-state" not in row.saved_encrypted
    assert '"n"' not in row.saved_encrypted


def test_consume_returns_what_was_saved_once(upstream):
    """The first use returns the saved data and purpose; a second use is refused (state_used)."""
    start(upstream, authorization_request_id="req-1")
    started = upstream_logins.consume_login("the-state", browser_hash=BROWSER, upstream=upstream)
    assert (started.saved, started.purpose, started.authorization_request_id) == ({"nonce": "n"}, "sign_in", "req-1")
    assert reason(lambda: upstream_logins.consume_login("the-state", browser_hash=BROWSER,
                                                        upstream=upstream)) == "state_used"


def test_unknown_state_is_refused(upstream):
    """A state this IdP never issued is refused (state_unknown)."""
    assert reason(lambda: upstream_logins.consume_login("forged", browser_hash=BROWSER,
                                                        upstream=upstream)) == "state_unknown"


def test_state_of_another_browser_is_refused_and_not_spent(upstream):
    """RFC 9700 4.7 login CSRF: another browser's hash is refused; the real browser can still finish."""
    start(upstream)
    assert reason(lambda: upstream_logins.consume_login("the-state", browser_hash=OTHER,
                                                        upstream=upstream)) == "state_other_browser"
    assert reason(lambda: upstream_logins.consume_login("the-state", browser_hash=None,
                                                        upstream=upstream)) == "state_other_browser"
    assert upstream_logins.consume_login("the-state", browser_hash=BROWSER, upstream=upstream)


def test_state_of_another_upstream_is_refused(upstream):
    """RFC 9700 4.4 mix-up: a state started for one upstream is refused at another's callback."""
    start(upstream)
    other = Upstream(slug="other", kind="oidc", display_name="Other", settings={})
    db.session.add(other)
    db.session.flush()
    assert reason(lambda: upstream_logins.consume_login("the-state", browser_hash=BROWSER,
                                                        upstream=other)) == "state_other_upstream"


def test_state_expires_after_the_configured_lifetime(upstream, app):
    """A started sign-in lives UPSTREAM_LOGIN_LIFETIME seconds (state_expired after), and the purge deletes it."""
    with time_machine.travel("2026-06-01 10:00:00", tick=False) as clock:
        start(upstream)
        clock.shift(app.config["UPSTREAM_LOGIN_LIFETIME"] + 1)
        assert reason(lambda: upstream_logins.consume_login("the-state", browser_hash=BROWSER,
                                                            upstream=upstream)) == "state_expired"
        assert upstream_logins.purge_expired() == 1
        assert db.session.query(UpstreamLogin).count() == 0


def test_link_purpose_needs_its_user(upstream):
    """Purpose "link" names the signed-in user; a plain sign-in names nobody."""
    with pytest.raises(ValueError):
        start(upstream, purpose="link")
