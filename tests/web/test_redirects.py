"""Where the browser may go after sign-in: same-origin paths only (no open redirect)."""
from __future__ import annotations

import pytest

from idp.web.redirects import safe_next
from tests.web.helpers import sign_in

HOSTILE = [
    "//evil.com", "https://evil.com", "http://evil.com/account", "/\\evil.com", "\\\\evil.com",
    "javascript:alert(1)", "JavaScript:alert(1)", "data:text/html,hi", "/\t/evil.com", "/\n/evil.com",
    " //evil.com", "evil.com", "///evil.com", "/%0a/evil.com".replace("%0a", "\n"), "",
]


@pytest.mark.parametrize("value", HOSTILE)
def test_hostile_next_values_are_refused(value):
    """Absolute, scheme-relative, backslash, whitespace and pseudo-scheme targets are refused."""
    assert safe_next(value) is None


@pytest.mark.parametrize("value", ["/account", "/account/sessions?tab=1", "/consent/abc#x"])
def test_same_origin_paths_are_kept(value):
    """Plain same-origin paths are allowed as they are."""
    assert safe_next(value) == value


@pytest.mark.parametrize("value", ["//evil.com", "https://evil.com", "/\\evil.com", "javascript:alert(1)"])
def test_sign_in_never_redirects_off_site(client, factories, value):
    """After sign-in a hostile `next` is ignored and the user lands on /account."""
    user = factories.user()
    response = sign_in(client, user.email, next_path=value)
    assert response.status_code == 302
    assert response.headers["Location"] == "/account"


def test_sign_in_follows_a_same_origin_next(client, factories):
    """A same-origin `next` path is honoured after sign-in."""
    user = factories.user()
    response = sign_in(client, user.email, next_path="/account/sessions")
    assert response.headers["Location"] == "/account/sessions"


def test_hostile_next_is_not_echoed_into_the_form(client):
    """The login page drops a hostile `next` instead of carrying it in a hidden field."""
    html = client.get("/login?next=https://evil.com").get_data(as_text=True)
    assert "evil.com" not in html


def test_account_pages_send_visitors_to_sign_in_and_back(client, factories):
    """Opening an account page signed out goes to /login with next set to that page."""
    response = client.get("/account/sessions")
    assert response.status_code == 302
    assert response.headers["Location"] == "/login?next=/account/sessions"


def test_overlong_next_is_ignored_not_an_error(client, factories):
    """A `next` longer than 2000 characters is dropped; sign-in still works and lands on /account."""
    user = factories.user()
    response = sign_in(client, user.email, next_path="/a" * 1500)
    assert response.status_code == 302 and response.headers["Location"] == "/account"
