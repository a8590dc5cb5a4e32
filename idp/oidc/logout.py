"""RP-Initiated Logout 1.0: end the SSO session (idp.services.session_end: its tokens are revoked and
its relying parties told), redirect only to a registered post_logout_redirect_uri, after the
Front-Channel Logout iframes when there are any, and by the SAML IdP's single logout when the
session came from one; ask the user first when the request cannot be tied to them."""
from __future__ import annotations

from urllib.parse import urlsplit

from authlib.oidc.rpinitiated import EndSessionEndpoint, EndSessionRequest
from flask import current_app, render_template, request
from flask_wtf import FlaskForm
from wtforms import HiddenField, SubmitField

from idp.extensions import db
from idp.federation.single_logout import start_upstream_logout
from idp.models import Session
from idp.request_id import current_request_id
from idp.security.headers import allow_frames
from idp.services.browser_sessions import current_browser_session, sign_out
from idp.services.session_end import SessionEnd, frontchannel_logout_uris

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

    def end_session(self, end_session_request: EndSessionRequest) -> SessionEnd:
        """End the browser's SSO session and the session the hint's `sid` names (the same user's)."""
        claims = end_session_request.id_token_claims or {}
        hinted = db.session.get(Session, claims["sid"]) if claims.get("sid") else None
        also = [hinted] if hinted is not None and hinted.user.subject == claims.get("sub") else []
        return sign_out(also=also, channel="oidc", rp_initiated=True)

    def create_response(self, end_session_request: EndSessionRequest):
        """RPI Logout 3 and Front-Channel Logout 1.0 4: end the session, then redirect to the
        post_logout_redirect_uri; when relying parties are to be told in this browser, first the
        signed-out page with their iframes, which continues there. A session federated through a
        SAML upstream with single logout goes by the IdP first (SAML Profiles 4.4.3.1: our signed
        LogoutRequest; its LogoutResponse at our SLO endpoint continues to the same place), after the
        iframes (idp.federation.single_logout)."""
        ended = self.end_session(end_session_request)
        frames, refused = frontchannel_logout_uris(ended), refusal(end_session_request)
        upstream_url = start_upstream_logout(ended, channel="oidc", next_url=end_session_request.redirect_uri,
                                             refused=refused)
        next_url = upstream_url or end_session_request.redirect_uri
        if next_url and not frames:
            return 302, "", [("Location", next_url), ("Cache-Control", "no-store")]
        allow_frames(frames)
        page = render_template("oidc/logged_out.html", frames=frames, next_url=next_url, refused=refused)
        return 200, page, [("Content-Type", "text/html; charset=utf-8"), ("Cache-Control", "no-store")]


def refusal(req: EndSessionRequest) -> str | None:
    """Why an asked-for post_logout_redirect_uri is not followed (RPI Logout 3), in plain words for
    the page; the operator's reason goes to the log with the request id. None when nothing was refused."""
    asked = req.request.payload.data.get("post_logout_redirect_uri")
    if not asked or req.redirect_uri:
        return None
    if req.client is None:
        shown, why = "could not be tied to an application", "neither client_id nor id_token_hint names a client"
    elif asked not in (req.client.post_logout_redirect_uris or []):
        shown, why = "is not registered for it", f"not registered for client {req.client.client_id}"
    else:
        shown, why = "could not be confirmed", "no id_token_hint, and the user did not confirm the logout"
    parts = urlsplit(asked)
    current_app.logger.info("post_logout_redirect_uri %s refused (request %s): %s",
                            f"{parts.scheme}://{parts.netloc}{parts.path}"[:200], current_request_id(), why)
    return shown


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
