"""The consent page, reached from a real /oauth2/authorize request for the demo client."""
from __future__ import annotations

from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
from sqlalchemy import select

from idp.extensions import db
from idp.models import OAuthClient
from idp.services.seed import DEMO_CLIENT, seed_demo_data
from tests.web.helpers import sign_in, submit

BOB = ("bob@acme-corp.com", "UserPass123!")
CALLBACK = DEMO_CLIENT["redirect_uris"][0]


@pytest.fixture
def demo(app):
    """The seed's Acme organization, users and acme-portal-001 client."""
    with app.app_context():
        seed_demo_data()
        db.session.commit()


def _authorize(client, **extra) -> str:
    params = {"client_id": DEMO_CLIENT["client_id"], "response_type": "code", "redirect_uri": CALLBACK,
              "scope": "openid profile email", "state": "st-123", "nonce": "n-456", **extra}
    response = client.get("/oauth2/authorize?" + urlencode(params))
    assert response.status_code in (302, 303), response.get_data(as_text=True)[:500]
    return response.headers["Location"]


def _request_id(location: str) -> str:
    parts = urlsplit(location)
    return parse_qs(parts.query).get("request", [parts.path.rsplit("/", 1)[-1]])[0]


def _to_consent(client) -> str:
    """Start an authorization, sign in on the login page, follow resume to the consent page."""
    request_id = _request_id(_authorize(client))
    resumed = sign_in(client, *BOB, request_id=request_id)
    assert resumed.headers["Location"] == f"/oauth2/authorize/resume/{request_id}"
    consent_url = client.get(resumed.headers["Location"]).headers["Location"]
    assert consent_url == f"/consent/{request_id}"
    return consent_url


def test_login_page_names_the_client_and_keeps_only_the_request_id(client, demo):
    """OIDC Core 3.1.2.3: the sign-in page for a pending request names the RP; the URL holds only its id."""
    location = _authorize(client, login_hint="bob@acme-corp.com")
    assert urlsplit(location).path == "/login" and set(parse_qs(urlsplit(location).query)) == {"request"}
    html = client.get(location).get_data(as_text=True)
    assert "to continue to <strong>Acme Portal</strong>" in html
    assert 'value="bob@acme-corp.com"' in html


def test_consent_page_lists_scopes_in_plain_words(client, demo):
    """OIDC Core 3.1.2.4: consent shows the client's name and what each requested scope allows."""
    html = client.get(_to_consent(client)).get_data(as_text=True)
    assert "Acme Portal" in html
    assert "Your email address and whether it is verified" in html and "Your name, picture and locale" in html
    assert 'name="allow"' in html and 'name="deny"' in html


def test_allow_returns_a_code_with_state_and_iss(client, demo, app):
    """RFC 6749 4.1.2 and RFC 9207: allowing sends the code, state and iss to the redirect URI."""
    consent_url = _to_consent(client)
    resumed = submit(client, consent_url, {"allow": "Allow"})
    callback = client.get(resumed.headers["Location"]).headers["Location"]
    query = parse_qs(urlsplit(callback).query)
    assert callback.startswith(CALLBACK)
    assert query["code"][0] and query["state"] == ["st-123"] and query["iss"] == [app.config["ISSUER"]]


def test_deny_returns_access_denied(client, demo):
    """RFC 6749 4.1.2.1: denying answers error=access_denied with the state."""
    consent_url = _to_consent(client)
    resumed = submit(client, consent_url, {"deny": "Deny"})
    callback = client.get(resumed.headers["Location"]).headers["Location"]
    query = parse_qs(urlsplit(callback).query)
    assert callback.startswith(CALLBACK) and query["error"] == ["access_denied"] and query["state"] == ["st-123"]


def test_consent_needs_a_signed_in_user(client, demo):
    """Opening the consent page signed out goes to sign-in for that same request."""
    request_id = _request_id(_authorize(client))
    response = client.get(f"/consent/{request_id}")
    assert response.status_code == 302 and response.headers["Location"] == f"/login?request={request_id}"


def test_unknown_consent_request_is_a_404_page(client, demo):
    """A made-up or expired request id shows an HTML 404 page."""
    sign_in(client, *BOB)
    response = client.get("/consent/not-a-real-request")
    assert response.status_code == 404 and "has expired or is unknown" in response.get_data(as_text=True)


def test_consent_post_without_csrf_is_refused(client, demo):
    """A cross-site POST cannot grant consent: no CSRF token, 400, and nothing is remembered."""
    consent_url = _to_consent(client)
    assert client.post(consent_url, data={"allow": "Allow"}).status_code == 400
    assert client.get(consent_url).status_code == 200


def test_remembered_consent_is_not_asked_again(client, demo):
    """OIDC Core 3.1.2.4: once allowed, the same scopes go straight back with a code."""
    submit(client, _to_consent(client), {"allow": "Allow"})
    location = _authorize(client)
    assert location.startswith(CALLBACK) and "code=" in location


def test_hostile_client_name_and_uri_are_shown_as_text(app, client, demo):
    """A client named with markup shows as text on consent and login; a javascript: client_uri is not linked."""
    with app.app_context():
        row = db.session.scalars(select(OAuthClient).where(OAuthClient.client_id == DEMO_CLIENT["client_id"])).one()
        row.name, row.client_uri = '<script>alert("x")</script>', "javascript:alert(1)"
        db.session.commit()
    html = client.get(_to_consent(client)).get_data(as_text=True)
    assert "<script>alert" not in html and "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in html
    assert "javascript:" not in html


def _set_demo_client(app, **values) -> None:
    with app.app_context():
        row = db.session.scalars(select(OAuthClient).where(OAuthClient.client_id == DEMO_CLIENT["client_id"])).one()
        for name, value in values.items():
            setattr(row, name, value)
        db.session.commit()


def test_consent_links_privacy_policy_and_terms(app, client, demo):
    """RFC 7591 2 / OIDC Registration 2: the consent page links the client's policy_uri and tos_uri,
    so the user can read its privacy policy and terms of service before allowing."""
    _set_demo_client(app, policy_uri="https://acme.example/privacy?lang=en&v=2", tos_uri="http://acme.example/terms")
    html = client.get(_to_consent(client)).get_data(as_text=True)
    assert ('<a href="https://acme.example/privacy?lang=en&amp;v=2" rel="noopener noreferrer">Privacy policy</a>'
            in html)
    assert '<a href="http://acme.example/terms" rel="noopener noreferrer">Terms of service</a>' in html


def test_non_http_policy_and_terms_are_not_linked(app, client, demo):
    """Hostile data written straight into the database: a javascript: or data: policy_uri / tos_uri
    gives the user no link at all, and a quote in a URL cannot break out of the attribute."""
    _set_demo_client(app, policy_uri="javascript:alert(1)", tos_uri="data:text/html,<script>alert(1)</script>")
    html = client.get(_to_consent(client)).get_data(as_text=True)
    assert "Privacy policy" not in html and "Terms of service" not in html
    assert "javascript:" not in html and "data:text" not in html and "<script>alert" not in html
    _set_demo_client(app, policy_uri='https://acme.example/p" onclick="alert(1)')
    html = client.get(_to_consent(client)).get_data(as_text=True)
    assert 'href="https://acme.example/p&#34; onclick=&#34;alert(1)"' in html and 'onclick="alert' not in html
