"""/api/v1/users/me: profile read and update, password change, organizations, account deletion."""
import pytest
from sqlalchemy import func, select

from idp.extensions import db
from idp.models import AuditEvent, Membership, Organization, Role, Session, User
from idp.security.passwords import verify_password
from tests.api.envelope_assertions import assert_error
from tests.factories import DEFAULT_PASSWORD

ME = "/api/v1/users/me"
NEW_PASSWORD = "A-Brand-New-Passphrase-7"


def login(client, email, password=DEFAULT_PASSWORD) -> dict:
    response = client.post("/api/v1/auth/login", json={"email": email, "password": password})
    assert response.status_code == 200, response.get_json()
    return {"Authorization": f"Bearer {response.get_json()['data']['token']}"}


@pytest.fixture
def bob(factories):
    return factories.user(email="bob@example.com", name="Bob Builder")


@pytest.fixture
def auth(client, bob):
    return login(client, "bob@example.com")


def stored(app, user_id) -> User | None:
    with app.app_context():
        user = db.session.get(User, user_id)
        if user is not None:
            db.session.expunge(user)
        return user


def audit_actions(app) -> list[tuple[str, str]]:
    with app.app_context():
        return [(e.action, e.outcome) for e in db.session.scalars(select(AuditEvent).order_by(AuditEvent.created_at))]



# GET / PATCH ------------------------------------------------------------------------------------

def test_get_me_returns_profile(client, bob, auth):
    """GET /users/me returns the signed-in user's profile in data.user."""
    response = client.get(ME, headers=auth)
    user = response.get_json()["data"]["user"]
    assert response.status_code == 200
    assert (user["id"], user["email"], user["name"]) == (bob.id, "bob@example.com", "Bob Builder")
    assert "password_hash" not in user


def test_patch_updates_profile_fields(app, client, bob, auth):
    """Every profile field can be set; the response and the database agree."""
    changes = {"name": "Zoë Ünïcødé 山田", "given_name": "Zoë", "family_name": "O'Brien; DROP TABLE users",
               "picture": "https://cdn.example.com/z.png", "locale": "fr-CA", "zoneinfo": "Europe/Paris",
               "phone_number": "+14155550123",
               "address": {"street_address": "1 Rue de la Paix\nApt 4", "locality": "Paris", "country": "FR"}}
    response = client.patch(ME, json=changes, headers=auth)
    user = response.get_json()["data"]["user"]
    assert response.status_code == 200 and response.get_json()["message"] == "Profile updated"
    for field, value in changes.items():
        assert user[field] == (value if field != "address" else {**value})
    row = stored(app, bob.id)
    assert row.name == "Zoë Ünïcødé 山田" and row.address["locality"] == "Paris" and not row.phone_number_verified
    assert ("profile.update", "success") in audit_actions(app)


def test_patch_can_clear_optional_fields(app, client, factories):
    """Optional fields accept null to clear them."""
    factories.user(email="zed@example.com", given_name="Zed", locale="en")
    response = client.patch(ME, json={"given_name": None, "locale": None}, headers=login(client, "zed@example.com"))
    assert response.status_code == 200
    assert response.get_json()["data"]["user"]["given_name"] is None


@pytest.mark.parametrize("field, value", [
    ("is_admin", True), ("email", "boss@example.com"), ("email_verified", True), ("roles", ["owner"]),
    ("subject", "chosen-sub"), ("is_active", False), ("password_hash", "x"), ("id", "other"),
    ("phone_number_verified", True),
])
def test_patch_refuses_privileged_fields_and_writes_nothing(app, client, bob, auth, field, value):
    """A non-profile field is a 422 naming it, and no other field in the body is written either."""
    body = assert_error(client.patch(ME, json={"name": "Changed", field: value}, headers=auth),
                        422, "VALIDATION_ERROR")
    assert field in body["error"]["details"]
    row = stored(app, bob.id)
    assert row.name == "Bob Builder" and row.email == "bob@example.com" and not row.is_admin
    assert ("profile.update", "success") not in audit_actions(app)


