"""POST /api/v1/auth/register, /login, /logout and GET /me, with their rate limits."""
import json

import pytest
import time_machine
from sqlalchemy import func, select

from idp.extensions import db, limiter
from idp.models import AuditEvent, Session, User
from idp.security.secrets import hash_token
from tests.api.envelope_assertions import assert_error
from tests.factories import DEFAULT_PASSWORD

REGISTER, LOGIN = "/api/v1/auth/register", "/api/v1/auth/login"
GOOD = {"email": "New.User@Example.com", "password": "Long-Enough-Pass-1", "name": "New User"}


def user_count(app) -> int:
    with app.app_context():
        return db.session.scalar(select(func.count(User.id)))


def audit_rows(app, action: str) -> list[AuditEvent]:
    with app.app_context():
        return list(db.session.scalars(select(AuditEvent).where(AuditEvent.action == action)
                                       .order_by(AuditEvent.created_at)))


def login(client, email, password=DEFAULT_PASSWORD, **kwargs):
    return client.post(LOGIN, json={"email": email, "password": password}, **kwargs)



# register ---------------------------------------------------------------------------------------

def test_register_creates_account_with_normalised_email(app, client):
    """201 in the envelope with data.user; the email is lower-cased and no secret is returned."""
    response = client.post(REGISTER, json=GOOD)
    body = response.get_json()
    assert response.status_code == 201 and body["success"] is True and body["code"] == 201
    user = body["data"]["user"]
    assert user["email"] == "new.user@example.com" and user["name"] == "New User"
    assert user["email_verified"] is False and user["is_admin"] is False and user["subject"]
    assert "password_hash" not in json.dumps(body) and "Long-Enough-Pass-1" not in response.get_data(as_text=True)
    [event] = audit_rows(app, "register")
    assert event.outcome == "success" and event.target_id == user["id"]


def test_registered_user_can_log_in(client):
    """A fresh account signs in with the email in any case."""
    client.post(REGISTER, json=GOOD)
    assert login(client, "NEW.USER@example.com", GOOD["password"]).status_code == 200


def test_register_duplicate_email_is_generic_conflict(app, client, factories):
    """A taken email answers 409 CONFLICT with a message that does not confirm the account."""
    factories.user(email="new.user@example.com")
    body = assert_error(client.post(REGISTER, json=GOOD), 409, "CONFLICT")
    assert body["message"] == "An account cannot be created with this email address."
    assert user_count(app) == 1
    assert [e.outcome for e in audit_rows(app, "register")] == ["failure"]


def test_register_disabled_is_forbidden(make_app):
    """REGISTRATION_ENABLED=false answers 403 and creates nothing."""
    closed = make_app(REGISTRATION_ENABLED=False)
    assert_error(closed.test_client().post(REGISTER, json=GOOD), 403, "FORBIDDEN")
    assert user_count(closed) == 0


@pytest.mark.parametrize("password, fragment", [
    ("short", "at least 8"),
    ("password123", "too common"),
    ("x" * 257, "at most 256"),
    ("new.user@example.com", "email address or name"),
])
def test_register_policy_errors_in_details_password(app, client, password, fragment):
    """Policy failures are a 422 listing reasons under error.details.password; nothing is written."""
    body = assert_error(client.post(REGISTER, json={**GOOD, "password": password}), 422, "VALIDATION_ERROR")
    assert any(fragment in reason for reason in body["error"]["details"]["password"])
    assert user_count(app) == 0


@pytest.mark.parametrize("field, value", [
    ("name", "n" * 201),
    ("name", ""),
    ("name", "Bad\x00Name"),
    ("name", "Tab\tName"),
    ("email", "x" * 245 + "@example.com"),
    ("email", "not-an-email"),
    ("email", "robert'); DROP TABLE users;--@example.com"),
    ("email", 12345),
    ("password", None),
])
def test_register_bad_fields_are_422_naming_the_field(app, client, field, value):
    """Overlong, empty, control-character, malformed or wrong-typed fields: 422 on that field."""
    body = assert_error(client.post(REGISTER, json={**GOOD, field: value}), 422, "VALIDATION_ERROR")
    assert field in body["error"]["details"]
    assert user_count(app) == 0


