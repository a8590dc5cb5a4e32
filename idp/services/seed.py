"""Demo data: Acme Corp, its users and the acme-portal-001 client. Safe to run repeatedly."""
from __future__ import annotations

from sqlalchemy import select

from idp.extensions import db
from idp.models import Membership, OAuthClient, Organization, Role, User
from idp.security.passwords import hash_password
from idp.security.secrets import hash_client_secret

DEMO_ORG = {"name": "Acme Corp", "slug": "acme-corp"}
DEMO_USERS = [
    {"email": "admin@acme-corp.com", "password": "AdminPass123!", "name": "Alice Admin",
     "is_admin": True, "role": Role.OWNER},
    {"email": "bob@acme-corp.com", "password": "UserPass123!", "name": "Bob Builder",
     "is_admin": False, "role": Role.MEMBER},
]
DEMO_CLIENT = {
    "client_id": "acme-portal-001",
    "client_secret": "acme_secret_portal_2024",
    "name": "Acme Portal",
    "redirect_uris": ["http://localhost:3000/callback", "http://127.0.0.1:3000/callback"],
    "post_logout_redirect_uris": ["http://localhost:3000/", "http://127.0.0.1:3000/"],
    "grant_types": ["authorization_code", "refresh_token", "client_credentials"],
    "scope": "openid profile email offline_access",
}


def seed_demo_data() -> dict:
    """Create whatever demo rows are missing; returns what was created."""
    created = {"organization": False, "users": [], "client": False}
    org = db.session.scalars(select(Organization).where(Organization.slug == DEMO_ORG["slug"])).first()
    if org is None:
        org = Organization(**DEMO_ORG)
        db.session.add(org)
        db.session.flush()
        created["organization"] = True
    for spec in DEMO_USERS:
        if _ensure_user(org, spec):
            created["users"].append(spec["email"])
    created["client"] = _ensure_client(org)
    db.session.flush()
    return created


def _ensure_client(org: Organization) -> bool:
    """Create the demo client, or give an existing one the demo's post-logout URIs it lacks (an older
    seed registered only localhost); URIs an operator added are kept."""
    client = db.session.scalars(select(OAuthClient).where(OAuthClient.client_id == DEMO_CLIENT["client_id"])).first()
    if client is None:
        spec = dict(DEMO_CLIENT)
        secret = spec.pop("client_secret")
        db.session.add(OAuthClient(**spec, client_secret_hash=hash_client_secret(secret), organization_id=org.id))
        return True
    registered = list(client.post_logout_redirect_uris or [])
    missing = [uri for uri in DEMO_CLIENT["post_logout_redirect_uris"] if uri not in registered]
    if missing:
        client.post_logout_redirect_uris = registered + missing
    return False


def _ensure_user(org: Organization, spec: dict) -> bool:
    user = db.session.scalars(select(User).where(User.email == spec["email"])).first()
    if user is not None:
        return False
    user = User(email=spec["email"], name=spec["name"], password_hash=hash_password(spec["password"]),
                is_admin=spec["is_admin"], email_verified=True)
    db.session.add(user)
    db.session.flush()
    db.session.add(Membership(organization_id=org.id, user_id=user.id, role=spec["role"].value))
    return True