@pytest.mark.parametrize("field, value", [
    ("name", ""), ("name", "n" * 201), ("name", None), ("given_name", "g" * 101), ("given_name", "a\x00b"),
    ("picture", "javascript:alert(1)"), ("picture", "not a url"), ("locale", "english please"),
    ("zoneinfo", "Mars/Olympus_Mons"), ("phone_number", "call me"), ("address", "1 Main St"),
    ("address", {"planet": "Mars"}), ("name", 42),
])
def test_patch_invalid_values_are_422(app, client, bob, auth, field, value):
    """Invalid, overlong, wrong-typed or control-character values answer 422 on that field."""
    body = assert_error(client.patch(ME, json={field: value}, headers=auth), 422, "VALIDATION_ERROR")
    assert field in body["error"]["details"]
    assert stored(app, bob.id).name == "Bob Builder"


def test_patch_bad_content_is_4xx(client, bob, auth):
    """Malformed JSON is a 400 and a form body a 415, both in the envelope."""
    assert_error(client.patch(ME, data="{oops", content_type="application/json", headers=auth), 400, "BAD_REQUEST")
    assert_error(client.patch(ME, data={"name": "x"}, headers=auth), 415, "UNSUPPORTED_MEDIA_TYPE")


def test_users_me_needs_authentication(client):
    """Every /users/me endpoint answers 401 without a token."""
    for method, path in [("get", ME), ("patch", ME), ("delete", ME), ("post", f"{ME}/password"),
                         ("get", f"{ME}/organizations")]:
        assert_error(getattr(client, method)(path, json={}), 401, "UNAUTHORIZED")


# password ---------------------------------------------------------------------------------------

def test_change_password_ends_other_sessions_only(app, client, bob, auth):
    """The new password works, the old one does not, other sessions end, this one stays."""
    other = login(client, "bob@example.com")
    response = client.post(f"{ME}/password", json={"current_password": DEFAULT_PASSWORD,
                                                   "new_password": NEW_PASSWORD}, headers=auth)
    assert response.status_code == 200 and response.get_json()["data"]["sessions_ended"] == 1
    assert client.get(ME, headers=auth).status_code == 200
    assert_error(client.get(ME, headers=other), 401, "UNAUTHORIZED")
    assert verify_password(NEW_PASSWORD, stored(app, bob.id).password_hash)
    assert client.post("/api/v1/auth/login", json={"email": "bob@example.com",
                                                   "password": DEFAULT_PASSWORD}).status_code == 401
    login(client, "bob@example.com", NEW_PASSWORD)
    assert ("password.change", "success") in audit_actions(app)


def test_change_password_wrong_current_is_refused_and_audited(app, client, bob, auth):
    """A wrong current password is a 422 on current_password; the password is unchanged."""
    body = assert_error(client.post(f"{ME}/password", json={"current_password": "Not-My-Password-1",
                                                            "new_password": NEW_PASSWORD}, headers=auth),
                        422, "VALIDATION_ERROR")
    assert "current_password" in body["error"]["details"]
    assert verify_password(DEFAULT_PASSWORD, stored(app, bob.id).password_hash)
    assert ("password.change", "failure") in audit_actions(app)


@pytest.mark.parametrize("new_password, fragment", [
    ("short", "at least 8"), ("password1", "too common"), ("p" * 257, "at most 256"),
    ("bob builder", "email address or name"), (DEFAULT_PASSWORD, "differ"),
])
def test_change_password_policy_errors(app, client, bob, auth, new_password, fragment):
    """A new password failing the policy is a 422 with reasons in details.new_password."""
    other = login(client, "bob@example.com")
    body = assert_error(client.post(f"{ME}/password", json={"current_password": DEFAULT_PASSWORD,
                                                            "new_password": new_password}, headers=auth),
                        422, "VALIDATION_ERROR")
    assert any(fragment in reason for reason in body["error"]["details"]["new_password"])
    assert client.get(ME, headers=other).status_code == 200


def test_change_password_missing_fields(client, bob, auth):
    """Both fields are required."""
    body = assert_error(client.post(f"{ME}/password", json={}, headers=auth), 422, "VALIDATION_ERROR")
    assert set(body["error"]["details"]) == {"current_password", "new_password"}


