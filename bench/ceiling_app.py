"""The ceiling: the least a token endpoint on our stack can do, served by the same gunicorn config.

POST /oauth2/token checks HTTP Basic client credentials in constant time, signs a JWT access token
with joserfc using the app's own signing key from KEYS_DIR (same alg, same kid, same claims shape
as a real client_credentials token) and answers like RFC 6749 section 5.1. No database, no
framework extensions: whatever our endpoint costs above this is the price of its features.

POST /oauth2/token-persisted does the same and also records the token's jti in `access_tokens`
with one plain psycopg INSERT and COMMIT (a connection per thread, no ORM): the least that
persisting every token, as the app does for revocation, can cost.

GET /hello is the hello-world Flask endpoint discovery and JWKS are compared with: a plain route
answering a small JSON body, nothing else.

Environment: KEYS_DIR; DATABASE_URL (for the persisted variant); BENCH_CLAIMS (JSON payload of a real access token to copy the shape of) and
BENCH_JOSE_HEADER (its JOSE header), both optional; BENCH_CLIENT_ID / BENCH_CLIENT_SECRET.
"""
from __future__ import annotations

import base64
import hmac
import json
import os
import secrets
import threading
import time
import uuid
from datetime import datetime, timezone
from pathlib import Path

from flask import Flask, jsonify, request
from joserfc import jwt
from joserfc.jwk import ECKey, Key, RSAKey

DEFAULT_TTL = 3600
TIME_CLAIMS = ("iat", "nbf", "exp", "auth_time")


def load_signing_key(keys_dir: str, kid: str | None) -> Key:
    """The key named `kid` (else the newest active RS256 key) from KEYS_DIR's metadata.json.

    With no key files at all (the keys CLI not there yet), an in-memory RSA key stands in: the
    signing cost is the same for any 2048-bit RSA key.
    """
    metadata = Path(keys_dir) / "metadata.json"
    if not metadata.exists():
        return RSAKey.generate_key(2048, private=True, parameters={"kid": kid or "ceiling"})
    entries = json.loads(metadata.read_text()).get("keys", [])
    chosen = next((e for e in entries if e["kid"] == kid), None)
    if chosen is None:
        active = [e for e in entries if e["state"] == "active" and e["alg"] == "RS256"]
        chosen = max(active, key=lambda e: e.get("activated_at") or e["created_at"])
    key_class = RSAKey if chosen["alg"] == "RS256" else ECKey
    pem = (Path(keys_dir) / f"{chosen['kid']}.pem").read_bytes()
    return key_class.import_key(pem, {"kid": chosen["kid"], "alg": chosen["alg"], "use": "sig"})


def claims_template() -> dict:
    raw = os.environ.get("BENCH_CLAIMS")
    if raw:
        return json.loads(raw)
    now = int(time.time())
    return {"iss": "https://idp.bench.localhost", "sub": "acme-portal-001", "aud": "https://idp.bench.localhost",
            "client_id": "acme-portal-001", "scope": "", "iat": now, "exp": now + DEFAULT_TTL,
            "jti": secrets.token_urlsafe(16)}


def fresh_claims(template: dict) -> dict:
    """The template with times moved to now and a new jti, as each real token has."""
    claims = dict(template)
    shift = int(time.time()) - int(template.get("iat", time.time()))
    for name in TIME_CLAIMS:
        if isinstance(claims.get(name), int):
            claims[name] += shift
    if "jti" in claims:
        claims["jti"] = secrets.token_urlsafe(len(str(template["jti"])) * 3 // 4 or 16)
    return claims


def basic_credentials() -> tuple[str, str] | None:
    scheme, _, encoded = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        client_id, _, secret = base64.b64decode(encoded).decode("utf-8").partition(":")
    except ValueError:
        return None
    return client_id, secret


class JtiRecorder:
    """Inserts one access_tokens row per token over a per-thread psycopg connection."""

    SQL = ("INSERT INTO access_tokens (id, jti, oauth_client_id, scope, issued_at, expires_at) "
           "VALUES (%s, %s, %s, %s, %s, %s)")

    def __init__(self, url: str, client_id: str):
        self.url = url
        self.client_id = client_id
        self._local = threading.local()
        with self._connect() as connection:
            row = connection.execute("SELECT id FROM oauth_clients WHERE client_id = %s", (client_id,)).fetchone()
        self.client_pk = row[0] if row else None

    def _connect(self):
        import psycopg

        return psycopg.connect(self.url)

    def record(self, claims: dict) -> None:
        connection = getattr(self._local, "connection", None)
        if connection is None:
            connection = self._local.connection = self._connect()
        issued = datetime.fromtimestamp(claims.get("iat", time.time()), timezone.utc).replace(tzinfo=None)
        expires = datetime.fromtimestamp(claims.get("exp", time.time()), timezone.utc).replace(tzinfo=None)
        connection.execute(self.SQL, (str(uuid.uuid4()), claims.get("jti") or secrets.token_urlsafe(16),
                                      self.client_pk, claims.get("scope", ""), issued, expires))
        connection.commit()


class TokenIssuer:
    """The ceiling's whole token endpoint: check Basic auth, sign, optionally record the jti."""

    def __init__(self):
        self.template = claims_template()
        self.header = json.loads(os.environ.get("BENCH_JOSE_HEADER") or '{"alg": "RS256"}')
        self.key = load_signing_key(os.environ["KEYS_DIR"], self.header.get("kid"))
        self.header.setdefault("kid", self.key.kid)
        self.expected = (os.environ.get("BENCH_CLIENT_ID", "acme-portal-001"),
                         os.environ.get("BENCH_CLIENT_SECRET", "acme_secret_portal_2024"))
        self.ttl = int(self.template.get("exp", 0)) - int(self.template.get("iat", 0)) or DEFAULT_TTL
        url = os.environ.get("DATABASE_URL")
        self.recorder = JtiRecorder(url, self.expected[0]) if url else None

    def issue(self, persist: bool):
        given = basic_credentials()
        if given is None or not (hmac.compare_digest(given[0], self.expected[0])
                                 & hmac.compare_digest(given[1], self.expected[1])):
            return jsonify(error="invalid_client"), 401
        if request.form.get("grant_type") != "client_credentials":
            return jsonify(error="unsupported_grant_type"), 400
        if persist and self.recorder is None:
            return jsonify(error="server_error", error_description="DATABASE_URL is not set"), 500
        claims = fresh_claims(self.template)
        access_token = jwt.encode(self.header, claims, self.key)
        if persist:
            self.recorder.record(claims)
        body = {"access_token": access_token, "token_type": "Bearer", "expires_in": self.ttl}
        if self.template.get("scope"):
            body["scope"] = self.template["scope"]
        response = jsonify(body)
        response.headers["Cache-Control"] = "no-store"
        response.headers["Pragma"] = "no-cache"
        return response


def create_app() -> Flask:
    app = Flask(__name__)
    issuer = TokenIssuer()
    app.add_url_rule("/oauth2/token", "token", lambda: issuer.issue(persist=False), methods=["POST"])
    app.add_url_rule("/oauth2/token-persisted", "token_persisted", lambda: issuer.issue(persist=True),
                     methods=["POST"])
    app.add_url_rule("/hello", "hello", lambda: jsonify(hello="world"))
    return app


app = create_app()
