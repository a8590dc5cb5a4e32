"""Per-request plumbing: the request id, and one commit or rollback per request."""
from __future__ import annotations

import re
import uuid

from flask import Flask, g, has_request_context, request
from sqlalchemy.exc import IntegrityError

from idp.errors import Conflict
from idp.extensions import db
from idp.services import audit

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


def finish_transaction(response):
    """Commit a successful request's work once; roll back a failed one, keeping failure audits."""
    if response.status_code >= 400:
        db.session.rollback()
        failures = audit.pending_failures()
        if failures:
            db.session.add_all(failures)
            db.session.commit()
        return response
    try:
        db.session.commit()
    except IntegrityError:
        db.session.rollback()
        from idp.error_handlers import render_error
        from idp.security.headers import apply_security_headers

        # The replacement response was not seen by the header hooks that already ran.
        return apply_security_headers(render_error(Conflict("The request conflicts with existing data.")))
    return response


def setup_requests(app: Flask) -> None:
    app.before_request(assign_request_id)
    # after_request hooks run in reverse: the id is echoed after the commit, on whatever it returns.
    app.after_request(echo_request_id)
    app.after_request(finish_transaction)
