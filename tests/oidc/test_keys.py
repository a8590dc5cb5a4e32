"""Signing keys on disk: states, publication, rotation without rejecting tokens, production start."""
import json
import os

import pytest

from idp.oidc.keys import KeyOperationError, KeyStore


@pytest.fixture
def store(tmp_path):
    return KeyStore(str(tmp_path / "keys"), retention_seconds=3600)


def test_ensure_makes_active_rs256_and_es256_once(store):
    """First run makes one active key per algorithm; a second run makes nothing."""
    made = store.ensure()
    assert {k["alg"] for k in made} == {"RS256", "ES256"} and store.ensure() == []
    assert store.signing_key("RS256").state == "active" and store.signing_key("ES256") is not None


def test_private_keys_are_pem_files_readable_by_owner_only(store):
    """Private keys live as files (mode 0600) next to a metadata file with states and timestamps."""
    store.ensure()
    pem = next(store.directory.glob("*.pem"))
    assert oct(pem.stat().st_mode & 0o777) == "0o600"
    entries = json.loads((store.directory / "metadata.json").read_text())["keys"]
    assert {"kid", "alg", "state", "created_at", "activated_at", "retired_at"} <= set(entries[0])


def test_next_key_is_published_before_it_signs(store):
    """A generated key appears in the JWKS at once but signs nothing until rotate."""
    store.ensure(("RS256",))
    current = store.signing_key("RS256").kid
    new = store.generate("RS256")
    assert new["kid"] in {k["kid"] for k in store.public_jwks()["keys"]}
    assert store.signing_key("RS256").kid == current


def test_rotate_activates_next_and_keeps_old_published_until_tokens_expire(store):
    """Rotation: the next key signs, the old one stays published for the retention window, then goes."""
    import time_machine
    from datetime import datetime, timedelta, timezone

    store.ensure(("RS256",))
    old = store.signing_key("RS256").kid
    store.generate("RS256")
    outcome, promoted = store.rotate("RS256")
    assert outcome == "activated" and store.signing_key("RS256").kid == promoted["kid"] != old
    assert old in {k["kid"] for k in store.public_jwks()["keys"]}
    with time_machine.travel(datetime.now(timezone.utc) + timedelta(seconds=3601)):
        assert old not in {k["kid"] for k in store.public_jwks()["keys"]}


def test_rotate_without_next_only_publishes(store):
    """Rotation never activates a key that was not published first."""
    store.ensure(("RS256",))
    current = store.signing_key("RS256").kid
    outcome, entry = store.rotate("RS256")
    assert outcome == "published" and entry["state"] == "next" and store.signing_key("RS256").kid == current


def test_cannot_retire_the_only_rs256_key(store):
    """Retiring the last active RS256 key would leave nothing to sign with."""
    store.ensure(("RS256",))
    with pytest.raises(KeyOperationError):
        store.retire(store.signing_key("RS256").kid)
    with pytest.raises(KeyOperationError):
        store.retire("unknown")


def test_other_process_changes_are_seen_via_mtime(store, tmp_path):
    """Every worker agrees: a change written by another process is read on the next use."""
    store.ensure(("RS256",))
    other = KeyStore(str(store.directory), retention_seconds=3600)
    assert other.signing_key("RS256").kid == store.signing_key("RS256").kid
    other.generate("RS256")
    other.rotate("RS256")
    assert store.signing_key("RS256").kid == other.signing_key("RS256").kid


def test_rotation_overlap_rejects_no_token(flow, user, client, app):
    """Tokens signed before a rotation still verify (userinfo, id_token_hint) while the old key is published."""
    from joserfc import jwt

    flow.sign_in(user)
    before = flow.tokens()
    runner = app.test_cli_runner()
    assert "generated" in runner.invoke(args=["keys", "generate"]).output
    assert "activated" in runner.invoke(args=["keys", "rotate"]).output
    after = flow.tokens()
    assert jwt.decode(after["id_token"], app.extensions["oidc"]["keys"].verification_keyset()).header["kid"] != \
        jwt.decode(before["id_token"], app.extensions["oidc"]["keys"].verification_keyset()).header["kid"]
    for tokens in (before, after):
        assert client.get("/oauth2/userinfo", headers={"Authorization": f"Bearer {tokens['access_token']}"}).status_code == 200
    listing = runner.invoke(args=["keys", "list"]).output
    assert "retired" in listing and "active" in listing


