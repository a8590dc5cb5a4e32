"""One-off HTTP requests that check a scenario works before it is loaded (and mint what it needs)."""
from __future__ import annotations

import base64
import hashlib
import http.client
import json
import secrets
from dataclasses import dataclass
from urllib.parse import parse_qs, urlencode, urlsplit

CLIENT_ID = "acme-portal-001"
CLIENT_SECRET = "acme_secret_portal_2024"
REDIRECT_URI = "http://localhost:3000/callback"
CODE_SCOPE = "openid profile email offline_access"
LOGIN_EMAIL = "bob@acme-corp.com"
LOGIN_PASSWORD = "UserPass123!"
BASIC = base64.b64encode(f"{CLIENT_ID}:{CLIENT_SECRET}".encode()).decode()
# One PKCE pair for every flow of the run (RFC 7636 4.2): the server still hashes and compares each.
CODE_VERIFIER = secrets.token_urlsafe(48)
CODE_CHALLENGE = base64.urlsafe_b64encode(hashlib.sha256(CODE_VERIFIER.encode()).digest()).rstrip(b"=").decode()


class Unavailable(Exception):
    """The scenario cannot run against this build; the message says why."""


@dataclass
class Answer:
    status: int
    headers: dict
    body: bytes

    def json(self) -> dict:
        try:
            value = json.loads(self.body)
        except ValueError:
            return {}
        return value if isinstance(value, dict) else {}

    def describe(self) -> str:
        """Status and the start of the body (an OAuth error's JSON), short enough for one line."""
        text = self.body[:400].decode("utf-8", "replace")
        if text.lstrip().lower().startswith("<!doctype") or text.lstrip().startswith("<html"):
            return f"HTTP {self.status} (an HTML page)"
        return f"HTTP {self.status} {' '.join(text.split())[:120]}"


def call(base_url: str, method: str, path: str, headers: dict | None = None, body: str | None = None) -> Answer:
    """One request without following redirects."""
    parts = urlsplit(base_url)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
    try:
        connection.request(method, path, body=body, headers=headers or {})
        response = connection.getresponse()
        return Answer(response.status, {k.lower(): v for k, v in response.getheaders()}, response.read())
    finally:
        connection.close()


def token_request(base_url: str, form: dict) -> Answer:
    return call(base_url, "POST", "/oauth2/token", {"Authorization": f"Basic {BASIC}",
                "Content-Type": "application/x-www-form-urlencoded"}, urlencode(form))


def check_get_json(base_url: str, path: str, member: str) -> dict:
    answer = call(base_url, "GET", path)
    document = answer.json()
    if answer.status != 200 or member not in document:
        raise Unavailable(f"GET {path}: {answer.describe()}")
    return document


def client_credentials_token(base_url: str) -> str:
    answer = token_request(base_url, {"grant_type": "client_credentials"})
    token = answer.json().get("access_token", "")
    if answer.status != 200 or token.count(".") != 2:
        raise Unavailable(f"client_credentials: {answer.describe()}")
    return token


def authorization_code(base_url: str, cookie: str) -> str:
    query = urlencode({"response_type": "code", "client_id": CLIENT_ID, "redirect_uri": REDIRECT_URI,
                       "scope": CODE_SCOPE, "state": "probe", "nonce": "probe",
                       "code_challenge": CODE_CHALLENGE, "code_challenge_method": "S256"})
    answer = call(base_url, "GET", f"/oauth2/authorize?{query}", {"Cookie": cookie})
    location = answer.headers.get("location", "")
    code = parse_qs(urlsplit(location).query).get("code", [None])[0]
    if answer.status not in (302, 303) or not code:
        raise Unavailable(f"authorize on an SSO session: {answer.describe()} location={location[:120]!r}")
    return code


def code_flow(base_url: str, cookie: str) -> dict:
    """One full flow; returns the token response (must carry an ID token)."""
    code = authorization_code(base_url, cookie)
    answer = token_request(base_url, {"grant_type": "authorization_code", "code": code,
                                      "redirect_uri": REDIRECT_URI, "code_verifier": CODE_VERIFIER})
    tokens = answer.json()
    if answer.status != 200 or "id_token" not in tokens:
        raise Unavailable(f"authorization_code token: {answer.describe()}")
    return tokens


def refresh(base_url: str, cookie: str) -> None:
    tokens = code_flow(base_url, cookie)
    if "refresh_token" not in tokens:
        raise Unavailable(f"the code flow issued no refresh token for scope {CODE_SCOPE!r}")
    answer = token_request(base_url, {"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]})
    if answer.status != 200 or "access_token" not in answer.json():
        raise Unavailable(f"refresh_token grant: {answer.describe()}")


def login(base_url: str) -> None:
    body = json.dumps({"email": LOGIN_EMAIL, "password": LOGIN_PASSWORD})
    answer = call(base_url, "POST", "/api/v1/auth/login", {"Content-Type": "application/json"}, body)
    if answer.status != 200 or answer.json().get("success") is not True:
        raise Unavailable(f"POST /api/v1/auth/login: {answer.describe()}")


def jose_parts(token: str) -> tuple[dict, dict]:
    """The (header, claims) of a compact JWS, unverified: only their shape is used."""
    def decode(segment: str) -> dict:
        return json.loads(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)))

    header, payload, _ = token.split(".")
    return decode(header), decode(payload)


def wrk_env() -> dict:
    """What the Lua scripts read from the environment."""
    return {"BENCH_BASIC": BASIC, "BENCH_CLIENT_ID": CLIENT_ID, "BENCH_REDIRECT_URI": REDIRECT_URI,
            "BENCH_SCOPE": CODE_SCOPE, "BENCH_CODE_VERIFIER": CODE_VERIFIER,
            "BENCH_CODE_CHALLENGE": CODE_CHALLENGE, "BENCH_LOGIN_EMAIL": LOGIN_EMAIL,
            "BENCH_LOGIN_PASSWORD": LOGIN_PASSWORD}
