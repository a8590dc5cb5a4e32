"""Factories that build rows through the models, committed, for tests."""
from __future__ import annotations

import itertools

from idp.extensions import db
from idp.models import Membership, OAuthClient, Organization, Role, Upstream, User
from idp.security.passwords import hash_password
from idp.security.secrets import hash_client_secret

DEFAULT_PASSWORD = "Correct-Horse-42"
_seq = itertools.count(1)


class Factories:
    def __init__(self, app):
        self.app = app

    def _save(self, obj):
        with self.app.app_context():
            db.session.add(obj)
            db.session.commit()
            db.session.refresh(obj)
            db.session.expunge(obj)
        return obj

    def user(self, email: str | None = None, password: str = DEFAULT_PASSWORD, **fields) -> User:
        n = next(_seq)
        with self.app.app_context():
            password_hash = hash_password(password) if password else None
        fields.setdefault("name", f"User {n}")
        fields.setdefault("email_verified", True)
        return self._save(User(email=email or f"user{n}@example.com", password_hash=password_hash, **fields))

    def organization(self, name: str | None = None, **fields) -> Organization:
        n = next(_seq)
        return self._save(Organization(name=name or f"Org {n}", slug=fields.pop("slug", f"org-{n}"), **fields))

    def membership(self, organization: Organization, user: User, role: Role | str = Role.MEMBER) -> Membership:
        value = role.value if isinstance(role, Role) else role
        return self._save(Membership(organization_id=organization.id, user_id=user.id, role=value))

    def client(self, client_id: str | None = None, secret: str | None = "s3cret-client-secret", **fields) -> OAuthClient:
        n = next(_seq)
        fields.setdefault("name", f"Client {n}")
        fields.setdefault("redirect_uris", ["https://rp.example/callback"])
        fields.setdefault("grant_types", ["authorization_code", "refresh_token"])
        fields.setdefault("scope", "openid profile email offline_access")
        return self._save(OAuthClient(client_id=client_id or f"client-{n}",
                                      client_secret_hash=hash_client_secret(secret) if secret else None, **fields))

    def upstream(self, slug: str | None = None, kind: str = "oidc", **fields) -> Upstream:
        """A stored upstream (settings as given: no validation, no secrets unless the test sets them)."""
        n = next(_seq)
        fields.setdefault("display_name", f"Upstream {n}")
        fields.setdefault("settings", {})
        return self._save(Upstream(slug=slug or f"upstream-{n}", kind=kind, **fields))