def test_es256_client_gets_es256_id_token(flow, user, factories, app):
    """OIDC Registration 2: id_token_signed_response_alg=ES256 is honoured, with a kid."""
    from joserfc import jwt

    flow.rp = factories.client(redirect_uris=["https://rp.example/callback"], first_party=True,
                               id_token_signed_response_alg="ES256")
    flow.sign_in(user)
    token = jwt.decode(flow.tokens()["id_token"], app.extensions["oidc"]["keys"].verification_keyset())
    assert token.header["alg"] == "ES256" and token.header["kid"].startswith("es256-")


def test_production_refuses_to_start_without_keys(tmp_path, monkeypatch):
    """Production (FLASK_ENV=production) with an empty KEYS_DIR does not start."""
    from idp import create_app
    from idp.config import ConfigError

    monkeypatch.setenv("FLASK_ENV", "production")
    with pytest.raises(ConfigError, match="signing key"):
        create_app({"KEYS_DIR": str(tmp_path / "empty"), "SECRET_KEY": "x" * 40, "ISSUER": "https://id.example",
                    "ENCRYPTION_KEY": "cHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHA=", "BCRYPT_LOG_ROUNDS": 12,
                    "REDIS_URL": "redis://127.0.0.1:6379/0", "SQLALCHEMY_DATABASE_URI": "sqlite://"})
    assert not os.path.exists(tmp_path / "empty" / "metadata.json")


def test_keys_ensure_command_and_retire(app):
    """`flask keys ensure` exists (make run calls it) and `retire` reports refusals cleanly."""
    runner = app.test_cli_runner()
    assert runner.invoke(args=["keys", "ensure"]).exit_code == 0
    store = app.extensions["oidc"]["keys"]
    result = runner.invoke(args=["keys", "retire", "no-such-kid"])
    assert result.exit_code != 0 and "no key" in result.output
    es_kid = store.signing_key("ES256").kid
    assert runner.invoke(args=["keys", "retire", es_kid]).exit_code == 0
    assert store.signing_key("ES256") is None
    assert runner.invoke(args=["keys", "ensure"]).exit_code == 0


def test_production_lets_the_keys_command_load_the_app(tmp_path, monkeypatch):
    """`flask keys ...` must start in production without keys, since it is how the first key is made."""
    from idp import create_app

    monkeypatch.setenv("FLASK_ENV", "production")
    monkeypatch.setattr("sys.argv", ["/usr/bin/flask", "keys", "ensure"])
    app = create_app({"KEYS_DIR": str(tmp_path / "prod"), "SECRET_KEY": "x" * 40, "ISSUER": "https://id.example",
                      "ENCRYPTION_KEY": "cHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHA=", "BCRYPT_LOG_ROUNDS": 12,
                      "REDIS_URL": "redis://127.0.0.1:6379/0", "SQLALCHEMY_DATABASE_URI": "sqlite://"})
    result = app.test_cli_runner().invoke(args=["keys", "ensure"])
    assert result.exit_code == 0 and app.extensions["oidc"]["keys"].signing_key("RS256") is not None


def test_missing_key_file_is_skipped_not_fatal(store):
    """A key whose file vanished is left out (and logged); the others keep signing."""
    store.ensure()
    es_kid = store.signing_key("ES256").kid
    (store.directory / f"{es_kid}.pem").unlink()
    os.utime(store.directory / "metadata.json", ns=(1, 1))
    assert store.signing_key("ES256") is None and store.signing_key("RS256") is not None
