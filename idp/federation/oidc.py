"""Generic OpenID Connect upstream, configured by discovery (kind `oidc`); Google and Microsoft are
presets over it (google.py, microsoft.py).

The flow is the authorization code flow (OpenID Connect Core 1.0 section 3.1) with PKCE S256
(RFC 7636) and a nonce always, the RFC 9207 `iss` response parameter checked before the code is
redeemed, client_secret_basic (client_secret_post when that is all the provider takes), and the ID
token validated as Core 3.1.3.7 lists (oidc_tokens.py). The UserInfo response is read whenever the
provider has the endpoint (with `response_type=code` the scope claims may be only there, Core 5.4)
and must be about the same `sub` (Core 5.3.2); the signed ID token's claims win over it.

Settings: `issuer`, `client_id`, optional `trust_email_verified` (bool); secret `client_secret`.
Trusted e-mail (the identity's `email_verified`): the provider's `email_verified` claim counts only
for an organization's upstream and an address of the organization's `email_domains`, or, for a
platform-wide upstream, when a platform admin set `trust_email_verified` (any OpenID provider can
claim any address verified, so the default is not to believe it).

`label` is a format string with `{display_name}` (the sign-in button reads
`KIND.label.format(display_name=upstream.display_name)`; the presets' labels have no placeholder).
"""
from __future__ import annotations

import base64
from collections.abc import Mapping
from contextlib import contextmanager
from urllib.parse import quote

from authlib.common.security import generate_token
from authlib.common.urls import add_params_to_uri
from authlib.oauth2.rfc7636 import create_s256_code_challenge

from idp.federation import oidc_settings as fields
from idp.federation.connector import (FederationRefused, LoginStart, UpstreamConfig, UpstreamSettingsInvalid,
                                      UpstreamUrls)
from idp.federation.http import UpstreamHttp, UpstreamHttpError
from idp.federation.oidc_metadata import discovery_url, fetch_discovery, key_set
from idp.federation.oidc_tokens import (allowed_algorithms, check_audience, check_nonce, check_subject,
                                        check_times, verify_signature)
from idp.services.upstream_identity import UpstreamIdentity

DEFAULT_SCOPES = ("openid", "email", "profile")
PROFILE_CLAIMS = ("name", "given_name", "family_name")


