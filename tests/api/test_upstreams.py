"""/api/v1/upstreams: who manages which upstream, what is stored and returned, and how saving validates."""
from __future__ import annotations

import json
import socket
from types import SimpleNamespace

import pytest
from sqlalchemy import select

from idp.extensions import db
from idp.federation import registry
from idp.models import AuditEvent, FederatedIdentity, Membership, Organization, Upstream, User
from idp.services import upstreams
from idp.services.sessions import create_session
from tests.api.envelope_assertions import assert_error
from tests.federation.standins.github import GitHubStandIn
from tests.federation.standins.oidc_provider import OidcProvider, running
from tests.federation.standins.saml_idp import SamlIdp

URL = "/api/v1/upstreams"
SECRET = "upstream-client-secret-7f3a9c"
PEOPLE = ("platform_admin", "owner", "admin", "member", "outsider", "other_admin")


@pytest.fixture(scope="module")
def provider():
    yield from running("generic")


@pytest.fixture
def world(app):
    """Acme (owner, admin, member), Globex (other_admin), an outsider and a platform admin, each with a token."""
    with app.app_context():
        acme, globex = Organization(name="Acme", slug="acme"), Organization(name="Globex", slug="globex")
        users = {name: User(email=f"{name}@example.com", name=name, is_admin=name == "platform_admin")
                 for name in PEOPLE}
        db.session.add_all([acme, globex, *users.values()])
        db.session.flush()
        db.session.add_all(Membership(organization_id=acme.id, user_id=users[role].id, role=role)
                           for role in ("owner", "admin", "member"))
        db.session.add(Membership(organization_id=globex.id, user_id=users["other_admin"].id, role="admin"))
        headers = {name: {"Authorization": f"Bearer {create_session(user)[1]}"} for name, user in users.items()}
        db.session.commit()
        return SimpleNamespace(acme=acme.id, globex=globex.id, headers=headers,
                               ids={name: user.id for name, user in users.items()})


def oidc_body(provider, slug="acme-sso", **fields) -> dict:
    return {"slug": slug, "kind": "oidc", "display_name": "Acme SSO", "issuer": provider.issuer,
            "client_id": provider.client_id, "client_secret": SECRET, **fields}


def create(client, world, provider, who="platform_admin", **fields):
    return client.post(URL, json=oidc_body(provider, **fields), headers=world.headers[who])


def stored(app, upstream_id: str) -> Upstream | None:
    with app.app_context():
        upstream = db.session.get(Upstream, upstream_id)
        if upstream is not None:
            upstream.secrets = upstreams.secrets_of(upstream)
            db.session.expunge(upstream)
        return upstream


def audit_rows(app, action: str, outcome: str = "success") -> list[AuditEvent]:
    with app.app_context():
        query = select(AuditEvent).where(AuditEvent.action == action, AuditEvent.outcome == outcome)
        return list(db.session.scalars(query.order_by(AuditEvent.created_at)))


def closed_port_url() -> str:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{probe.getsockname()[1]}"


# create -----------------------------------------------------------------------------------------

def test_platform_admin_creates_a_platform_upstream_validated_by_discovery(app, client, world, provider):
    """201 with the stored settings, this IdP's redirect URI and client_secret_set; the secret is kept encrypted."""
    response = create(client, world, provider)
    body = response.get_json()
    assert response.status_code == 201 and body["success"] is True and body["code"] == 201
    data = body["data"]
    assert data["slug"] == "acme-sso" and data["kind"] == "oidc" and data["organization_id"] is None
    assert data["issuer"] == provider.issuer and data["client_id"] == provider.client_id
    assert data["enabled"] is True and data["enforce_for_domains"] is False and data["email_domains"] == []
    assert data["client_secret_set"] is True and "client_secret" not in data
    assert data["redirect_uri"] == "http://localhost:5000/api/v1/auth/external/acme-sso/callback"
    assert data["login_url"] == "http://localhost:5000/api/v1/auth/external/acme-sso/login"
    row = stored(app, data["id"])
    assert row.secrets == {"client_secret": SECRET} and SECRET not in (row.secrets_encrypted or "")


