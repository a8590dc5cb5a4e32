"""The request id: taken from a well-formed incoming X-Request-ID, else a new uuid4; echoed back."""
from __future__ import annotations

import re
import uuid

from flask import g, has_request_context, request

REQUEST_ID_PATTERN = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")


def assign_request_id() -> None:
    """Take a well-formed incoming X-Request-ID (so a proxy's id runs through), else make a uuid4."""
    incoming = request.headers.get("X-Request-ID", "")
    g.request_id = incoming if REQUEST_ID_PATTERN.fullmatch(incoming) else str(uuid.uuid4())


def current_request_id() -> str | None:
    """This request's id, assigned on first use (an extension may answer before our hook ran)."""
    if not has_request_context():
        return None
    if "request_id" not in g:
        assign_request_id()
    return g.request_id


def echo_request_id(response):
    response.headers["X-Request-ID"] = current_request_id() or ""
    return response
