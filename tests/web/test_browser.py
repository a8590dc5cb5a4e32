"""End to end in headless Chromium: the hosted pages as a person uses them, over real HTTP."""
from __future__ import annotations

import re
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
from playwright.sync_api import Error as PlaywrightError
from playwright.sync_api import expect

from idp.services.seed import DEMO_CLIENT
from tests.web.helpers import link_in

pytestmark = pytest.mark.browser

BOB_EMAIL, BOB_PASSWORD = "bob@acme-corp.com", "UserPass123!"
CALLBACK = DEMO_CLIENT["redirect_uris"][0]
LOGIN_WITH_NEXT = re.compile(r"/login\?next=")


def authorize_url(server, **extra) -> str:
    params = {"client_id": DEMO_CLIENT["client_id"], "response_type": "code", "redirect_uri": CALLBACK,
              "scope": "openid profile email", "state": "browser-state", "nonce": "browser-nonce", **extra}
    return f"{server.url}/oauth2/authorize?{urlencode(params)}"


def fill_sign_in(page, email: str, password: str) -> None:
    page.get_by_label("Email address").fill(email)
    page.get_by_label("Password", exact=True).fill(password)
    page.get_by_role("button", name="Sign in").click()


def callback_query(callbacks: list[str]) -> dict:
    assert callbacks, "the browser never reached the RP callback"
    assert callbacks[-1].startswith(CALLBACK)
    return {k: v[0] for k, v in parse_qs(urlsplit(callbacks[-1]).query).items()}


def consent_and_allow(page, callbacks) -> dict:
    page.wait_for_url("**/consent/**")
    assert page.get_by_role("heading", level=1).inner_text().startswith("Acme Portal")
    with page.expect_request(lambda r: r.url.startswith(CALLBACK)):
        page.get_by_role("button", name="Allow").click()
    return callback_query(callbacks)


def test_code_flow_sign_in_consent_callback(page, live_server, demo_data, callbacks, app):
    """OIDC Core 3.1.2: authorize -> sign in -> consent -> the RP receives code, state and iss (RFC 9207)."""
    page.goto(authorize_url(live_server))
    expect(page.get_by_text("to continue to Acme Portal")).to_be_visible()
    fill_sign_in(page, BOB_EMAIL, BOB_PASSWORD)
    query = consent_and_allow(page, callbacks)
    assert query["code"] and query["state"] == "browser-state" and query["iss"] == app.config["ISSUER"]


def test_prompt_none_after_sign_in_answers_without_pages(page, live_server, demo_data, callbacks):
    """OIDC Core 3.1.2.1: with a session and consent, prompt=none returns a code with no interaction."""
    page.goto(authorize_url(live_server))
    fill_sign_in(page, BOB_EMAIL, BOB_PASSWORD)
    consent_and_allow(page, callbacks)
    with page.expect_request(lambda r: r.url.startswith(CALLBACK)):
        try:
            page.goto(authorize_url(live_server, prompt="none", state="silent"))
        except PlaywrightError:
            pass  # the redirect reached localhost:3000, where nothing listens: that request is the answer
    query = callback_query(callbacks)
    assert query["code"] and query["state"] == "silent" and "error" not in query


def test_consent_deny_sends_access_denied(page, live_server, demo_data, callbacks):
    """RFC 6749 4.1.2.1: Deny on the consent page sends error=access_denied to the RP."""
    page.goto(authorize_url(live_server))
    fill_sign_in(page, BOB_EMAIL, BOB_PASSWORD)
    page.wait_for_url("**/consent/**")
    with page.expect_request(lambda r: r.url.startswith(CALLBACK)):
        page.get_by_role("button", name="Deny").click()
    query = callback_query(callbacks)
    assert query["error"] == "access_denied" and query["state"] == "browser-state"


def test_wrong_password_shows_a_generic_error(page, live_server, demo_data):
    """A wrong password keeps the user on the page with a generic, announced error."""
    page.goto(f"{live_server.url}/login")
    fill_sign_in(page, BOB_EMAIL, "not-my-password")
    expect(page.get_by_role("alert")).to_have_text("The email address or password is incorrect.")
    assert page.get_by_label("Email address").input_value() == BOB_EMAIL
    assert page.context.cookies() and not any(c["name"] == "authy2_session" for c in page.context.cookies())


def test_register_verify_by_mail_then_sign_in(page, mail_live_server, smtp_sink):
    """Register, open the verification link from the real SMTP mail, then sign in."""
    page.goto(f"{mail_live_server.url}/register")
    page.get_by_label("Full name").fill("Ada Lovelace")
    page.get_by_label("Email address").fill("ada@example.com")
    page.get_by_label("Password", exact=True).fill("Analytical-Engine-1843")
    page.get_by_label("Confirm password").fill("Analytical-Engine-1843")
    page.get_by_role("button", name="Create account").click()
    expect(page.get_by_role("heading", name="Check your email")).to_be_visible()
    link = urlsplit(link_in(smtp_sink.wait_for(1)[0], "/verify-email"))
    page.goto(f"{mail_live_server.url}{link.path}?{link.query}")
    page.wait_for_url("**/login")
    expect(page.get_by_text("your email address is confirmed")).to_be_visible()
    fill_sign_in(page, "ada@example.com", "Analytical-Engine-1843")
    page.wait_for_url("**/account")
    expect(page.get_by_text("Signed in as ada@example.com")).to_be_visible()
    expect(page.get_by_text("not confirmed yet")).to_have_count(0)


def test_password_reset_by_mail(page, mail_live_server, smtp_sink, demo_data):
    """Forgot password -> mailed link -> new password -> sign in with it."""
    page.goto(f"{mail_live_server.url}/login")
    page.get_by_role("link", name="Forgot your password?").click()
    page.get_by_label("Email address").fill(BOB_EMAIL)
    page.get_by_role("button", name="Send reset link").click()
    expect(page.get_by_role("heading", name="Check your email")).to_be_visible()
    link = urlsplit(link_in(smtp_sink.wait_for(1)[0], "/reset-password"))
    page.goto(f"{mail_live_server.url}{link.path}?{link.query}")
    page.get_by_label("New password", exact=True).fill("Brand-New-Bicycle-22")
    page.get_by_label("Confirm new password").fill("Brand-New-Bicycle-22")
    page.get_by_role("button", name="Set new password").click()
    page.wait_for_url("**/login")
    fill_sign_in(page, BOB_EMAIL, "Brand-New-Bicycle-22")
    page.wait_for_url("**/account")


def test_logout_ends_the_session(page, live_server, demo_data):
    """Sign out from the account page; the account then asks to sign in again."""
    page.goto(f"{live_server.url}/account")
    page.wait_for_url(LOGIN_WITH_NEXT)
    fill_sign_in(page, BOB_EMAIL, BOB_PASSWORD)
    page.wait_for_url("**/account")
    page.get_by_role("link", name="Sign out").click()
    page.get_by_role("button", name="Sign out").click()
    page.wait_for_url("**/login")
    expect(page.get_by_text("You have been signed out.")).to_be_visible()
    page.goto(f"{live_server.url}/account")
    page.wait_for_url(LOGIN_WITH_NEXT)
