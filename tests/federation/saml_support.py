"""What the SAML tests share (import the fixtures into the test module): keys, the stand-in IdP, this
IdP's URLs for an upstream, opening a connector, posting a form."""
from __future__ import annotations

import base64

import pytest

from idp.federation.connector import FederationRefused, UpstreamConfig, UpstreamUrls
from idp.federation.http import UpstreamHttp
from idp.federation.saml import KIND
from tests.federation.standins.saml_idp import SamlIdp
from tests.federation.standins.saml_messages import KeyPair, ResponseSpec

IDP_ENTITY = "http://idp.corp.example/metadata"
IDP_SSO = "http://idp.corp.example/sso"
HTTP = UpstreamHttp(allow_private=True, timeout=5)


@pytest.fixture(scope="module")
def idp_keys() -> KeyPair:
    """The corp IdP's signing key pair."""
    return KeyPair.generate("corp idp")


@pytest.fixture(scope="module")
def sp_keys() -> KeyPair:
    """Our SP key pair (given to validate, so that no RSA-3072 key is made per test)."""
    return KeyPair.generate("sp")


@pytest.fixture(scope="module")
def standin():
    """The stand-in SAML IdP on loopback."""
    idp = SamlIdp()
    idp.start()
    yield idp
    idp.stop()


@pytest.fixture
def own_idp():
    """A stand-in SAML IdP of this test's own (another entity ID and signing key, which the test may rotate)."""
    idp = SamlIdp()
    idp.start()
    yield idp
    idp.stop()


def urls(slug: str) -> UpstreamUrls:
    base = f"http://authy2.test/api/v1/auth/external/{slug}"
    return UpstreamUrls(login=f"{base}/login", callback=f"{base}/callback", metadata=f"{base}/metadata",
                        acs=f"{base}/acs", slo=f"{base}/slo")


def open_stored(stored: dict, secrets: dict, slug: str = "corp", organization_id=None, email_domains=()):
    config = UpstreamConfig(id=f"up-{slug}", slug=slug, kind="saml", display_name="Corp", settings=stored,
                            secrets=secrets, organization_id=organization_id, email_domains=tuple(email_domains))
    return KIND.open(config, urls(slug), HTTP)


def connector(sp_keys, settings: dict, slug: str = "corp", organization_id=None, email_domains=()):
    """A connector for `settings` as validated (our key pair given, so no RSA-3072 key is made)."""
    stored, secrets = KIND.validate(settings, {"sp_private_key": sp_keys.key_pem}, HTTP)
    return open_stored(stored, secrets, slug, organization_id, email_domains)


def direct_settings(idp_keys, **extra) -> dict:
    return {"entity_id": IDP_ENTITY, "sso_url": IDP_SSO, "certificates": [idp_keys.cert_pem], **extra}


def spec_for(conn, request_id="_request-1", **overrides) -> ResponseSpec:
    values = dict(acs_url=conn.urls.acs, audience=conn.urls.metadata, issuer=IDP_ENTITY, in_response_to=request_id)
    values.update(overrides)
    return ResponseSpec(**values)


def form(xml: str) -> dict:
    return {"SAMLResponse": base64.b64encode(xml.encode()).decode(), "RelayState": "state-1"}


def refusal(conn, xml: str, *, unsolicited: bool = False) -> str:
    """The reason `conn` refuses `xml` (answering the AuthnRequest "_request-1", or unsolicited)."""
    with pytest.raises(FederationRefused) as refused:
        conn.complete(form(xml), None if unsolicited else {"request_id": "_request-1"})
    return refused.value.reason
