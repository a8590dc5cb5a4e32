"""RP-Initiated Logout 1.0: end the SSO session, revoke its tokens, redirect only to a registered
post_logout_redirect_uri; ask the user first when the request cannot be tied to them."""
from __future__ import annotations

from authlib.oidc.rpinitiated import EndSessionEndpoint, EndSessionRequest
from flask import current_app, request
from flask_wtf import FlaskForm
from wtforms import HiddenField, SubmitField

from idp.extensions import db
from idp.models import Session
from idp.services import audit, sessions
from idp.services import tokens as token_records
from idp.services.browser_sessions import current_browser_session, sign_out

CARRIED_PARAMETERS = ("id_token_hint", "client_id", "post_logout_redirect_uri", "state", "ui_locales", "logout_hint")


class LogoutConfirmForm(FlaskForm):
    id_token_hint = HiddenField()
    client_id = HiddenField()
    post_logout_redirect_uri = HiddenField()
    state = HiddenField()
    ui_locales = HiddenField()
    logout_hint = HiddenField()
    confirm = SubmitField("Sign out")


class EndSession(EndSessionEndpoint):
    def get_server_jwks(self):
        return current_app.extensions["oidc"]["keys"].verification_keyset()

    def get_algorithms(self) -> list[str]:
        return ["RS256", "ES256"]

    def is_post_logout_redirect_uri_legitimate(self, req, post_logout_redirect_uri, client, logout_hint) -> bool:
        """Without an id_token_hint, a registered URI is honoured once the user confirmed on our page."""
        return request.method == "POST" and bool(request.form.get("confirm"))

    def end_session(self, end_session_request: EndSessionRequest) -> None:
        """End the browser's SSO session (and the hint's `sid` session) and revoke their tokens."""
        ended = sign_out()
        claims = end_session_request.id_token_claims or {}
        hinted = db.session.get(Session, claims["sid"]) if claims.get("sid") else None
        if hinted is not None and hinted.user.subject == claims.get("sub"):
            sessions.revoke(hinted)
        for session in {s.id: s for s in (ended, hinted) if s is not None}.values():
            count = token_records.revoke_session_tokens(session.id)
            audit.record("auth.logout", actor_user_id=session.user_id, target_type="session", target_id=session.id,
                         details={"tokens_revoked": count, "rp_initiated": True})


def tied_to_user(req: EndSessionRequest) -> bool:
    """The id_token_hint names the user signed in here (or nobody is signed in to ask)."""
    session = current_browser_session()
    if session is None:
        return True
    claims = req.id_token_claims
    return bool(claims) and claims.get("sub") == session.user.subject


def confirm_form() -> LogoutConfirmForm:
    """The confirmation form, pre-filled from the logout request on GET."""
    form = LogoutConfirmForm()
    if request.method == "GET":
        for name in CARRIED_PARAMETERS:
            getattr(form, name).data = request.args.get(name, "")
    return form
