"""flask keys list | generate | rotate | retire | ensure, and flask clients initial-token."""
from __future__ import annotations

import click
from flask import current_app
from flask.cli import AppGroup

from idp.errors import AppError
from idp.extensions import db
from idp.oidc.keys import SUPPORTED_ALGS, KeyStore
from idp.services import signing_key_admin

keys_cli = AppGroup("keys", help="Signing keys in KEYS_DIR (see keys/README.md).")
clients_cli = AppGroup("clients", help="OAuth clients.")


def _store() -> KeyStore:
    return current_app.extensions["oidc"]["keys"]


def _audited(operation):
    """Run a signing_key_admin operation and commit its audit event; a refusal is a clean CLI error
    (its failure event is written by audit.record_failure itself outside a request)."""
    try:
        result = operation()
    except AppError as error:
        raise click.ClickException(error.message) from error
    db.session.commit()
    return result


@keys_cli.command("list")
def list_keys() -> None:
    """Show every key: kid, alg, state, timestamps, and whether the JWKS publishes it."""
    store = _store()
    published = {k.kid for k in store.published()}
    if not store.keys():
        click.echo(f"no keys in {store.directory}; make them with `flask keys ensure`")
    for key in store.keys():
        info = key.describe()
        click.echo(f"{info['kid']}  {info['alg']}  {info['state']:<8} published={'yes' if key.kid in published else 'no'}"
                   f"  created={info['created_at']} activated={info['activated_at']} retired={info['retired_at']}")


@keys_cli.command("ensure")
def ensure_keys() -> None:
    """Make an active RS256 and ES256 key if there is none (first run)."""
    made = _store().ensure()
    click.echo("keys: " + (", ".join(f"made {k['kid']} ({k['alg']}, active)" for k in made) or "nothing to do"))


@keys_cli.command("generate")
@click.option("--alg", type=click.Choice(SUPPORTED_ALGS), default="RS256", show_default=True)
def generate_key(alg: str) -> None:
    """Add a key in state `next`: published now, signing after `flask keys rotate`."""
    key = _audited(lambda: signing_key_admin.generate_key(alg))
    click.echo(f"generated {key.kid} ({alg}, next): published in the JWKS; run `flask keys rotate --alg {alg}` "
               f"once relying parties have refreshed their JWKS cache")


@keys_cli.command("rotate")
@click.option("--alg", type=click.Choice(SUPPORTED_ALGS), default="RS256", show_default=True)
def rotate_keys(alg: str) -> None:
    """Activate the waiting `next` key and retire the current one (or publish a `next` key first)."""
    outcome, key, _ = _audited(lambda: signing_key_admin.rotate_keys(alg))
    if outcome == "published":
        click.echo(f"no {alg} key was waiting: published {key.kid} as next; run rotate again later to activate it")
    else:
        click.echo(f"activated {key.kid} ({alg}); the previous key is retired and stays published until its tokens expire")


@keys_cli.command("retire")
@click.argument("kid")
def retire_key(kid: str) -> None:
    """Stop signing with KID; it stays in the JWKS until every token it signed has expired."""
    key = _audited(lambda: signing_key_admin.retire_key(kid))
    click.echo(f"retired {key.kid}")


@clients_cli.command("initial-token")
@click.option("--lifetime", type=int, default=None, help="Seconds (default INITIAL_ACCESS_TOKEN_LIFETIME).")
def initial_token(lifetime: int | None) -> None:
    """Print a single-use initial access token for POST /oauth2/register (RFC 7591 3)."""
    from idp.services.client_registration import issue_initial_access_token

    token = issue_initial_access_token(lifetime=lifetime)
    db.session.commit()
    click.echo(token)


COMMANDS = (keys_cli, clients_cli)
