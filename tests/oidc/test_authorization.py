"""The authorization endpoint: validation, sign-in and consent hand-offs, codes, responses."""
from datetime import datetime, timedelta, timezone
from urllib.parse import urlencode

import pytest
import time_machine

from tests.oidc.conftest import REDIRECT_URI, query_of


def test_signed_in_user_gets_code_with_state_and_iss(flow, user):
    """RFC 6749 4.1.2 + RFC 9207 2: the code comes back with the exact state and the issuer."""
    flow.sign_in(user)
    response = flow.authorize()
    assert response.status_code == 302
    assert response.headers["Location"].startswith(REDIRECT_URI + "?")
    query = query_of(response.headers["Location"])
    assert query["state"] == "st-123" and query["iss"] == flow.app.config["ISSUER"] and query["code"]


def test_issued_code_is_audited_with_its_row(flow, user, app):
    """Every authorization is audited: one oauth.authorized success naming the user, the client and
    the granted scope, written with the code (no code without its audit row, and no raw code in it)."""
    from idp.models import AuditEvent, AuthorizationCode

    flow.sign_in(user)
    code = query_of(flow.authorize().headers["Location"])["code"]
    with app.app_context():
        event = AuditEvent.query.filter_by(action="oauth.authorized").one()
        assert (event.outcome, event.actor_user_id, event.target_type, event.target_id) == \
            ("success", user.id, "client", flow.rp.client_id)
        assert event.details == {"scope": "openid profile email"} and code not in str(event.details)
        row = AuthorizationCode.query.one()
        assert row.user_id == user.id and row.id != event.id


def test_unknown_client_shows_error_page_not_redirect(flow, client):
    """RFC 6749 4.1.2.1: an unknown client_id gets an HTML error page, never a redirect."""
    response = flow.authorize(client_id="nobody")
    assert response.status_code == 400 and "Location" not in response.headers
    assert "text/html" in response.content_type and "invalid_client" in response.get_data(as_text=True)


def test_unregistered_redirect_uri_shows_error_page(flow):
    """RFC 6749 3.1.2.4 / 4.1.2.1: a redirect URI not registered exactly is never redirected to."""
    for uri in ("https://evil.example/callback", REDIRECT_URI + "/extra", REDIRECT_URI + "?x=1", None):
        response = flow.authorize(redirect_uri=uri)
        assert response.status_code == 400 and "Location" not in response.headers, uri


def test_other_errors_go_back_to_redirect_uri_with_state_and_iss(flow, user):
    """RFC 6749 4.1.2.1 + RFC 9207: a bad scope is reported on the redirect URI with state and iss."""
    flow.sign_in(user)
    response = flow.authorize(scope="openid wizardry")
    query = query_of(response.headers["Location"])
    assert response.status_code == 302 and query["error"] == "invalid_scope"
    assert query["state"] == "st-123" and query["iss"] == flow.app.config["ISSUER"]


def test_unsupported_response_type_redirects(flow):
    """RFC 6749 4.1.2.1: response_type=token is unsupported_response_type at the redirect URI."""
    response = flow.authorize(response_type="token")
    assert query_of(response.headers["Location"])["error"] == "unsupported_response_type"


def test_public_client_must_send_pkce(flow, factories):
    """RFC 7636 4.4.1 / RFC 9700 2.1.1: a public client without code_challenge is refused."""
    public = factories.client(secret=None, token_endpoint_auth_method="none", redirect_uris=[REDIRECT_URI])
    flow.rp = public
    response = flow.authorize(code_challenge=None, code_challenge_method=None)
    query = query_of(response.headers["Location"])
    assert query["error"] == "invalid_request" and "PKCE" in query["error_description"]


def test_require_pkce_flag_applies_to_confidential_clients(flow, factories):
    """RFC 7636 4.4.1: a client flagged require_pkce must send code_challenge."""
    flow.rp = factories.client(redirect_uris=[REDIRECT_URI], require_pkce=True)
    response = flow.authorize(code_challenge=None, code_challenge_method=None)
    assert query_of(response.headers["Location"])["error"] == "invalid_request"


def test_plain_pkce_method_is_refused(flow):
    """RFC 7636 4.2: only S256 is supported; `plain` (or no method) is invalid_request."""
    for method in ("plain", None):
        response = flow.authorize(code_challenge_method=method)
        assert query_of(response.headers["Location"])["error"] == "invalid_request"


def test_no_session_sends_browser_to_login_with_only_request_id(flow):
    """OIDC Core 3.1.2.3: authentication needed -> login page, given only the pending request id."""
    response = flow.authorize(login_hint="ada@example.com")
    location = response.headers["Location"]
    assert response.status_code == 302 and location.startswith("/login?request=")
    assert "redirect_uri" not in location and "client_id" not in location


