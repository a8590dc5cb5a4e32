"""Form helpers for driving the hosted pages with the Flask test client."""
from __future__ import annotations

import email
import re
from email import policy
from html import unescape
from urllib.parse import urlencode

from tests.factories import DEFAULT_PASSWORD

CSRF_INPUT = re.compile(r'name="csrf_token" type="hidden" value="([^"]+)"')


def csrf_from(html: str) -> str:
    """The CSRF token of the first form on a page."""
    match = CSRF_INPUT.search(html)
    assert match, "the page has no CSRF token"
    return unescape(match.group(1))


def submit(client, page: str, data: dict, action: str | None = None, base_url: str = "http://localhost", **kwargs):
    """GET `page`, then POST its form (to `action`, else the same URL) with the page's CSRF token.

    Like a browser, the POST carries a same-origin Referer (Flask-WTF requires one under HTTPS).
    """
    token = csrf_from(client.get(page, base_url=base_url).get_data(as_text=True))
    headers = {"Referer": base_url + page, **kwargs.pop("headers", {})}
    response = client.post(action or page, data={"csrf_token": token, **data}, base_url=base_url, headers=headers,
                           **kwargs)
    response.close()  # as a WSGI server does once the body is sent: runs after-response work (mail)
    return response


def sign_in(client, email: str, password: str = DEFAULT_PASSWORD, *, next_path: str | None = None,
            request_id: str | None = None, base_url: str = "http://localhost"):
    """Sign in through the real /login form; returns the POST's response."""
    query = {k: v for k, v in (("next", next_path), ("request", request_id)) if v}
    page = "/login" + (f"?{urlencode(query)}" if query else "")
    fields = {"email": email, "password": password}
    if next_path:
        fields["next"] = next_path
    if request_id:
        fields["request"] = request_id
    return submit(client, page, fields, action="/login", base_url=base_url)


LINK = re.compile(r"(https?://\S+)")


def mail_text(message) -> str:
    """The plain-text part of a received email."""
    parsed = email.message_from_bytes(message.as_bytes(), policy=policy.default)
    return parsed.get_body(preferencelist=("plain",)).get_content()


def link_in(message, path: str) -> str:
    """The first link in an email's text whose path starts with `path`."""
    for url in LINK.findall(mail_text(message)):
        if path in url:
            return url
    raise AssertionError(f"no {path} link in the email")
