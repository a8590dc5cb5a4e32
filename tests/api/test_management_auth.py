"""Who may call the management API (issue #11): API sessions, RFC 9068 access tokens for API_AUDIENCE
with management scopes, service accounts; and how the token endpoint grants those scopes.

The permission matrix runs on a real management endpoint, GET /api/v1/admin/organizations
(platform admins, scope manage:organizations).
"""
from __future__ import annotations

import time
from types import SimpleNamespace

import pytest
from joserfc import jwt
from werkzeug.datastructures import MultiDict

from idp.extensions import db
from idp.models import Membership, OAuthClient, Organization, User
from idp.services.sessions import create_session
from tests.api.envelope_assertions import assert_error, assert_success
from tests.api.service_accounts import access_token_of, bearer, service_account, token_response
from tests.oidc.conftest import REDIRECT_URI, Flow, basic_auth, query_of

ADMIN_ORGS = "/api/v1/admin/organizations"
ISSUER = "http://localhost:5000"
API_AUDIENCE = ISSUER + "/api"


def claims_of(app, token: str) -> dict:
    with app.app_context():
        keys = app.extensions["oidc"]["keys"].verification_keyset()
    return jwt.decode(token, keys).claims


@pytest.fixture
def world(app, factories):
    """Acme with an owner, an admin and a member; an outsider; a platform admin; API sessions for each."""
    with app.app_context():
        org = Organization(name="Acme Corp", slug="acme-corp")
        users = {name: User(email=f"{name}@example.com", name=name.title(), is_admin=name == "platform_admin")
                 for name in ("owner", "admin", "member", "outsider", "platform_admin")}
        db.session.add_all([org, *users.values()])
        db.session.flush()
        db.session.add_all(Membership(organization_id=org.id, user_id=users[role].id, role=role)
                           for role in ("owner", "admin", "member"))
        sessions = {name: bearer(create_session(user)[1]) for name, user in users.items()}
        db.session.commit()
        people = {name: SimpleNamespace(id=user.id) for name, user in users.items()}
        return SimpleNamespace(org=SimpleNamespace(id=org.id), users=people, sessions=sessions)


def first_party_rp(factories, scope: str, first_party: bool = True) -> OAuthClient:
    return factories.client(redirect_uris=[REDIRECT_URI], first_party=first_party, scope=scope,
                            grant_types=["authorization_code", "refresh_token"])


def user_token(app, client, rp: OAuthClient, user, scope: str) -> dict:
    """The code flow (RFC 6749 4.1) for `user` at `rp`; the token response."""
    flow = Flow(app, client, rp)
    flow.sign_in(user)
    return flow.tokens(scope=scope)


# -- the permission matrix: API sessions ------------------------------------------------------------

def test_platform_admin_session_lists_organizations(client, world):
    """An API session of a platform admin has the admin's full rights: 200 with the organization."""
    body = assert_success(client.get(ADMIN_ORGS, headers=world.sessions["platform_admin"]))
    assert [item["id"] for item in body["data"]] == [world.org.id]


@pytest.mark.parametrize("who", ["owner", "admin", "member", "outsider"])
def test_organization_roles_are_not_platform_admins(client, world, who):
    """Owners, admins and members of an organization, and outsiders, are refused the platform-wide list."""
    assert_error(client.get(ADMIN_ORGS, headers=world.sessions[who]), 403, "FORBIDDEN")


def test_no_credentials_is_401_with_a_bare_challenge(client, world):
    """RFC 6750 3.1: a request without credentials gets a challenge without an error code."""
    response = client.get(ADMIN_ORGS)
    assert_error(response, 401, "UNAUTHORIZED")
    assert response.headers["WWW-Authenticate"] == 'Bearer realm="authy2"'


def test_unknown_bearer_value_is_401_invalid_token(client, world):
    """RFC 6750 3.1: neither a live API session nor a token of this issuer is invalid_token."""
    response = client.get(ADMIN_ORGS, headers=bearer("not-a-session-or-a-jwt"))
    assert_error(response, 401, "UNAUTHORIZED")
    assert 'error="invalid_token"' in response.headers["WWW-Authenticate"]


def test_a_disabled_users_session_is_refused(app, client, world):
    """A disabled platform admin's API session stops working at once."""
    with app.app_context():
        db.session.get(User, world.users["platform_admin"].id).is_active = False
        db.session.commit()
    assert_error(client.get(ADMIN_ORGS, headers=world.sessions["platform_admin"]), 401, "UNAUTHORIZED")


# -- service accounts (client_credentials tokens) -------------------------------------------------

