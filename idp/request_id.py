"""The request id: an incoming X-Request-ID when it is a UUID, else a new uuid4; echoed back."""
from __future__ import annotations

import re
import uuid

from flask import g, has_request_context, request

# The canonical 8-4-4-4-12 hexadecimal form (RFC 9562 section 4), in either case.
UUID_PATTERN = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$", re.IGNORECASE)
INCOMING = "HTTP_X_REQUEST_ID"  # the X-Request-ID header in the WSGI environ (PEP 3333)


def request_id_for(environ: dict) -> str:
    """Take an incoming X-Request-ID that is a UUID (so a proxy's id runs through), lower-cased;
    anything else is replaced by a fresh uuid4, so a client cannot put free text into our logs,
    audit rows and error pages."""
    incoming = environ.get(INCOMING, "")
    return incoming.lower() if UUID_PATTERN.fullmatch(incoming) else str(uuid.uuid4())


def assign_request_id() -> None:
    g.request_id = request_id_for(request.environ)


def current_request_id() -> str | None:
    """This request's id, assigned on first use (an extension may answer before our hook ran)."""
    if not has_request_context():
        return None
    request_globals = g._get_current_object()  # one context lookup instead of three
    request_id = request_globals.get("request_id")  # not getattr: a missing attribute raises
    if request_id is None:
        request_id = request_globals.request_id = request_id_for(request.environ)
    return request_id


def echo_request_id(response):
    response.headers["X-Request-ID"] = current_request_id() or ""
    return response
