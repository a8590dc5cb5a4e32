"""The refresh_saml_metadata job (idp.federation.metadata_refresh): metadata_url re-read for each enabled
SAML upstream, the rollover state stored, a failure logged by slug with the stored settings kept."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import time_machine
from sqlalchemy import select

from idp.extensions import db
from idp.federation.connectors import upstream_http
from idp.federation.saml import KIND
from idp.federation.saml_metadata import certificate_pem
from idp.jobs import JOBS, run_job
from idp.models import AuditEvent, Upstream
from idp.services import upstreams
from tests.federation.saml_support import own_idp  # noqa: F401 (fixture)

LATER = timedelta(hours=1, minutes=1)


def add_saml(app, idp, slug: str = "corp", enabled: bool = True) -> str:
    with app.app_context():
        stored, secrets = KIND.validate({"metadata_url": idp.metadata_url}, {}, upstream_http())
        upstream = Upstream(slug=slug, kind="saml", display_name=slug.title(), settings=stored, enabled=enabled)
        upstreams.set_secrets(upstream, secrets)
        db.session.add(upstream)
        db.session.commit()
        return upstream.id


def settings_of(app, upstream_id: str) -> dict:
    with app.app_context():
        return dict(db.session.get(Upstream, upstream_id).settings)


def run_later(app, delta: timedelta = LATER) -> list[str]:
    with time_machine.travel(datetime.now(timezone.utc) + delta), app.app_context():
        return run_job("refresh_saml_metadata")


def test_job_is_registered_for_run_jobs():
    """`flask run-jobs` knows the job by name (and 'all' runs it)."""
    assert "refresh_saml_metadata" in JOBS and "purge_federation" in JOBS


def test_job_stores_the_rotated_certificate_and_keeps_the_old_one_retiring(app, own_idp):
    """Metadata 2.4.1.1 rollover: the IdP publishes a new key; after the job both verify (old retiring)."""
    upstream_id = add_saml(app, own_idp)
    old = certificate_pem(own_idp.keys.cert_pem)
    own_idp.rotate_keys()
    assert run_later(app) == ["refresh_saml_metadata: refreshed 1 SAML upstream(s), 0 failed (settings kept), "
                              "0 still fresh"]
    stored = settings_of(app, upstream_id)
    assert (stored["certificates"], stored["retiring_certificates"]) == (
        [certificate_pem(own_idp.keys.cert_pem)], [old])
    with app.app_context():
        event = db.session.scalars(select(AuditEvent).where(AuditEvent.action == "upstream.metadata_refreshed")).one()
        assert event.details["fields"] == ["certificates", "retiring_certificates"]


def test_failure_is_logged_by_slug_and_the_stored_settings_are_kept(app, own_idp, caplog):
    """An IdP whose metadata URL is down: a warning naming the upstream, and the trusted certificates stay."""
    upstream_id = add_saml(app, own_idp, slug="corp-down")
    before = settings_of(app, upstream_id)
    own_idp.stop()
    with caplog.at_level("WARNING", logger="idp"):
        assert run_later(app) == ["refresh_saml_metadata: refreshed 0 SAML upstream(s), 1 failed (settings kept), "
                                  "0 still fresh"]
    assert settings_of(app, upstream_id) == before
    [record] = [r for r in caplog.records if "not refreshed" in r.getMessage()]
    assert record.levelname == "WARNING" and "'corp-down'" in record.getMessage()


def test_fresh_and_disabled_upstreams_are_not_fetched(app, own_idp):
    """Metadata read less than an hour ago is not fetched again; a disabled upstream is never fetched."""
    add_saml(app, own_idp)
    add_saml(app, own_idp, slug="corp-off", enabled=False)
    fetched = own_idp.hits["metadata"]
    assert run_later(app, timedelta(minutes=30)) == [
        "refresh_saml_metadata: refreshed 0 SAML upstream(s), 0 failed (settings kept), 1 still fresh"]
    assert own_idp.hits["metadata"] == fetched