def test_platform_wide_service_account_with_the_scope_is_allowed(client, factories, world):
    """A client without an organization, granted manage:organizations: its token acts platform-wide."""
    account = service_account(factories, "manage:organizations")
    token = access_token_of(client, account)
    body = assert_success(client.get(ADMIN_ORGS, headers=bearer(token)))
    assert [item["id"] for item in body["data"]] == [world.org.id]


def test_service_account_without_the_scope_is_403_insufficient_scope(client, factories, world):
    """RFC 6750 3.1: a valid token lacking the operation's scope is 403 insufficient_scope."""
    account = service_account(factories, "manage:users read:audit")
    response = client.get(ADMIN_ORGS, headers=bearer(access_token_of(client, account)))
    assert_error(response, 403, "FORBIDDEN")
    assert 'error="insufficient_scope"' in response.headers["WWW-Authenticate"]
    assert 'scope="manage:organizations"' in response.headers["WWW-Authenticate"]


def test_organization_service_account_is_refused_a_platform_endpoint(client, factories, world):
    """A service account owned by an organization is its admin there, never a platform admin."""
    account = service_account(factories, "manage:organizations", organization_id=world.org.id)
    assert_error(client.get(ADMIN_ORGS, headers=bearer(access_token_of(client, account))), 403, "FORBIDDEN")


def test_token_of_another_audience_is_401(client, factories, world):
    """RFC 9068 4: an ordinary client_credentials token (aud = issuer) is not for the API."""
    ordinary = service_account(factories, "reports:read")
    token = access_token_of(client, ordinary)
    assert claims_of(client.application, token)["aud"] == ISSUER
    response = client.get(ADMIN_ORGS, headers=bearer(token))
    assert_error(response, 401, "UNAUTHORIZED")
    assert 'error="invalid_token"' in response.headers["WWW-Authenticate"]


def test_revoked_service_account_token_is_401(client, factories, world):
    """RFC 7009 2.1: once revoked at /oauth2/revoke the token is refused."""
    account = service_account(factories, "manage:organizations")
    token = access_token_of(client, account)
    assert client.get(ADMIN_ORGS, headers=bearer(token)).status_code == 200
    revoked = client.post("/oauth2/revoke", data={"token": token}, headers=basic_auth(account.client_id))
    assert revoked.status_code == 200
    assert_error(client.get(ADMIN_ORGS, headers=bearer(token)), 401, "UNAUTHORIZED")


def test_expired_token_is_401(app, client, factories, world):
    """RFC 9068 4: an expired token is refused, though signed by this issuer for this audience."""
    from idp.oidc.tokens import sign

    account = service_account(factories, "manage:organizations")
    now = int(time.time())
    with app.test_request_context():
        token = sign({"iss": ISSUER, "sub": account.client_id, "aud": API_AUDIENCE,
                      "client_id": account.client_id, "scope": "manage:organizations", "iat": now - 120,
                      "exp": now - 60, "jti": "expired-jti"}, typ="at+jwt")
    assert_error(client.get(ADMIN_ORGS, headers=bearer(token)), 401, "UNAUTHORIZED")


def test_token_of_a_deactivated_client_is_401(app, client, factories, world):
    """A deactivated client's service-account token stops working at once (no cache on this path)."""
    account = service_account(factories, "manage:organizations")
    token = access_token_of(client, account)
    with app.app_context():
        db.session.get(OAuthClient, account.id).is_active = False
        db.session.commit()
    assert_error(client.get(ADMIN_ORGS, headers=bearer(token)), 401, "UNAUTHORIZED")


def test_a_scope_withdrawn_from_the_client_stops_its_tokens(app, client, factories, world):
    """A token holds only what its client is granted now: a platform admin withdrawing the scope
    does not wait for the token to expire."""
    account = service_account(factories, "manage:organizations manage:users")
    token = access_token_of(client, account)
    with app.app_context():
        db.session.get(OAuthClient, account.id).scope = "manage:users"
        db.session.commit()
    assert_error(client.get(ADMIN_ORGS, headers=bearer(token)), 403, "FORBIDDEN")


def test_token_signed_by_another_key_is_401(client, factories, world):
    """RFC 9068 4: only this issuer's published keys verify a token."""
    from joserfc.jwk import RSAKey

    key = RSAKey.generate_key(2048)
    now = int(time.time())
    forged = jwt.encode({"alg": "RS256", "typ": "at+jwt"},
                        {"iss": ISSUER, "sub": "x", "aud": API_AUDIENCE, "client_id": "x",
                         "scope": "manage:organizations", "iat": now, "exp": now + 60, "jti": "forged"}, key)
    assert_error(client.get(ADMIN_ORGS, headers=bearer(forged)), 401, "UNAUTHORIZED")