def test_password_rechecks_are_rate_limited_per_user(make_app, factories):
    """Guessing the current password through the API hits the per-account limit (429, Retry-After)."""
    limited = make_app(RATELIMIT_LOGIN_ACCOUNT="3 per minute", RATELIMIT_LOGIN_IP="100 per minute")
    factories.user(email="bob@example.com")
    client = limited.test_client()
    auth = login(client, "bob@example.com")  # one attempt on the bob@example.com login bucket
    wrong = {"current_password": "Guess-Number-1", "new_password": NEW_PASSWORD}
    codes = [client.post(f"{ME}/password", json=wrong, headers=auth).status_code for _ in range(4)]
    assert codes == [422, 422, 422, 429]
    response = client.delete(ME, json={"password": "guess"}, headers=auth)
    assert response.status_code == 429 and "Retry-After" in response.headers
    assert {("password.change", "failure"), ("account.delete", "failure")} <= set(audit_actions(limited))


# organizations ----------------------------------------------------------------------------------

def test_my_organizations_lists_roles(client, factories, bob, auth):
    """Each organization the user belongs to, with id, name, slug and the user's role."""
    acme, beta = factories.organization(name="Acme", slug="acme"), factories.organization(name="Beta", slug="beta")
    factories.membership(acme, bob, Role.OWNER)
    factories.membership(beta, bob, Role.MEMBER)
    factories.membership(factories.organization(name="Hidden"), factories.user(), Role.OWNER)
    body = client.get(f"{ME}/organizations", headers=auth).get_json()
    assert body["data"] == [{"id": acme.id, "name": "Acme", "slug": "acme", "role": "owner"},
                            {"id": beta.id, "name": "Beta", "slug": "beta", "role": "member"}]
    assert body["meta"] == {"count": 2}


def test_my_organizations_empty(client, bob, auth):
    """A user in no organization gets an empty list."""
    assert client.get(f"{ME}/organizations", headers=auth).get_json()["data"] == []


# delete -----------------------------------------------------------------------------------------

def test_delete_account_removes_user_and_sessions(app, client, bob, auth):
    """With the right password the user and their sessions are gone and the token is dead."""
    response = client.delete(ME, json={"password": DEFAULT_PASSWORD}, headers=auth)
    assert response.status_code == 200 and response.get_json()["message"] == "Account deleted"
    assert stored(app, bob.id) is None
    with app.app_context():
        assert db.session.scalar(select(func.count(Session.id))) == 0
    assert_error(client.get(ME, headers=auth), 401, "UNAUTHORIZED")
    assert ("account.delete", "success") in audit_actions(app)


@pytest.mark.parametrize("payload", [{"password": "Not-My-Password-1"}, {}, {"password": ""}])
def test_delete_account_needs_the_password(app, client, bob, auth, payload):
    """A wrong or missing password is a 422 and nothing is deleted."""
    assert_error(client.delete(ME, json=payload, headers=auth), 422, "VALIDATION_ERROR")
    assert stored(app, bob.id) is not None
    assert client.get(ME, headers=auth).status_code == 200


def test_delete_last_owner_with_members_is_409(app, client, factories, bob, auth):
    """The last owner of an organization with other members is refused with 409 naming it."""
    org = factories.organization(name="Acme Corp", slug="acme-corp")
    factories.membership(org, bob, Role.OWNER)
    factories.membership(org, factories.user(), Role.ADMIN)
    body = assert_error(client.delete(ME, json={"password": DEFAULT_PASSWORD}, headers=auth), 409, "CONFLICT")
    assert "Acme Corp" in body["message"] and "owner" in body["message"]
    assert body["error"]["details"]["organizations"] == [{"id": org.id, "name": "Acme Corp", "slug": "acme-corp"}]
    assert stored(app, bob.id) is not None


def test_delete_sole_member_deletes_the_organization(app, client, factories, bob, auth):
    """An organization only this user belonged to is deleted with the account."""
    org = factories.organization()
    factories.membership(org, bob, Role.OWNER)
    assert client.delete(ME, json={"password": DEFAULT_PASSWORD}, headers=auth).status_code == 200
    with app.app_context():
        assert db.session.get(Organization, org.id) is None
        assert db.session.scalar(select(func.count(Membership.id))) == 0
