"""SP-initiated SAML Single Logout (SAML 2.0 Profiles 4.4.3, 4.4.4.2): when this browser signs out of
a session that was federated through a SAML upstream with an SLO URL, the IdP is told too.

Our sign-out always comes first and never depends on the IdP: the session-ending service has ended
the session, revoked its tokens and queued the back-channel logout tokens before the browser is sent
to the IdP with a signed HTTP-Redirect LogoutRequest. The IdP's LogoutResponse comes back to
/api/v1/auth/external/<slug>/slo; once its signature and InResponseTo check out, the browser goes on
to where our logout would have gone.

Where to go on is kept server-side, as a started upstream login of purpose "logout" (UpstreamLogin:
only the RelayState's hash, bound to this browser's binding cookie, to this upstream, used once,
expiring, its saved data encrypted): the LogoutRequest ID, the post_logout_redirect_uri (already
validated as registered for the client, with its `state`) or none, why an asked-for one was refused,
and which sign-out page to show. RelayState itself is only a random token (bindings 3.4.3: at most 80
bytes), so nothing in the URL can send the browser anywhere.

Order with Front-Channel Logout 1.0: its iframes are rendered first, on our signed-out page, whose
Continue goes to the IdP; the relying parties are told in this browser before it leaves our origin,
even when the IdP never sends it back.
"""
from __future__ import annotations

from flask import current_app

from idp.extensions import db
from idp.federation.browser_binding import bind_browser, browser_hash
from idp.federation.connectors import open_connector
from idp.models import Session, Upstream
from idp.request_id import current_request_id
from idp.security.secrets import new_token
from idp.services import upstream_logins, upstreams
from idp.services.session_end import SessionEnd
from idp.services.upstream_logins import FederatedSignInRefused

NOT_MATCHED = ("You are signed out here. The sign-in provider's answer does not belong to a sign-out started in "
               "this browser, so we did not take you any further.")


def _federated_session(ended: SessionEnd) -> Session | None:
    """The first session this call ended that a SAML upstream signed in (it has a NameID)."""
    for session in ended.sessions:
        if session.id in ended.ended_ids and session.idp and (session.upstream_session or {}).get("name_id"):
            return session
    return None


def start_upstream_logout(ended: SessionEnd, *, channel: str, next_url: str | None = None,
                          refused: str | None = None) -> str | None:
    """The IdP's SLO URL with a signed LogoutRequest for the ended session's NameID and SessionIndex
    (profiles 4.4.3.1), its continuation saved; None when no ended session came from an enabled SAML
    upstream with an SLO URL. `channel` ("oidc" or "web") picks the page shown after the IdP answers
    when there is no `next_url`. Our sign-out is already done, so a failure here is logged, not raised."""
    session = _federated_session(ended)
    upstream = upstreams.find_enabled(session.idp) if session is not None else None
    if upstream is None or upstream.kind != "saml":
        return None
    state = new_token()
    try:
        start = open_connector(upstream).begin_logout(session.upstream_session, relay_state=state)
    except Exception:  # noqa: BLE001 - an unusable upstream must not turn a finished sign-out into an error
        current_app.logger.exception("SAML LogoutRequest to upstream %r not sent (request_id=%s)", upstream.slug,
                                     current_request_id())
        return None
    if start is None:
        return None
    saved = {**start.saved, "next": next_url, "refused": refused, "channel": channel}
    upstream_logins.start_login(upstream, state=state, browser_hash=bind_browser(), saved=saved, purpose="logout")
    return start.url


def finish_upstream_logout(upstream: Upstream, relay_state: str | None, in_response_to: str | None) -> dict:
    """The continuation of the sign-out the IdP's (signature-verified) LogoutResponse answers, spent at
    once: it must name a logout this browser started at this upstream (RelayState) and answer its
    LogoutRequest (InResponseTo, core 3.7.2); FederatedSignInRefused otherwise."""
    try:
        started = upstream_logins.consume_login(relay_state, browser_hash=browser_hash(), upstream=upstream,
                                                purposes=("logout",))
    except FederatedSignInRefused as refusal:
        raise FederatedSignInRefused(refusal.reason, NOT_MATCHED) from None
    db.session.commit()
    if not in_response_to or started.saved.get("request_id") != in_response_to:
        raise FederatedSignInRefused("in_response_to", NOT_MATCHED, detail=f"InResponseTo {in_response_to!r}")
    return started.saved
