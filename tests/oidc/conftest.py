"""Fixtures for the OpenID Provider: a relying party, a signed-in browser, PKCE pairs, token helpers."""
from __future__ import annotations

import base64
import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import parse_qs, urlencode, urlparse

import pytest

from idp.extensions import db
from idp.models import SessionKind, User
from idp.services.browser_sessions import PLAIN_COOKIE
from idp.services.sessions import create_session

REDIRECT_URI = "https://rp.example/callback"
SECRET = "s3cret-client-secret"


def pkce_pair() -> tuple[str, str]:
    """A PKCE code_verifier and its S256 code_challenge (RFC 7636 4.1, 4.2)."""
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    return verifier, challenge


def query_of(location: str) -> dict:
    return {k: v[0] for k, v in parse_qs(urlparse(location).query).items()}


def basic_auth(client_id: str, secret: str = SECRET) -> dict:
    raw = base64.b64encode(f"{client_id}:{secret}".encode()).decode()
    return {"Authorization": f"Basic {raw}"}


@dataclass
class Flow:
    """Drives the code flow through the Flask test client for one relying party and one browser."""

    app: object
    client: object
    rp: object
    verifier: str = ""

    def sign_in(self, user, auth_time: datetime | None = None, amr: list | None = None) -> str:
        """Open a browser SSO session for `user` (as the hosted login page would) and set its cookie."""
        with self.app.app_context():
            fresh = db.session.get(User, user.id)
            session, token = create_session(fresh, kind=SessionKind.BROWSER, amr=amr or ["pwd"])
            if auth_time is not None:
                session.auth_time = auth_time
            db.session.commit()
            session_id = session.id
        self.client.set_cookie(PLAIN_COOKIE, token, domain="localhost")
        return session_id

    def authorize_params(self, **overrides) -> dict:
        self.verifier, challenge = pkce_pair()
        params = {"response_type": "code", "client_id": self.rp.client_id, "redirect_uri": REDIRECT_URI,
                  "scope": "openid profile email", "state": "st-123", "nonce": "n-456",
                  "code_challenge": challenge, "code_challenge_method": "S256"}
        params.update(overrides)
        return {k: v for k, v in params.items() if v is not None}

    def authorize(self, **overrides):
        return self.client.get("/oauth2/authorize?" + urlencode(self.authorize_params(**overrides)))

    def code(self, **overrides) -> str:
        response = self.authorize(**overrides)
        assert response.status_code == 302, response.get_data(as_text=True)
        query = query_of(response.headers["Location"])
        assert "code" in query, query
        return query["code"]

    def exchange(self, code: str, **overrides):
        data = {"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT_URI,
                "code_verifier": self.verifier}
        data.update(overrides)
        data = {k: v for k, v in data.items() if v is not None}
        return self.client.post("/oauth2/token", data=data, headers=basic_auth(self.rp.client_id))

    def tokens(self, **overrides) -> dict:
        response = self.exchange(self.code(**overrides))
        assert response.status_code == 200, response.get_data(as_text=True)
        return response.get_json()

    def refresh(self, refresh_token: str, **extra):
        return self.client.post("/oauth2/token", data={"grant_type": "refresh_token", "refresh_token": refresh_token,
                                                        **extra}, headers=basic_auth(self.rp.client_id))


@pytest.fixture
def rp(factories):
    """A confidential, first-party relying party (no consent screen) using client_secret_basic."""
    return factories.client(redirect_uris=[REDIRECT_URI], first_party=True,
                            post_logout_redirect_uris=["https://rp.example/bye"],
                            grant_types=["authorization_code", "refresh_token", "client_credentials"],
                            scope="openid profile email phone address organizations offline_access reports:read")


@pytest.fixture
def user(factories):
    return factories.user(given_name="Ada", family_name="Lovelace", phone_number="+441234567890")


@pytest.fixture
def flow(app, client, rp):
    return Flow(app, client, rp)


@pytest.fixture
def oidc_server(make_app):
    """The app over real HTTP on loopback, its ISSUER set to the server's own URL."""
    from tests.servers import LiveServer

    other = make_app()
    server = LiveServer(other)
    other.config["ISSUER"] = server.url
    server.start()
    yield server
    server.stop()


def browser_for(server, user) -> "requests.Session":
    """A requests session carrying a browser SSO cookie for `user` on `server`."""
    import requests

    with server.app.app_context():
        session, token = create_session(db.session.get(User, user.id), kind=SessionKind.BROWSER)
        db.session.commit()
    browser = requests.Session()
    browser.cookies.set(PLAIN_COOKIE, token, domain=server.host)
    return browser