def test_register_names_every_invalid_field_at_once(app, client):
    """A bad email, a missing name and a policy-failing password are all named in one 422."""
    body = assert_error(client.post(REGISTER, json={"email": "not-an-email", "password": "short"}), 422,
                        "VALIDATION_ERROR")
    assert set(body["error"]["details"]) == {"email", "name", "password"}
    assert "@-sign" in body["error"]["details"]["email"][0]
    assert any("at least 8" in reason for reason in body["error"]["details"]["password"])
    assert user_count(app) == 0


def test_register_blank_name_and_bad_email_are_named_together(client):
    """A name of spaces is as invalid as none, and is named beside the bad email."""
    body = assert_error(client.post(REGISTER, json={**GOOD, "email": "a@", "name": "   "}), 422, "VALIDATION_ERROR")
    assert set(body["error"]["details"]) == {"email", "name"}


def test_register_password_equal_to_the_name_is_refused_by_the_schema(client):
    """The policy sees the other fields: a password equal to the name is named under password."""
    body = assert_error(client.post(REGISTER, json={**GOOD, "name": "Correct Horse", "password": "correct horse"}),
                        422, "VALIDATION_ERROR")
    assert set(body["error"]["details"]) == {"password"}


def test_register_unknown_or_privileged_field_is_refused(app, client):
    """is_admin in the body is a 422 naming it; no account is created."""
    body = assert_error(client.post(REGISTER, json={**GOOD, "is_admin": True}), 422, "VALIDATION_ERROR")
    assert "is_admin" in body["error"]["details"]
    assert user_count(app) == 0


@pytest.mark.parametrize("name", ["Zoë Ünïcødé", "山田 太郎", "Ｍｉｘｅｄ 🚀 name", "Robert'); DROP TABLE users;--"])
def test_register_stores_unicode_and_sql_looking_names_verbatim(app, client, name):
    """Names are data: unicode and SQL-looking text are stored and returned exactly."""
    response = client.post(REGISTER, json={**GOOD, "name": name})
    assert response.status_code == 201
    assert response.get_json()["data"]["user"]["name"] == name
    with app.app_context():
        assert db.session.scalars(select(User.name)).one() == name


def test_register_malformed_json_is_400(app, client):
    """A body that is not valid JSON answers 400 in the envelope."""
    response = client.post(REGISTER, data='{"email": ', content_type="application/json")
    assert_error(response, 400, "BAD_REQUEST")
    assert user_count(app) == 0


def test_register_form_body_is_415(app, client):
    """A form-encoded body answers 415; the API only speaks JSON."""
    assert_error(client.post(REGISTER, data=GOOD), 415, "UNSUPPORTED_MEDIA_TYPE")
    assert user_count(app) == 0


@pytest.mark.parametrize("payload", ["[]", '"text"', "null", "{}"])
def test_register_non_object_or_empty_json_is_422(app, client, payload):
    """JSON that is not an object with the fields answers 422."""
    response = client.post(REGISTER, data=payload, content_type="application/json")
    assert_error(response, 422, "VALIDATION_ERROR")
    assert user_count(app) == 0


# login ------------------------------------------------------------------------------------------

def test_login_returns_bearer_token_session_and_user(app, client, factories):
    """200 with token, token_type Bearer, expires_at, the new session (current) and the user."""
    made = factories.user(email="bob@example.com")
    response = login(client, "Bob@Example.com", headers={"User-Agent": "pytest-agent"})
    data = response.get_json()["data"]
    assert response.status_code == 200 and response.headers["Cache-Control"] == "no-store"
    assert data["token_type"] == "Bearer" and len(data["token"]) >= 43
    assert data["user"]["id"] == made.id and data["user"]["last_login_at"]
    assert data["session"]["current"] is True and data["session"]["kind"] == "api"
    assert data["session"]["user_agent"] == "pytest-agent" and data["expires_at"] == data["session"]["expires_at"]
    with app.app_context():
        stored = db.session.get(Session, data["session"]["id"])
        assert stored.token_hash == hash_token(data["token"])
    [event] = audit_rows(app, "login")
    assert event.outcome == "success" and event.actor_user_id == made.id and event.ip_address == "127.0.0.1"


