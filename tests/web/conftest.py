"""Fixtures for the hosted pages: one headless Chromium per test session, a fresh page per test."""
from __future__ import annotations

import os
import shutil

import pytest

from tests.conftest import REQUIRE_SERVICES

CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


@pytest.fixture(scope="session")
def chromium():
    """One headless Chromium for the whole run (Playwright driving the Debian package)."""
    executable = shutil.which("chromium") or shutil.which("chromium-browser")
    if executable is None:
        if REQUIRE_SERVICES:
            pytest.fail("browser tests cannot run: chromium is not installed (REQUIRE_SERVICES=1)")
        pytest.skip("chromium is not installed")
    from playwright.sync_api import sync_playwright

    os.environ.setdefault("PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD", "1")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def page(chromium):
    """A fresh browser context (no cookies) and page for one test."""
    context = chromium.new_context()
    context.set_default_timeout(10_000)
    tab = context.new_page()
    yield tab
    context.close()


@pytest.fixture
def demo_data(app):
    """The seed's Acme organization, users (bob@acme-corp.com) and acme-portal-001 client."""
    from idp.extensions import db
    from idp.services.seed import seed_demo_data

    with app.app_context():
        seed_demo_data()
        db.session.commit()


@pytest.fixture
def mail_live_server(make_app, smtp_sink):
    """The app on a loopback port, mailing through the real SMTP sink."""
    from tests.servers import LiveServer

    server = LiveServer(make_app(SMTP_HOST=smtp_sink.host, SMTP_PORT=smtp_sink.port))
    server.start()
    yield server
    server.stop()


@pytest.fixture
def callbacks(page):
    """URLs of requests the browser made to the demo RP's callback (nothing serves localhost:3000).

    Redirect hops escape page.route in Chromium, so requests are watched instead; the navigation then
    fails harmlessly, after the code, state and iss were read from its URL.
    """
    seen: list[str] = []
    page.on("request", lambda req: seen.append(req.url) if req.url.startswith("http://localhost:3000/") else None)
    return seen
