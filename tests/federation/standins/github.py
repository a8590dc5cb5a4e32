"""A GitHub-shaped OAuth app and REST API on loopback: the stand-in for github.com and api.github.com.

Two real HTTP servers on 127.0.0.1 (random ports), one Flask app each, sharing one state:
- `base_url` plays github.com: GET /login/oauth/authorize redirects straight back to the redirect_uri
  with `code` and `state` (the configured user "signed in and authorized"), and POST
  /login/oauth/access_token exchanges the code exactly as GitHub does
  (https://docs.github.com/en/apps/oauth-apps/building-oauth-apps/authorizing-oauth-apps): JSON only
  with `Accept: application/json` (form-encoded otherwise), and every error with HTTP 200 and an
  `error` member (bad_verification_code, incorrect_client_credentials, redirect_uri_mismatch). It checks
  the client id and secret, the redirect_uri, that a code is used once and within 10 minutes, and the
  PKCE verifier against the S256 challenge (GitHub's answer to a wrong verifier is not documented; this
  stand-in answers bad_verification_code).
- `api_url` plays api.github.com: GET /user (with `email: null` by default, as for a user who keeps
  their address private) and GET /user/emails (primary/verified flags; 403 unless the token has the
  user:email or user scope), 401 {"message": "Bad credentials"} for an unknown token.

Use:
    github = GitHubStandIn(); github.start()
    ... settings {"base_url": github.base_url, "api_url": github.api_url, "client_id": github.client_id},
        secrets {"client_secret": github.client_secret}
    github.stop()

Knobs (plain attributes, change them at any time): `user` (the /user object of whoever signs in),
`emails` (the /user/emails list), `callback_url` (the OAuth app's registered callback URL; None accepts
any redirect_uri), `authorize_error` (e.g. "access_denied": the user pressed Cancel), `token_error`
(the token endpoint answers HTTP 200 with this `error`), `user_error` (the HTTP status with which
/user answers GitHub's error object, 200 included), `emails_forbidden` (/user/emails answers 403).
What was asked is recorded in `authorize_requests`, `token_requests` and `api_requests`.
"""
from __future__ import annotations

import base64
import copy
import hashlib
import secrets
import threading
import time
from urllib.parse import parse_qsl, urlencode, urlsplit

import requests
from flask import Flask, Response, jsonify, redirect, request

from tests.servers import LiveServer

CODE_LIFETIME = 600
API_VERSIONS = ("2022-11-28",)
TROUBLESHOOTING = ("https://docs.github.com/apps/managing-oauth-apps/"
                   "troubleshooting-oauth-app-access-token-request-errors/")
TOKEN_ERRORS = {
    "bad_verification_code": "The code passed is incorrect or expired.",
    "incorrect_client_credentials": "The client_id and/or client_secret passed are incorrect.",
    "redirect_uri_mismatch": "The redirect_uri MUST match the registered callback URL for this application.",
    "unsupported_grant_type": "The grant type is not supported.",
}


def default_user() -> dict:
    """The /user object of a GitHub user who keeps their e-mail private (`email` null)."""
    return {"login": "octocat", "id": 583231, "node_id": "MDQ6VXNlcjU4MzIzMQ==", "type": "User",
            "name": "The Octocat", "email": None, "avatar_url": "https://avatars.githubusercontent.com/u/583231?v=4",
            "html_url": "https://github.com/octocat", "site_admin": False}


def default_emails() -> list[dict]:
    """The /user/emails list: a verified primary address and an unverified secondary one."""
    return [{"email": "octocat@example.com", "primary": True, "verified": True, "visibility": "private"},
            {"email": "octo-old@example.org", "primary": False, "verified": False, "visibility": None}]