def test_seeded_demo_user_logs_in_with_readme_credentials(app, client):
    """After `flask seed`, bob@acme-corp.com / UserPass123! (seed README) signs in."""
    result = app.test_cli_runner().invoke(args=["seed"])
    assert result.exit_code == 0, result.output
    response = login(client, "bob@acme-corp.com", "UserPass123!")
    assert response.status_code == 200 and response.get_json()["data"]["user"]["email"] == "bob@acme-corp.com"


def test_login_token_authenticates_me(client, factories):
    """The token opens GET /auth/me, which returns the user and marks the session current."""
    factories.user(email="bob@example.com")
    token = login(client, "bob@example.com").get_json()["data"]["token"]
    response = client.get("/api/v1/auth/me", headers={"Authorization": f"Bearer {token}"})
    data = response.get_json()["data"]
    assert response.status_code == 200
    assert data["user"]["email"] == "bob@example.com" and data["session"]["current"] is True


@pytest.mark.parametrize("email, password", [
    ("ghost@example.com", DEFAULT_PASSWORD),
    ("bob@example.com", "Wrong-Password-1"),
    ("inactive@example.com", DEFAULT_PASSWORD),
    ("' OR '1'='1' --", DEFAULT_PASSWORD),
])
def test_login_failures_share_one_generic_error(app, client, factories, email, password):
    """Unknown email, wrong password and inactive user all answer the same 401 INVALID_CREDENTIALS."""
    factories.user(email="bob@example.com")
    factories.user(email="inactive@example.com", is_active=False)
    body = assert_error(login(client, email, password), 401, "INVALID_CREDENTIALS")
    assert body["message"] == "Invalid email or password." and body["error"]["details"] == {}
    [event] = audit_rows(app, "login")
    assert event.outcome == "failure" and event.details["reason"]
    with app.app_context():
        assert db.session.scalar(select(func.count(Session.id))) == 0


def test_audit_rows_never_hold_passwords_or_tokens(app, client, factories):
    """Neither a password nor a bearer token appears in any audit row."""
    factories.user(email="bob@example.com")
    login(client, "bob@example.com", "Wrong-Password-1")
    token = login(client, "bob@example.com").get_json()["data"]["token"]
    client.post("/api/v1/auth/logout", headers={"Authorization": f"Bearer {token}"})
    with app.app_context():
        rows = [json.dumps({c.name: str(getattr(e, c.name)) for c in AuditEvent.__table__.columns})
                for e in db.session.scalars(select(AuditEvent))]
    assert len(rows) == 3
    for secret in ("Wrong-Password-1", DEFAULT_PASSWORD, token):
        assert not any(secret in row for row in rows)


@pytest.mark.parametrize("payload, field", [
    ({"email": "bob@example.com"}, "password"),
    ({"password": DEFAULT_PASSWORD}, "email"),
    ({"email": "bob@example.com", "password": "p" * 257}, "password"),
    ({"email": "e" * 255, "password": DEFAULT_PASSWORD}, "email"),
    ({"email": "bob\x00@example.com", "password": DEFAULT_PASSWORD}, "email"),
    ({"email": ["bob@example.com"], "password": DEFAULT_PASSWORD}, "email"),
])
def test_login_bad_body_is_422(client, factories, payload, field):
    """Missing, overlong or wrong-typed fields answer 422 naming the field, not a 500 or a 401."""
    factories.user(email="bob@example.com")
    body = assert_error(client.post(LOGIN, json=payload), 422, "VALIDATION_ERROR")
    assert field in body["error"]["details"]


def test_login_wrong_content_type_and_malformed_json(client):
    """text/plain answers 415; broken JSON answers 400; both in the envelope."""
    assert_error(client.post(LOGIN, data="email=a", content_type="text/plain"), 415, "UNSUPPORTED_MEDIA_TYPE")
    assert_error(client.post(LOGIN, data="{not json", content_type="application/json"), 400, "BAD_REQUEST")


