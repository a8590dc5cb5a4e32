"""Periodic maintenance jobs, by name, for `flask run-jobs` (JOB_NAME / JOB_INTERVAL_SECONDS)."""
from __future__ import annotations

from typing import Callable

from idp.extensions import db
from idp.federation import metadata_refresh
from idp.oidc.backchannel_logout import deliver_logout_tokens
from idp.oidc.maintenance import purge_expired_grants
from idp.services import contact, pending_links, replay, sessions, upstream_logins
from idp.services.expiry import purge_in_batches
from idp.services.cache import get_counters


def cleanup_sessions() -> str:
    """Mark sessions past expiry EXPIRED, then delete those ended longer than SESSION_RETENTION ago."""
    count = purge_in_batches(sessions.expire_stale)
    deleted = purge_in_batches(sessions.purge_ended)
    return f"marked {count} session(s) EXPIRED, deleted {deleted} ended session(s)"


def purge_federation() -> str:
    """Forget expired upstream sign-ins, pending links and seen assertions (SAML ids, client assertion jtis)."""
    counts = [purge_in_batches(purge) for purge in
              (upstream_logins.purge_expired, pending_links.purge_expired, replay.purge_expired)]
    return "deleted {} upstream login(s), {} pending link(s), {} seen assertion(s)".format(*counts)


def purge_counters() -> str:
    """Delete expired counters from the database (kept there without Redis or while it is down)."""
    count = purge_in_batches(lambda limit: get_counters().purge_expired(limit=limit))
    return f"deleted {count} expired counter(s)"


def refresh_saml_metadata() -> str:
    """Re-read the metadata_url of SAML upstreams (certificate rollover), each at most hourly."""
    report = metadata_refresh.refresh_saml_metadata()
    return (f"refreshed {report.refreshed} SAML upstream(s), {report.failed} failed (settings kept), "
            f"{report.fresh} still fresh")


JOBS: dict[str, Callable[[], str]] = {
    "cleanup_sessions": cleanup_sessions,
    "send_pending_mail": contact.send_pending_mail,
    "purge_expired_grants": purge_expired_grants,
    "deliver_logout_tokens": deliver_logout_tokens,
    "purge_federation": purge_federation,
    "purge_counters": purge_counters,
    "refresh_saml_metadata": refresh_saml_metadata,
}


def run_job(name: str) -> list[str]:
    """Run one job, or every job for 'all'; returns one report line per job."""
    names = list(JOBS) if name == "all" else [name]
    unknown = [n for n in names if n not in JOBS]
    if unknown:
        raise KeyError(f"unknown job {unknown[0]!r}; known: {', '.join(JOBS)}, all")
    return [f"{n}: {JOBS[n]()}" for n in names]
