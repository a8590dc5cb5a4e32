"""A relying party on loopback that implements Back-Channel Logout 1.0 the way the spec tells an RP to.

It keeps RP sessions keyed by the IdP's `sid`, and its back-channel logout endpoint validates every
logout token per section 2.6 (signature against the IdP's JWKS fetched over HTTP, iss, aud, iat,
exp, typ, jti replay, events, sub/sid, no nonce) before it drops the session the token names (2.7)
and answers 200 with Cache-Control: no-store (2.8); an invalid token answers 400.
"""
from __future__ import annotations

import threading
import time

import requests
from flask import Flask, request
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet

from tests.servers import LiveServer

LOGOUT_EVENT = "http://schemas.openid.net/event/backchannel-logout"


class InvalidLogoutToken(Exception):
    pass


class RelyingParty:
    def __init__(self, *, jwks_url: str, issuer: str, status: int = 200, block: threading.Event | None = None):
        self.jwks_url, self.issuer, self.status, self.block = jwks_url, issuer, status, block
        self.client_id: str | None = None
        self.sessions: dict[str, str] = {}  # sid -> sub
        self.requests: list[dict] = []  # what each back-channel POST carried
        self.claims: list[dict] = []  # the claims of every accepted logout token
        self.refusals: list[str] = []
        self._seen_jti: set[str] = set()
        self._changed = threading.Condition()
        app = Flask("relying_party")
        app.add_url_rule("/backchannel", "backchannel", self._backchannel, methods=["POST"])
        self.server = LiveServer(app)
        self.backchannel_logout_uri = f"{self.server.url}/backchannel"

    # -- the RP's own sign-in: the ID token's sid names the RP session (BCL 2.7) --
    def sign_in(self, id_token: str) -> str:
        claims = jwt.decode(id_token, self._keys()).claims
        with self._changed:
            self.sessions[claims["sid"]] = claims["sub"]
        return claims["sid"]

    def wait_until(self, condition, timeout: float = 10.0) -> bool:
        """Block until `condition()` holds (bounded)."""
        with self._changed:
            return self._changed.wait_for(condition, timeout)

    def wait_logged_out(self, sid: str, timeout: float = 10.0) -> bool:
        return self.wait_until(lambda: sid not in self.sessions, timeout)

    # -- the back-channel logout endpoint (BCL 2.5 - 2.8) --
    def _backchannel(self):
        with self._changed:
            self.requests.append({"content_type": request.content_type, "form": request.form.to_dict(flat=False),
                                  "cache_control": request.headers.get("Cache-Control")})
            self._changed.notify_all()
        if self.block is not None:
            self.block.wait(15)
        if self.status != 200:
            return "unavailable", self.status
        try:
            claims = self.validate(request.form.get("logout_token", ""))
        except InvalidLogoutToken as error:
            with self._changed:
                self.refusals.append(str(error))
                self._changed.notify_all()
            return {"error": "invalid_request", "error_description": str(error)}, 400, {"Cache-Control": "no-store"}
        with self._changed:
            self.claims.append(claims)
            self.sessions.pop(claims["sid"], None)
            self._changed.notify_all()
        return "", 200, {"Cache-Control": "no-store"}

    def validate(self, token: str) -> dict:
        """Back-Channel Logout 1.0 2.6, check by check."""
        try:
            # The signature and alg as for an ID token, against the OP's JWKS; iss, aud and iat as for an
            # ID token (OIDC Core 3.1.3.7); the short exp of 2.4.
            decoded = jwt.decode(token, self._keys(), algorithms=["RS256", "ES256"])
            jwt.JWTClaimsRegistry(
                iss={"essential": True, "value": self.issuer}, aud={"essential": True, "value": self.client_id},
                iat={"essential": True}, jti={"essential": True}, exp={"essential": True},
            ).validate(decoded.claims)
        except (JoseError, ValueError) as error:
            raise InvalidLogoutToken(f"signature or claims: {error}") from None
        claims = decoded.claims
        if decoded.header.get("typ") != "logout+jwt":  # explicit typing (2.4), so no other JWT passes
            raise InvalidLogoutToken("typ is not logout+jwt")
        if abs(time.time() - claims["iat"]) > 300:
            raise InvalidLogoutToken("iat is not recent")
        if not ("sub" in claims or "sid" in claims):
            raise InvalidLogoutToken("neither sub nor sid")
        events = claims.get("events")
        if not isinstance(events, dict) or not isinstance(events.get(LOGOUT_EVENT), dict):
            raise InvalidLogoutToken("events lacks the back-channel logout event")
        if "nonce" in claims:
            raise InvalidLogoutToken("a nonce is present")
        if claims["jti"] in self._seen_jti:  # optional: a jti received before is a replay
            raise InvalidLogoutToken("jti seen before")
        if "sid" in claims and self.sessions.get(claims["sid"]) != claims.get("sub"):  # optional: sid/sub of our session
            raise InvalidLogoutToken("sid and sub do not name a session of this RP")
        self._seen_jti.add(claims["jti"])
        return claims

    def _keys(self) -> KeySet:
        return KeySet.import_key_set(requests.get(self.jwks_url, timeout=5).json())
