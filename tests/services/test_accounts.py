"""Account operations shared by the API and the hosted pages."""
import pytest
from sqlalchemy import select

from idp.errors import Conflict, Forbidden, InvalidCredentials, ValidationError
from idp.extensions import db
from idp.models import AuditEvent, Membership, OAuthClient, Organization, Role, Session, SessionKind, User
from idp.security import passwords
from idp.services import accounts, sessions
from tests.factories import DEFAULT_PASSWORD

NEW_PASSWORD = "Another-Strong-Passphrase-9"


def _user(user_id: str) -> User:
    return db.session.get(User, user_id)


def test_register_normalises_email_and_hashes_password(ctx):
    """The email is stored lower-cased; the password only as a bcrypt hash."""
    user = accounts.register("  Ann.Smith@Example.COM ", "Long-Enough-Pass-1", " Ann Smith ")
    assert user.email == "ann.smith@example.com" and user.name == "Ann Smith"
    assert user.password_hash.startswith("$2b$") and not user.email_verified
    assert passwords.verify_password("Long-Enough-Pass-1", user.password_hash)


@pytest.mark.parametrize("email", ["not-an-email", "a@b", "x" * 250 + "@example.com", "two@@example.com"])
def test_register_refuses_invalid_email(ctx, email):
    """Invalid or overlong addresses fail on the email field."""
    with pytest.raises(ValidationError) as caught:
        accounts.register(email, "Long-Enough-Pass-1", "Ann")
    assert "email" in caught.value.details


def test_register_reports_policy_problems_on_password(ctx):
    """Policy failures are listed under details.password."""
    with pytest.raises(ValidationError) as caught:
        accounts.register("ann@example.com", "password", "Ann")
    assert caught.value.details["password"]


def test_register_refuses_taken_email_with_generic_conflict(ctx, factories):
    """A taken email (in any case) is a 409 whose message does not say the account exists."""
    factories.user(email="taken@example.com")
    with pytest.raises(Conflict) as caught:
        accounts.register("TAKEN@example.com", "Long-Enough-Pass-1", "Ann")
    assert "exist" not in caught.value.message.lower()


@pytest.mark.parametrize("name", ["", "   ", "n" * 201])
def test_register_refuses_empty_or_overlong_name(ctx, name):
    """The name must be 1 to 200 characters once trimmed, whichever surface calls."""
    with pytest.raises(ValidationError) as caught:
        accounts.register("ann@example.com", "Long-Enough-Pass-1", name)
    assert "name" in caught.value.details


def test_register_refused_when_disabled(make_app):
    """REGISTRATION_ENABLED=false refuses every registration."""
    closed = make_app(REGISTRATION_ENABLED=False)
    with closed.app_context(), pytest.raises(Forbidden):
        accounts.register("ann@example.com", "Long-Enough-Pass-1", "Ann")


def test_authenticate_password_returns_user_and_stamps_login(ctx, factories):
    """Right email (any case) and password give the user and set last_login_at."""
    made = factories.user(email="bob@example.com")
    user = accounts.authenticate_password("BOB@example.com", DEFAULT_PASSWORD)
    assert user.id == made.id and user.last_login_at is not None


@pytest.mark.parametrize("case", ["unknown", "wrong", "inactive", "no_password"])
def test_authenticate_password_failures_are_indistinguishable(ctx, factories, monkeypatch, case):
    """Every refusal is the same 401 after exactly one bcrypt check, so timing matches too."""
    factories.user(email="known@example.com")
    factories.user(email="inactive@example.com", is_active=False)
    factories.user(email="federated@example.com", password=None)
    email, password = {"unknown": ("ghost@example.com", DEFAULT_PASSWORD),
                       "wrong": ("known@example.com", "Wrong-Password-1"),
                       "inactive": ("inactive@example.com", DEFAULT_PASSWORD),
                       "no_password": ("federated@example.com", DEFAULT_PASSWORD)}[case]
    checks = []
    real = passwords.bcrypt.checkpw
    monkeypatch.setattr(passwords.bcrypt, "checkpw", lambda *a: checks.append(1) or real(*a))
    with pytest.raises(InvalidCredentials) as caught:
        accounts.authenticate_password(email, password)
    assert (caught.value.code, caught.value.type, caught.value.message) == (
        401, "INVALID_CREDENTIALS", "Invalid email or password.")
    assert len(checks) == 1


def test_update_profile_refuses_non_profile_fields_and_writes_nothing(ctx, factories):
    """Privileged fields are refused by name and no field is changed."""
    made = factories.user(name="Before")
    user = _user(made.id)
    with pytest.raises(ValidationError) as caught:
        accounts.update_profile(user, {"name": "After", "is_admin": True, "email": "x@example.com"})
    assert set(caught.value.details) == {"is_admin", "email"}
    assert user.name == "Before" and not user.is_admin


def test_update_profile_refuses_values_longer_than_their_column(ctx, factories):
    """Overlong values are a ValidationError on the field, never a database error."""
    user = _user(factories.user(name="Before").id)
    with pytest.raises(ValidationError) as caught:
        accounts.update_profile(user, {"given_name": "g" * 101, "locale": "x" * 36, "name": "Fine"})
    assert set(caught.value.details) == {"given_name", "locale"}
    assert user.name == "Before"


