"""Page guards: which session opens a page, hostile path and query values, and caching of pages."""
from __future__ import annotations

import pytest

from idp.extensions import db
from idp.models import SessionKind, User
from idp.services.browser_sessions import PLAIN_COOKIE
from idp.services.sessions import create_session
from tests.factories import DEFAULT_PASSWORD
from tests.web.helpers import sign_in, submit

NEW_PASSWORD = "Granite-Willow-Echo-64"


def _api_login(client, email: str, password: str = DEFAULT_PASSWORD) -> dict:
    response = client.post("/api/v1/auth/login", json={"email": email, "password": password})
    assert response.status_code == 200
    return {"Authorization": f"Bearer {response.get_json()['data']['token']}"}


def test_api_token_in_the_session_cookie_does_not_sign_in(app, client, factories):
    """An API bearer token planted as the SSO cookie opens no page: the kinds never mix."""
    user = factories.user()
    with app.app_context():
        _, token = create_session(db.session.get(User, user.id), kind=SessionKind.API)
        db.session.commit()
    client.set_cookie(PLAIN_COOKIE, token, domain="localhost")
    response = client.get("/account")
    assert response.status_code == 302 and response.headers["Location"].startswith("/login")


def test_browser_session_revoked_through_the_api_is_dead_on_pages(client, factories):
    """A browser session revoked from the API (DELETE /auth/sessions/<id>) no longer opens pages."""
    user = factories.user()
    sign_in(client, user.email)
    api = client.application.test_client()
    headers = _api_login(api, user.email)
    browser = next(s for s in api.get("/api/v1/auth/sessions", headers=headers).get_json()["data"]
                   if s["kind"] == "browser")
    assert api.delete(f"/api/v1/auth/sessions/{browser['id']}", headers=headers).status_code == 200
    assert client.get("/account").status_code == 302


def test_api_password_change_ends_browser_sessions(client, factories):
    """Changing the password over the API signs every browser out too (only the calling session stays)."""
    user = factories.user()
    sign_in(client, user.email)
    api = client.application.test_client()
    headers = _api_login(api, user.email)
    response = api.post("/api/v1/users/me/password", headers=headers,
                        json={"current_password": DEFAULT_PASSWORD, "new_password": NEW_PASSWORD})
    assert response.status_code == 200 and response.get_json()["data"]["sessions_ended"] == 1
    assert client.get("/account").status_code == 302


def test_page_password_change_ends_api_sessions(client, factories):
    """Changing the password on the account page ends the user's API bearer sessions as well."""
    user = factories.user()
    headers = _api_login(client.application.test_client(), user.email)
    sign_in(client, user.email)
    response = submit(client, "/account/password", {"current_password": DEFAULT_PASSWORD,
                                                    "password": NEW_PASSWORD, "confirm": NEW_PASSWORD})
    assert response.status_code == 302
    assert client.get("/api/v1/auth/me", headers=headers).status_code == 401


def test_deleted_account_browser_session_is_dead(client, factories):
    """Deleting the account over the API ends its browser sessions: pages ask to sign in again."""
    user = factories.user()
    sign_in(client, user.email)
    api = client.application.test_client()
    headers = _api_login(api, user.email)
    assert api.delete("/api/v1/users/me", json={"password": DEFAULT_PASSWORD}, headers=headers).status_code == 200
    assert client.get("/account").status_code == 302


@pytest.mark.parametrize("path", ["/consent/%00", "/consent/abc%0Adef"])
def test_control_characters_in_path_ids_are_a_404_page(client, path):
    """An id with NUL or a line break in the path is a 404 page (PostgreSQL refuses NUL: never a 500)."""
    response = client.get(path)
    assert response.status_code == 404 and response.mimetype == "text/html"


def test_control_characters_in_a_session_id_to_revoke_are_a_404_page(client, factories):
    """Revoking a session whose id holds NUL answers 404, not a database error."""
    sign_in(client, factories.user().email)
    response = submit(client, "/account/sessions", {}, action="/account/sessions/%00/revoke")
    assert response.status_code == 404


def test_request_id_with_nul_in_the_query_is_ignored(client):
    """`?request=` holding NUL is treated as no pending request: the sign-in page shows normally."""
    assert client.get("/login?request=%00abc").status_code == 200


def test_profile_name_with_control_characters_is_refused(app, client, factories):
    """A name holding NUL or other control characters is a 422 field error and nothing is saved."""
    user = factories.user(name="Original")
    sign_in(client, user.email)
    response = submit(client, "/account", {"name": "Eve\x00Admin"})
    assert response.status_code == 422 and 'id="name-error"' in response.get_data(as_text=True)
    with app.app_context():
        assert db.session.get(User, user.id).name == "Original"


@pytest.mark.parametrize("path", ["/account", "/account/sessions", "/account/apps", "/account/password"])
def test_pages_with_personal_data_are_never_cached(client, factories, path):
    """Signed-in pages carry Cache-Control no-store, so a shared computer's cache keeps nothing (RFC 9111 5.2.2.5)."""
    sign_in(client, factories.user().email)
    response = client.get(path)
    assert response.status_code == 200 and response.headers["Cache-Control"] == "no-store"


def test_forms_and_their_answers_are_never_cached(client, factories):
    """Sign-in, registration and reset pages (CSRF tokens, typed emails) and redirects are no-store."""
    for path in ("/login", "/register", "/forgot-password", "/logout"):
        assert client.get(path).headers["Cache-Control"] == "no-store", path
    user = factories.user()
    assert sign_in(client, user.email).headers["Cache-Control"] == "no-store"


def test_brand_stylesheet_stays_publicly_cacheable(client):
    """The public brand stylesheet keeps its own caching policy."""
    assert client.get("/brand.css").headers["Cache-Control"] == "public, max-age=300"