class OIDCConnector:
    """One OpenID provider, found by discovery at its issuer."""

    # Whether the UserInfo endpoint is read (Microsoft's lives at Graph and adds nothing; see there).
    use_userinfo = True

    def __init__(self, config: UpstreamConfig, urls: UpstreamUrls, http: UpstreamHttp):
        self.config = config
        self.urls = urls
        self.http = http
        self.client_id = config.settings.get("client_id")
        self.client_secret = config.secrets.get("client_secret")
        if not self.client_id or not self.client_secret:
            raise FederationRefused("upstream_misconfigured", detail=f"upstream {config.slug} has no client credentials")
        scopes = tuple(config.scopes) or DEFAULT_SCOPES
        self.scopes = scopes if "openid" in scopes else ("openid", *scopes)

    # -- where the provider is -------------------------------------------------------------------

    def discovery_url(self) -> str:
        """Where the provider's configuration is (Discovery 1.0 section 4.1)."""
        return discovery_url(self.config.settings["issuer"])

    def check_discovered_issuer(self, issuer: str) -> None:
        """The discovered issuer is the configured one (Discovery 1.0 section 4.3)."""
        if issuer != self.config.settings["issuer"]:
            raise FederationRefused("discovery_invalid", detail=f"discovery names the issuer {issuer!r}")

    def metadata(self) -> dict:
        """The provider's configuration (cached), its issuer checked."""
        document = fetch_discovery(self.http, self.discovery_url())
        self.check_discovered_issuer(document["issuer"])
        return document

    # -- begin -----------------------------------------------------------------------------------

    def begin(self, state: str, *, login_hint: str | None = None) -> LoginStart:
        """The authorization request (Core 3.1.2.1) with PKCE S256 (RFC 7636 4.1-4.3) and a nonce."""
        with _reachable():
            endpoint = self.metadata()["authorization_endpoint"]
            self.http.check(endpoint, label="authorization_endpoint")
        verifier, nonce = generate_token(64), generate_token(32)
        params = {"response_type": "code", "client_id": self.client_id, "redirect_uri": self.urls.callback,
                  "scope": " ".join(self.scopes), "state": state, "nonce": nonce,
                  "code_challenge": create_s256_code_challenge(verifier), "code_challenge_method": "S256"}
        if login_hint:
            params["login_hint"] = login_hint
        params.update(self.authorization_params())
        return LoginStart(url=add_params_to_uri(endpoint, params), saved={"nonce": nonce, "code_verifier": verifier})

    def authorization_params(self) -> dict:
        """Provider-specific request parameters (presets)."""
        return {}

    # -- complete --------------------------------------------------------------------------------

    def complete(self, params: Mapping[str, str], saved: dict | None) -> UpstreamIdentity:
        """Verify the authorization response (query or form_post) and what the provider issues for
        its code; the identity it vouches for."""
        if not saved or not saved.get("nonce") or not saved.get("code_verifier"):
            raise FederationRefused("unsolicited", detail="an OpenID Connect response without the sign-in that asked")
        with _reachable():
            metadata = self.metadata()
            self.check_iss_parameter(params, metadata)
            self.check_error(params)
            tokens = self.redeem(_code_of(params), saved["code_verifier"], metadata)
            claims = self.verify_id_token(tokens["id_token"], saved["nonce"], metadata)
            claims = self.add_userinfo(claims, tokens, metadata)
        return self.identity_from(claims)

    def check_iss_parameter(self, params: Mapping[str, str], metadata: dict) -> None:
        """RFC 9207 2.4: `iss`, when present, identifies this provider; when the provider says it
        sends one, its absence is a mix-up too. Checked before the code goes anywhere."""
        iss = params.get("iss")
        if iss is None:
            if metadata.get("authorization_response_iss_parameter_supported") is True:
                raise FederationRefused("iss_mismatch", detail="the provider sends iss (RFC 9207) but this response has none")
        elif not self.is_own_issuer(iss, metadata):
            raise FederationRefused("iss_mismatch", detail=f"the response's iss {iss!r} is not this provider")

    def is_own_issuer(self, iss: str, metadata: dict) -> bool:
        """Whether an RFC 9207 `iss` value names this provider."""
        return iss == metadata["issuer"]

    def check_error(self, params: Mapping[str, str]) -> None:
        """An error response (RFC 6749 4.1.2.1) ends the sign-in, the provider's code kept for the log."""
        error = params.get("error")
        if error is None:
            return
        message = ("The sign-in was cancelled at the provider." if error == "access_denied"
                   else "The provider could not sign you in.")
        description = str(params.get("error_description") or "")[:300]
        raise FederationRefused("upstream_error", message, detail=f"error={str(error)[:64]} {description}".strip())

    def redeem(self, code: str, verifier: str, metadata: dict) -> dict:
        """The token response for `code` (Core 3.1.3.1-3.1.3.4, RFC 7636 4.5): token_error."""
        data = {"grant_type": "authorization_code", "code": code, "redirect_uri": self.urls.callback,
                "code_verifier": verifier}
        headers = {"Accept": "application/json"}
        if _uses_client_secret_post(metadata):
            data.update(client_id=self.client_id, client_secret=self.client_secret)
        else:
            headers["Authorization"] = _basic_credentials(self.client_id, self.client_secret)
        status, body = self.http.post_form(metadata["token_endpoint"], data, headers=headers)
        if status != 200 or not isinstance(body, dict) or "error" in body:
            error = body.get("error") if isinstance(body, dict) else None
            raise FederationRefused("token_error", detail=f"token endpoint answered HTTP {status}, error={error!r}")
        if not isinstance(body.get("id_token"), str):
            raise FederationRefused("token_error", detail="the token response has no id_token")
        return body

    def verify_id_token(self, raw: str, nonce: str, metadata: dict) -> dict:
        """The ID token's claims after every check of Core 3.1.3.7 (oidc_tokens.py)."""
        jwks_uri = metadata["jwks_uri"]
        claims = verify_signature(raw, lambda refresh: key_set(self.http, jwks_uri, refresh=refresh),
                                  allowed_algorithms(metadata))
        self.check_issuer(claims, metadata)
        check_audience(claims, self.client_id)
        check_times(claims)
        check_nonce(claims, nonce)
        check_subject(claims)
        return claims

    def check_issuer(self, claims: dict, metadata: dict) -> None:
        """`iss` is exactly the provider's issuer (Core 3.1.3.7 step 2): iss_mismatch."""
        if claims.get("iss") != metadata["issuer"]:
            raise FederationRefused("iss_mismatch", detail=f"ID token iss {claims.get('iss')!r}")

    def add_userinfo(self, claims: dict, tokens: dict, metadata: dict) -> dict:
        """The UserInfo claims under the ID token's (Core 5.3.2: same `sub`): userinfo_sub_mismatch."""
        endpoint, access_token = metadata.get("userinfo_endpoint"), tokens.get("access_token")
        if not (self.use_userinfo and isinstance(endpoint, str) and isinstance(access_token, str)):
            return claims
        status, info = self.http.get_json(endpoint, headers={"Authorization": f"Bearer {access_token}",
                                                             "Accept": "application/json"})
        if status != 200 or not isinstance(info, dict):
            raise FederationRefused("userinfo_error", detail=f"userinfo answered HTTP {status}")
        if info.get("sub") != claims["sub"]:
            raise FederationRefused("userinfo_sub_mismatch", detail=f"userinfo sub {info.get('sub')!r}")
        return {**info, **claims}

    # -- the identity ----------------------------------------------------------------------------

    def identity_from(self, claims: dict) -> UpstreamIdentity:
        """The identity the verified claims describe: `sub`, and the e-mail trusted as email_trusted says."""
        email = email_of(claims.get("email"))
        return self.identity(claims["sub"], claims, email, self.email_trusted(email, claims))

    def identity(self, subject: str, claims: dict, email: str | None, verified: bool,
                 groups: tuple[str, ...] | None = None) -> UpstreamIdentity:
        """The identity for `subject` with the profile claims (name parts, an https picture) and groups."""
        profile = {name: claims[name] for name in PROFILE_CLAIMS if isinstance(claims.get(name), str)}
        picture = claims.get("picture")
        return UpstreamIdentity(
            upstream_id=self.config.id, subject=subject, email=email, email_verified=verified, **profile,
            picture=picture if isinstance(picture, str) and picture.startswith("https://") else None,
            groups=strings_of(claims.get("groups")) if groups is None else groups,
            claims={k: v for k, v in claims.items() if k not in ("nonce", "at_hash", "c_hash")})

    def email_trusted(self, email: str | None, claims: dict) -> bool:
        """Whether this upstream may vouch for `email` (see the module docstring)."""
        if email is None or claims.get("email_verified") is not True:
            return False
        if self.config.organization_id:
            return email.rsplit("@", 1)[1] in self.config.email_domains
        return self.config.settings.get("trust_email_verified") is True