@pytest.mark.parametrize("who", ["owner", "admin"])
def test_organization_owners_and_admins_create_their_organizations_upstream(client, world, provider, who):
    """201: owners and admins manage their organization's upstreams (issue 10, Management API)."""
    response = create(client, world, provider, who=who, organization_id=world.acme)
    assert response.status_code == 201, response.get_json()
    assert response.get_json()["data"]["organization_id"] == world.acme


def test_a_member_cannot_create_an_upstream_for_the_organization(app, client, world, provider):
    """403 for a plain member (they see the organization), audited as a failure."""
    assert_error(create(client, world, provider, who="member", organization_id=world.acme), 403, "FORBIDDEN")
    [event] = audit_rows(app, "upstream.create", "failure")
    assert event.actor_user_id == world.ids["member"] and event.organization_id == world.acme


@pytest.mark.parametrize("who", ["other_admin", "outsider"])
def test_another_organizations_admin_is_told_the_organization_does_not_exist(client, world, provider, who):
    """404, not 403: an organization the caller is not in is not revealed."""
    assert_error(create(client, world, provider, who=who, organization_id=world.acme), 404, "NOT_FOUND")


def test_a_platform_wide_upstream_needs_a_platform_admin(client, world, provider):
    """422 naming organization_id: anyone else must say whose upstream it is."""
    body = assert_error(create(client, world, provider, who="owner"), 422, "VALIDATION_ERROR")
    assert list(body["error"]["details"]) == ["organization_id"]


def test_an_unknown_organization_is_a_404(client, world, provider):
    """404 for an organization_id that does not exist, even for a platform admin."""
    assert_error(create(client, world, provider, organization_id="no-such-org"), 404, "NOT_FOUND")


@pytest.mark.parametrize("slug", ["a", "A-b", "-ab", "ab-", "a_b", "a--b", "sp ace", "x" * 65])
def test_slugs_are_url_safe_lower_case_and_2_to_64_characters(client, world, provider, slug):
    """422 naming slug for anything but lower-case letters, digits and single inner hyphens, 2-64 long."""
    body = assert_error(create(client, world, provider, slug=slug), 422, "VALIDATION_ERROR")
    assert "slug" in body["error"]["details"]


def test_a_taken_slug_is_a_conflict(client, world, provider):
    """409 CONFLICT naming slug when another upstream has it."""
    assert create(client, world, provider).status_code == 201
    body = assert_error(create(client, world, provider, who="owner", organization_id=world.acme), 409, "CONFLICT")
    assert list(body["error"]["details"]) == ["slug"]


def test_the_slug_link_is_reserved(client, world, provider):
    """422 naming slug: /api/v1/auth/external/link holds the account-linking pages, on create and on a rename."""
    body = assert_error(create(client, world, provider, slug="link"), 422, "VALIDATION_ERROR")
    assert list(body["error"]["details"]) == ["slug"]
    made = create(client, world, provider).get_json()["data"]
    renamed = client.patch(f"{URL}/{made['id']}", json={"slug": "link"}, headers=world.headers["platform_admin"])
    assert list(assert_error(renamed, 422, "VALIDATION_ERROR")["error"]["details"]) == ["slug"]


def test_a_setting_of_another_kind_is_refused(client, world, provider):
    """422 naming the field: tenant is a microsoft setting, not an oidc one."""
    body = assert_error(create(client, world, provider, tenant="common"), 422, "VALIDATION_ERROR")
    assert list(body["error"]["details"]) == ["tenant"]


def test_owner_is_never_a_mappable_role(client, world, provider):
    """422: an upstream claim may grant admin or member, never ownership of the organization."""
    mapping = {"claim": "groups", "map": {"idp-owners": "owner"}}
    body = assert_error(create(client, world, provider, who="owner", organization_id=world.acme,
                               role_mapping=mapping), 422, "VALIDATION_ERROR")
    assert "role_mapping" in body["error"]["details"]


def test_a_role_mapping_is_stored_for_an_organizations_upstream(client, world, provider):
    """201 echoing the mapping; a platform-wide upstream has no organization to map into (422)."""
    mapping = {"claim": "groups", "map": {"idp-admins": "admin", "staff": "member"}}
    response = create(client, world, provider, who="owner", organization_id=world.acme, role_mapping=mapping)
    assert response.status_code == 201 and response.get_json()["data"]["role_mapping"] == mapping
    body = assert_error(create(client, world, provider, slug="platform", role_mapping=mapping), 422, "VALIDATION_ERROR")
    assert list(body["error"]["details"]) == ["role_mapping"]


