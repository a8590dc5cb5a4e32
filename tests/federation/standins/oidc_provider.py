"""A stand-in OpenID provider on loopback, speaking OpenID Connect over real HTTP, for the tests.

    provider = OidcProvider("google")        # or "generic", "entra"
    provider.start()
    provider.issuer                          # put this in the upstream's settings
    provider.set_user({...})                 # who signs in at /authorize (no UI: it answers at once)
    params = follow_authorize(login_url)     # the browser's trip: the callback's parameters
    provider.stop()

Endpoints: discovery, JWKS (RS256 keys made with joserfc), /authorize (redirects straight back to
redirect_uri with code, state and, when the shape sends it, the RFC 9207 `iss`; an auto-submitting
form for `response_mode=form_post`), /token (client_secret_basic or _post as advertised, the
redirect_uri, the PKCE S256 verifier and single-use codes all checked), /userinfo (bearer).

Shapes:
- "generic": issuer http://127.0.0.1:<port>/oidc; advertises and sends `iss` (RFC 9207); the ID
  token carries only the protocol claims and the scope claims come from /userinfo (Core 5.4).
- "google": issuer http://127.0.0.1:<port> (no path, as https://accounts.google.com), Google's
  endpoint paths; ID token and userinfo carry email, email_verified, hd (when the user has one),
  name, picture, and azp.
- "entra": /<tenant>/v2.0/.well-known/openid-configuration for common, organizations, consumers
  and tenant ids; issuer template http://127.0.0.1:<port>/{tenantid}/v2.0 for common and
  organizations; tokens with `tid`, `oid`, `preferred_username` and `email`, no `email_verified`;
  no `iss` response parameter (Entra sends none). `issuer` is the home tenant's;
  `authority` is the base URL for the microsoft kind's settings.

Knobs (plain attributes, all reset by `reset()`), so tests can attack the relying party:
- `id_token_claims`: merged into every ID token (a value of None removes the claim): another
  iss, aud, azp, exp, iat, nonce, tid ...
- `id_token_alg`: "RS256" (default), "none" (unsigned), "HS256" (keyed with the client secret),
  or another RSA algorithm signed with the published key.
- `sign_with_unpublished_key`: sign with a key whose kid is not in the JWKS.
- `forge_claims`: merged into the ID token's payload after it was signed (a broken signature).
- `rotate_keys()`: a new signing key (new kid), published with the old one.
- `userinfo_claims`: merged into the userinfo answer (e.g. another sub).
- `iss_parameter`: "auto" (the issuer when the shape sends it), None (never), or a value to send.
- `error`: /authorize answers this error code instead of a code.
- `token_error`: /token answers 400 with this error code.
- `metadata`: merged into the discovery document (None removes a member).
- `redirect_uris`: when set, /authorize refuses any other redirect_uri.
Records: `hits` (a Counter of endpoint names), `authorization_requests` (each /authorize query),
`token_requests` (each /token form, with the client authentication method used).
"""
from __future__ import annotations

import base64
import hashlib
import json
import re
import secrets
import time
from collections import Counter
from urllib.parse import parse_qsl, unquote, urlencode, urlsplit

import requests
from flask import Flask, abort, jsonify, redirect, request
from joserfc import jwt
from joserfc.jwk import KeySet, OctKey, RSAKey
from markupsafe import escape

from idp.federation.connector import UpstreamUrls
from tests.servers import LiveServer

CONSUMERS_TENANT = "9188040d-6c67-4c5b-b112-36a304b66dad"
HOME_TENANT = "3fa85f64-5717-4562-b3fc-2c963f66afa6"


def _new_key() -> RSAKey:
    """A fresh RSA signing key with a random kid (each provider its own keys)."""
    return RSAKey.generate_key(2048, parameters={"kid": secrets.token_urlsafe(8), "use": "sig"}, private=True)


def default_user(shape: str) -> dict:
    """The claims of the person who signs in, as each provider reports them."""
    if shape == "google":
        return {"sub": "110169484474386276334", "email": "ada@gmail.com", "email_verified": True,
                "name": "Ada Lovelace", "given_name": "Ada", "family_name": "Lovelace",
                "picture": "https://lh3.googleusercontent.com/a/ada"}
    if shape == "entra":
        return {"sub": "AAAAAAAAAAAAAAAAAAAAAIkzqFVrSaSaFHy782bbtaQ", "tid": HOME_TENANT,
                "oid": "00000000-0000-4000-8000-00000000ada1", "preferred_username": "ada@contoso.example",
                "email": "ada@contoso.example", "name": "Ada Lovelace"}
    return {"sub": "user-ada", "email": "ada@example.org", "email_verified": True, "name": "Ada Lovelace",
            "given_name": "Ada", "family_name": "Lovelace"}


