"""Branding (/brand.css) and the HTML error page."""
from __future__ import annotations


def test_brand_css_carries_the_configured_colour(make_app):
    """BRAND_COLOR reaches the pages as a CSS variable from /brand.css, not an inline style."""
    client = make_app(BRAND_COLOR="#0a7f5a", BRAND_NAME="Acme ID").test_client()
    css = client.get("/brand.css")
    assert css.status_code == 200 and css.mimetype == "text/css"
    assert "--brand: #0a7f5a;" in css.get_data(as_text=True)
    html = client.get("/login").get_data(as_text=True)
    assert 'href="/brand.css"' in html and "Acme ID" in html


def test_brand_colour_that_is_not_a_hex_colour_is_ignored(make_app):
    """A BRAND_COLOR carrying CSS (e.g. '; } body {...') falls back to the default colour."""
    client = make_app(BRAND_COLOR="red; } body { display: none").test_client()
    css = client.get("/brand.css").get_data(as_text=True)
    assert "display" not in css and "--brand: #3b5bdb;" in css


def test_unknown_page_renders_the_html_error_page(client):
    """An unknown page answers a 404 HTML page with a heading, the message and a reference."""
    reference = "6c1f4a4e-2b8e-4a63-9d7e-0d3f5b2c9a41"
    response = client.get("/no-such-page", headers={"X-Request-ID": reference})
    html = response.get_data(as_text=True)
    assert response.status_code == 404 and "text/html" in response.content_type
    assert "<h1>Page not found</h1>" in html and reference in html
    assert "Traceback" not in html


def test_error_page_keeps_the_csp(client):
    """Error pages keep the strict CSP: no inline script or style."""
    response = client.get("/no-such-page")
    assert "frame-ancestors 'none'" in response.headers["Content-Security-Policy"]
    assert "<script" not in response.get_data(as_text=True)
