"""Managing upstream identity providers: who may change which, what is stored, and the audit trail.

Rules (issue 10, "Management API"; issue 11 for tokens):
- platform admins manage platform-wide upstreams (organization_id null) and every organization's;
  owners and admins of an organization manage that organization's own. A service account acts as an
  admin of its own organization, or as a platform admin when it has none. Anyone else is told an
  upstream does not exist (404), and a list shows only what the caller may manage;
- `kind` and `organization_id` never change after creation;
- an email domain belongs to at most one upstream (409 otherwise), and only a platform admin claims
  domains, enforces SSO for them or trusts an OpenID provider's `email_verified` (403 otherwise): a
  claimed domain routes its addresses to the upstream (home-realm discovery), makes an organization's
  upstream trusted for their e-mail, and can refuse their password sign-in, and nothing proves yet
  that an organization owns a domain (any signed-in user can create an organization);
- secrets are stored encrypted (services.upstreams.set_secrets) and a change without a secret keeps
  the stored one; audit events name the fields that changed, never their values.

The kind-specific settings are checked by a `validate(kind, settings, secrets)` the caller passes in
(the federation layer's, which asks the kind and the upstream); it answers the settings and secrets as
stored or raises ValidationError naming each bad field. Services never import the federation layer.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from sqlalchemy import Select, select
from sqlalchemy.exc import IntegrityError

from idp.errors import Conflict, Forbidden, NotFound, ValidationError
from idp.extensions import db
from idp.models import Organization, Role, Upstream
from idp.services import audit, upstreams
from idp.services.organization_access import managed_organizations_query

# The settings each kind takes through the API (flat request fields), and its write-only secrets.
KIND_SETTINGS = {
    "oidc": ("issuer", "client_id", "trust_email_verified"),
    "google": ("issuer", "client_id"),
    "microsoft": ("tenant", "authority", "client_id", "allowed_tenants"),
    "github": ("base_url", "api_url", "client_id"),
    "saml": ("metadata_url", "metadata_xml", "entity_id", "sso_url", "slo_url", "certificates", "allow_idp_initiated",
             "name_id_attribute", "email_attribute", "name_attribute", "groups_attribute"),
}
# Public values a kind derives when it validates, shown in responses (never taken from a request).
KIND_DERIVED = {"saml": ("sp_certificate", "retiring_certificates", "metadata_fetched_at")}
KIND_SECRETS = {"oidc": ("client_secret",), "google": ("client_secret",), "microsoft": ("client_secret",),
                "github": ("client_secret",), "saml": ("sp_private_key",)}
KINDS = tuple(KIND_SETTINGS)
COMMON_FIELDS = ("display_name", "enabled", "email_domains", "scopes", "enforce_for_domains", "role_mapping")
DEFAULTS = {"enabled": True, "email_domains": [], "scopes": [], "enforce_for_domains": False, "role_mapping": None}
IMMUTABLE_FIELDS = ("kind", "organization_id")
# Slugs that name paths of their own under /api/v1/auth/external/ (the account-linking pages).
RESERVED_SLUGS = ("link",)
# Trust decisions only a platform admin makes: which addresses an upstream answers for and vouches for.
PLATFORM_ADMIN_FIELDS = ("email_domains", "enforce_for_domains", "trust_email_verified")

Validator = Callable[[str, dict, dict], tuple[dict, dict]]


class Actor(Protocol):
    """Who manages upstreams, as the API authenticated them (its Principal): a user, or a service
    account (a client_credentials token) with the rights of an admin of its own organization."""

    @property
    def is_platform_admin(self) -> bool: ...

    @property
    def is_service_account(self) -> bool: ...

    @property
    def organization_id(self) -> str | None: ...  # a service account's own organization

    @property
    def actor_user_id(self) -> str | None: ...

    @property
    def actor_client_id(self) -> str | None: ...

    def organization_role(self, organization_id: str) -> Role | None: ...


def _manages(actor: Actor, organization_id: str | None) -> bool:
    if actor.is_platform_admin:
        return True
    if organization_id is None:
        return False
    role = actor.organization_role(organization_id)
    return role is not None and role.manages


def _managed_organizations(actor: Actor):
    """The organizations whose upstreams a non-platform-admin manages (a subquery for a user)."""
    if actor.is_service_account:
        return [actor.organization_id]
    return managed_organizations_query(actor.actor_user_id)


UPSTREAM_ORDER = (Upstream.created_at, Upstream.id)


def upstreams_query(actor: Actor, organization_id: str | None = None) -> Select:
    """The upstreams `actor` may manage (platform admins: all), optionally one organization's, unordered
    (the API pages it on UPSTREAM_ORDER, newest first)."""
    query = select(Upstream)
    if not actor.is_platform_admin:
        query = query.where(Upstream.organization_id.in_(_managed_organizations(actor)))
    if organization_id is not None:
        query = query.where(Upstream.organization_id == organization_id)
    return query


def get_upstream(actor: Actor, upstream_id: str, *, for_update: bool = False) -> Upstream:
    """The upstream, when `actor` may manage it; NotFound otherwise (its existence is not revealed).
    `for_update` locks the row, so of two writers holding one ETag the second sees the first's change
    (RFC 9110 13.1.1)."""
    upstream = (db.session.get(Upstream, upstream_id, with_for_update=for_update, populate_existing=for_update)
                if len(upstream_id) <= 36 else None)
    if upstream is None or not _manages(actor, upstream.organization_id):
        raise NotFound("Upstream not found.")
    return upstream


def _require_organization(actor: Actor, organization_id: str | None) -> None:
    """Who may create an upstream here: 422 without an organization for a non-admin, 404 for an
    organization the actor is not in (as organizations.get_access), 403 for a member who is not a manager."""
    if organization_id is None:
        if not actor.is_platform_admin:
            raise ValidationError("Give organization_id: only platform admins manage platform-wide upstreams.",
                                  details={"organization_id": ["Required: only platform admins manage "
                                                               "platform-wide upstreams."]})
        return
    if db.session.get(Organization, organization_id) is None:
        raise NotFound("Organization not found.")
    if actor.is_platform_admin:
        return
    role = actor.organization_role(organization_id)
    if role is None:
        raise NotFound("Organization not found.")
    if not role.manages:
        _deny(actor, "upstream.create", organization_id, "Only owners and admins manage upstreams.")


def _deny(actor: Actor, action: str, organization_id: str | None, message: str, field: str | None = None,
          target_id: str | None = None) -> None:
    audit.record_failure(action, actor_user_id=actor.actor_user_id, target_type="upstream", target_id=target_id,
                         organization_id=organization_id, details={"reason": message, **_acting_client(actor)})
    raise Forbidden(message, details={field: [message]} if field else None)


def split_fields(kind: str, data: dict) -> tuple[dict, dict, dict]:
    """(common fields, kind settings, secrets) of a flat request; a field of another kind is a 422."""
    settings_names, secret_names = KIND_SETTINGS[kind], KIND_SECRETS[kind]
    foreign = sorted(name for name in data if name not in (*COMMON_FIELDS, *settings_names, *secret_names,
                                                            "slug", *IMMUTABLE_FIELDS))
    if foreign:
        message = f"Not a setting of a {kind} upstream."
        raise ValidationError(f"Not settings of a {kind} upstream: {', '.join(foreign)}.",
                              details={name: [message] for name in foreign})
    common = {name: data[name] for name in COMMON_FIELDS if name in data}
    settings = {name: data[name] for name in settings_names if name in data}
    secrets = {name: data[name] for name in secret_names if name in data}
    return common, settings, secrets


def _refuse_taken_slug(slug: str, exclude_id: str | None = None) -> None:
    if slug in RESERVED_SLUGS:
        message = f"The slug {slug!r} is reserved: /api/v1/auth/external/{slug} is a page of this server."
        raise ValidationError(message, details={"slug": [message]})
    query = select(Upstream.id).where(Upstream.slug == slug)
    if exclude_id:
        query = query.where(Upstream.id != exclude_id)
    if db.session.scalars(query).first() is not None:
        raise Conflict("This slug is already in use.", details={"slug": ["This slug is already in use."]})


def _refuse_claimed_domains(domains: list[str], exclude_id: str | None = None) -> None:
    """A domain sends its addresses to exactly one upstream, so a second claim is a 409."""
    if not domains:
        return
    query = select(Upstream.email_domains)
    if exclude_id:
        query = query.where(Upstream.id != exclude_id)
    claimed = {domain for owned in db.session.scalars(query) for domain in (owned or [])}
    taken = sorted(set(domains) & claimed)
    if taken:
        raise Conflict("An email domain already belongs to another upstream.",
                       details={"email_domains": [f"{domain} already belongs to another upstream." for domain in taken]})


def _check_common(actor: Actor | None, organization_id: str | None, previous: dict, fields: dict, action: str,
                  target_id: str | None = None) -> None:
    """Trust decisions only by platform admins (actor None: the environment bootstrap); roles map only
    into an organization; a domain belongs to one upstream."""
    for name in PLATFORM_ADMIN_FIELDS:
        claims = name in fields and fields[name] and fields[name] != previous.get(name)
        if claims and actor is not None and not actor.is_platform_admin:
            _deny(actor, action, organization_id, "Only platform admins claim email domains, enforce sign-in "
                  "through an upstream for them or trust its verified addresses.", field=name, target_id=target_id)
    if fields.get("role_mapping") and organization_id is None:
        raise ValidationError("A platform-wide upstream has no organization to map roles into.",
                              details={"role_mapping": ["Only an organization's upstream maps roles."]})
    if "email_domains" in fields:
        _refuse_claimed_domains(fields["email_domains"], exclude_id=target_id)


def _present(values: dict) -> dict:
    """A null in a request clears the setting (the kind's default applies again)."""
    return {name: value for name, value in values.items() if value is not None}


def _store_settings(upstream: Upstream, validate: Validator, settings: dict, secrets: dict) -> None:
    stored_settings, stored_secrets = validate(upstream.kind, _present(settings), _present(secrets))
    upstream.settings = stored_settings
    upstreams.set_secrets(upstream, stored_secrets)


def _insert(upstream: Upstream) -> None:
    """Add the row; a slug taken meanwhile by a concurrent request is the same 409 as one taken before."""
    try:
        with db.session.begin_nested():
            db.session.add(upstream)
            db.session.flush()
    except IntegrityError:
        raise Conflict("This slug is already in use.", details={"slug": ["This slug is already in use."]}) from None


def _acting_client(actor: Actor | None) -> dict:
    """Audit details naming the service account that acts (its rows have no actor user)."""
    return {"actor_client_id": actor.actor_client_id} if actor is not None and actor.actor_client_id else {}


def _audit(action: str, actor: Actor | None, upstream: Upstream, **details) -> None:
    audit.record(action, actor_user_id=actor.actor_user_id if actor else None, target_type="upstream",
                 target_id=upstream.id, organization_id=upstream.organization_id,
                 details={"slug": upstream.slug, "kind": upstream.kind, **details, **_acting_client(actor)})


def create_upstream(actor: Actor | None, data: dict, validate: Validator) -> Upstream:
    """Create an upstream from a flat request (slug, kind, organization_id, common and kind fields).

    `actor` None is the environment bootstrap acting for the platform."""
    kind, organization_id = data["kind"], data.get("organization_id")
    if actor is not None:
        _require_organization(actor, organization_id)
    common, settings, secrets = split_fields(kind, data)
    _refuse_taken_slug(data["slug"])
    _check_common(actor, organization_id, DEFAULTS, {**common, **settings}, "upstream.create")
    upstream = Upstream(slug=data["slug"], kind=kind, organization_id=organization_id, **{**DEFAULTS, **common})
    _store_settings(upstream, validate, settings, secrets)
    _insert(upstream)
    _audit("upstream.created", actor, upstream,
           fields=sorted({*common, *_present(settings), *_present(secrets)}), **_source(actor))
    return upstream


def _source(actor: Actor | None) -> dict:
    return {} if actor is not None else {"source": "environment"}


def _refuse_immutable(upstream: Upstream, data: dict) -> None:
    for name in IMMUTABLE_FIELDS:
        if name in data and data[name] != getattr(upstream, name):
            message = f"The {name} of an upstream cannot change; create a new upstream instead."
            raise ValidationError(message, details={name: [message]})


def _merged(upstream: Upstream, settings: dict, secrets: dict) -> tuple[dict, dict]:
    """The stored settings and secrets with the changes over them. Every kind accepts its own output
    (SAML needs its derived sp_certificate and retiring_certificates back, for the key pair and rollover)."""
    return {**(upstream.settings or {}), **settings}, {**upstreams.secrets_of(upstream), **secrets}


def update_upstream(actor: Actor | None, upstream: Upstream, data: dict, validate: Validator) -> Upstream:
    """Change an upstream. Changed kind settings or secrets are validated again, merged over the stored
    ones (a change without a secret keeps the stored one); common fields alone are not, so an upstream
    that is down can still be disabled."""
    _refuse_immutable(upstream, data)
    common, settings, secrets = split_fields(upstream.kind, data)
    previous = {name: getattr(upstream, name) for name in COMMON_FIELDS}
    _check_common(actor, upstream.organization_id, {**(upstream.settings or {}), **previous}, {**common, **settings},
                  "upstream.update", target_id=upstream.id)
    changed = [name for name, value in common.items() if previous[name] != value]
    if data.get("slug", upstream.slug) != upstream.slug:
        _refuse_taken_slug(data["slug"], exclude_id=upstream.id)
        upstream.slug, changed = data["slug"], [*changed, "slug"]
    for name in changed:
        if name != "slug":
            setattr(upstream, name, common[name])
    if settings or secrets:
        old_settings, old_secrets = dict(upstream.settings or {}), upstreams.secrets_of(upstream)
        _store_settings(upstream, validate, *_merged(upstream, settings, secrets))
        new_secrets = upstreams.secrets_of(upstream)
        changed += [name for name in {*old_settings, *upstream.settings}
                    if old_settings.get(name) != upstream.settings.get(name) and name in KIND_SETTINGS[upstream.kind]]
        changed += [name for name in {*old_secrets, *new_secrets} if old_secrets.get(name) != new_secrets.get(name)]
    db.session.flush()
    if changed:
        _audit("upstream.updated", actor, upstream, fields=sorted(set(changed)), **_source(actor))
    return upstream


def delete_upstream(actor: Actor, upstream: Upstream) -> None:
    """Delete the upstream; its federated identities, pending links and started sign-ins go with it
    (ON DELETE CASCADE), so nobody signs in through it again, mid-flow included."""
    _audit("upstream.deleted", actor, upstream, display_name=upstream.display_name)
    db.session.delete(upstream)
    db.session.flush()


def find_by_slug(slug: str) -> Upstream | None:
    """The upstream with this slug, enabled or not."""
    return db.session.scalars(select(Upstream).where(Upstream.slug == slug)).first()
