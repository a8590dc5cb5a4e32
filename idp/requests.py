"""Per-request plumbing: the request id, and one commit or rollback per request."""
from __future__ import annotations

import re
import uuid

from flask import Flask, g, request
from sqlalchemy.exc import IntegrityError

from idp.errors import Conflict
from idp.extensions import db
from idp.services import audit

REQUEST_ID_PATTERN = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")


def assign_request_id() -> None:
    incoming = request.headers.get("X-Request-ID", "")
    g.request_id = incoming if REQUEST_ID_PATTERN.match(incoming) else str(uuid.uuid4())


def echo_request_id(response):
    response.headers["X-Request-ID"] = g.get("request_id", "")
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

        return render_error(Conflict("The request conflicts with existing data."))
    return response


def setup_requests(app: Flask) -> None:
    app.before_request(assign_request_id)
    app.after_request(finish_transaction)
    app.after_request(echo_request_id)
