"""The request id: an incoming X-Request-ID when it is a UUID, else a new uuid4; echoed back."""
from __future__ import annotations

import os
import re

from flask import g, has_request_context, request
from flask.globals import request_ctx

# The canonical 8-4-4-4-12 hexadecimal form (RFC 9562 section 4), in either case.
UUID_PATTERN = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$", re.IGNORECASE)
INCOMING = "HTTP_X_REQUEST_ID"  # the X-Request-ID header in the WSGI environ (PEP 3333)
VARIANT_DIGITS = "89ab"  # the hex digits whose top two bits are 10, by their low two bits


def request_id_for(environ: dict) -> str:
    """Take an incoming X-Request-ID that is a UUID (so a proxy's id runs through), lower-cased;
    anything else is replaced by a fresh uuid4, so a client cannot put free text into our logs,
    audit rows and error pages."""
    incoming = environ.get(INCOMING, "")
    return incoming.lower() if UUID_PATTERN.fullmatch(incoming) else random_uuid4()


def random_uuid4() -> str:
    """str(uuid.uuid4()) at a third of its cost (no UUID object): 122 random bits from os.urandom,
    the version nibble 4 and the variant bits 10 (RFC 9562 5.4)."""
    h = os.urandom(16).hex()
    return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-{VARIANT_DIGITS[int(h[16], 16) & 3]}{h[17:20]}-{h[20:]}"


def assign_request_id() -> None:
    g.request_id = request_id_for(request.environ)


def current_request_id() -> str | None:
    """This request's id, assigned on first use (an extension may answer before our hook ran)."""
    if not has_request_context():
        return None
    return _assigned(g._get_current_object(), request.environ)


def echo_request_id(response):
    """An after-request hook: a request context is there, so current_request_id's check is not needed."""
    response.headers["X-Request-ID"] = _assigned(g._get_current_object(), request_ctx.request.environ)
    return response


def _assigned(request_globals, environ: dict) -> str:
    request_id = request_globals.get("request_id")  # not getattr: a missing attribute raises
    if request_id is None:
        request_id = request_globals.request_id = request_id_for(environ)
    return request_id
