"""Platform upstreams from the environment (the seed's "O-auth Setup"): google, microsoft, github, saml.

GOOGLE_CLIENT_ID / GOOGLE_CLIENT_SECRET [/ GOOGLE_ISSUER], MICROSOFT_CLIENT_ID / MICROSOFT_CLIENT_SECRET
[/ MICROSOFT_TENANT / MICROSOFT_AUTHORITY], GITHUB_CLIENT_ID / GITHUB_CLIENT_SECRET [/ GITHUB_URL /
GITHUB_API_URL] and SAML_IDP_METADATA_URL create the platform upstream of that slug, or update the
settings they name on an existing one (its display name, enabled flag and domains stay as an admin
set them). An upstream whose stored settings already equal the environment is left alone, so a
restart asks no upstream anything. Saving validates like the API does; a refusal is logged naming
the variables and never stops the app. Runs from `flask upstreams sync-env` and at start-up
(`sync_on_start`), never in tests and never before the upstreams table exists.
"""
from __future__ import annotations

from dataclasses import dataclass

from flask import Flask, current_app
from sqlalchemy import inspect
from sqlalchemy.exc import SQLAlchemyError

from idp.errors import AppError, Conflict
from idp.extensions import db
from idp.federation.validation import validate_settings
from idp.services import upstream_admin, upstreams


@dataclass(frozen=True)
class EnvUpstream:
    """One platform upstream as the environment describes it; `variables` maps each field to its variable."""

    slug: str
    kind: str
    display_name: str
    variables: dict
    triggers: tuple[str, ...]


ENV_UPSTREAMS = (
    EnvUpstream("google", "google", "Google",
                {"client_id": "GOOGLE_CLIENT_ID", "client_secret": "GOOGLE_CLIENT_SECRET", "issuer": "GOOGLE_ISSUER"},
                ("GOOGLE_CLIENT_ID", "GOOGLE_CLIENT_SECRET")),
    EnvUpstream("microsoft", "microsoft", "Microsoft",
                {"client_id": "MICROSOFT_CLIENT_ID", "client_secret": "MICROSOFT_CLIENT_SECRET",
                 "tenant": "MICROSOFT_TENANT", "authority": "MICROSOFT_AUTHORITY"},
                ("MICROSOFT_CLIENT_ID", "MICROSOFT_CLIENT_SECRET")),
    EnvUpstream("github", "github", "GitHub",
                {"client_id": "GITHUB_CLIENT_ID", "client_secret": "GITHUB_CLIENT_SECRET", "base_url": "GITHUB_URL",
                 "api_url": "GITHUB_API_URL"},
                ("GITHUB_CLIENT_ID", "GITHUB_CLIENT_SECRET")),
    EnvUpstream("saml", "saml", "SAML", {"metadata_url": "SAML_IDP_METADATA_URL"}, ("SAML_IDP_METADATA_URL",)),
)
VARIABLES = tuple(sorted({name for wanted in ENV_UPSTREAMS for name in wanted.variables.values()}))


def configured(config) -> list[EnvUpstream]:
    """The platform upstreams the configuration asks for (any of their id, secret or metadata set)."""
    return [wanted for wanted in ENV_UPSTREAMS if any(config.get(name) for name in wanted.triggers)]


def _fields(wanted: EnvUpstream, config) -> dict:
    """The flat request fields the environment gives (unset optional variables leave the kind's default)."""
    return {field: config[name] for field, name in wanted.variables.items() if config.get(name)}


def _in_sync(upstream, fields: dict) -> bool:
    settings, secrets = upstream.settings or {}, upstreams.secrets_of(upstream)
    return all((secrets if name in upstream_admin.KIND_SECRETS[upstream.kind] else settings).get(name) == value
               for name, value in fields.items())


def sync_upstream(wanted: EnvUpstream, config) -> str:
    """Create or update one platform upstream; its outcome ("created", "updated", "unchanged").
    AppError (ValidationError, Conflict) when it cannot be saved."""
    fields = _fields(wanted, config)
    existing = upstream_admin.find_by_slug(wanted.slug)
    if existing is None:
        upstream_admin.create_upstream(None, {"slug": wanted.slug, "kind": wanted.kind,
                                              "display_name": wanted.display_name, **fields}, validate_settings)
        return "created"
    if existing.organization_id is not None or existing.kind != wanted.kind:
        raise Conflict(f"The slug {wanted.slug!r} belongs to an upstream that is not the platform's "
                       f"{wanted.kind} upstream.", details={"slug": ["in use"]})
    if _in_sync(existing, fields):
        return "unchanged"
    upstream_admin.update_upstream(None, existing, fields, validate_settings)
    return "updated"


def _describe(wanted: EnvUpstream, error: AppError) -> str:
    """The error with each field named by the variable that sets it."""
    problems = [f"{wanted.variables.get(field, field)} {'; '.join(map(str, why if isinstance(why, list) else [why]))}"
                for field, why in (error.details or {}).items()]
    return " ".join([error.message, *problems])


def sync_env_upstreams() -> list[str]:
    """Bring every platform upstream the environment configures in line with it, each in its own
    transaction; one line per upstream for the operator. A refusal is logged and the rest go on."""
    lines = []
    for wanted in configured(current_app.config):
        try:
            outcome = sync_upstream(wanted, current_app.config)
            db.session.commit()
        except AppError as error:
            db.session.rollback()
            outcome = f"not saved: {_describe(wanted, error)}"
            current_app.logger.error("upstream %r from %s %s", wanted.slug, "/".join(wanted.triggers), outcome)
        lines.append(f"upstream {wanted.slug}: {outcome}")
    return lines


def sync_on_start(app: Flask) -> None:
    """sync_env_upstreams at start-up when the environment configures an upstream and the database is
    migrated; a database that cannot be read is logged, never raised, so the app still starts."""
    if not configured(app.config):
        return
    with app.app_context():
        try:
            if not inspect(db.engine).has_table("upstreams"):
                app.logger.warning("upstreams from the environment not synced: the database is not migrated yet "
                            "(run `flask db upgrade`, then `flask upstreams sync-env`)")
                return
            for line in sync_env_upstreams():
                app.logger.info(line)
        except SQLAlchemyError:
            db.session.rollback()
            app.logger.exception("upstreams from the environment not synced: the database could not be read")
