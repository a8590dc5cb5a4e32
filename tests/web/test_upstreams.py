"""The sign-in page's "Continue with ..." buttons (idp.web.upstreams)."""
from __future__ import annotations

from idp.web.upstreams import upstream_buttons


def test_configured_upstreams_appear_as_buttons(make_app):
    """Upstreams in app.extensions["upstreams"] become "Continue with" links; off-site URLs are dropped."""
    app = make_app()
    app.extensions["upstreams"] = [{"label": "Google", "url": "/federation/google/start"},
                                   {"label": "Evil", "url": "https://evil.example/start"}]
    html = app.test_client().get("/login").get_data(as_text=True)
    assert 'href="/federation/google/start"' in html and "Continue with Google" in html
    assert "evil.example" not in html


def test_no_upstreams_means_no_buttons(client):
    """With no upstream configured the page shows no federation section."""
    assert "Continue with" not in client.get("/login").get_data(as_text=True)


def test_upstream_buttons_carry_the_pending_request_id(make_app):
    """During an authorization request each upstream link carries ?request=<id> to resume it."""
    app = make_app()
    app.extensions["upstreams"] = [{"label": "GitHub", "url": "/federation/github/start"}]
    with app.test_request_context("/login"):
        assert upstream_buttons("abc") == [{"label": "GitHub", "url": "/federation/github/start?request=abc"}]
