"""idp.services.invitations: single use under concurrency, and the address check of accept."""
from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from idp.errors import BadRequest, Forbidden
from idp.extensions import db
from idp.models import Invitation, Membership, User, utcnow
from idp.security.secrets import hash_token, new_token
from idp.services import invitations


def open_invitation(app, organization, email: str) -> str:
    token = new_token()
    with app.app_context():
        db.session.add(Invitation(organization_id=organization.id, email=email, role="member",
                                  token_hash=hash_token(token), expires_at=utcnow() + timedelta(days=1)))
        db.session.commit()
    return token


def memberships(app) -> int:
    with app.app_context():
        return db.session.scalar(select(func.count()).select_from(Membership))


def test_a_link_is_used_once(app, factories):
    """The second accept of one token is refused with the generic invalid-link error."""
    organization, ada = factories.organization(), factories.user(email="ada@example.com")
    token = open_invitation(app, organization, ada.email)
    with app.app_context():
        invitations.accept(token, db.session.get(User, ada.id))
        db.session.commit()
        with pytest.raises(BadRequest, match="no longer valid"):
            invitations.accept(token, db.session.get(User, ada.id))
    assert memberships(app) == 1


def test_accept_refuses_an_account_of_another_address(app, factories):
    """The invitation is for an address: another account holding the link cannot use it."""
    organization, bob = factories.organization(), factories.user(email="bob@example.com")
    token = open_invitation(app, organization, "ada@example.com")
    with app.app_context():
        with pytest.raises(Forbidden):
            invitations.accept(token, db.session.get(User, bob.id))
    assert memberships(app) == 0


@pytest.mark.postgres
def test_two_racing_accepts_make_one_membership(app, factories, monkeypatch):
    """Both accepts find the link open before either writes; the conditional UPDATE lets one win (the other
    waits for its row lock, then matches no row) and makes one membership."""
    organization, ada = factories.organization(), factories.user(email="ada@example.com")
    token = open_invitation(app, organization, ada.email)
    both_found, find_open = threading.Barrier(2, timeout=5), invitations.find_open

    def find_then_wait(value):
        found = find_open(value)
        both_found.wait()
        return found

    monkeypatch.setattr(invitations, "find_open", find_then_wait)
    outcomes = []

    def accept():
        with app.app_context():
            try:
                invitations.accept(token, db.session.get(User, ada.id))
                db.session.commit()
                outcomes.append("joined")
            except BadRequest:
                db.session.rollback()
                outcomes.append("refused")

    threads = [threading.Thread(target=accept) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert sorted(outcomes) == ["joined", "refused"]
    assert memberships(app) == 1