# email domains ------------------------------------------------------------------------------------

def test_domains_are_lower_cased_and_belong_to_one_upstream(client, world, provider):
    """A platform admin claims ACME.example as acme.example; a second claim of it is a 409 naming email_domains."""
    first = create(client, world, provider, organization_id=world.acme, email_domains=["ACME.example", "acme.example"])
    assert first.status_code == 201 and first.get_json()["data"]["email_domains"] == ["acme.example"]
    second = create(client, world, provider, slug="globex-sso", organization_id=world.globex,
                    email_domains=["acme.example"])
    body = assert_error(second, 409, "CONFLICT")
    assert list(body["error"]["details"]) == ["email_domains"]


@pytest.mark.parametrize("domain", ["localhost", "-acme.example", "acme..example", "acme.example/x", "1.2.3.4"])
def test_email_domains_must_be_domain_names(client, world, provider, domain):
    """422 naming email_domains for anything that is not a dotted domain name."""
    body = assert_error(create(client, world, provider, email_domains=[domain]), 422, "VALIDATION_ERROR")
    assert "email_domains" in body["error"]["details"]


@pytest.mark.parametrize("field, value", [("email_domains", ["gmail.com"]), ("enforce_for_domains", True),
                                          ("trust_email_verified", True)])
def test_only_platform_admins_make_trust_decisions(app, client, world, provider, field, value):
    """403 naming the field: an organization owner cannot claim a domain (e.g. gmail.com, redirecting
    its users to their IdP), enforce SSO for it, or trust an upstream's email_verified."""
    response = create(client, world, provider, who="owner", organization_id=world.acme, **{field: value})
    body = assert_error(response, 403, "FORBIDDEN")
    assert list(body["error"]["details"]) == [field]
    [event] = audit_rows(app, "upstream.create", "failure")
    assert event.actor_user_id == world.ids["owner"] and event.details["reason"].startswith("Only platform admins")


# validation against the upstream ----------------------------------------------------------------

def test_an_issuer_whose_discovery_names_another_issuer_is_refused(client, world, provider):
    """422 naming issuer: discovery must name exactly the configured issuer (OIDC Discovery 1.0 section 4.3)."""
    provider.metadata = {"issuer": "https://evil.example"}
    try:
        body = assert_error(create(client, world, provider), 422, "VALIDATION_ERROR")
    finally:
        provider.reset()
    assert list(body["error"]["details"]) == ["issuer"] and "evil.example" in body["error"]["details"]["issuer"][0]


def test_an_unreachable_issuer_is_refused(client, world, provider):
    """422 naming issuer when discovery cannot be fetched (nothing listens on the port)."""
    body = assert_error(create(client, world, provider, issuer=closed_port_url()), 422, "VALIDATION_ERROR")
    assert list(body["error"]["details"]) == ["issuer"]


@pytest.mark.parametrize("scheme, refusal", [("http", "scheme 'http' is not allowed"),
                                             ("https", "resolves to a non-public address 127.0.0.1")])
def test_a_loopback_issuer_is_refused_when_private_upstream_urls_are_not_allowed(make_app, world, provider, scheme,
                                                                                 refusal):
    """422 naming issuer, before anything is fetched: as in production, upstream URLs must be https and
    resolve to public addresses (issue 10; the jwks_uri SSRF guard, idp.security.outbound)."""
    strict = make_app(ALLOW_PRIVATE_UPSTREAM_URLS=False)
    before = provider.hits["discovery"]
    issuer = provider.issuer.replace("http:", f"{scheme}:")
    response = strict.test_client().post(URL, json=oidc_body(provider, issuer=issuer),
                                         headers=world.headers["platform_admin"])
    body = assert_error(response, 422, "VALIDATION_ERROR")
    assert list(body["error"]["details"]) == ["issuer"] and refusal in body["error"]["details"]["issuer"][0]
    assert provider.hits["discovery"] == before


