"""services.upstream_admin: permission rules, merging on update, trust decisions, audit, with the real
validator (idp.federation.validation) against a stand-in OpenID provider."""
from __future__ import annotations

import pytest
from sqlalchemy import select

from idp.api.principal import Principal
from idp.errors import Conflict, Forbidden, NotFound, ValidationError
from idp.extensions import db
from idp.federation.connector import UpstreamSettingsInvalid
from idp.federation.http import UpstreamHttp
from idp.federation.registry import KIND_MODULES, kind_of
from idp.federation.validation import validate_settings
from idp.models import AuditEvent, Membership, Organization, PendingLink, Upstream, UpstreamLogin, User
from idp.models.base import utcnow
from idp.services import upstream_admin, upstreams
from tests.federation.standins.oidc_provider import running


@pytest.fixture(scope="module")
def provider():
    yield from running("generic")


@pytest.fixture
def people(ctx):
    """An organization with an owner and a member, and a platform admin, in the app context; each as the
    API's principal for an API session (what upstream_admin takes as its actor)."""
    organization = Organization(name="Acme", slug="acme")
    users = {name: User(email=f"{name}@example.com", is_admin=name == "root") for name in ("root", "owner", "member")}
    db.session.add_all([organization, *users.values()])
    db.session.flush()
    db.session.add_all([Membership(organization_id=organization.id, user_id=users["owner"].id, role="owner"),
                        Membership(organization_id=organization.id, user_id=users["member"].id, role="member")])
    db.session.flush()
    return organization, {name: Principal.of_session(user) for name, user in users.items()}


def oidc(provider, slug="acme-sso", **fields) -> dict:
    return {"slug": slug, "kind": "oidc", "display_name": "Acme SSO", "issuer": provider.issuer,
            "client_id": provider.client_id, "client_secret": "s3cret", **fields}


class Spy:
    """The real validator, remembering what it was asked."""

    def __init__(self):
        self.calls = []

    def __call__(self, kind, settings, secrets):
        self.calls.append((kind, dict(settings), dict(secrets)))
        return validate_settings(kind, settings, secrets)


def test_update_validates_the_stored_settings_merged_with_the_change(people, provider):
    """The kind gets the stored settings with the new client_id over them, and the stored secret."""
    organization, users = people
    upstream = upstream_admin.create_upstream(users["owner"], oidc(provider, organization_id=organization.id),
                                              validate_settings)
    spy = Spy()
    upstream_admin.update_upstream(users["owner"], upstream, {"client_id": "other-client"}, spy)
    assert spy.calls == [("oidc", {"issuer": provider.issuer, "client_id": "other-client"}, {"client_secret": "s3cret"})]
    assert upstream.settings["client_id"] == "other-client" and upstreams.secrets_of(upstream) == {"client_secret": "s3cret"}


def test_a_null_clears_a_setting(people, provider):
    """PATCH trust_email_verified: null removes it from the stored settings (the kind's default again)."""
    _, users = people
    upstream = upstream_admin.create_upstream(users["root"], oidc(provider, trust_email_verified=True), validate_settings)
    assert upstream.settings["trust_email_verified"] is True
    upstream_admin.update_upstream(users["root"], upstream, {"trust_email_verified": None}, validate_settings)
    assert "trust_email_verified" not in upstream.settings


def test_common_fields_alone_are_not_sent_to_the_upstream(people, provider):
    """Renaming or disabling asks no provider anything: the validator is not called."""
    organization, users = people
    upstream = upstream_admin.create_upstream(users["owner"], oidc(provider, organization_id=organization.id),
                                              validate_settings)
    spy = Spy()
    upstream_admin.update_upstream(users["owner"], upstream, {"enabled": False, "display_name": "Old"}, spy)
    assert spy.calls == [] and upstream.enabled is False


def test_an_organization_admin_may_release_but_not_claim_domains(people, provider):
    """Domains set by a platform admin can be resent unchanged or emptied by the owner, never changed to others."""
    organization, users = people
    upstream = upstream_admin.create_upstream(users["root"], oidc(provider, organization_id=organization.id,
                                                                  email_domains=["acme.example"]), validate_settings)
    upstream_admin.update_upstream(users["owner"], upstream, {"email_domains": ["acme.example"], "display_name": "A"},
                                   validate_settings)
    with pytest.raises(Forbidden):
        upstream_admin.update_upstream(users["owner"], upstream, {"email_domains": ["gmail.com"]}, validate_settings)
    upstream_admin.update_upstream(users["owner"], upstream, {"email_domains": []}, validate_settings)
    assert upstream.email_domains == []


def test_the_environment_bootstrap_acts_as_the_platform(ctx, provider):
    """actor None creates a platform upstream and may claim domains; the audit row has no actor."""
    upstream = upstream_admin.create_upstream(None, oidc(provider, email_domains=["corp.example"]), validate_settings)
    assert upstream.organization_id is None and upstream.email_domains == ["corp.example"]
    event = db.session.scalars(select(AuditEvent).where(AuditEvent.action == "upstream.created")).one()
    assert event.actor_user_id is None and event.details["source"] == "environment"


