"""From an upstream identity to a signed-in user: find it by (upstream, subject), link it, or
provision its user; shared by every connector. Each rule answers an account takeover that happened:

- the key is (upstream, subject), never the e-mail address;
- an address that belongs to a verified local account is never linked silently (Keycloak and Zitadel,
  2025-2026): the owner proves control first (services.pending_links);
- an upstream that does not vouch for the address (Microsoft's `email`, GitHub's unverified
  addresses: the 2023 "nOAuth" takeover) never links without that proof and never reclaims;
- an unverified local account is neutralised before a verified identity takes its address
  (pre-account-hijacking, Sudhodanan & Paverd, USENIX Security 2022).
"""
from __future__ import annotations

from sqlalchemy import select

from idp.errors import ValidationError
from idp.extensions import db
from idp.models import FederatedIdentity, Session, SessionStatus, Upstream, User, utcnow
from idp.services import accounts, federated_identities, pending_links, provisioning, session_end
from idp.services.session_end import SessionEnd
from idp.services.provisioning import FederatedSignIn, ProvisioningRaced
from idp.services.upstream_identity import UpstreamIdentity
from idp.services.upstream_logins import FederatedSignInRefused

DISABLED = "This account is disabled. Contact your administrator."
NO_EMAIL = ("The provider did not share an email address, and an account needs one. Allow access to your "
            "email address at the provider, or use another sign-in method.")
UNVERIFIED = ("An account with this email address already exists, and the provider does not confirm that the "
              "address is yours. Verify the address of your account first (sign in with its password, or "
              "reset the password through the email we send), then add this sign-in method from your account.")
IN_USE = "This sign-in method is already linked to another account."


def sign_in_identity(upstream: Upstream, identity: UpstreamIdentity, *, browser_hash: str,
                     purpose: str = "sign_in", link_user_id: str | None = None,
                     authorization_request_id: str | None = None) -> FederatedSignIn:
    """Decide what `identity`, verified by `upstream`'s connector, does: sign its user in, link it to the
    signed-in user (purpose "link"), or wait for a proof of control (a pending link)."""
    if identity.upstream_id != upstream.id:
        raise FederatedSignInRefused("identity_other_upstream", "This answer came from another provider.")
    if purpose == "link":
        return link_to_user(upstream, identity, link_user_id)
    try:
        return _decide(upstream, identity, browser_hash, authorization_request_id)
    except ProvisioningRaced:
        # A concurrent first sign-in created the identity (or took the address): it is there now.
        return _decide(upstream, identity, browser_hash, authorization_request_id)


def _decide(upstream: Upstream, identity: UpstreamIdentity, browser_hash: str,
            authorization_request_id: str | None) -> FederatedSignIn:
    known = federated_identities.find_identity(upstream, identity.subject)
    if known is not None:
        return _sign_in_known(known, upstream, identity, authorization_request_id)
    email = _email_of(identity)
    account = accounts.find_user_by_email(email)
    if account is None:
        user = provisioning.provision_user(upstream, identity, email)
        return _signed_in(user, upstream, identity, authorization_request_id)
    _require_active(account, upstream)
    if account.email_verified:
        link = pending_links.create_pending_link(account, upstream, identity, browser_hash=browser_hash,
                                                 authorization_request_id=authorization_request_id)
        return FederatedSignIn(user=account, pending_link=link, authorization_request_id=authorization_request_id)
    if not identity.email_verified:
        raise FederatedSignInRefused("email_unverified", UNVERIFIED)
    provisioning.reclaim_unverified_account(account, upstream, identity)
    return _signed_in(account, upstream, identity, authorization_request_id)


def _sign_in_known(known: FederatedIdentity, upstream: Upstream, identity: UpstreamIdentity,
                   authorization_request_id: str | None) -> FederatedSignIn:
    user = known.user
    _require_active(user, upstream)
    known.last_signed_in_at = utcnow()
    known.email = (identity.email or "")[:254] or known.email
    return _signed_in(user, upstream, identity, authorization_request_id)


def _signed_in(user: User, upstream: Upstream, identity: UpstreamIdentity,
               authorization_request_id: str | None) -> FederatedSignIn:
    session = provisioning.open_federated_session(user, upstream, identity)
    return FederatedSignIn(user=user, session=session, authorization_request_id=authorization_request_id)


def link_to_user(upstream: Upstream, identity: UpstreamIdentity, user_id: str | None) -> FederatedSignIn:
    """Purpose "link": a signed-in user adds this identity as a way to sign in (the user proved control
    of the account by being signed in, and started the link with a CSRF-checked form). Refused when the
    identity belongs to another account; the browser's session is left as it is."""
    user = db.session.get(User, user_id) if user_id else None
    if user is None:
        raise FederatedSignInRefused("link_user_unknown", "Sign in to your account first.")
    _require_active(user, upstream)
    known = federated_identities.find_identity(upstream, identity.subject)
    if known is not None and known.user_id != user.id:
        raise FederatedSignInRefused("identity_in_use", IN_USE)
    if known is None:
        federated_identities.add_identity(user, upstream, identity)
    else:
        known.last_signed_in_at = utcnow()
    provisioning.apply_organization(user, upstream, identity)
    db.session.flush()
    return FederatedSignIn(user=user)


def _require_active(user: User, upstream: Upstream) -> None:
    if not user.is_active:
        raise FederatedSignInRefused("user_disabled", DISABLED, 403, detail=f"user {user.id} is disabled")


def _email_of(identity: UpstreamIdentity) -> str:
    """The identity's address in the stored form; refused when absent or not an address."""
    if not identity.email:
        raise FederatedSignInRefused("email_missing", NO_EMAIL)
    try:
        return accounts.normalise_email(identity.email)
    except ValidationError:
        raise FederatedSignInRefused("email_invalid", NO_EMAIL,
                                     detail="the upstream's email is not an address") from None


def end_upstream_sessions(upstream: Upstream, name_id: str | None,
                          session_indexes: tuple[str, ...] = ()) -> SessionEnd:
    """SAML Single Logout (SAML 2.0 Profiles 4.4.4.1): end the active sessions signed in through
    `upstream` for `name_id`, only those of `session_indexes` when the LogoutRequest names any."""
    if not name_id:
        return SessionEnd([])
    query = select(Session).where(Session.idp == upstream.slug, Session.status == SessionStatus.ACTIVE.value)
    matching = [s for s in db.session.scalars(query)
                if (s.upstream_session or {}).get("name_id") == name_id
                and (not session_indexes or (s.upstream_session or {}).get("session_index") in session_indexes)]
    return session_end.sign_out(matching, channel="saml_slo", upstream=upstream.slug)