# -- a user's access token (authorization code flow, first-party client) ------------------------------

def test_platform_admins_token_from_a_first_party_client_is_allowed(app, client, factories, world):
    """The user's token acts as that user (a platform admin), limited to its scopes."""
    rp = first_party_rp(factories, "openid manage:organizations")
    tokens = user_token(app, client, rp, world.users["platform_admin"], "openid manage:organizations")
    claims = claims_of(app, tokens["access_token"])
    assert claims["aud"] == API_AUDIENCE and claims["scope"] == "openid manage:organizations"
    assert "id_token" in tokens
    assert_success(client.get(ADMIN_ORGS, headers=bearer(tokens["access_token"])))


def test_a_non_admins_token_with_the_scope_is_403(app, client, factories, world):
    """A scope never adds rights: an organization owner's token with manage:organizations is still refused."""
    rp = first_party_rp(factories, "openid manage:organizations")
    tokens = user_token(app, client, rp, world.users["owner"], "openid manage:organizations")
    assert_error(client.get(ADMIN_ORGS, headers=bearer(tokens["access_token"])), 403, "FORBIDDEN")


def test_a_user_token_without_the_scope_is_403(app, client, factories, world):
    """A platform admin's token with another management scope lacks manage:organizations."""
    rp = first_party_rp(factories, "openid manage:users")
    tokens = user_token(app, client, rp, world.users["platform_admin"], "openid manage:users")
    assert_error(client.get(ADMIN_ORGS, headers=bearer(tokens["access_token"])), 403, "FORBIDDEN")


def test_a_disabled_users_token_is_401(app, client, factories, world):
    """A disabled user's tokens stop working, even unexpired and unrevoked."""
    rp = first_party_rp(factories, "openid manage:organizations")
    tokens = user_token(app, client, rp, world.users["platform_admin"], "openid manage:organizations")
    with app.app_context():
        db.session.get(User, world.users["platform_admin"].id).is_active = False
        db.session.commit()
    assert_error(client.get(ADMIN_ORGS, headers=bearer(tokens["access_token"])), 401, "UNAUTHORIZED")


def test_a_user_token_revoked_at_the_revocation_endpoint_is_401(app, client, factories, world):
    """RFC 7009: a user's access token revoked by its client is refused."""
    rp = first_party_rp(factories, "openid manage:organizations")
    tokens = user_token(app, client, rp, world.users["platform_admin"], "openid manage:organizations")
    client.post("/oauth2/revoke", data={"token": tokens["access_token"]}, headers=basic_auth(rp.client_id))
    assert_error(client.get(ADMIN_ORGS, headers=bearer(tokens["access_token"])), 401, "UNAUTHORIZED")


def test_an_ordinary_user_token_is_for_the_issuer_not_the_api(app, client, factories, world):
    """Without a management scope the token keeps aud = issuer, and the API refuses it."""
    rp = first_party_rp(factories, "openid profile")
    tokens = user_token(app, client, rp, world.users["platform_admin"], "openid profile")
    assert claims_of(app, tokens["access_token"])["aud"] == ISSUER
    assert_error(client.get(ADMIN_ORGS, headers=bearer(tokens["access_token"])), 401, "UNAUTHORIZED")


# -- the token endpoint: granting management scopes ---------------------------------------------------

def test_management_scope_not_registered_is_invalid_scope(client, factories):
    """RFC 6749 3.3: a client gets a management scope only when its registration has it."""
    account = service_account(factories, "reports:read")
    response = token_response(client, account, scope="manage:clients")
    assert response.status_code == 400 and response.get_json()["error"] == "invalid_scope"


def test_management_scopes_are_granted_with_the_api_audience(app, client, factories):
    """RFC 9068 2.2: a token with a management scope has aud = API_AUDIENCE, sub = client_id."""
    account = service_account(factories, "manage:clients read:audit")
    body = token_response(client, account, scope="manage:clients").get_json()
    claims = claims_of(app, body["access_token"])
    assert body["scope"] == "manage:clients"
    assert claims["aud"] == API_AUDIENCE and claims["sub"] == account.client_id == claims["client_id"]


def test_configured_api_audience_is_the_tokens_aud(make_app, factories):
    """API_AUDIENCE names the API's resource identifier; tokens and the API both use it."""
    other = make_app(API_AUDIENCE="https://api.example.com/management")
    account = service_account(factories, "manage:organizations")
    client = other.test_client()
    token = access_token_of(client, account)
    assert claims_of(other, token)["aud"] == "https://api.example.com/management"
    assert_success(client.get(ADMIN_ORGS, headers=bearer(token)))
    token_for_default = access_token_of(client, account, resource="https://api.example.com/management")
    assert claims_of(other, token_for_default)["aud"] == "https://api.example.com/management"


