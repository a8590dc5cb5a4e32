"""Request and response hygiene shared by the pages and the API: control characters in path ids,
and no caching of personal answers."""
from __future__ import annotations

from flask import request

from idp.errors import NotFound


def has_control_character(value: str) -> bool:
    return any(ord(char) < 32 or ord(char) == 127 for char in value)


def refuse_control_characters_in_path() -> None:
    """404 for an id in the path holding a control character: no id has one, and PostgreSQL refuses
    NUL in a query parameter (it would surface as a 500)."""
    if any(isinstance(v, str) and has_control_character(v) for v in (request.view_args or {}).values()):
        raise NotFound()


def forbid_caching(response):
    """Pages and API answers carry personal data, tokens and one-time form tokens: never stored by a
    cache (RFC 9111 5.2.2.5). A response that set its own policy (the public brand stylesheet) keeps it."""
    response.headers.setdefault("Cache-Control", "no-store")
    return response
