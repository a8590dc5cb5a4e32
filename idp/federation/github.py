"""GitHub (github.com or GitHub Enterprise Server) upstream: OAuth 2.0 web application flow + REST API.

GitHub is not an OpenID provider: there is no ID token and no discovery document. The browser goes to
`{base_url}/login/oauth/authorize`, the code is exchanged at `{base_url}/login/oauth/access_token`,
and who signed in is read from the REST API (`GET /user`, `GET /user/emails`) with the access token.
Docs: https://docs.github.com/en/apps/oauth-apps/building-oauth-apps/authorizing-oauth-apps (web
application flow), https://docs.github.com/en/rest/users/users#get-the-authenticated-user,
https://docs.github.com/en/rest/users/emails#list-email-addresses-for-the-authenticated-user, and
PKCE (S256 only) since https://github.blog/changelog/2025-07-14-pkce-support-for-oauth-and-github-app-authentication.

Rules from issue 10 that live here:
- the identity key is GitHub's numeric user `id`, never the `login` (a login can be renamed and then
  registered by someone else);
- "GitHub: errors that come back with HTTP 200 are errors": the token endpoint answers a bad code, bad
  client credentials or a redirect_uri mismatch with HTTP 200 and an `error` member;
- "GitHub's unverified addresses are never trusted" (nOAuth): the e-mail is verified only when it is
  the primary address of `/user/emails` flagged `verified`; `/user`'s `email` is the public profile
  address, unverified, often null, and is never used.
"""
from __future__ import annotations

import base64
import hashlib
import secrets as token_source
from collections.abc import Mapping
from urllib.parse import urlencode, urlsplit

from idp.federation.connector import (FederationRefused, LoginStart, UpstreamConfig, UpstreamSettingsInvalid,
                                      UpstreamUrls)
from idp.federation.http import UpstreamHttp, UpstreamHttpError
from idp.services.upstream_identity import UpstreamIdentity

DEFAULT_BASE_URL = "https://github.com"
DEFAULT_API_URL = "https://api.github.com"
DEFAULT_SCOPES = ("read:user", "user:email")
# The REST API version the answers' shapes below are read as (docs: "API versions").
API_VERSION = "2022-11-28"
SETTING_FIELDS = ("base_url", "api_url", "client_id")
# /user/emails without the user:email scope: GitHub answers 403, or 404 where it hides what a token may not see.
EMAILS_NOT_ALLOWED = (403, 404)


class GitHubKind:
    """The `github` upstream kind (see idp.federation.registry)."""

    label = "Continue with GitHub"
    icon = "github.svg"
    SECRET_FIELDS = ("client_secret",)

    def validate(self, settings: dict, secrets: dict, http: UpstreamHttp) -> tuple[dict, dict]:
        """The settings and secrets as stored: `base_url` (default https://github.com), `api_url`
        (default https://api.github.com, or `<base_url>/api/v3` for GitHub Enterprise Server),
        `client_id`; secret `client_secret`.

        Nothing is asked of GitHub here: it has no discovery document, and the client id and secret
        can only be checked by exchanging a real authorization code, so a wrong pair shows at the
        first sign-in (as the token endpoint's `incorrect_client_credentials`). The URLs go through
        the SSRF guard: https and public addresses in production, plain http or loopback only when
        ALLOW_PRIVATE_UPSTREAM_URLS (issue 10, "Management API").
        """
        errors: dict[str, str] = {}
        for name in sorted(set(settings) - set(SETTING_FIELDS)):
            errors[name] = "is not a setting of a GitHub upstream"
        base_url = _checked_url(settings.get("base_url") or DEFAULT_BASE_URL, "base_url", http, errors)
        api_default = DEFAULT_API_URL if base_url == DEFAULT_BASE_URL else f"{base_url}/api/v3"
        api_url = _checked_url(settings.get("api_url") or api_default, "api_url", http, errors)
        client_id = _required_text(settings, "client_id", errors)
        client_secret = _required_text(secrets, "client_secret", errors)
        if errors:
            raise UpstreamSettingsInvalid(errors)
        return {"base_url": base_url, "api_url": api_url, "client_id": client_id}, {"client_secret": client_secret}

    def open(self, config: UpstreamConfig, urls: UpstreamUrls, http: UpstreamHttp) -> GitHubConnector:
        """The connector for one stored GitHub upstream."""
        return GitHubConnector(config, urls, http)


def _required_text(values: Mapping, name: str, errors: dict[str, str]) -> str:
    value = values.get(name)
    if not isinstance(value, str) or not value.strip():
        errors[name] = "is required"
        return ""
    return value.strip()


def _checked_url(value, name: str, http: UpstreamHttp, errors: dict[str, str]) -> str:
    """`value` without a trailing slash, or an entry in `errors` saying why it cannot be an upstream URL."""
    if not isinstance(value, str):
        errors[name] = "must be a URL"
        return ""
    url = value.strip().rstrip("/")
    parts = urlsplit(url)
    if not parts.scheme or not parts.netloc:
        errors[name] = "must be an absolute URL"
    elif parts.query or parts.fragment or "?" in url or "#" in url:
        errors[name] = "must not have a query or fragment"
    elif parts.username is not None or parts.password is not None:
        errors[name] = "must not carry credentials"
    else:
        try:
            http.check(url, label=name)
        except UpstreamHttpError as error:
            errors[name] = f"is not allowed: {error}"
    return url


def pkce_pair() -> tuple[str, str]:
    """A fresh code verifier and its S256 challenge (RFC 7636 4.1, 4.2): 64 URL-safe characters."""
    verifier = token_source.token_urlsafe(48)
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return verifier, base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


