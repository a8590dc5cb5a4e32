"""idp.services.organizations: slugs, access, the last-owner rule and the user's organizations."""
from __future__ import annotations

import threading
import time

import pytest

from idp.errors import Conflict, Forbidden, NotFound
from idp.extensions import db
from idp.models import Membership, Organization, Role, User
from idp.services import organizations
from idp.services.organization_access import OrganizationActor


@pytest.mark.parametrize("name, slug", [
    ("Acme Corp", "acme-corp"),
    ("  --Acme__Corp!!  ", "acme-corp"),
    ("Ångström Labs", "angstrom-labs"),
    ("Ünïcödé 東京", "unicode"),
    ("東京", "org"),
    ("'; DROP TABLE organizations; --", "drop-table-organizations"),
])
def test_slugify_makes_ascii_hyphenated_slugs(name, slug):
    """Slugs are lowercase ASCII letters and digits joined by single hyphens."""
    assert organizations.slugify(name) == slug


def test_slugify_leaves_room_for_a_suffix():
    """A very long name gives a slug short enough to take a numeric suffix within 100 characters."""
    slug = organizations.slugify("word " * 100)
    assert len(slug) <= 90 and not slug.endswith("-")


def test_unique_slug_picks_the_lowest_free_suffix(ctx, factories):
    """Taken slugs get -2, -3, ... filling the first gap; unrelated prefixes do not count."""
    for slug in ("acme", "acme-2", "acme-4", "acmeish"):
        factories.organization(slug=slug)
    assert organizations.unique_slug("Acme") == "acme-3"
    assert organizations.unique_slug("Other") == "other"


def test_get_access_hides_other_organizations(ctx, factories):
    """An outsider's lookup of a real organization raises NotFound like a missing one."""
    org, outsider = factories.organization(), factories.user()
    with pytest.raises(NotFound):
        organizations.get_access(OrganizationActor.of_user(db.session.get(User, outsider.id)), org.id)
    with pytest.raises(NotFound):
        organizations.get_access(OrganizationActor.of_user(db.session.get(User, outsider.id)), "missing")


def test_platform_admin_has_owner_rights_without_membership(ctx, factories):
    """A platform admin outside the organization can manage it and act as owner."""
    org, admin = factories.organization(), factories.user(is_admin=True)
    access = organizations.get_access(OrganizationActor.of_user(db.session.get(User, admin.id)), org.id)
    assert access.membership is None and access.role is None and access.can_manage and access.is_owner


def test_last_owner_rule_counts_owners_not_members(ctx, factories):
    """With one owner and many members, the owner still cannot step down."""
    org, owner = factories.organization(), factories.user()
    factories.membership(org, owner, Role.OWNER)
    for _ in range(2):
        factories.membership(org, factories.user(), Role.ADMIN)
    access = organizations.get_access(OrganizationActor.of_user(db.session.get(User, owner.id)), org.id)
    with pytest.raises(Conflict):
        organizations.change_role(access, owner.id, Role.ADMIN)
    with pytest.raises(Conflict):
        organizations.remove_member(access, owner.id)


def test_admin_cannot_promote_themself_to_owner(ctx, factories):
    """Ownership is granted by owners only, never self-granted by an admin."""
    org, admin = factories.organization(), factories.user()
    factories.membership(org, admin, Role.ADMIN)
    access = organizations.get_access(OrganizationActor.of_user(db.session.get(User, admin.id)), org.id)
    with pytest.raises(Forbidden):
        organizations.change_role(access, admin.id, Role.OWNER)


def test_create_flushes_without_committing(app, factories):
    """Services only flush: rolling back the request's transaction leaves nothing behind."""
    user = factories.user()
    with app.app_context():
        organizations.create_organization(OrganizationActor.of_user(db.session.get(User, user.id)), "Transient")
        assert db.session.query(Organization).count() == 1
        db.session.rollback()
        assert db.session.query(Organization).count() == 0 and db.session.query(Membership).count() == 0


def test_list_user_organizations_gives_roles_by_name(ctx, factories):
    """The user's organizations come back sorted by name, each with the user's role."""
    user = factories.user()
    beta, alpha, _other = factories.organization(name="Beta"), factories.organization(name="Alpha"), \
        factories.organization(name="Gamma")
    factories.membership(beta, user, Role.MEMBER)
    factories.membership(alpha, user, Role.OWNER)
    listed = organizations.list_user_organizations(db.session.get(User, user.id))
    assert [(org.name, role) for org, role in listed] == [("Alpha", Role.OWNER), ("Beta", Role.MEMBER)]


@pytest.mark.postgres
def test_two_owners_cannot_demote_each_other_at_once(app, factories):
    """Concurrent step-downs of the only two owners: the second waits for the first and gets 409."""
    org, first_owner, second_owner = factories.organization(), factories.user(), factories.user()
    factories.membership(org, first_owner, Role.OWNER)
    factories.membership(org, second_owner, Role.OWNER)
    flushed, outcome = threading.Event(), {}

    def demote(actor_id: str, target_id: str, hold: float) -> None:
        with app.app_context():
            access = organizations.get_access(OrganizationActor.of_user(db.session.get(User, actor_id)), org.id)
            try:
                organizations.change_role(access, target_id, Role.MEMBER)
                flushed.set()
                time.sleep(hold)  # keep the transaction open while the other one tries
                db.session.commit()
                outcome[actor_id] = "demoted"
            except Conflict:
                db.session.rollback()
                outcome[actor_id] = "conflict"

    first = threading.Thread(target=demote, args=(first_owner.id, second_owner.id, 0.3))
    first.start()
    assert flushed.wait(5)
    second = threading.Thread(target=demote, args=(second_owner.id, first_owner.id, 0))
    second.start()
    first.join(5)
    second.join(5)
    assert outcome == {first_owner.id: "demoted", second_owner.id: "conflict"}
    with app.app_context():
        owners = db.session.query(Membership).filter_by(organization_id=org.id, role=Role.OWNER.value).count()
    assert owners == 1
