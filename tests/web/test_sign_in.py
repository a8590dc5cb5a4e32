"""Sign in (/login) and sign out (/logout) with the test client."""
from __future__ import annotations

from sqlalchemy import select

from idp.extensions import db
from idp.models import AuditEvent, Session, SessionStatus
from tests.web.helpers import sign_in, submit


def _audits(app, action: str) -> list[AuditEvent]:
    with app.app_context():
        return list(db.session.scalars(select(AuditEvent).where(AuditEvent.action == action)))


def test_login_page_has_labelled_fields_and_links(client):
    """The sign-in page labels its fields and links to registration and password reset."""
    html = client.get("/login").get_data(as_text=True)
    assert '<label class="label" for="email">' in html and '<label class="label" for="password">' in html
    assert 'href="/register"' in html and 'href="/forgot-password"' in html
    assert 'name="csrf_token"' in html


def test_successful_sign_in_goes_to_account_and_sets_session(client, factories, app):
    """Correct credentials open a browser session and land on the account page."""
    user = factories.user()
    response = sign_in(client, user.email)
    assert response.status_code == 302 and response.headers["Location"] == "/account"
    assert client.get_cookie("authy2_session") is not None
    assert user.email in client.get("/account").get_data(as_text=True)
    assert _audits(app, "login")[0].outcome == "success"


def test_wrong_password_and_unknown_email_get_the_same_generic_error(client, factories, app):
    """Unknown email and wrong password read the same, so the page never confirms an account."""
    user = factories.user()
    wrong = sign_in(client, user.email, "not-the-password")
    unknown = sign_in(client, "nobody@example.com", "not-the-password")
    assert wrong.status_code == unknown.status_code == 401
    for response in (wrong, unknown):
        html = response.get_data(as_text=True)
        assert "The email address or password is incorrect." in html
    assert client.get_cookie("authy2_session") is None
    assert {e.outcome for e in _audits(app, "login")} == {"failure"}


def test_missing_fields_are_reported_next_to_the_fields(client):
    """An empty form answers 422 with each error tied to its input by aria-describedby."""
    response = submit(client, "/login", {"email": "", "password": ""})
    html = response.get_data(as_text=True)
    assert response.status_code == 422
    assert 'aria-describedby="email-error"' in html and 'id="email-error"' in html
    assert 'aria-invalid="true"' in html and "Enter your password." in html


def test_sign_in_issues_a_new_session_id(client, factories, app):
    """Signing in replaces any earlier session cookie and revokes that session (no fixation)."""
    user = factories.user()
    sign_in(client, user.email)
    first = client.get_cookie("authy2_session").value
    submit(client, "/forgot-password", {"email": user.email, "password": "Correct-Horse-42"}, action="/login")
    second = client.get_cookie("authy2_session").value
    assert first != second
    with app.app_context():
        statuses = sorted(s.status for s in db.session.scalars(select(Session)))
    assert statuses == [SessionStatus.ACTIVE.value, SessionStatus.REVOKED.value]


def test_planted_session_cookie_is_not_adopted(client, factories):
    """A cookie value chosen by an attacker before sign-in is replaced, never made valid."""
    user = factories.user()
    client.set_cookie("authy2_session", "attacker-chosen-value")
    sign_in(client, user.email)
    assert client.get_cookie("authy2_session").value != "attacker-chosen-value"


def test_session_cookie_flags_over_http(client, factories):
    """Over plain HTTP the SSO cookie is HttpOnly and SameSite=Lax, path /."""
    user = factories.user()
    cookies = sign_in(client, user.email).headers.getlist("Set-Cookie")
    header = next(c for c in cookies if c.startswith("authy2_session="))
    assert "HttpOnly" in header and "SameSite=Lax" in header and "Path=/" in header


def test_session_cookie_flags_under_https_issuer(make_app, factories):
    """With an https ISSUER the SSO and device cookies are Secure with the __Host- prefix (RFC 6265bis 4.1.3.2)."""
    app = make_app(ISSUER="https://id.example.com")
    client = app.test_client()
    user = factories.user()
    form_cookie = client.get("/login", base_url="https://id.example.com").headers["Set-Cookie"]
    assert form_cookie.startswith("__Host-authy2_form=") and "Secure" in form_cookie and "HttpOnly" in form_cookie
    response = sign_in(client, user.email, base_url="https://id.example.com")
    assert response.status_code == 302
    sso = next(c for c in response.headers.getlist("Set-Cookie") if c.startswith("__Host-authy2_session="))
    assert "Secure" in sso and "HttpOnly" in sso and "SameSite=Lax" in sso and "Path=/" in sso
    assert "Domain" not in sso
    device = next(c for c in response.headers.getlist("Set-Cookie") if c.startswith("__Host-authy2_device="))
    assert "Secure" in device and "HttpOnly" in device and "SameSite=Lax" in device and "Domain" not in device


def test_signed_in_visitor_of_login_goes_to_account(client, factories):
    """A signed-in user opening /login without an authorization request goes on to the account."""
    user = factories.user()
    sign_in(client, user.email)
    response = client.get("/login")
    assert response.status_code == 302 and response.headers["Location"] == "/account"


def test_unknown_request_id_still_signs_in_to_account(client, factories):
    """A stale or made-up request id is ignored; sign-in lands on the account page."""
    user = factories.user()
    response = sign_in(client, user.email, request_id="no-such-request")
    assert response.headers["Location"] == "/account"


def test_pages_carry_security_headers(client):
    """Pages send a CSP without inline script, frame-ancestors 'none', nosniff, same-origin referrers."""
    response = client.get("/login")
    csp = response.headers["Content-Security-Policy"]
    assert "frame-ancestors 'none'" in csp and "'unsafe-inline'" not in csp
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Referrer-Policy"] == "same-origin"
    html = response.get_data(as_text=True)
    assert "<script" not in html and "style=" not in html


def test_logout_get_asks_for_confirmation(client, factories):
    """GET /logout shows a confirm form and does not sign out (no state change on GET)."""
    user = factories.user()
    sign_in(client, user.email)
    html = client.get("/logout").get_data(as_text=True)
    assert "Sign out?" in html and 'method="post"' in html
    assert client.get("/account").status_code == 200


def test_logout_post_ends_the_session_server_side(client, factories, app):
    """POST /logout revokes the session, clears the cookie and is audited."""
    user = factories.user()
    sign_in(client, user.email)
    token = client.get_cookie("authy2_session").value
    response = submit(client, "/logout", {})
    assert response.status_code == 302 and response.headers["Location"] == "/login"
    with app.app_context():
        assert db.session.scalars(select(Session)).one().status == SessionStatus.REVOKED.value
    client.set_cookie("authy2_session", token)  # replaying the old cookie does not help
    assert client.get("/account").status_code == 302
    assert _audits(app, "logout")


def test_logout_without_csrf_is_refused(client, factories):
    """A cross-site POST to /logout (no CSRF token) cannot sign the user out."""
    user = factories.user()
    sign_in(client, user.email)
    assert client.post("/logout").status_code == 400
    assert client.get("/account").status_code == 200