def test_a_kind_that_cannot_be_loaded_answers_a_422_naming_kind(client, world, provider, monkeypatch):
    """422 naming kind, not a 500, when a kind's module is not importable on this server."""
    monkeypatch.setitem(registry.KIND_MODULES, "oidc", "idp.federation.not_a_module")
    body = assert_error(create(client, world, provider), 422, "VALIDATION_ERROR")
    assert list(body["error"]["details"]) == ["kind"]


def test_github_and_microsoft_upstreams_take_their_kind_settings(client, world):
    """201 for a github upstream (stand-in URLs) and a microsoft one checked against an Entra-shaped discovery."""
    github, entra = GitHubStandIn().start(), OidcProvider("entra").start()
    try:
        made_github = client.post(URL, headers=world.headers["platform_admin"], json={
            "slug": "github", "kind": "github", "display_name": "GitHub", "base_url": github.base_url,
            "api_url": github.api_url, "client_id": github.client_id, "client_secret": SECRET})
        made_microsoft = client.post(URL, headers=world.headers["platform_admin"], json={
            "slug": "microsoft", "kind": "microsoft", "display_name": "Microsoft", "authority": entra.authority,
            "client_id": entra.client_id, "client_secret": SECRET})
    finally:
        github.stop()
        entra.stop()
    assert made_github.status_code == 201, made_github.get_json()
    assert made_github.get_json()["data"]["base_url"] == github.base_url
    assert made_microsoft.status_code == 201, made_microsoft.get_json()
    data = made_microsoft.get_json()["data"]
    assert data["tenant"] == "common" and data["authority"] == entra.authority
    assert data["redirect_uri"].endswith("/api/v1/auth/external/microsoft/callback")


@pytest.fixture(scope="module")
def saml_idp():
    standin = SamlIdp()
    standin.start()
    yield standin
    standin.stop()


def test_a_saml_upstream_is_read_from_its_metadata_and_answers_what_to_hand_the_idp_admin(app, client, world,
                                                                                           saml_idp):
    """201: the IdP's entity ID, SSO URL and signing certificate come from metadata_url; the response gives the
    SP entity ID (= its metadata URL), ACS and SLO URLs and the SP certificate; the SP key is made and never shown."""
    response = client.post(URL, headers=world.headers["platform_admin"], json={
        "slug": "acme-saml", "kind": "saml", "display_name": "Acme SAML", "metadata_url": saml_idp.metadata_url})
    assert response.status_code == 201, response.get_json()
    data = response.get_json()["data"]
    base = "http://localhost:5000/api/v1/auth/external/acme-saml"
    assert data["sp_entity_id"] == data["sp_metadata_url"] == f"{base}/metadata"
    assert data["acs_url"] == f"{base}/acs" and data["sp_slo_url"] == f"{base}/slo" and "redirect_uri" not in data
    assert data["slo_url"] == saml_idp.slo_url
    assert data["entity_id"] == saml_idp.entity_id and data["sso_url"] == saml_idp.sso_url
    assert len(data["certificates"]) == 1 and data["sp_certificate"].startswith("-----BEGIN CERTIFICATE-----")
    assert data["sp_private_key_set"] is True and data["allow_idp_initiated"] is False
    key = stored(app, data["id"]).secrets["sp_private_key"]
    assert "PRIVATE KEY" in key and key not in response.get_data(as_text=True)


def test_a_saml_patch_revalidates_and_keeps_the_sp_key_pair(app, client, world, saml_idp):
    """200 with allow_idp_initiated true; metadata is read again and the SP certificate and key stay the same."""
    created = client.post(URL, headers=world.headers["platform_admin"], json={
        "slug": "acme-saml", "kind": "saml", "display_name": "Acme SAML", "metadata_url": saml_idp.metadata_url})
    before, key = created.get_json()["data"], stored(app, created.get_json()["data"]["id"]).secrets["sp_private_key"]
    fetched = saml_idp.hits["metadata"]
    response = client.patch(f"{URL}/{before['id']}", json={"allow_idp_initiated": True},
                            headers=world.headers["platform_admin"])
    assert response.status_code == 200, response.get_json()
    after = response.get_json()["data"]
    assert after["allow_idp_initiated"] is True and after["sp_certificate"] == before["sp_certificate"]
    assert stored(app, before["id"]).secrets["sp_private_key"] == key and saml_idp.hits["metadata"] == fetched + 1


