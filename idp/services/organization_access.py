"""Who acts on an organization, and their standing in it: the actor (a user or a service account) as
the surface authenticated them, and the role that gives them in one organization."""
from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Select, select

from idp.models import Membership, Organization, Role, User

MANAGING_ROLES = tuple(role.value for role in Role if role.manages)


def managed_organizations_query(user_id: str) -> Select:
    """The ids of the organizations in which the user is an owner or admin (a subquery for IN, or run
    as is)."""
    return select(Membership.organization_id).where(Membership.user_id == user_id,
                                                    Membership.role.in_(MANAGING_ROLES))


@dataclass(frozen=True)
class OrganizationActor:
    """Who acts on organizations, as the surface authenticated them: a user, or a service account."""

    user: User | None
    client_id: str | None = None  # a service account's client_id, recorded in audit details
    client_organization_id: str | None = None  # the service account's organization (None: platform-wide)
    is_platform_admin: bool = False  # a platform admin user, or a platform-wide service account

    @classmethod
    def of_user(cls, user: User) -> "OrganizationActor":
        return cls(user=user, is_platform_admin=bool(user.is_admin))

    @property
    def user_id(self) -> str | None:
        return self.user.id if self.user is not None else None

    @property
    def is_service_account(self) -> bool:
        return self.user is None and self.client_id is not None

    def details(self, **values) -> dict:
        return {**values, "actor_client_id": self.client_id} if self.is_service_account else values


@dataclass
class OrganizationAccess:
    """An actor's standing in one organization."""

    actor: OrganizationActor
    organization: Organization
    membership: Membership | None  # the acting user's own membership

    @property
    def role(self) -> Role | None:
        """The actor's role here: a user's membership role; an organization's service account is an admin."""
        if self.membership is not None:
            return Role(self.membership.role)
        if self.actor.is_service_account and self.actor.client_organization_id == self.organization.id:
            return Role.ADMIN
        return None

    @property
    def can_manage(self) -> bool:
        return self.actor.is_platform_admin or (self.role is not None and self.role.manages)

    @property
    def is_owner(self) -> bool:
        return self.actor.is_platform_admin or self.role is Role.OWNER