def test_pending_request_exposes_what_login_and_consent_pages_need(flow, app):
    """The pending request keeps client, scopes, claims, login_hint, prompt server-side."""
    from idp.services.authorization_requests import get_pending

    response = flow.authorize(login_hint="ada@example.com", prompt="login", claims='{"userinfo": {"email": null}}')
    request_id = query_of(response.headers["Location"])["request"]
    with app.app_context():
        pending = get_pending(request_id)
        assert pending.client.client_id == flow.rp.client_id and pending.scopes == ["openid", "profile", "email"]
        assert pending.login_hint == "ada@example.com" and pending.prompt == {"login"}
        assert pending.claims == {"userinfo": {"email": None}}


def test_get_pending_unknown_or_expired_raises_not_found(flow, app):
    """An unknown or expired pending id raises NotFound; the resume URL shows an HTML page."""
    from idp.errors import NotFound
    from idp.services.authorization_requests import get_pending

    request_id = query_of(flow.authorize().headers["Location"])["request"]
    with app.app_context(), pytest.raises(NotFound):
        get_pending("nope")
    with time_machine.travel(datetime.now(timezone.utc) + timedelta(hours=2)):
        response = flow.client.get(f"/oauth2/authorize/resume/{request_id}")
    assert response.status_code == 404 and "text/html" in response.content_type


def test_resume_after_sign_in_issues_code(flow, user):
    """After the login page signs the user in, resuming the pending request returns the code."""
    request_id = query_of(flow.authorize().headers["Location"])["request"]
    flow.sign_in(user)
    response = flow.client.get(f"/oauth2/authorize/resume/{request_id}")
    query = query_of(response.headers["Location"])
    assert response.status_code == 302 and query["code"] and query["state"] == "st-123"
    again = flow.client.get(f"/oauth2/authorize/resume/{request_id}")
    assert again.status_code == 404


def test_prompt_none_without_session_is_login_required(flow):
    """OIDC Core 3.1.2.6: prompt=none and nobody signed in -> login_required at the redirect URI."""
    response = flow.authorize(prompt="none")
    query = query_of(response.headers["Location"])
    assert query["error"] == "login_required" and query["state"] == "st-123" and "iss" in query


def test_prompt_none_with_session_issues_code_silently(flow, user):
    """OIDC Core 3.1.2.1: prompt=none with a session and consent returns a code without UI."""
    flow.sign_in(user)
    assert "code" in query_of(flow.authorize(prompt="none").headers["Location"])


def test_prompt_none_combined_with_other_values_is_invalid(flow, user):
    """OIDC Core 3.1.2.1: none with any other prompt value is an error."""
    flow.sign_in(user)
    assert query_of(flow.authorize(prompt="none login").headers["Location"])["error"] == "invalid_request"


def test_prompt_login_forces_fresh_sign_in_then_resume_issues(flow, user):
    """OIDC Core 3.1.2.1: prompt=login re-authenticates even with a session; afterwards the code flows."""
    flow.sign_in(user)
    response = flow.authorize(prompt="login")
    assert response.headers["Location"].startswith("/login?request=")
    request_id = query_of(response.headers["Location"])["request"]
    flow.sign_in(user)
    assert "code" in query_of(flow.client.get(f"/oauth2/authorize/resume/{request_id}").headers["Location"])


def test_max_age_exceeded_requires_sign_in_and_auth_time_is_reported(flow, user):
    """OIDC Core 3.1.2.1: an older sign-in than max_age forces login; auth_time is in the ID token."""
    from idp.models import utcnow

    flow.sign_in(user, auth_time=utcnow() - timedelta(minutes=10))
    assert flow.authorize(max_age="60").headers["Location"].startswith("/login?request=")
    assert "code" in query_of(flow.authorize(max_age="3600").headers["Location"])


def test_max_age_with_prompt_none_is_login_required(flow, user):
    """OIDC Core 3.1.2.1/3.1.2.6: a stale session under max_age with prompt=none -> login_required."""
    from idp.models import utcnow

    flow.sign_in(user, auth_time=utcnow() - timedelta(minutes=10))
    assert query_of(flow.authorize(max_age="60", prompt="none").headers["Location"])["error"] == "login_required"


def test_invalid_max_age_is_invalid_request(flow, user):
    """OIDC Core 3.1.2.1: max_age must be a non-negative integer."""
    flow.sign_in(user)
    assert query_of(flow.authorize(max_age="soon").headers["Location"])["error"] == "invalid_request"


def test_third_party_client_needs_consent_and_remembers_it(flow, user, factories, app):
    """Consent is asked for a third-party client, then remembered per user, client and scopes."""
    from idp.extensions import db
    from idp.models import OAuthClient, User
    from idp.services.consent import grant_consent

    flow.rp = factories.client(redirect_uris=[REDIRECT_URI])
    flow.sign_in(user)
    response = flow.authorize()
    assert response.headers["Location"].startswith("/consent/")
    request_id = response.headers["Location"].rsplit("/", 1)[-1]
    with app.app_context():
        grant_consent(db.session.get(User, user.id), db.session.get(OAuthClient, flow.rp.id), ["openid", "profile", "email"])
        db.session.commit()
    assert "code" in query_of(flow.client.get(f"/oauth2/authorize/resume/{request_id}").headers["Location"])
    assert "code" in query_of(flow.authorize().headers["Location"])
    assert flow.authorize(scope="openid offline_access").headers["Location"].startswith("/consent/")


