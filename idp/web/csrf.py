"""A refused CSRF check answers with a clear page (400), in the surface's own format."""
from __future__ import annotations

from flask import Flask, current_app, g
from flask_wtf.csrf import CSRFError

from idp.errors import BadRequest

CSRF_MESSAGE = ("This form has expired or did not come from this site, so it was not sent. "
                "Go back, reload the page and try again.")


def handle_csrf_error(error: CSRFError):
    from idp.error_handlers import render_error
    from idp.request_id import assign_request_id

    if "request_id" not in g:  # CSRFProtect checks before the request id is assigned
        assign_request_id()
    current_app.logger.info("CSRF refused (request_id=%s): %s", g.get("request_id"), error.description)
    return render_error(BadRequest(CSRF_MESSAGE))


def setup_csrf_page(app: Flask) -> None:
    app.register_error_handler(CSRFError, handle_csrf_error)