def test_resource_selects_the_clients_scopes_for_it(app, client, factories):
    """RFC 8707 2: without `scope`, `resource` picks the client's scopes for that resource."""
    account = service_account(factories, "reports:read manage:clients manage:keys")
    for_api = token_response(client, account, resource=API_AUDIENCE).get_json()
    assert for_api["scope"] == "manage:clients manage:keys"
    assert claims_of(app, for_api["access_token"])["aud"] == API_AUDIENCE
    for_issuer = token_response(client, account, resource=ISSUER).get_json()
    assert for_issuer["scope"] == "reports:read"
    assert claims_of(app, for_issuer["access_token"])["aud"] == ISSUER
    everything = token_response(client, account).get_json()
    assert claims_of(app, everything["access_token"])["aud"] == API_AUDIENCE


@pytest.mark.parametrize("resource", ["https://elsewhere.example/api", "not a uri", API_AUDIENCE + "#frag"])
def test_unknown_or_malformed_resource_is_invalid_target(client, factories, resource):
    """RFC 8707 2: a resource this server issues no tokens for, or not an absolute URI without a
    fragment, is invalid_target."""
    account = service_account(factories, "manage:clients")
    response = token_response(client, account, resource=resource)
    assert response.status_code == 400 and response.get_json()["error"] == "invalid_target"


def test_resource_that_the_scope_is_not_for_is_invalid_target(client, factories):
    """RFC 8707 2: an ordinary scope asked for the API's audience (or the reverse) is invalid_target."""
    account = service_account(factories, "reports:read manage:clients")
    for scope, resource in (("reports:read", API_AUDIENCE), ("manage:clients", ISSUER)):
        response = token_response(client, account, scope=scope, resource=resource)
        assert response.status_code == 400 and response.get_json()["error"] == "invalid_target", (scope, resource)


def test_two_resources_are_invalid_target(client, factories):
    """One token has one audience: naming two resources is refused, not narrowed silently."""
    account = service_account(factories, "reports:read manage:clients")
    data = MultiDict([("grant_type", "client_credentials"), ("resource", API_AUDIENCE), ("resource", ISSUER)])
    response = client.post("/oauth2/token", data=data, headers=basic_auth(account.client_id))
    assert response.status_code == 400 and response.get_json()["error"] == "invalid_target"


def test_resource_at_the_code_exchange(app, client, factories, world):
    """RFC 8707 2 at the code exchange: the API's resource for a code with a management scope works; the
    issuer's does not (and the code is still unused after the refusal)."""
    rp = first_party_rp(factories, "openid manage:organizations")
    flow = Flow(app, client, rp)
    flow.sign_in(world.users["platform_admin"])
    code = flow.code(scope="openid manage:organizations")
    refused = flow.exchange(code, resource=ISSUER)
    assert refused.status_code == 400 and refused.get_json()["error"] == "invalid_target"
    granted = flow.exchange(code, resource=API_AUDIENCE)
    assert granted.status_code == 200, granted.get_json()
    assert claims_of(app, granted.get_json()["access_token"])["aud"] == API_AUDIENCE


def test_refreshed_token_keeps_the_api_audience(app, client, factories, world):
    """A refresh of a management token is again a token for the API (the scope decides)."""
    rp = first_party_rp(factories, "openid offline_access manage:organizations")
    flow = Flow(app, client, rp)
    flow.sign_in(world.users["platform_admin"])
    tokens = flow.tokens(scope="openid offline_access manage:organizations")
    refreshed = flow.refresh(tokens["refresh_token"]).get_json()
    assert claims_of(app, refreshed["access_token"])["aud"] == API_AUDIENCE
    assert_success(client.get(ADMIN_ORGS, headers=bearer(refreshed["access_token"])))


def test_third_party_client_never_gets_a_management_scope(app, client, factories, world):
    """RFC 6749 4.1.2.1: a third-party client asking for a management scope gets invalid_scope at its
    redirect URI, even with the scope registered."""
    rp = first_party_rp(factories, "openid manage:organizations", first_party=False)
    flow = Flow(app, client, rp)
    flow.sign_in(world.users["platform_admin"])
    response = flow.authorize(scope="openid manage:organizations")
    assert response.status_code == 302
    assert query_of(response.headers["Location"])["error"] == "invalid_scope"