def test_prompt_none_without_consent_is_consent_required(flow, user, factories):
    """OIDC Core 3.1.2.6: consent needed under prompt=none -> consent_required."""
    flow.rp = factories.client(redirect_uris=[REDIRECT_URI])
    flow.sign_in(user)
    assert query_of(flow.authorize(prompt="none").headers["Location"])["error"] == "consent_required"


def test_prompt_consent_always_asks_even_first_party(flow, user):
    """OIDC Core 3.1.2.1: prompt=consent asks again even when consent is remembered or first-party."""
    flow.sign_in(user)
    assert flow.authorize(prompt="consent").headers["Location"].startswith("/consent/")


def test_denied_consent_answers_access_denied(flow, user, factories, app):
    """RFC 6749 4.1.2.1: the user refusing consent -> access_denied at the redirect URI."""
    from idp.extensions import db
    from idp.services.authorization_requests import deny

    flow.rp = factories.client(redirect_uris=[REDIRECT_URI])
    flow.sign_in(user)
    request_id = flow.authorize().headers["Location"].rsplit("/", 1)[-1]
    with app.app_context():
        deny(request_id)
        db.session.commit()
    query = query_of(flow.client.get(f"/oauth2/authorize/resume/{request_id}").headers["Location"])
    assert query["error"] == "access_denied" and query["state"] == "st-123" and "iss" in query


def test_form_post_response_mode_posts_code_and_iss(flow, user):
    """OAuth 2.0 Form Post Response Mode: an auto-submitting form carrying code, state and iss."""
    flow.sign_in(user)
    response = flow.authorize(response_mode="form_post")
    html = response.get_data(as_text=True)
    assert response.status_code == 200 and f'action="{REDIRECT_URI}"' in html
    assert 'name="code"' in html and 'name="state" value="st-123"' in html and 'name="iss"' in html
    assert "nonce-" in response.headers["Content-Security-Policy"]


def test_unsupported_response_mode_is_invalid_request(flow, user):
    """OAuth 2.0 Multiple Response Types 2.1: an unknown response_mode is refused."""
    flow.sign_in(user)
    assert query_of(flow.authorize(response_mode="fragment").headers["Location"])["error"] == "invalid_request"


def test_post_authorization_request_and_unknown_parameters(flow, user):
    """OIDC Core 3.1.2.1: the endpoint accepts form POST; unknown parameters are ignored."""
    flow.sign_in(user)
    data = flow.authorize_params(display="page", ui_locales="fr", claims_locales="fr", acr_values="1",
                                 frobnicate="yes")
    response = flow.client.post("/oauth2/authorize", data=data)
    assert "code" in query_of(response.headers["Location"])


def test_id_token_hint_for_another_user_requires_sign_in(flow, user, factories, app):
    """OIDC Core 3.1.2.1: id_token_hint naming someone else than the session user forces login."""
    flow.sign_in(user)
    id_token = flow.tokens()["id_token"]
    other = factories.user()
    flow.sign_in(other)
    assert flow.authorize(id_token_hint=id_token).headers["Location"].startswith("/login?request=")
    assert query_of(flow.authorize(id_token_hint="garbage").headers["Location"])["error"] == "invalid_request"


def test_oversized_or_absurd_values_are_invalid_request_not_500(flow, user):
    """RFC 6749 4.1.2.1: values beyond what can be stored (huge max_age, long nonce) are invalid_request."""
    flow.sign_in(user)
    for params in ({"max_age": "9" * 40}, {"nonce": "n" * 3000}, {"login_hint": "x" * 5000}):
        response = flow.authorize(**params)
        assert response.status_code == 302 and query_of(response.headers["Location"])["error"] == "invalid_request"


def test_max_age_zero_forces_sign_in_once_then_issues(flow, user):
    """OIDC Core 3.1.2.1: max_age=0 demands a sign-in for this request; the fresh sign-in then suffices."""
    flow.sign_in(user)
    response = flow.authorize(max_age="0")
    request_id = query_of(response.headers["Location"])["request"]
    flow.sign_in(user)
    assert "code" in query_of(flow.client.get(f"/oauth2/authorize/resume/{request_id}").headers["Location"])


def test_repeated_parameter_is_refused_on_the_error_page(flow, user):
    """RFC 6749 3.1: a parameter sent twice is invalid_request (HTML page: the request is ambiguous)."""
    flow.sign_in(user)
    params = flow.authorize_params()
    for name in ("state", "client_id", "scope"):
        query = urlencode(params) + "&" + urlencode({name: params[name]})
        response = flow.client.get("/oauth2/authorize?" + query)
        assert response.status_code == 400 and "Location" not in response.headers, name
        assert "invalid_request" in response.get_data(as_text=True), name
