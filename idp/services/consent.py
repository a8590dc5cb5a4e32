"""Remembered consent per user, client and scopes."""
from __future__ import annotations

from datetime import datetime
from functools import cache

from sqlalchemy import bindparam, cast, exists, select
from sqlalchemy.dialects.postgresql import JSONB

from idp.extensions import db
from idp.models import Consent, OAuthClient, User, utcnow
from idp.services import audit, authorization_requests
from idp.services import tokens as token_records


def _find(user: User, client: OAuthClient) -> Consent | None:
    query = select(Consent).where(Consent.user_id == user.id, Consent.oauth_client_id == client.id)
    return db.session.scalars(query).first()


def grant_consent(user: User, client: OAuthClient, scopes: list[str]) -> Consent:
    """Remember that `user` granted `scopes` to `client` (added to what was granted before)."""
    consent = _find(user, client)
    if consent is None:
        consent = Consent(user_id=user.id, oauth_client_id=client.id, client=client, scopes=[])
        db.session.add(consent)
    consent.scopes = sorted(set(consent.scopes or []) | set(scopes))
    consent.granted_at = utcnow()
    audit.record("consent.granted", actor_user_id=user.id, target_type="client", target_id=client.client_id,
                 details={"scopes": sorted(scopes)})
    db.session.flush()
    return consent


def deny_consent(user: User, client: OAuthClient, scopes: list[str], request_id: str) -> None:
    """`user` refused `scopes` to `client`: the pending request `request_id` resumes with access_denied."""
    authorization_requests.deny(request_id)
    audit.record("consent.denied", actor_user_id=user.id, target_type="client", target_id=client.client_id,
                 details={"scopes": sorted(scopes)})


def has_consent(user: User, client: OAuthClient, scopes: list[str], since: datetime | None = None) -> bool:
    """True when `user` granted every one of `scopes` to `client` (at or after `since`, if given)."""
    # Two columns, not the ORM object: this runs on every authorization request of a third-party client.
    consent = db.session.execute(_granted_statement(), {"user_id": user.id, "client_id": client.id}).first()
    if consent is None or not set(scopes) <= set(consent.scopes or []):
        return False
    return since is None or consent.granted_at >= since


@cache
def consented_on(sign_in):
    """has_consent in SQL, for the user of `sign_in` (a CTE with `user_id`, idp.services.sessions.
    live_sign_in): that user granted the client every requested scope. PostgreSQL (jsonb
    containment); bind values from consented_on_values."""
    consents = Consent.__table__
    return exists().where(
        consents.c.user_id == sign_in.c.user_id,
        consents.c.oauth_client_id == bindparam("consent_client_id", type_=consents.c.oauth_client_id.type),
        cast(consents.c.scopes, JSONB).contains(bindparam("consent_scopes", type_=JSONB)))


def consented_on_values(client: OAuthClient, scopes: list[str]) -> dict:
    """The bind parameters of consented_on for `client` and the requested `scopes`."""
    return {"consent_client_id": client.id, "consent_scopes": list(scopes)}


@cache
def _granted_statement():
    return select(Consent.scopes, Consent.granted_at).where(Consent.user_id == bindparam("user_id"),
                                                            Consent.oauth_client_id == bindparam("client_id"))


def list_consents(user: User) -> list[tuple[OAuthClient, list[str], datetime]]:
    """Every client `user` consented to, with the scopes and when, newest first."""
    query = select(Consent).where(Consent.user_id == user.id).order_by(Consent.granted_at.desc())
    return [(c.client, list(c.scopes or []), c.granted_at) for c in db.session.scalars(query)]


def revoke_consent(user: User, client: OAuthClient) -> bool:
    """Forget the consent and revoke the client's access and refresh tokens for `user`."""
    consent = _find(user, client)
    if consent is not None:
        db.session.delete(consent)
    count = token_records.revoke_client_user_tokens(client, user)
    audit.record("consent.revoked", actor_user_id=user.id, target_type="client", target_id=client.client_id,
                 details={"tokens_revoked": count})
    db.session.flush()
    return consent is not None