def test_saml_metadata_that_cannot_be_fetched_is_refused(client, world):
    """422 naming metadata_url when nothing answers at it."""
    response = client.post(URL, headers=world.headers["platform_admin"], json={
        "slug": "acme-saml", "kind": "saml", "display_name": "Acme SAML",
        "metadata_url": closed_port_url() + "/metadata"})
    body = assert_error(response, 422, "VALIDATION_ERROR")
    assert list(body["error"]["details"]) == ["metadata_url"]


# read and list ----------------------------------------------------------------------------------

@pytest.fixture
def acme_upstream(client, world, provider):
    response = create(client, world, provider, who="owner", organization_id=world.acme)
    assert response.status_code == 201, response.get_json()
    return response.get_json()["data"]


@pytest.mark.parametrize("who, status", [("platform_admin", 200), ("owner", 200), ("admin", 200),
                                         ("member", 404), ("other_admin", 404), ("outsider", 404)])
def test_get_answers_only_those_who_manage_the_upstream(client, world, acme_upstream, who, status):
    """200 for the organization's owners and admins and platform admins; 404 for everyone else."""
    response = client.get(f"{URL}/{acme_upstream['id']}", headers=world.headers[who])
    if status == 200:
        assert response.status_code == 200 and response.get_json()["data"]["id"] == acme_upstream["id"]
    else:
        assert_error(response, 404, "NOT_FOUND")


def test_a_platform_upstream_is_not_found_for_organization_admins(client, world, provider):
    """404: only platform admins manage platform-wide upstreams."""
    upstream = create(client, world, provider).get_json()["data"]
    assert_error(client.get(f"{URL}/{upstream['id']}", headers=world.headers["owner"]), 404, "NOT_FOUND")


def test_list_shows_only_what_the_caller_manages(client, world, provider, acme_upstream):
    """The platform admin sees every upstream, newest first; Acme's owner its own; members and other admins none."""
    platform = create(client, world, provider, slug="platform-sso").get_json()["data"]
    seen = {who: [item["slug"] for item in client.get(URL, headers=world.headers[who]).get_json()["data"]]
            for who in ("platform_admin", "owner", "member", "other_admin")}
    assert seen == {"platform_admin": [platform["slug"], "acme-sso"], "owner": ["acme-sso"], "member": [],
                    "other_admin": []}
    filtered = client.get(URL, query_string={"organization_id": world.acme}, headers=world.headers["platform_admin"])
    assert [item["slug"] for item in filtered.get_json()["data"]] == ["acme-sso"]
    assert filtered.get_json()["meta"] == {"pagination": {"next_cursor": None, "limit": 50}}


def add_upstreams(app, organization_id: str | None, slugs: list[str]) -> list[str]:
    """GitHub upstreams stored straight in the database, one commit each (each newer than the last)."""
    ids = []
    with app.app_context():
        for slug in slugs:
            upstream = Upstream(slug=slug, kind="github", display_name=slug, organization_id=organization_id)
            db.session.add(upstream)
            db.session.commit()
            ids.append(upstream.id)
    return ids


def test_list_pages_return_every_upstream_once_while_others_are_added(app, client, world):
    """`limit` per page and an opaque cursor; upstreams added mid-walk are newer than the cursor, so
    the walk returns exactly the upstreams that existed when it started, once each."""
    existing = add_upstreams(app, world.acme, [f"acme-{n}" for n in range(5)])
    seen, cursor, added = [], None, 0
    while True:
        query = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        body = client.get(URL, query_string=query, headers=world.headers["owner"]).get_json()
        seen += [item["id"] for item in body["data"]]
        add_upstreams(app, world.acme, [f"late-{added}"])
        added, cursor = added + 1, body["meta"]["pagination"]["next_cursor"]
        if cursor is None:
            break
    assert seen == existing[::-1] and added == 3


@pytest.mark.parametrize("query, field", [({"limit": 201}, "limit"), ({"limit": "many"}, "limit"),
                                          ({"cursor": "tampered"}, "cursor"), ({"colour": "red"}, "colour")])