@pytest.mark.parametrize("email", ["bob\x00@example.com", "b" * 300 + "@example.com", "", "   "])
def test_authenticate_password_with_impossible_email_is_generic_failure(ctx, factories, email):
    """Text that cannot be an email is the same 401, without reaching the database."""
    factories.user(email="bob@example.com")
    with pytest.raises(InvalidCredentials):
        accounts.authenticate_password(email, DEFAULT_PASSWORD)


def test_update_profile_changes_fields_and_resets_phone_verification(ctx, factories):
    """Profile fields change; a new phone number is no longer verified."""
    user = _user(factories.user(phone_number="+14155550100", phone_number_verified=True).id)
    accounts.update_profile(user, {"given_name": "Zoë", "phone_number": "+14155550199"})
    assert user.given_name == "Zoë" and user.phone_number == "+14155550199" and not user.phone_number_verified


def test_change_password_ends_other_sessions(ctx, factories):
    """The new password works, the old does not, and only the kept session survives."""
    user = _user(factories.user().id)
    kept, _ = sessions.create_session(user)
    other, _ = sessions.create_session(user, kind=SessionKind.BROWSER)
    assert accounts.change_password(user, DEFAULT_PASSWORD, NEW_PASSWORD, keep_session_id=kept.id) == 1
    db.session.commit()
    assert passwords.verify_password(NEW_PASSWORD, user.password_hash)
    assert not passwords.verify_password(DEFAULT_PASSWORD, user.password_hash)
    assert db.session.get(Session, kept.id).status == "ACTIVE"
    db.session.refresh(other)
    assert other.status == "REVOKED"


def test_change_password_checks_current_and_policy(ctx, factories):
    """Wrong current password, a weak new one or the same one again are each refused."""
    user = _user(factories.user().id)
    for current, new, field in [("nope-nope-nope", NEW_PASSWORD, "current_password"),
                                (DEFAULT_PASSWORD, "short", "new_password"),
                                (DEFAULT_PASSWORD, DEFAULT_PASSWORD, "new_password")]:
        with pytest.raises(ValidationError) as caught:
            accounts.change_password(user, current, new)
        assert field in caught.value.details


def test_delete_account_refused_for_last_owner_with_members(ctx, factories):
    """The last owner of an organization that has other members cannot delete the account."""
    owner, member = factories.user(), factories.user()
    org = factories.organization(name="Busy Org")
    factories.membership(org, owner, Role.OWNER)
    factories.membership(org, member, Role.MEMBER)
    with pytest.raises(Conflict) as caught:
        accounts.delete_account(_user(owner.id), DEFAULT_PASSWORD)
    assert "Busy Org" in caught.value.message
    assert caught.value.details["organizations"][0]["id"] == org.id


def test_delete_account_allowed_when_another_owner_remains(ctx, factories):
    """With a co-owner in place the account goes, and the organization stays."""
    owner, co_owner = factories.user(), factories.user()
    org = factories.organization()
    factories.membership(org, owner, Role.OWNER)
    factories.membership(org, co_owner, Role.OWNER)
    accounts.delete_account(_user(owner.id), DEFAULT_PASSWORD)
    db.session.commit()
    assert db.session.get(User, owner.id) is None and db.session.get(Organization, org.id) is not None
    assert [m.user_id for m in db.session.scalars(select(Membership))] == [co_owner.id]


def test_delete_account_removes_solo_organization_and_sessions(ctx, factories):
    """Sessions go with the account; an organization it alone belonged to goes too, its clients kept."""
    owner = factories.user()
    org = factories.organization()
    factories.membership(org, owner, Role.OWNER)
    client = factories.client(organization_id=org.id)
    user = _user(owner.id)
    sessions.create_session(user)
    db.session.commit()
    accounts.delete_account(user, DEFAULT_PASSWORD)
    db.session.commit()
    assert db.session.scalars(select(Session)).all() == []
    assert db.session.get(Organization, org.id) is None
    assert db.session.get(OAuthClient, client.id).organization_id is None
    event = db.session.scalars(select(AuditEvent).where(AuditEvent.action == "account.delete")).one()
    assert event.actor_user_id == owner.id and event.details["organizations_deleted"] == [org.id]


def test_delete_account_needs_the_password(ctx, factories):
    """A wrong password refuses deletion on the current_password field."""
    user = _user(factories.user().id)
    with pytest.raises(ValidationError):
        accounts.delete_account(user, "not-my-password")
    assert db.session.get(User, user.id) is not None


def test_organizations_of_lists_memberships_with_roles(ctx, factories):
    """Each organization the user is in, by name, with the user's role."""
    user, other = factories.user(), factories.user()
    beta, alpha = factories.organization(name="Beta"), factories.organization(name="Alpha")
    factories.membership(beta, user, Role.ADMIN)
    factories.membership(alpha, user, Role.MEMBER)
    factories.membership(factories.organization(name="Gamma"), other, Role.OWNER)
    result = accounts.organizations_of(_user(user.id))
    assert [(m.name, m.slug, m.role) for m in result] == [("Alpha", alpha.slug, "member"), ("Beta", beta.slug, "admin")]