# logout -----------------------------------------------------------------------------------------

def test_logout_revokes_the_current_session(app, client, factories):
    """After logout the same token answers 401 and the session row is REVOKED."""
    factories.user(email="bob@example.com")
    data = login(client, "bob@example.com").get_json()["data"]
    auth = {"Authorization": f"Bearer {data['token']}"}
    response = client.post("/api/v1/auth/logout", headers=auth)
    assert response.status_code == 200 and response.get_json()["message"] == "Logged out"
    assert_error(client.get("/api/v1/auth/me", headers=auth), 401, "UNAUTHORIZED")
    with app.app_context():
        assert db.session.get(Session, data["session"]["id"]).status == "REVOKED"
    [event] = audit_rows(app, "logout")
    assert event.target_id == data["session"]["id"]


@pytest.mark.parametrize("header", [None, "Bearer", "Basic Ym9iOnB3", "Bearer not-a-real-token"])
def test_protected_routes_need_a_valid_bearer_token(client, header):
    """No token, a wrong scheme or an unknown token answers 401 with WWW-Authenticate."""
    headers = {"Authorization": header} if header else {}
    for method, path in [("post", "/api/v1/auth/logout"), ("get", "/api/v1/auth/me")]:
        response = getattr(client, method)(path, headers=headers)
        assert_error(response, 401, "UNAUTHORIZED")
        assert response.headers["WWW-Authenticate"].startswith("Bearer")


# rate limits ------------------------------------------------------------------------------------

def test_login_ip_limit_counts_successes_and_failures(make_app, factories):
    """The per-IP limit counts every attempt; the next one is a 429 envelope with Retry-After."""
    limited = make_app(RATELIMIT_LOGIN_IP="3 per minute")
    factories.user(email="bob@example.com")
    client = limited.test_client()
    assert login(client, "bob@example.com").status_code == 200
    assert login(client, "bob@example.com", "Wrong-Password-1").status_code == 401
    assert login(client, "other@example.com").status_code == 401
    response = login(client, "bob@example.com")
    body = assert_error(response, 429, "RATE_LIMITED")
    assert int(response.headers["Retry-After"]) > 0 and "try again later" in body["message"]
    elsewhere = login(client, "bob@example.com", environ_base={"REMOTE_ADDR": "10.9.9.9"})
    assert elsewhere.status_code == 200
    refused = [e for e in audit_rows(limited, "login") if e.details.get("reason") == "rate_limited"]
    assert len(refused) == 1 and refused[0].outcome == "failure"


def test_register_is_rate_limited_per_ip(make_app):
    """RATELIMIT_REGISTER caps registrations per IP, bad attempts included."""
    limited = make_app(RATELIMIT_REGISTER="2 per hour")
    client = limited.test_client()
    assert client.post(REGISTER, json={**GOOD, "email": "bad"}).status_code == 422
    assert client.post(REGISTER, json=GOOD).status_code == 201
    response = client.post(REGISTER, json={**GOOD, "email": "third@example.com"})
    assert_error(response, 429, "RATE_LIMITED")
    assert "Retry-After" in response.headers
    assert user_count(limited) == 1


def test_rate_limits_can_be_disabled(make_app, factories):
    """RATELIMIT_ENABLED=false lifts every limit."""
    open_app = make_app(RATELIMIT_ENABLED=False, RATELIMIT_LOGIN_IP="1 per minute")
    factories.user(email="bob@example.com")
    client = open_app.test_client()
    try:
        assert all(login(client, "bob@example.com").status_code == 200 for _ in range(4))
    finally:
        make_app()  # Flask-Limiter's on/off switch is process-wide: switch it back on for later tests
    assert limiter.enabled


# sign-in lockout (idp.services.lockout, one policy with the hosted sign-in page) ----------------

ATTACKER, HOME, CAFE = ({"REMOTE_ADDR": a} for a in ("198.51.100.66", "203.0.113.7", "192.0.2.44"))
WRONG = "Wrong-Password-1"


