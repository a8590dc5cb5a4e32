"""Fixtures for API tests: bearer headers for a user, without going through the login endpoint."""
from __future__ import annotations

import pytest

from idp.extensions import db
from idp.models import User
from idp.services.sessions import create_session


@pytest.fixture
def auth_headers(app):
    """auth_headers(user) -> {"Authorization": "Bearer <token>"} for a fresh API session of `user`."""

    def make(user: User, target_app=None) -> dict:
        with (target_app or app).app_context():
            _, token = create_session(db.session.get(User, user.id))
            db.session.commit()
        return {"Authorization": f"Bearer {token}"}

    return make
