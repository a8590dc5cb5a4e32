"""What a connector hands the sign-in service: who the upstream says signed in."""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime


@dataclass(frozen=True)
class UpstreamIdentity:
    """One verified upstream answer, the same shape for every kind of upstream (Dex's `Identity`).

    `subject` is the upstream's stable key for the person: OIDC `sub` (Microsoft `tid:oid`), GitHub's
    numeric id, SAML's persistent NameID or a configured attribute; never the e-mail address.
    `email_verified` is true only when the upstream is trusted to vouch for that address (Google's
    `email_verified`, GitHub's verified primary address, an organization's upstream for the
    organization's own domains); Microsoft's `email` and GitHub's unverified addresses never are.
    """

    upstream_id: str
    subject: str
    email: str | None = None
    email_verified: bool = False
    name: str | None = None
    given_name: str | None = None
    family_name: str | None = None
    picture: str | None = None
    # Values of the upstream's group/role claim or attribute, for an organization's role mapping.
    groups: tuple[str, ...] = ()
    # What single logout at the upstream needs later (SAML NameID, SessionIndex), if anything.
    upstream_session: dict | None = None
    # SAML: the assertion's id and expiry, for the one-time-use (replay) check.
    replay_key: str | None = None
    replay_until: datetime | None = None
    # The upstream's raw claims or attributes, for the audit trail and role mapping (never secrets).
    claims: dict = field(default_factory=dict)
