"""Linking an upstream identity to an existing, verified local account only once its owner proves
control: the account's password (lockout applies), or a single-use link mailed to its address.

Never silently by e-mail address: that is how Keycloak and Zitadel accounts were taken over (an
attacker's upstream account claiming the victim's address). Both proofs complete only in the browser
that came back from the upstream (the binding cookie's hash on the PendingLink).
"""
from __future__ import annotations

from dataclasses import asdict
from datetime import timedelta

from sqlalchemy import select, update

from idp.errors import BadRequest
from idp.extensions import db
from idp.models import PendingLink, Upstream, User, utcnow
from idp.security.secrets import hash_token, new_token, tokens_equal
from idp.services import browser_sessions, expiry, federated_identities, password_sign_in, provisioning
from idp.services.account_mail import send_link_confirmation_mail
from idp.services.provisioning import FederatedSignIn
from idp.services.upstream_identity import UpstreamIdentity
from idp.services.upstream_logins import FederatedSignInRefused

LIFETIME = timedelta(minutes=15)
INVALID = "This request to link a sign-in method has expired or was already used. Sign in with the provider again."
OTHER_BROWSER = ("Open this link in the browser where you signed in with the provider: for your safety it "
                 "works only there.")
KEPT = ("upstream_id", "subject", "email", "email_verified", "name", "given_name", "family_name", "picture",
        "groups", "upstream_session")


def create_pending_link(user: User, upstream: Upstream, identity: UpstreamIdentity, *, browser_hash: str,
                        authorization_request_id: str | None) -> PendingLink:
    """Park `identity` until the owner of `user` proves control, for this browser, for 15 minutes."""
    snapshot = {key: value for key, value in asdict(identity).items() if key in KEPT}
    snapshot["groups"] = list(identity.groups)
    now = utcnow()
    row = PendingLink(user_id=user.id, user=user, upstream_id=upstream.id, upstream=upstream,
                      subject=identity.subject, identity=snapshot, browser_hash=browser_hash,
                      authorization_request_id=authorization_request_id, created_at=now, expires_at=now + LIFETIME)
    db.session.add(row)
    db.session.flush()
    return row


def identity_of(link: PendingLink) -> UpstreamIdentity:
    saved = dict(link.identity)
    saved["groups"] = tuple(saved.get("groups") or ())
    return UpstreamIdentity(**saved)


def _live(link: PendingLink | None) -> PendingLink:
    if link is None or link.used_at is not None or link.expires_at <= utcnow():
        raise BadRequest(INVALID)
    return link


def _same_browser(link: PendingLink, browser_hash: str | None) -> PendingLink:
    if not browser_hash or not tokens_equal(link.browser_hash, browser_hash):
        raise BadRequest(OTHER_BROWSER, detail="pending link opened in another browser")
    return link


def get_pending_link(link_id: str | None, browser_hash: str | None) -> PendingLink:
    """The live pending link `link_id` of this browser; BadRequest otherwise."""
    link = db.session.get(PendingLink, link_id) if link_id and len(link_id) <= 36 else None
    return _same_browser(_live(link), browser_hash)


def send_confirmation_mail(link: PendingLink) -> None:
    """Mail the account's address a single-use link that completes `link` (in this browser only)."""
    token = new_token()
    link.mail_token_hash = hash_token(token)
    db.session.flush()
    send_link_confirmation_mail(link.user, token, provider=link.upstream.display_name, lifetime=LIFETIME)


def link_for_mail_token(token: str | None, browser_hash: str | None) -> PendingLink:
    """The live pending link a mailed token belongs to, if this is the browser it was started in.

    The browser check is the point: an attacker who signs in upstream with an account claiming the
    victim's address, and so makes the victim receive this mail, must not get the attacker's identity
    linked by the victim's click; the click completes nothing outside the attacker's own browser,
    and the attacker's browser never sees the token.
    """
    if not token or len(token) > 200:
        raise BadRequest(INVALID)
    link = db.session.scalars(select(PendingLink).where(PendingLink.mail_token_hash == hash_token(token))).first()
    return _same_browser(_live(link), browser_hash)


def confirm_with_password(link: PendingLink, password: str) -> FederatedSignIn:
    """Prove control with the account's password (the password sign-in's lockout and audit apply:
    InvalidCredentials, SignInLocked), then link and sign in."""
    password_sign_in.sign_in_with_password(link.user.email, password)
    return _complete(link, session=browser_sessions.current_browser_session())


def confirm_with_mail_token(token: str, browser_hash: str | None) -> FederatedSignIn:
    """Prove control with the mailed single-use link, in the browser that started; then link and sign in."""
    return _complete(link_for_mail_token(token, browser_hash))


def _complete(link: PendingLink, *, session=None) -> FederatedSignIn:
    used = db.session.execute(update(PendingLink).where(PendingLink.id == link.id, PendingLink.used_at.is_(None))
                              .values(used_at=utcnow()), execution_options={"synchronize_session": False})
    upstream, user, identity = link.upstream, link.user, identity_of(link)
    if used.rowcount != 1:
        raise BadRequest(INVALID)
    if not upstream.enabled:
        raise FederatedSignInRefused("upstream_disabled", "This sign-in provider is no longer available.", 404)
    if not user.is_active:
        raise FederatedSignInRefused("user_disabled", "This account is disabled.", 403)
    if federated_identities.find_identity(upstream, identity.subject) is not None:
        raise FederatedSignInRefused("identity_in_use", "This sign-in method is already linked to an account.")
    federated_identities.add_identity(user, upstream, identity)
    session = provisioning.open_federated_session(user, upstream, identity, session=session)
    return FederatedSignIn(user=user, session=session, authorization_request_id=link.authorization_request_id)


def purge_expired(now=None, limit: int | None = None) -> int:
    """Delete at most `limit` (JOB_PURGE_BATCH) pending links past their expiry (the job runner calls this)."""
    table = PendingLink.__table__
    return expiry.delete_batch(table, table.c.expires_at < (now or utcnow()), expiry.batch_size(limit))