class GitHubConnector:
    """One GitHub upstream's sign-in: the authorize redirect, then code -> token -> /user, /user/emails."""

    def __init__(self, config: UpstreamConfig, urls: UpstreamUrls, http: UpstreamHttp):
        self.config = config
        self.urls = urls
        self.http = http
        self.base_url = config.settings.get("base_url") or DEFAULT_BASE_URL
        self.api_url = config.settings.get("api_url") or DEFAULT_API_URL
        self.client_id = config.settings["client_id"]
        self.scopes = config.scopes or DEFAULT_SCOPES

    def begin(self, state: str, *, login_hint: str | None = None) -> LoginStart:
        """GET {base_url}/login/oauth/authorize (GitHub docs, web application flow step 1) with PKCE
        S256 always; `login` suggests the account to sign in with; `allow_signup` keeps its default."""
        verifier, challenge = pkce_pair()
        params = {"client_id": self.client_id, "redirect_uri": self.urls.callback, "scope": " ".join(self.scopes),
                  "state": state, "code_challenge": challenge, "code_challenge_method": "S256"}
        if login_hint:
            params["login"] = login_hint
        return LoginStart(url=f"{self.base_url}/login/oauth/authorize?{urlencode(params)}",
                          saved={"code_verifier": verifier})

    def complete(self, params: Mapping[str, str], saved: dict | None) -> UpstreamIdentity:
        """The callback (step 2): refuse an `error`, exchange the code, read the user (step 3)."""
        if params.get("error"):
            raise FederationRefused("upstream_error", detail=_describe(params))
        code = params.get("code")
        if not code:
            raise FederationRefused("upstream_error", detail="the callback carries neither code nor error")
        if not saved or not saved.get("code_verifier"):
            raise FederationRefused("unsolicited", detail="no sign-in was started for this callback")
        try:
            token = self._exchange(code, saved["code_verifier"])
            user = self._user(token)
            email, verified = self._primary_email(token)
        except UpstreamHttpError as error:
            raise FederationRefused("upstream_unreachable", detail=str(error)) from None
        return self._identity(user, email, verified)

    def _exchange(self, code: str, verifier: str) -> str:
        """POST {base_url}/login/oauth/access_token; any `error` member, or no bearer access_token, is a
        refusal whatever the HTTP status (GitHub answers its token errors with 200)."""
        data = {"client_id": self.client_id, "client_secret": self.config.secrets.get("client_secret", ""),
                "code": code, "redirect_uri": self.urls.callback, "code_verifier": verifier}
        status, body = self.http.post_form(f"{self.base_url}/login/oauth/access_token", data,
                                           headers={"Accept": "application/json"})
        if not isinstance(body, dict):
            raise FederationRefused("token_error", detail=f"token endpoint answered HTTP {status}, not an object")
        if "error" in body:
            raise FederationRefused("token_error", detail=f"HTTP {status}: {_describe(body)}")
        token = body.get("access_token")
        if status != 200 or not isinstance(token, str) or not token:
            raise FederationRefused("token_error", detail=f"token endpoint answered HTTP {status} without access_token")
        if str(body.get("token_type", "")).lower() != "bearer":
            raise FederationRefused("token_error", detail=f"token_type {body.get('token_type')!r} is not bearer")
        return token

    def _api(self, token: str, path: str) -> tuple[int, object]:
        headers = {"Authorization": f"Bearer {token}", "Accept": "application/vnd.github+json",
                   "X-GitHub-Api-Version": API_VERSION}
        return self.http.get_json(f"{self.api_url}{path}", headers=headers)

    def _user(self, token: str) -> dict:
        """GET /user: an object with a numeric `id` and a `login`, or a refusal (an error object such
        as {"message": "Bad credentials"} is not a user, whatever its status)."""
        status, body = self._api(token, "/user")
        if status != 200:
            raise FederationRefused("api_error", detail=f"/user answered HTTP {status}: {_message(body)}")
        user_id = body.get("id") if isinstance(body, dict) else None
        if type(user_id) is not int or user_id <= 0 or not isinstance(body.get("login"), str):
            raise FederationRefused("api_error", detail=f"/user answered no user: {_message(body)}")
        return body

    def _primary_email(self, token: str) -> tuple[str | None, bool]:
        """GET /user/emails: the primary address and its `verified` flag; (None, False) when the token
        may not read addresses (no user:email scope)."""
        status, body = self._api(token, "/user/emails")
        if status in EMAILS_NOT_ALLOWED:
            return None, False
        if status != 200 or not isinstance(body, list):
            raise FederationRefused("api_error", detail=f"/user/emails answered HTTP {status}: {_message(body)}")
        primaries = [entry for entry in body if isinstance(entry, dict) and entry.get("primary") is True]
        if len(primaries) != 1 or not isinstance(primaries[0].get("email"), str):
            return None, False
        return primaries[0]["email"], primaries[0].get("verified") is True

    def _identity(self, user: dict, email: str | None, verified: bool) -> UpstreamIdentity:
        login = user["login"]
        name = user.get("name") if isinstance(user.get("name"), str) and user.get("name") else login
        picture = user.get("avatar_url") if isinstance(user.get("avatar_url"), str) else None
        return UpstreamIdentity(upstream_id=self.config.id, subject=str(user["id"]), email=email,
                                email_verified=bool(email) and verified, name=name, picture=picture,
                                claims={"id": user["id"], "login": login})


def _describe(answer: Mapping) -> str:
    """An OAuth error answer (callback or token endpoint) as one line for the operator's log."""
    return f"{answer.get('error')}: {answer.get('error_description') or ''}".strip(": ")


def _message(body: object) -> str:
    """GitHub's REST error object ({"message": ..., "documentation_url": ...}) as one line for the log."""
    if isinstance(body, dict) and isinstance(body.get("message"), str):
        return body["message"]
    return type(body).__name__


KIND = GitHubKind()