class GitHubStandIn:
    """github.com (`base_url`) and api.github.com (`api_url`) for one OAuth app, on loopback."""

    def __init__(self, client_id: str = "Iv1.0123456789abcdef", client_secret: str | None = None):
        self.client_id = client_id
        self.client_secret = client_secret or secrets.token_hex(20)
        self._lock = threading.Lock()
        self.reset()
        self._web = LiveServer(self._web_app())
        self._api = LiveServer(self._api_app())
        self.base_url = self._web.url
        self.api_url = self._api.url

    def start(self) -> GitHubStandIn:
        self._web.start()
        self._api.start()
        return self

    def stop(self) -> None:
        self._web.stop()
        self._api.stop()

    def reset(self) -> None:
        """Every knob back to its default, recorded requests, codes and tokens forgotten (the servers keep
        running, so one stand-in can serve a whole test module)."""
        self.callback_url: str | None = None
        self.user = default_user()
        self.emails = default_emails()
        self.authorize_error: str | None = None
        self.token_error: str | None = None
        self.user_error: int | None = None
        self.emails_forbidden = False
        self.authorize_requests: list[dict] = []
        self.token_requests: list[dict] = []
        self.api_requests: list[tuple[str, dict]] = []
        with self._lock:
            self._codes: dict[str, dict] = {}
            self._tokens: dict[str, dict] = {}

    def settings(self) -> tuple[dict, dict]:
        """The settings and secrets of a `github` upstream pointing here."""
        return ({"base_url": self.base_url, "api_url": self.api_url, "client_id": self.client_id},
                {"client_secret": self.client_secret})

    # github.com

    def _web_app(self) -> Flask:
        app = Flask("github-standin-web")
        app.add_url_rule("/login/oauth/authorize", view_func=self._authorize, methods=["GET"])
        app.add_url_rule("/login/oauth/access_token", view_func=self._access_token, methods=["POST"])
        return app

    def _authorize(self):
        query = request.args.to_dict()
        self.authorize_requests.append(query)
        if query.get("client_id") != self.client_id:
            return Response("Not Found", status=404, mimetype="text/html")
        redirect_uri = query.get("redirect_uri") or self.callback_url
        if not redirect_uri or not self._redirect_uri_allowed(redirect_uri):
            return self._back(self.callback_url, query, error="redirect_uri_mismatch",
                              error_description="The redirect_uri MUST match the registered callback URL for "
                                                "this application.")
        if query.get("code_challenge_method", "S256") != "S256" or (
                "code_challenge_method" in query and not query.get("code_challenge")):
            return Response("Invalid code_challenge_method", status=422)
        if self.authorize_error:
            return self._back(redirect_uri, query, error=self.authorize_error,
                              error_description="The user has denied your application access.")
        code = secrets.token_hex(10)
        with self._lock:
            self._codes[code] = {"redirect_uri": query.get("redirect_uri"), "challenge": query.get("code_challenge"),
                                 "scope": _granted_scope(query.get("scope", "")), "user": self.user,
                                 "emails": self.emails, "expires": time.time() + CODE_LIFETIME}
        return self._back(redirect_uri, query, code=code)

    def _redirect_uri_allowed(self, redirect_uri: str) -> bool:
        """GitHub: same host and port as the registered callback URL, path at or under its path."""
        if self.callback_url is None:
            return True
        given, registered = urlsplit(redirect_uri), urlsplit(self.callback_url)
        return (given.scheme, given.netloc) == (registered.scheme, registered.netloc) and \
            given.path.startswith(registered.path)

    @staticmethod
    def _back(redirect_uri: str | None, query: dict, **params):
        if not redirect_uri:
            return Response("redirect_uri_mismatch", status=400)
        if query.get("state") is not None:
            params["state"] = query["state"]
        separator = "&" if urlsplit(redirect_uri).query else "?"
        return redirect(f"{redirect_uri}{separator}{urlencode(params)}", code=302)

    def _access_token(self):
        form = request.form.to_dict()
        self.token_requests.append(form)
        error = self.token_error or self._token_refusal(form)
        if error:
            return self._token_answer({"error": error, "error_description": TOKEN_ERRORS.get(error, error),
                                       "error_uri": f"{TROUBLESHOOTING}#{error.replace('_', '-')}"})
        with self._lock:
            grant = self._codes.pop(form["code"])
            token = "gho_" + secrets.token_hex(18)
            self._tokens[token] = grant
        return self._token_answer({"access_token": token, "token_type": "bearer", "scope": grant["scope"]})

    def _token_refusal(self, form: dict) -> str | None:
        """The `error` GitHub answers for this exchange, or None when it is good."""
        if form.get("client_id") != self.client_id or form.get("client_secret") != self.client_secret:
            return "incorrect_client_credentials"
        with self._lock:
            grant = self._codes.get(form.get("code", ""))
        if grant is None or grant["expires"] < time.time():
            return "bad_verification_code"
        if grant["redirect_uri"] and form.get("redirect_uri") != grant["redirect_uri"]:
            return "redirect_uri_mismatch"
        if grant["challenge"] and _s256(form.get("code_verifier", "")) != grant["challenge"]:
            return "bad_verification_code"
        return None

    @staticmethod
    def _token_answer(body: dict):
        """HTTP 200 always; JSON only when asked for, as GitHub does."""
        if "application/json" in request.headers.get("Accept", ""):
            return jsonify(body)
        return Response(urlencode(body), mimetype="application/x-www-form-urlencoded")

    # api.github.com

    def _api_app(self) -> Flask:
        app = Flask("github-standin-api")
        app.add_url_rule("/user", view_func=self._api_user, methods=["GET"])
        app.add_url_rule("/user/emails", view_func=self._api_emails, methods=["GET"])
        return app

    def _grant(self):
        """The token's grant, or the error answer GitHub gives."""
        self.api_requests.append((request.path, dict(request.headers)))
        version = request.headers.get("X-GitHub-Api-Version")
        if version is not None and version not in API_VERSIONS:
            return None, _api_error(400, f"API version {version} is not supported.")
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        if not token:
            return None, _api_error(401, "Requires authentication")
        with self._lock:
            grant = self._tokens.get(token) if scheme.lower() in ("bearer", "token") else None
        if grant is None:
            return None, _api_error(401, "Bad credentials")
        return grant, None

    def _api_user(self):
        grant, refusal = self._grant()
        if refusal:
            return refusal
        if self.user_error is not None:
            return _api_error(self.user_error, "Server Error" if self.user_error >= 500 else "Not Found")
        return jsonify(copy.deepcopy(grant["user"]))

    def _api_emails(self):
        grant, refusal = self._grant()
        if refusal:
            return refusal
        scopes = set(grant["scope"].split(","))
        if self.emails_forbidden or not scopes & {"user", "user:email"}:
            return _api_error(403, "Resource not accessible by integration")
        return jsonify(copy.deepcopy(grant["emails"]))


def _granted_scope(requested: str) -> str:
    """GitHub reports granted scopes comma-separated."""
    return ",".join(scope for scope in requested.replace(",", " ").split() if scope)


def _s256(verifier: str) -> str:
    digest = hashlib.sha256(verifier.encode("ascii", "replace")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def _api_error(status: int, message: str):
    """GitHub's REST error object."""
    body = jsonify({"message": message, "documentation_url": "https://docs.github.com/rest", "status": str(status)})
    body.status_code = status
    return body


def callback_params(authorize_url: str) -> dict:
    """GET the stand-in's authorize URL without following the redirect; the callback's query parameters."""
    answer = requests.get(authorize_url, allow_redirects=False, timeout=5)
    assert answer.status_code == 302, answer.text
    return dict(parse_qsl(urlsplit(answer.headers["Location"]).query))