def test_successful_logins_never_lead_to_429(make_app, factories):
    """However often the owner logs in, every login is a 200 (the old per-account limit refused the 11th)."""
    roomy = make_app(RATELIMIT_LOGIN_IP="1000 per minute")
    factories.user(email="bob@example.com")
    client = roomy.test_client()
    assert [login(client, "bob@example.com").status_code for _ in range(25)] == [200] * 25


def test_an_attacker_address_locks_only_itself(app, factories):
    """The issue's test on the API: five wrong passwords lock that address out of bob (429 RATE_LIMITED with
    Retry-After, the right password too); bob logs in from another address, and with his device cookie from
    the attacker's own."""
    factories.user(email="bob@example.com")
    with time_machine.travel("2026-12-24 10:00:00", tick=False):
        bobs_browser = app.test_client()
        assert login(bobs_browser, "bob@example.com", environ_base=HOME).status_code == 200  # a device cookie
        attacker = app.test_client()
        codes = [login(attacker, "bob@example.com", WRONG, environ_base=ATTACKER).status_code for _ in range(5)]
        refused = login(attacker, "bob@example.com", environ_base=ATTACKER)
        assert codes == [401] * 4 + [429]
        body = assert_error(refused, 429, "RATE_LIMITED")
        assert refused.headers["Retry-After"] == "30" and "Too many failed sign-in attempts" in body["message"]
        assert login(app.test_client(), "BOB@example.com", environ_base=CAFE).status_code == 200
        assert login(bobs_browser, "bob@example.com", environ_base=ATTACKER).status_code == 200
    assert [e.details["scope"] for e in audit_rows(app, "login.locked")] == ["pair"]


def test_the_hosted_page_and_the_api_share_one_lockout(app, factories):
    """Failures on /login and on the API count together: three on the page and two on the API lock the address."""
    from tests.web.helpers import submit

    factories.user(email="bob@example.com")
    client = app.test_client()
    for _ in range(3):
        page = submit(client, "/login", {"email": "bob@example.com", "password": WRONG}, environ_base=ATTACKER)
        assert page.status_code == 401
    codes = [login(client, "bob@example.com", WRONG, environ_base=ATTACKER).status_code for _ in range(2)]
    assert codes == [401, 429]


def test_many_addresses_slow_the_account_down_and_never_lock_it(app, factories):
    """Failures from many addresses slow bob's account down: an untrusted login too early gets 429 with a
    Retry-After of at most 30 s and succeeds after it; bob's device cookie gets in at once."""
    factories.user(email="bob@example.com")
    with time_machine.travel("2026-12-24 10:00:10", tick=False) as clock:
        bobs_browser = app.test_client()
        assert login(bobs_browser, "bob@example.com", environ_base=HOME).status_code == 200
        for n in range(16):  # four addresses, four failures each: no pair lock, the slow-down at its cap
            attempt = login(app.test_client(), "bob@example.com", WRONG, environ_base={"REMOTE_ADDR": f"10.0.0.{n // 4}"})
            assert attempt.status_code == 401
        early = login(app.test_client(), "bob@example.com", environ_base=CAFE)
        assert_error(early, 429, "RATE_LIMITED")
        assert early.headers["Retry-After"] == "20"  # the rest of this 30 s window
        assert login(bobs_browser, "bob@example.com", environ_base=CAFE).status_code == 200
        clock.shift(20)
        assert login(app.test_client(), "bob@example.com", environ_base=CAFE).status_code == 200


def test_one_address_spraying_many_accounts_is_locked(make_app, factories):
    """Failures across many accounts from one address lock it for every account (a 429 for the real one)."""
    roomy = make_app(RATELIMIT_LOGIN_IP="1000 per minute")
    factories.user(email="bob@example.com")
    client = roomy.test_client()
    codes = [login(client, f"user{n}@example.com", WRONG, environ_base=ATTACKER).status_code for n in range(20)]
    assert codes == [401] * 19 + [429]
    assert_error(login(client, "bob@example.com", environ_base=ATTACKER), 429, "RATE_LIMITED")
    assert login(client, "bob@example.com", environ_base=HOME).status_code == 200