def test_list_refuses_a_bad_page_request(client, world, query, field):
    """422 VALIDATION_ERROR naming the parameter: limit is 1 to 200, a cursor is only one we made."""
    body = assert_error(client.get(URL, query_string=query, headers=world.headers["platform_admin"]),
                        422, "VALIDATION_ERROR")
    assert field in body["error"]["details"]


def test_list_refuses_an_altered_cursor(app, client, world):
    """A real cursor with its position altered fails its signature: 422 naming cursor."""
    add_upstreams(app, None, ["one", "two"])
    body = client.get(URL, query_string={"limit": 1}, headers=world.headers["platform_admin"]).get_json()
    cursor = body["meta"]["pagination"]["next_cursor"]
    altered = ("f" if cursor[0] != "f" else "g") + cursor[1:]  # the first character: its every bit counts
    response = client.get(URL, query_string={"limit": 1, "cursor": altered}, headers=world.headers["platform_admin"])
    assert "cursor" in assert_error(response, 422, "VALIDATION_ERROR")["error"]["details"]


@pytest.mark.parametrize("method", ["GET", "POST", "PATCH", "DELETE"])
def test_anonymous_callers_get_a_401_envelope(client, method):
    """401 AUTHENTICATION envelope with a Bearer challenge, before anything else is looked at (RFC 6750 3)."""
    url = URL if method in ("GET", "POST") else f"{URL}/some-id"
    response = client.open(url, method=method, json={} if method in ("POST", "PATCH") else None)
    assert_error(response, 401, "UNAUTHORIZED")
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


# update -----------------------------------------------------------------------------------------

def test_patch_without_a_secret_keeps_the_stored_one_and_revalidates(app, client, world, provider, acme_upstream):
    """200; the changed client_id is checked with discovery again and the stored secret stays."""
    before = provider.hits["discovery"]
    response = client.patch(f"{URL}/{acme_upstream['id']}", json={"client_id": "new-client"},
                            headers=world.headers["admin"])
    assert response.status_code == 200 and response.get_json()["data"]["client_id"] == "new-client"
    assert provider.hits["discovery"] == before + 1
    assert stored(app, acme_upstream["id"]).secrets == {"client_secret": SECRET}
    [event] = audit_rows(app, "upstream.updated")
    assert event.details["fields"] == ["client_id"] and event.actor_user_id == world.ids["admin"]


def test_patch_with_a_new_secret_stores_it_and_audits_its_name_only(app, client, world, acme_upstream):
    """200 with client_secret_set; the audit row names client_secret but holds no value."""
    response = client.patch(f"{URL}/{acme_upstream['id']}", json={"client_secret": "rotated-secret-1"},
                            headers=world.headers["owner"])
    assert response.status_code == 200 and "rotated-secret-1" not in response.get_data(as_text=True)
    assert stored(app, acme_upstream["id"]).secrets == {"client_secret": "rotated-secret-1"}
    [event] = audit_rows(app, "upstream.updated")
    assert event.details["fields"] == ["client_secret"] and "rotated-secret-1" not in json.dumps(event.details)


def test_an_upstream_that_is_down_can_still_be_disabled(app, client, world, provider, acme_upstream):
    """200: common fields alone are not validated with the upstream, so an outage never blocks disabling it."""
    provider.metadata = {"issuer": "https://changed.example"}
    try:
        response = client.patch(f"{URL}/{acme_upstream['id']}", json={"enabled": False, "display_name": "Old SSO"},
                                headers=world.headers["owner"])
    finally:
        provider.reset()
    assert response.status_code == 200 and response.get_json()["data"]["enabled"] is False
    assert stored(app, acme_upstream["id"]).enabled is False


def test_patch_revalidates_the_merged_settings(client, world, provider, acme_upstream):
    """422 naming issuer: a new issuer whose discovery names another one is refused, nothing changes."""
    body = assert_error(client.patch(f"{URL}/{acme_upstream['id']}", json={"issuer": closed_port_url()},
                                     headers=world.headers["owner"]), 422, "VALIDATION_ERROR")
    assert list(body["error"]["details"]) == ["issuer"]
    again = client.get(f"{URL}/{acme_upstream['id']}", headers=world.headers["owner"]).get_json()["data"]
    assert again["issuer"] == provider.issuer