def email_of(value) -> str | None:
    """`value` when it looks like an e-mail address (one @, a dotless-or-dotted domain), domain lower-cased."""
    if not isinstance(value, str) or len(value) > 254 or value.count("@") != 1 or any(c.isspace() for c in value):
        return None
    local, domain = value.split("@")
    return f"{local}@{domain.lower()}" if local and domain else None


def strings_of(value) -> tuple[str, ...]:
    """The string members of a JSON array claim (groups, roles); nothing for anything else."""
    return tuple(item for item in value if isinstance(item, str)) if isinstance(value, list) else ()


def _code_of(params: Mapping[str, str]) -> str:
    code = params.get("code")
    if not isinstance(code, str) or not code:
        raise FederationRefused("code_missing", detail="the authorization response has no code")
    return code


def _uses_client_secret_post(metadata: dict) -> bool:
    """client_secret_basic is the default (Discovery 1.0 section 3); post only when basic is not offered."""
    methods = metadata.get("token_endpoint_auth_methods_supported")
    return isinstance(methods, list) and "client_secret_basic" not in methods and "client_secret_post" in methods


def _basic_credentials(client_id: str, secret: str) -> str:
    """RFC 6749 2.3.1: each part form-urlencoded before the Basic encoding."""
    pair = f"{quote(client_id, safe='')}:{quote(secret, safe='')}"
    return "Basic " + base64.b64encode(pair.encode()).decode()


@contextmanager
def _reachable():
    """Turns a failed or unreadable upstream request into the refusal `upstream_unreachable`."""
    try:
        yield
    except UpstreamHttpError as error:
        raise FederationRefused("upstream_unreachable", "The provider could not be reached. Try again later.",
                                detail=str(error)) from None


class OIDCKind:
    """The `oidc` kind: any OpenID provider by its issuer."""

    name = "oidc"
    label = "Continue with {display_name}"
    icon = "openid.svg"
    SECRET_FIELDS = ("client_secret",)
    connector_class = OIDCConnector
    settings_fields = {"issuer", "client_id", "trust_email_verified"}

    def validate(self, settings: dict, secrets: dict, http: UpstreamHttp) -> tuple[dict, dict]:
        """The settings as stored: fields well-formed, discovery at the issuer reachable and naming
        exactly that issuer (Discovery 1.0 section 4.3); UpstreamSettingsInvalid otherwise."""
        errors: dict[str, str] = {}
        fields.refuse_unknown(settings, self.settings_fields, errors)
        stored = self.check_fields(dict(settings), http, errors)
        stored["client_id"] = fields.text_field(settings, "client_id", errors)
        secret = fields.text_field(secrets, "client_secret", errors)
        if errors:
            raise UpstreamSettingsInvalid(errors)
        self.check_provider(stored, http)
        return stored, {"client_secret": secret}

    def check_fields(self, settings: dict, http: UpstreamHttp, errors: dict) -> dict:
        stored = {"issuer": fields.url_field(settings, "issuer", http, errors)}
        trust = fields.bool_field(settings, "trust_email_verified", errors)
        if trust:
            stored["trust_email_verified"] = True
        return stored

    def check_provider(self, stored: dict, http: UpstreamHttp) -> None:
        url = discovery_url(stored["issuer"])
        fields.require_issuer(fields.read_discovery(http, url, "issuer"), stored["issuer"], url)

    def open(self, config: UpstreamConfig, urls: UpstreamUrls, http: UpstreamHttp) -> OIDCConnector:
        """The connector for a stored upstream; FederationRefused("upstream_misconfigured") without credentials."""
        return self.connector_class(config, urls, http)


KIND = OIDCKind()
