"""The demo relying party (examples/demo_rp, `make demo`) against a live Authy2, and the README's walk-through."""
from __future__ import annotations

import re
from pathlib import Path

import pytest
from playwright.sync_api import expect
from sqlalchemy import select

from examples.demo_rp.app import create_app as create_demo_app
from idp.extensions import db
from idp.models import OAuthClient
from idp.services.seed import DEMO_CLIENT
from tests.servers import LiveServer

ROOT = Path(__file__).resolve().parents[2]
BOB_EMAIL, BOB_PASSWORD = "bob@acme-corp.com", "UserPass123!"


@pytest.fixture
def idp_server(make_app, demo_data):
    """Authy2 on a loopback port, its ISSUER that port's URL (the RP checks the issuer it discovers)."""
    server = LiveServer(make_app())
    server.app.config["ISSUER"] = server.url
    server.start()
    yield server
    server.stop()


@pytest.fixture
def demo_server(app, idp_server):
    """The demo RP on its own loopback port, acme-portal-001 registered for that port's URIs."""
    demo = create_demo_app({"DEMO_IDP_URL": idp_server.url})
    server = LiveServer(demo)
    demo.config["DEMO_BASE_URL"] = server.url
    with app.app_context():
        client = db.session.scalars(select(OAuthClient).where(OAuthClient.client_id == DEMO_CLIENT["client_id"])).one()
        client.redirect_uris = [f"{server.url}/callback"]
        client.post_logout_redirect_uris = [f"{server.url}/"]
        db.session.commit()
    server.start()
    yield server
    server.stop()


@pytest.mark.browser
def test_demo_signs_in_refreshes_and_signs_out(page, demo_server, idp_server):
    """Code flow with PKCE and nonce, UserInfo, a rotating refresh, RP-Initiated Logout back to the demo."""
    page.goto(demo_server.url)
    page.get_by_role("link", name="Sign in with Authy2").click()
    page.get_by_label("Email address").fill(BOB_EMAIL)
    page.get_by_label("Password", exact=True).fill(BOB_PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url("**/consent/**")
    page.get_by_role("button", name="Allow").click()
    expect(page.get_by_role("heading", name=f"Signed in as {BOB_EMAIL}")).to_be_visible()
    expect(page.locator("#id-token-claims")).to_contain_text(f'"email": "{BOB_EMAIL}"')
    expect(page.locator("#id-token-claims")).to_contain_text(f'"iss": "{idp_server.url}"')
    expect(page.locator("#id-token-claims")).to_contain_text('"aud": "acme-portal-001"')
    expect(page.locator("#userinfo")).to_contain_text(f'"email": "{BOB_EMAIL}"')

    page.get_by_role("button", name="Refresh tokens").click()
    expect(page.get_by_role("status")).to_contain_text("Tokens refreshed: the new access token expires at")
    expect(page.get_by_text("refreshed 1 time")).to_be_visible()

    page.get_by_role("button", name="Sign out").click()
    page.wait_for_url(f"{demo_server.url}/")
    expect(page.get_by_role("status")).to_contain_text("You are signed out")
    expect(page.get_by_role("heading", name="You are not signed in")).to_be_visible()
    page.goto(f"{idp_server.url}/")  # the IdP session ended too: its home page no longer sends to the account
    expect(page.get_by_role("link", name="Sign in", exact=True)).to_be_visible()


def test_demo_explains_an_unreachable_idp():
    """With nothing listening at DEMO_IDP_URL, signing in shows what to start (502), never a stack trace."""
    demo = create_demo_app({"DEMO_IDP_URL": "http://127.0.0.1:9", "DEMO_BASE_URL": "http://localhost"})
    response = demo.test_client().get("/login")
    html = response.get_data(as_text=True)
    assert response.status_code == 502 and "make run" in html and "Traceback" not in html


def test_demo_callback_without_its_state_is_refused():
    """A callback the demo did not start (no stored state) is refused with a page, not a token request."""
    demo = create_demo_app({"DEMO_IDP_URL": "http://127.0.0.1:9", "DEMO_BASE_URL": "http://localhost"})
    response = demo.test_client().get("/callback?code=forged&state=forged")
    assert response.status_code == 400 and "mismatching_state" in response.get_data(as_text=True)


def test_demo_moves_to_its_configured_host():
    """Opened on 127.0.0.1 while configured as localhost, the demo redirects first (its cookie must survive)."""
    demo = create_demo_app({"DEMO_BASE_URL": "http://localhost:3000"})
    response = demo.test_client().get("/?x=1", base_url="http://127.0.0.1:3000")
    assert response.status_code == 302 and response.headers["Location"] == "http://localhost:3000/?x=1"


def test_make_demo_serves_the_demo_and_the_readme_walks_through_it():
    """`make demo` exists and runs examples/demo_rp; the README's three steps name make run, make demo, :3000."""
    makefile = (ROOT / "Makefile").read_text()
    recipe = re.search(r"^demo:.*\n((?:\t.*\n)+)", makefile, re.MULTILINE)
    assert recipe and "examples/demo_rp/app.py" in recipe.group(1)
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Try it with the demo app", 1)[1].split("\n## ", 1)[0]
    steps = re.findall(r"^\d\. (.+)$", section, re.MULTILINE)
    assert len(steps) == 3
    assert "make run" in steps[0] and "make demo" in steps[1] and "http://localhost:3000" in steps[2]
    assert BOB_EMAIL in steps[2]
