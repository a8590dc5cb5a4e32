"""Re-reading the metadata of SAML upstreams that have a `metadata_url` (the `refresh_saml_metadata`
job): new signing certificates are trusted and the previous ones kept as retiring until a response
verifies with a new one (SAML metadata 2.4.1.1 rollover, saml_metadata.merge_certificates).

The job runs every JOB_INTERVAL_SECONDS; an upstream is fetched again only when its metadata is at
least MAX_AGE old, so a short interval does not make us poll every IdP every few minutes (a signature
failure at the ACS re-reads it sooner, saml.SamlConnector). A failure is logged naming the upstream
and its stored settings are kept: an IdP that is down must not lose the certificates we trust.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from flask import current_app
from sqlalchemy import select

from idp.extensions import db
from idp.federation.connector import UpstreamSettingsInvalid
from idp.federation.connectors import open_connector
from idp.federation.saml_metadata import parse_instant
from idp.models import Upstream
from idp.services import audit

MAX_AGE = timedelta(hours=1)
# A change of these is a change of whom we trust: audited, like an admin's change.
TRUST_FIELDS = ("entity_id", "sso_url", "slo_url", "certificates", "retiring_certificates")


@dataclass(frozen=True)
class RefreshReport:
    refreshed: int
    failed: int
    fresh: int


def metadata_url_upstreams() -> list[Upstream]:
    """The enabled SAML upstreams with a metadata_url, by slug."""
    candidates = db.session.scalars(select(Upstream).where(Upstream.kind == "saml", Upstream.enabled.is_(True))
                                    .order_by(Upstream.slug))
    return [upstream for upstream in candidates if (upstream.settings or {}).get("metadata_url")]


def _is_due(upstream: Upstream, now: datetime) -> bool:
    fetched = (upstream.settings or {}).get("metadata_fetched_at")
    try:
        return not fetched or now - parse_instant(fetched) >= MAX_AGE
    except (TypeError, ValueError):
        return True


def refresh_upstream(upstream: Upstream) -> None:
    """Fetch `upstream`'s metadata again and store the settings it gives (committed);
    UpstreamSettingsInvalid when the metadata cannot be used (nothing is stored then)."""
    before = dict(upstream.settings or {})
    refreshed = open_connector(upstream).refresh_metadata()
    if refreshed is None:
        return
    upstream.settings = refreshed
    changed = sorted(name for name in TRUST_FIELDS if before.get(name) != refreshed.get(name))
    if changed:
        audit.record("upstream.metadata_refreshed", target_type="upstream", target_id=upstream.id,
                     organization_id=upstream.organization_id,
                     details={"slug": upstream.slug, "kind": upstream.kind, "fields": changed})
    db.session.commit()


def refresh_saml_metadata(now: datetime | None = None) -> RefreshReport:
    """Refresh every due SAML upstream, each in its own transaction; failures logged by slug."""
    now = now or datetime.now(timezone.utc)
    refreshed = failed = fresh = 0
    for upstream in metadata_url_upstreams():
        if not _is_due(upstream, now):
            fresh += 1
            continue
        slug = upstream.slug
        try:
            refresh_upstream(upstream)
            refreshed += 1
        except UpstreamSettingsInvalid as error:
            db.session.rollback()
            failed += 1
            why = "; ".join(f"{name} {problem}" for name, problem in error.errors.items())
            current_app.logger.warning("SAML metadata of upstream %r not refreshed (settings kept): %s", slug, why)
    return RefreshReport(refreshed, failed, fresh)
