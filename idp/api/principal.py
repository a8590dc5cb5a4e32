"""Who is calling the management API: a user (by API session or by access token) or a service account.

A service account is an OAuth client acting on its own behalf with a client_credentials token
(RFC 6749 4.4); it holds exactly the management scopes its client was granted, as an admin of its
owning organization, or platform-wide when a platform admin made it without one.
"""
from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select

from idp.extensions import db
from idp.models import Membership, OAuthClient, Role, User


@dataclass(frozen=True)
class Principal:
    user: User | None  # the acting user: an API session token or a user's access token
    client: OAuthClient | None  # the service account: a client_credentials access token
    scopes: frozenset[str] | None  # a token's granted scopes; None for an API session (full user rights)
    organization_id: str | None  # a service account's owning organization

    @classmethod
    def of_session(cls, user: User) -> "Principal":
        return cls(user=user, client=None, scopes=None, organization_id=None)

    @classmethod
    def of_user_token(cls, user: User, scopes: frozenset[str]) -> "Principal":
        return cls(user=user, client=None, scopes=scopes, organization_id=None)

    @classmethod
    def of_service_account(cls, client: OAuthClient, scopes: frozenset[str]) -> "Principal":
        return cls(user=None, client=client, scopes=scopes, organization_id=client.organization_id)

    @property
    def is_service_account(self) -> bool:
        return self.client is not None and self.user is None

    def has_scope(self, scope: str) -> bool:
        """An API session has its user's full rights; a token only the scopes it was granted."""
        return self.scopes is None or scope in self.scopes

    @property
    def is_platform_admin(self) -> bool:
        """A platform admin user, or a platform-wide service account (one without an organization:
        only a platform admin grants a client management scopes)."""
        if self.user is not None:
            return bool(self.user.is_admin)
        return self.client is not None and self.organization_id is None

    @property
    def actor_user_id(self) -> str | None:
        """The audit rows' actor (None for a service account)."""
        return self.user.id if self.user is not None else None

    @property
    def actor_client_id(self) -> str | None:
        """The service account's client_id, for the audit details of its changes."""
        return self.client.client_id if self.is_service_account else None

    def organization_role(self, organization_id: str) -> Role | None:
        """The role this principal holds in an organization: a user's membership role; a service
        account is an admin of its own organization (of every one when platform-wide)."""
        if self.is_service_account:
            return Role.ADMIN if self.organization_id in (None, organization_id) else None
        if self.user is None:
            return None
        query = select(Membership.role).where(Membership.organization_id == organization_id,
                                              Membership.user_id == self.user.id)
        role = db.session.scalars(query).first()
        return Role(role) if role is not None else None