def test_first_party_client_without_the_scope_registered_gets_invalid_scope(app, client, factories, world):
    """A first-party client is refused a management scope its registration lacks."""
    rp = first_party_rp(factories, "openid manage:users")
    flow = Flow(app, client, rp)
    flow.sign_in(world.users["platform_admin"])
    response = flow.authorize(scope="openid manage:organizations")
    assert query_of(response.headers["Location"])["error"] == "invalid_scope"


def test_management_scopes_are_not_advertised(client):
    """They are for Authy2's own first-party apps and service accounts, not third parties: discovery
    does not list them (RFC 8414 2 lets a server leave scopes out), and dynamic registration, which
    accepts only advertised scopes, cannot obtain them."""
    from idp.services.management_scopes import MANAGEMENT_SCOPES

    advertised = set(client.get("/.well-known/openid-configuration").get_json()["scopes_supported"])
    assert not advertised & MANAGEMENT_SCOPES


def test_introspection_reports_a_management_token_active(client, factories):
    """Introspection and the API share one verification (idp.services.access_tokens); RFC 7662 2.2 `aud`
    is the token's own audience (RFC 9068 2.2), API_AUDIENCE here, as in the JWT."""
    account = service_account(factories, "manage:clients")
    token = access_token_of(client, account)
    body = client.post("/oauth2/introspect", data={"token": token}, headers=basic_auth(account.client_id)).get_json()
    assert body["active"] is True and body["scope"] == "manage:clients"
    assert body["aud"] == API_AUDIENCE == claims_of(client.application, token)["aud"]


# -- the principal's organization rules (require_organization_manager) ------------------------------

def test_require_organization_manager_hides_other_organizations(app, factories, world):
    """NotFound for an unknown organization and for one the principal is not in; Forbidden for a role
    that falls short; a service account is an admin of its own organization only."""
    from idp.api.principal import Principal
    from idp.api.security import require_organization_manager
    from idp.errors import Forbidden, NotFound
    other = factories.organization()
    account = service_account(factories, "manage:clients", organization_id=world.org.id)
    with app.app_context():
        member = Principal.of_session(db.session.get(User, world.users["member"].id))
        outsider = Principal.of_session(db.session.get(User, world.users["outsider"].id))
        owner = Principal.of_session(db.session.get(User, world.users["owner"].id))
        admin = Principal.of_session(db.session.get(User, world.users["platform_admin"].id))
        robot = Principal.of_service_account(db.session.get(OAuthClient, account.id), frozenset({"manage:clients"}))
        assert require_organization_manager(owner, world.org.id).id == world.org.id
        assert require_organization_manager(admin, other.id).id == other.id
        assert require_organization_manager(robot, world.org.id).id == world.org.id
        assert robot.actor_user_id is None and robot.actor_client_id == account.client_id
        with pytest.raises(Forbidden):
            require_organization_manager(member, world.org.id)
        for principal, organization_id in ((outsider, world.org.id), (robot, other.id), (owner, "no-such-org")):
            with pytest.raises(NotFound):
                require_organization_manager(principal, organization_id)


@pytest.mark.parametrize("value", [ISSUER, "api-of-authy2", ISSUER + "/api#part"])
def test_api_audience_must_be_its_own_absolute_uri(monkeypatch, value):
    """API_AUDIENCE equal to the issuer would let the issuer's tokens pass the API's audience check;
    RFC 8707 2 resource identifiers are absolute URIs without a fragment."""
    from idp.config import load_settings

    monkeypatch.setenv("ISSUER", ISSUER)
    monkeypatch.setenv("API_AUDIENCE", value)
    assert any("API_AUDIENCE" in problem for problem in load_settings().problems)
    monkeypatch.setenv("API_AUDIENCE", "https://api.example.com/management")
    assert not any("API_AUDIENCE" in problem for problem in load_settings().problems)


def test_a_deleted_organizations_service_account_never_acts_platform_wide(client, world, factories):
    """Deleting an organization detaches its clients (no organization = platform client) and so also
    deactivates them: its service account's token stops working at once (RFC 9068 4 / RFC 6750 3.1
    invalid_token) instead of turning into a platform-wide one, and it gets no new token."""
    account = service_account(factories, "manage:organizations", organization_id=world.org.id)
    token = access_token_of(client, account, scope="manage:organizations")
    owner = world.sessions["owner"]
    assert client.delete(f"/api/v1/organizations/{world.org.id}", headers=owner).status_code == 200
    response = client.get("/api/v1/admin/organizations", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 401
    assert 'error="invalid_token"' in response.headers["WWW-Authenticate"]
    assert token_response(client, account, scope="manage:organizations").get_json()["error"] == "invalid_client"
