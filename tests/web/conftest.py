"""Fixtures for the hosted pages: the seed's demo data, live servers, the demo RP's callback requests.

The browser fixtures (`chromium`, `page`) live in tests/conftest.py: one Chromium per run, for every
directory that drives one.
"""
from __future__ import annotations

import pytest


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
