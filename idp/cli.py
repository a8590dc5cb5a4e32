"""flask commands: seed, cleanup-sessions, run-jobs."""
from __future__ import annotations

import time

import click
from flask import Flask, current_app
from flask.cli import AppGroup, with_appcontext

from idp.extensions import db
from idp.oidc.cli import COMMANDS as OIDC_COMMANDS


@click.command("seed")
@with_appcontext
def seed_command() -> None:
    """Create the demo organization, users and OIDC client (idempotent)."""
    from idp.services.seed import seed_demo_data

    created = seed_demo_data()
    db.session.commit()
    click.echo(f"seed: organization created={created['organization']}, "
               f"users created={created['users'] or 'none'}, client created={created['client']}")


@click.command("cleanup-sessions")
@with_appcontext
def cleanup_sessions_command() -> None:
    """Mark expired sessions EXPIRED."""
    from idp.jobs import cleanup_sessions

    click.echo(cleanup_sessions())


@click.command("run-jobs")
@with_appcontext
@click.option("--job", "job_name", default=None, help="Job to run (default JOB_NAME, 'all' for every job).")
@click.option("--interval", type=int, default=None, help="Seconds between runs (default JOB_INTERVAL_SECONDS).")
@click.option("--once", is_flag=True, help="Run one round and exit.")
def run_jobs_command(job_name: str | None, interval: int | None, once: bool) -> None:
    """The job runner: run JOB_NAME every JOB_INTERVAL_SECONDS until stopped."""
    from idp.jobs import run_job

    name = job_name or current_app.config["JOB_NAME"]
    every = interval or current_app.config["JOB_INTERVAL_SECONDS"]
    while True:
        try:
            for line in run_job(name):
                click.echo(line)
        except KeyError as exc:
            raise click.UsageError(str(exc.args[0])) from exc
        except Exception:
            db.session.rollback()
            current_app.logger.exception("job round failed; retrying next interval")
        if once:
            return
        time.sleep(every)


upstreams_cli = AppGroup("upstreams", help="Upstream identity providers (federation).")


@upstreams_cli.command("sync-env")
def sync_env_upstreams_command() -> None:
    """Create or update the platform upstreams google, microsoft, github and saml from the environment."""
    from idp.federation.bootstrap import configured, sync_env_upstreams

    if not configured(current_app.config):
        click.echo("upstreams: none configured in the environment")
    for line in sync_env_upstreams():
        click.echo(line)


def register_commands(app: Flask) -> None:
    for command in (seed_command, cleanup_sessions_command, run_jobs_command, upstreams_cli, *OIDC_COMMANDS):
        app.cli.add_command(command)
