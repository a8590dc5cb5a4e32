"""Where a page may send the browser next: only same-origin paths, never an arbitrary URL."""
from __future__ import annotations

from urllib.parse import urlsplit

MAX_NEXT_LENGTH = 2000


def safe_next(value: str | None) -> str | None:
    """`value` when it is a plain same-origin path (e.g. /account/sessions?x=1), else None.

    Refused: absolute URLs, scheme-relative //host, backslash tricks (/\\host, which browsers read
    as //host), any whitespace or control character (browsers drop tabs and newlines, turning
    "/\\t/host" into "//host"), and javascript:/data: pseudo-URLs.
    """
    if not value or len(value) > MAX_NEXT_LENGTH or not value.startswith("/"):
        return None
    if value.startswith("//") or "\\" in value or any(ch.isspace() or ord(ch) < 32 or ord(ch) == 127 for ch in value):
        return None
    parts = urlsplit(value)
    if parts.scheme or parts.netloc:
        return None
    return value