@pytest.mark.parametrize("field, value", [("kind", "google"), ("organization_id", None)])
def test_kind_and_organization_never_change(client, world, acme_upstream, field, value):
    """422 naming the field; the same value is accepted."""
    url = f"{URL}/{acme_upstream['id']}"
    body = assert_error(client.patch(url, json={field: value}, headers=world.headers["platform_admin"]),
                        422, "VALIDATION_ERROR")
    assert list(body["error"]["details"]) == [field]
    same = client.patch(url, json={field: acme_upstream[field]}, headers=world.headers["platform_admin"])
    assert same.status_code == 200


@pytest.mark.parametrize("who", ["member", "other_admin"])
def test_patch_by_someone_who_does_not_manage_it_is_a_404(client, world, acme_upstream, who):
    """404: a member or another organization's admin is not told the upstream exists."""
    response = client.patch(f"{URL}/{acme_upstream['id']}", json={"enabled": False}, headers=world.headers[who])
    assert_error(response, 404, "NOT_FOUND")


def test_patch_to_a_taken_slug_is_a_conflict(client, world, provider, acme_upstream):
    """409 naming slug."""
    create(client, world, provider, slug="taken", who="owner", organization_id=world.acme)
    body = assert_error(client.patch(f"{URL}/{acme_upstream['id']}", json={"slug": "taken"},
                                     headers=world.headers["owner"]), 409, "CONFLICT")
    assert list(body["error"]["details"]) == ["slug"]


# delete -----------------------------------------------------------------------------------------

def test_delete_removes_the_upstream_and_its_identities(app, client, world, acme_upstream):
    """200; the upstream and the identities federated through it are gone; the deletion is audited."""
    with app.app_context():
        db.session.add(FederatedIdentity(upstream_id=acme_upstream["id"], user_id=world.ids["member"], subject="s-1"))
        db.session.commit()
    response = client.delete(f"{URL}/{acme_upstream['id']}", headers=world.headers["owner"])
    assert response.status_code == 200 and response.get_json()["success"] is True
    assert stored(app, acme_upstream["id"]) is None
    with app.app_context():
        assert db.session.scalars(select(FederatedIdentity)).all() == []
    [event] = audit_rows(app, "upstream.deleted")
    assert event.target_id == acme_upstream["id"] and event.details["slug"] == "acme-sso"
    assert_error(client.get(f"{URL}/{acme_upstream['id']}", headers=world.headers["owner"]), 404, "NOT_FOUND")


@pytest.mark.parametrize("who", ["member", "other_admin", "outsider"])
def test_delete_by_someone_who_does_not_manage_it_is_a_404(app, client, world, acme_upstream, who):
    """404, and the upstream stays."""
    assert_error(client.delete(f"{URL}/{acme_upstream['id']}", headers=world.headers[who]), 404, "NOT_FOUND")
    assert stored(app, acme_upstream["id"]) is not None


# secrets ----------------------------------------------------------------------------------------

def test_no_response_or_audit_row_ever_contains_the_secret(app, client, world, provider):
    """Secrets are write-only: create, get, list, patch and delete answers and the audit log never hold one."""
    headers = world.headers["platform_admin"]
    created = create(client, world, provider)
    upstream_id = created.get_json()["data"]["id"]
    answers = [created, client.get(f"{URL}/{upstream_id}", headers=headers), client.get(URL, headers=headers),
               client.patch(f"{URL}/{upstream_id}", json={"display_name": "Renamed"}, headers=headers),
               client.patch(f"{URL}/{upstream_id}", json={"client_secret": SECRET + "-2"}, headers=headers),
               client.delete(f"{URL}/{upstream_id}", headers=headers)]
    assert [answer.status_code for answer in answers] == [201, 200, 200, 200, 200, 200]
    for answer in answers:
        assert SECRET not in answer.get_data(as_text=True)
    with app.app_context():
        events = db.session.scalars(select(AuditEvent).where(AuditEvent.action.like("upstream.%"))).all()
    assert [event.action for event in events].count("upstream.updated") == 2
    assert all(SECRET not in json.dumps(event.details) for event in events)
