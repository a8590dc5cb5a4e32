"""The home page (/) and the site icon (/favicon.ico)."""
from __future__ import annotations

import re

from tests.web.helpers import sign_in

HREF = re.compile(r'<a [^>]*href="([^"]+)"')
ICON_LINKS = re.compile(r'<link rel="icon" href="([^"]+)"')


def test_home_page_says_what_this_is_and_links_onwards(client):
    """An anonymous visitor gets a page naming the service, with sign-in, account, API docs and discovery."""
    response = client.get("/")
    html = response.get_data(as_text=True)
    assert response.status_code == 200 and "text/html" in response.content_type
    assert "OpenID Connect" in html
    links = set(HREF.findall(html))
    assert {"/login", "/account", "/api/docs", "/.well-known/openid-configuration"} <= links
    assert "<script" not in html


def test_every_home_page_link_resolves(client):
    """Each link on the home page ends at a 200 (the account page by way of sign-in)."""
    links = set(HREF.findall(client.get("/").get_data(as_text=True))) - {"#main"}
    assert "/.well-known/openid-configuration" in links
    for href in links:
        response = client.get(href, follow_redirects=True)
        assert response.status_code == 200, href


def test_signed_in_visitor_goes_straight_to_the_account(client, factories):
    """With a live browser session, / redirects to the account page."""
    factories.user("home@example.com")
    sign_in(client, "home@example.com")
    response = client.get("/")
    assert response.status_code == 302 and response.headers["Location"].endswith("/account")


def test_favicon_ico_is_a_real_icon(client):
    """/favicon.ico, which browsers request on their own, answers an ICO image, cacheable, setting no cookie."""
    response = client.get("/favicon.ico")
    assert response.status_code == 200 and response.mimetype.startswith("image/")
    assert response.data[:4] == b"\x00\x00\x01\x00"  # ICONDIR: reserved 0, type 1 (icon)
    assert "max-age=86400" in response.headers["Cache-Control"]
    assert "Set-Cookie" not in response.headers


def test_pages_link_the_icons_and_each_answers_an_image(client):
    """The base layout links the ICO and the SVG mark, so no page makes the browser guess (and 404)."""
    icons = ICON_LINKS.findall(client.get("/login").get_data(as_text=True))
    assert "/favicon.ico" in icons and any(icon.endswith("/favicon.svg") for icon in icons)
    svg = client.get(next(icon for icon in icons if icon.endswith(".svg")))
    assert svg.status_code == 200 and svg.mimetype == "image/svg+xml" and b"<svg" in svg.data