def test_audit_details_name_fields_but_hold_no_values(people, provider):
    """upstream.created lists the fields given; no setting or secret value is in the row."""
    _, users = people
    upstream_admin.create_upstream(users["root"], oidc(provider), validate_settings)
    event = db.session.scalars(select(AuditEvent).where(AuditEvent.action == "upstream.created")).one()
    assert event.details == {"slug": "acme-sso", "kind": "oidc",
                             "fields": ["client_id", "client_secret", "display_name", "issuer"]}


def test_a_member_and_a_stranger_are_told_the_upstream_does_not_exist(people, provider):
    """get_upstream raises NotFound for a member of its organization and for an unknown or overlong id."""
    organization, users = people
    upstream = upstream_admin.create_upstream(users["owner"], oidc(provider, organization_id=organization.id),
                                              validate_settings)
    for upstream_id in (upstream.id, "x" * 37):
        with pytest.raises(NotFound):
            upstream_admin.get_upstream(users["member"], upstream_id)
    assert upstream_admin.get_upstream(users["root"], upstream.id) is upstream


def list_upstreams(actor, organization_id=None) -> list[Upstream]:
    """What the API lists for `actor` (upstreams_query), by slug here."""
    query = upstream_admin.upstreams_query(actor, organization_id).order_by(Upstream.slug)
    return list(db.session.scalars(query))


def test_list_is_by_slug_and_filters_by_organization(people, provider):
    """A platform admin lists every upstream; organization_id narrows it to one organization; an owner
    sees their organization's, a plain member none."""
    organization, users = people
    upstream_admin.create_upstream(users["root"], oidc(provider, slug="zeta"), validate_settings)
    upstream_admin.create_upstream(users["owner"], oidc(provider, slug="alpha", organization_id=organization.id),
                                   validate_settings)
    assert [u.slug for u in list_upstreams(users["root"])] == ["alpha", "zeta"]
    assert [u.slug for u in list_upstreams(users["root"], organization.id)] == ["alpha"]
    assert [u.slug for u in list_upstreams(users["owner"])] == ["alpha"]
    assert list_upstreams(users["member"]) == []


def test_delete_takes_started_sign_ins_and_pending_links_with_it(people, provider):
    """A sign-in started through the upstream, or a link waiting for it, cannot finish once it is gone."""
    _, users = people
    upstream = upstream_admin.create_upstream(users["root"], oidc(provider), validate_settings)
    db.session.add_all([
        UpstreamLogin(state_hash="a" * 64, browser_hash="b" * 64, upstream_id=upstream.id, saved_encrypted="x",
                      expires_at=utcnow()),
        PendingLink(user_id=users["member"].user.id, upstream_id=upstream.id, subject="s", identity={},
                    browser_hash="c" * 64, expires_at=utcnow())])
    db.session.flush()
    upstream_admin.delete_upstream(users["root"], upstream)
    db.session.expire_all()
    assert db.session.scalars(select(UpstreamLogin)).all() == [] and db.session.scalars(select(PendingLink)).all() == []
    assert db.session.scalars(select(Upstream)).all() == []


def test_a_field_of_another_kind_fails_before_the_upstream_is_asked(people, provider):
    """ValidationError naming base_url (a github setting) with no discovery request."""
    _, users = people
    before = provider.hits["discovery"]
    with pytest.raises(ValidationError) as refused:
        upstream_admin.create_upstream(users["root"], oidc(provider, base_url="https://github.com"), validate_settings)
    assert list(refused.value.details) == ["base_url"] and provider.hits["discovery"] == before


def test_a_slug_taken_by_a_concurrent_insert_is_the_same_conflict(people, provider):
    """The unique constraint caught at flush answers Conflict naming slug, and the session stays usable."""
    _, users = people
    db.session.add(Upstream(slug="acme-sso", kind="oidc", display_name="Raced", settings={}))
    db.session.flush()
    with pytest.raises(Conflict) as conflict:
        upstream_admin._insert(Upstream(slug="acme-sso", kind="oidc", display_name="Second", settings={}))
    assert list(conflict.value.details) == ["slug"]
    assert [u.display_name for u in db.session.scalars(select(Upstream))] == ["Raced"]


@pytest.mark.parametrize("kind", sorted(KIND_MODULES))
def test_the_api_fields_of_each_kind_are_the_kinds_own(kind):
    """Every request field upstream_admin routes to a kind is one it accepts, and its secrets are the kind's."""
    upstream_kind = kind_of(kind)
    assert tuple(upstream_kind.SECRET_FIELDS) == upstream_admin.KIND_SECRETS[kind]
    given = dict.fromkeys(upstream_admin.KIND_SETTINGS[kind], "x")  # no URL: refused before any request
    with pytest.raises(UpstreamSettingsInvalid) as refused:
        upstream_kind.validate(given, {}, UpstreamHttp(allow_private=True, timeout=1))
    assert not [name for name, why in refused.value.errors.items() if "not a setting" in str(why)]
