"""Consent (/consent/<request_id>): may this app have what it asks for? Allow or deny."""
from __future__ import annotations

from flask import redirect, render_template, request, url_for

from idp.errors import NotFound
from idp.services import browser_sessions
from idp.services import consent as consent_service
from idp.web.blueprint import bp
from idp.web.forms import ConsentForm
from idp.services.authorization_requests import find_pending
from idp.web.scope_text import scope_lines

EXPIRED = "This sign-in request has expired or is unknown. Go back to the app and start again."


@bp.route("/consent/<request_id>", methods=["GET", "POST"])
def consent(request_id: str):
    pending = find_pending(request_id)
    if pending is None:
        raise NotFound(EXPIRED)
    session = browser_sessions.current_browser_session()
    if session is None:
        return redirect(url_for("web.login", request=pending.id))
    form = ConsentForm()
    if request.method == "GET" or not form.validate():
        return render_template("web/consent.html", form=form, pending=pending, client=pending.client,
                               user=session.user, scopes=scope_lines(list(pending.scopes)))
    if form.allow.data:
        consent_service.grant_consent(session.user, pending.client, list(pending.scopes))
    else:
        consent_service.deny_consent(session.user, pending.client, list(pending.scopes), pending.id)
    return redirect(url_for("oidc.resume", request_id=pending.id))