class OidcProvider:
    """One stand-in provider of `shape` on 127.0.0.1, with its client registered."""

    def __init__(self, shape: str = "generic", *, client_id: str = "rp-client",
                 client_secret: str = "rp-secret~with:odd/chars"):
        assert shape in ("generic", "google", "entra")
        self.shape, self.client_id, self.client_secret = shape, client_id, client_secret
        self._server = LiveServer(self._make_app())
        self.base = self._server.url
        self.authority = self.base
        self.issuer = {"generic": f"{self.base}/oidc", "google": self.base,
                       "entra": f"{self.base}/{HOME_TENANT}/v2.0"}[shape]
        self._keys = [_new_key()]
        self._unpublished = _new_key()
        self._codes: dict[str, dict] = {}
        self._access_tokens: dict[str, dict] = {}
        self.reset()

    def start(self) -> OidcProvider:
        self._server.start()
        return self

    def stop(self) -> None:
        self._server.stop()

    def reset(self) -> None:
        """Back to an honest provider with the default user."""
        self.user = default_user(self.shape)
        self.id_token_claims: dict = {}
        self.id_token_alg = "RS256"
        self.sign_with_unpublished_key = False
        self.forge_claims: dict = {}
        self.userinfo_claims: dict = {}
        self.iss_parameter: object = "auto"
        self.error: str | None = None
        self.token_error: str | None = None
        self.metadata: dict = {}
        self.redirect_uris: list[str] | None = None
        self.hits: Counter = Counter()
        self.authorization_requests: list[dict] = []
        self.token_requests: list[dict] = []

    def set_user(self, claims: dict) -> None:
        """Who signs in next (the complete claim set, replacing the default user)."""
        self.user = dict(claims)

    def rotate_keys(self) -> None:
        """Sign with a new key from now on; the JWKS publishes it alongside the old one."""
        self._keys.insert(0, _new_key())

    def discovery_url(self, tenant: str | None = None) -> str:
        if self.shape == "entra":
            return f"{self.base}/{tenant or HOME_TENANT}/v2.0/.well-known/openid-configuration"
        return self.issuer.rstrip("/") + "/.well-known/openid-configuration"

    # -- the app ---------------------------------------------------------------------------------

    def _make_app(self) -> Flask:
        app = Flask(f"oidc-standin-{self.shape}")
        prefix = {"generic": "/oidc", "google": "", "entra": "/<tenant>"}[self.shape]
        routes = {"generic": ("/authorize", "/token", "/jwks", "/userinfo"),
                  "google": ("/o/oauth2/v2/auth", "/token", "/oauth2/v3/certs", "/v1/userinfo"),
                  "entra": ("/oauth2/v2.0/authorize", "/oauth2/v2.0/token", "/discovery/v2.0/keys", "/oidc/userinfo")}
        self._paths = dict(zip(("authorize", "token", "jwks", "userinfo"), routes[self.shape]))
        well_known = "/v2.0/.well-known/openid-configuration" if self.shape == "entra" else "/.well-known/openid-configuration"
        app.add_url_rule(prefix + well_known, "discovery", self._discovery)
        app.add_url_rule(prefix + self._paths["authorize"], "authorize", self._authorize)
        app.add_url_rule(prefix + self._paths["token"], "token", self._token, methods=["POST"])
        app.add_url_rule(prefix + self._paths["jwks"], "jwks", self._jwks)
        userinfo = ("" if self.shape == "entra" else prefix) + self._paths["userinfo"]
        app.add_url_rule(userinfo, "userinfo", self._userinfo, methods=["GET", "POST"])
        return app

    def _endpoint_base(self, tenant: str | None) -> str:
        return f"{self.base}/{tenant}" if self.shape == "entra" else f"{self.base}{'/oidc' if self.shape == 'generic' else ''}"

    def _discovery_issuer(self, tenant: str | None) -> str:
        if self.shape != "entra":
            return self.issuer
        if tenant in ("common", "organizations"):
            return f"{self.base}/{{tenantid}}/v2.0"
        tid = CONSUMERS_TENANT if tenant == "consumers" else (tenant if re.fullmatch(r"[0-9a-f-]{36}", tenant) else HOME_TENANT)
        return f"{self.base}/{tid}/v2.0"

    def _discovery(self, tenant: str | None = None):
        self.hits["discovery"] += 1
        base = self._endpoint_base(tenant)
        document = {
            "issuer": self._discovery_issuer(tenant),
            "authorization_endpoint": base + self._paths["authorize"],
            "token_endpoint": base + self._paths["token"],
            "jwks_uri": base + self._paths["jwks"],
            "userinfo_endpoint": (self.base if self.shape == "entra" else base) + self._paths["userinfo"],
            "response_types_supported": ["code", "id_token", "code id_token"],
            "subject_types_supported": ["pairwise" if self.shape == "entra" else "public"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "scopes_supported": ["openid", "email", "profile"],
            "token_endpoint_auth_methods_supported": {
                "generic": ["client_secret_basic", "client_secret_post"],
                "google": ["client_secret_post", "client_secret_basic"],
                "entra": ["client_secret_post", "private_key_jwt", "client_secret_basic"]}[self.shape],
            "code_challenge_methods_supported": ["plain", "S256"],
        }
        if self.shape == "generic":
            document["authorization_response_iss_parameter_supported"] = True
        _merge(document, self.metadata)
        return jsonify(document)

    def _jwks(self, tenant: str | None = None):
        self.hits["jwks"] += 1
        return jsonify(KeySet(list(self._keys)).as_dict(private=False))

    # -- /authorize ------------------------------------------------------------------------------

    def _authorize(self, tenant: str | None = None):
        self.hits["authorize"] += 1
        args = request.args.to_dict()
        self.authorization_requests.append(args)
        redirect_uri = args.get("redirect_uri")
        if args.get("client_id") != self.client_id or not redirect_uri:
            abort(400)
        if self.redirect_uris is not None and redirect_uri not in self.redirect_uris:
            abort(400)
        answer = {"state": args.get("state")} if "state" in args else {}
        if self.error or args.get("response_type") != "code" or args.get("code_challenge_method") != "S256" \
                or not args.get("code_challenge") or "openid" not in args.get("scope", "").split():
            answer.update(error=self.error or "invalid_request", error_description="refused by the stand-in")
        else:
            code = secrets.token_urlsafe(24)
            self._codes[code] = {"request": args, "user": dict(self.user), "tenant": tenant}
            answer["code"] = code
        iss = self._iss_parameter(tenant)
        if iss is not None:
            answer["iss"] = iss
        return self._respond(redirect_uri, answer, args.get("response_mode"))

    def _iss_parameter(self, tenant: str | None):
        if self.iss_parameter == "auto":
            return self.issuer if self.shape == "generic" else None
        return self.iss_parameter

    @staticmethod
    def _respond(redirect_uri: str, answer: dict, response_mode: str | None):
        if response_mode == "form_post":
            inputs = "".join(f'<input type="hidden" name="{escape(k)}" value="{escape(v)}">' for k, v in answer.items())
            return (f'<!doctype html><html><body onload="document.forms[0].submit()">'
                    f'<form method="post" action="{escape(redirect_uri)}">{inputs}'
                    f'<noscript><button>Continue</button></noscript></form></body></html>')
        separator = "&" if urlsplit(redirect_uri).query else "?"
        return redirect(redirect_uri + separator + urlencode(answer), 302)

    # -- /token ----------------------------------------------------------------------------------

    def _token(self, tenant: str | None = None):
        self.hits["token"] += 1
        form = request.form.to_dict()
        method = self._client_authentication(form)
        self.token_requests.append({**form, "auth_method": method})
        if method is None:
            return jsonify(error="invalid_client"), 401
        if self.token_error:
            return jsonify(error=self.token_error, error_description="refused by the stand-in"), 400
        grant = self._codes.pop(form.get("code", ""), None)
        if form.get("grant_type") != "authorization_code" or grant is None \
                or grant["request"]["redirect_uri"] != form.get("redirect_uri") \
                or _s256(form.get("code_verifier", "")) != grant["request"]["code_challenge"]:
            return jsonify(error="invalid_grant"), 400
        access_token = secrets.token_urlsafe(24)
        self._access_tokens[access_token] = grant["user"]
        return jsonify(access_token=access_token, token_type="Bearer", expires_in=3600,
                       scope=grant["request"]["scope"], id_token=self._id_token(grant))

    def _client_authentication(self, form: dict) -> str | None:
        """The method the client used, when its credentials are right and the method is advertised."""
        header = request.headers.get("Authorization", "")
        if header.startswith("Basic "):
            client_id, _, secret = base64.b64decode(header[6:]).decode().partition(":")
            method, credentials = "client_secret_basic", (unquote(client_id), unquote(secret))
        elif "client_secret" in form:
            method, credentials = "client_secret_post", (form.pop("client_id", None), form.pop("client_secret"))
        else:
            return None
        methods = self.metadata.get("token_endpoint_auth_methods_supported") or ["client_secret_basic", "client_secret_post"]
        return method if credentials == (self.client_id, self.client_secret) and method in methods else None

    def _id_token(self, grant: dict) -> str:
        now = int(time.time())
        user = grant["user"]
        claims = {"iss": self._token_issuer(user), "sub": user["sub"], "aud": self.client_id, "exp": now + 300,
                  "iat": now, "auth_time": now, "nonce": grant["request"].get("nonce")}
        if self.shape == "google":
            claims["azp"] = self.client_id
        if self.shape != "generic":
            claims.update(user)
        if self.shape == "entra":
            claims["ver"] = "2.0"
        _merge(claims, self.id_token_claims)
        token = self._sign(claims)
        if self.forge_claims:
            header, _, signature = token.split(".")
            _merge(claims, self.forge_claims)
            token = f"{header}.{_b64json(claims)}.{signature}"
        return token

    def _token_issuer(self, user: dict) -> str:
        return f"{self.base}/{user.get('tid', HOME_TENANT)}/v2.0" if self.shape == "entra" else self.issuer

    def _sign(self, claims: dict) -> str:
        alg = self.id_token_alg
        if alg == "none":
            return f"{_b64json({'alg': 'none', 'typ': 'JWT'})}.{_b64json(claims)}."
        if alg.startswith("HS"):
            return jwt.encode({"alg": alg}, claims, OctKey.import_key(self.client_secret), algorithms=[alg])
        key = self._unpublished if self.sign_with_unpublished_key else self._keys[0]
        return jwt.encode({"alg": alg, "kid": key.kid, "typ": "JWT"}, claims, key, algorithms=[alg])

    # -- /userinfo -------------------------------------------------------------------------------

    def _userinfo(self):
        self.hits["userinfo"] += 1
        header = request.headers.get("Authorization", "")
        user = self._access_tokens.get(header[7:]) if header.startswith("Bearer ") else None
        if user is None:
            return "", 401, {"WWW-Authenticate": 'Bearer error="invalid_token"'}
        info = {k: v for k, v in user.items() if k not in ("tid", "oid")}
        _merge(info, self.userinfo_claims)
        return jsonify(info)


def running(shape: str):
    """A pytest fixture body: a started stand-in of `shape` ("generic", "google", "entra"), with the
    connectors' per-process discovery/JWKS cache cleared first; stopped afterwards."""
    from idp.federation.oidc_metadata import clear_cache

    clear_cache()
    standin = OidcProvider(shape).start()
    yield standin
    standin.stop()


def upstream_urls(slug: str, issuer: str = "http://idp.test") -> UpstreamUrls:
    """This IdP's endpoints for `slug`, as the connectors are opened with them (redirect_uri = callback)."""
    base = f"{issuer}/api/v1/auth/external/{slug}"
    return UpstreamUrls(login=f"{base}/login", callback=f"{base}/callback", metadata=f"{base}/metadata",
                        acs=f"{base}/acs", slo=f"{base}/slo")


def sign_in(connector, *, login_hint: str | None = None, response_mode: str | None = None, tamper=None):
    """A whole upstream sign-in driven like a browser: begin, the provider's /authorize, complete.

    `tamper(params, saved)` may change the callback's parameters or the saved data before complete.
    """
    start = connector.begin("state-" + secrets.token_urlsafe(8), login_hint=login_hint)
    url = start.url + (f"&response_mode={response_mode}" if response_mode else "")
    params, saved = follow_authorize(url), dict(start.saved)
    if tamper is not None:
        tamper(params, saved)
    return connector.complete(params, saved)


def follow_authorize(url: str) -> dict:
    """What the browser brings back to the callback after the provider's /authorize at `url`:
    the redirect's query parameters, or the fields of a form_post page."""
    response = requests.get(url, allow_redirects=False, timeout=5)
    if response.status_code == 302:
        return dict(parse_qsl(urlsplit(response.headers["Location"]).query))
    if response.status_code == 200 and "<form" in response.text:
        return {name: _unescape(value) for name, value in re.findall(r'name="([^"]*)" value="([^"]*)"', response.text)}
    raise AssertionError(f"/authorize answered {response.status_code}: {response.text[:200]}")


def _unescape(value: str) -> str:
    return (value.replace("&#34;", '"').replace("&#39;", "'").replace("&lt;", "<").replace("&gt;", ">")
            .replace("&amp;", "&"))


def _merge(target: dict, changes: dict) -> None:
    for name, value in changes.items():
        if value is None:
            target.pop(name, None)
        else:
            target[name] = value


def _b64json(value: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()


def _s256(verifier: str) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
