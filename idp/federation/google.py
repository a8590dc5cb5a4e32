"""Google (kind `google`): the generic OpenID Connect connector with Google's issuer and claims.

Settings: `issuer` (default https://accounts.google.com; another value only for a stand-in or a
proxy), `client_id`; secret `client_secret`.

Google's documentation ("Verify the Google ID token on your server side: Using email,
email_verified and hd") says when Google is authoritative for an address: a @gmail.com address, or
`email_verified` true with `hd` set (a Google Workspace account). Only then is the e-mail trusted;
a Google account made with some other provider's address was verified once, at creation, and that
mailbox may have changed hands since.

With `email_domains` the upstream is for those Workspace domains only: the ID token's `hd` must be
one of them (`hd_mismatch`), the way Google documents restricting sign-in to a domain; the `hd`
request parameter is sent too, but only as a hint for the account chooser.
"""
from __future__ import annotations

from idp.federation import oidc_settings as fields
from idp.federation.connector import FederationRefused
from idp.federation.http import UpstreamHttp
from idp.federation.oidc import OIDCConnector, OIDCKind, email_of
from idp.services.upstream_identity import UpstreamIdentity

GOOGLE_ISSUER = "https://accounts.google.com"


class GoogleConnector(OIDCConnector):
    def authorization_params(self) -> dict:
        """Google's `hd` hint for the account chooser, for an upstream of one domain."""
        domains = self.config.email_domains
        return {"hd": domains[0]} if len(domains) == 1 else {}

    def identity_from(self, claims: dict) -> UpstreamIdentity:
        """`sub`, with the `hd` restriction and Google's own rule for trusted e-mail (module docstring)."""
        hd = claims.get("hd")
        if self.config.email_domains and hd not in self.config.email_domains:
            raise FederationRefused("hd_mismatch", "This Google account is not one of the domains this sign-in is for.",
                                    detail=f"hd {hd!r} not in {list(self.config.email_domains)}")
        email = email_of(claims.get("email"))
        return self.identity(claims["sub"], claims, email, google_vouches_for(email, claims))


def google_vouches_for(email: str | None, claims: dict) -> bool:
    """Google is authoritative for a Gmail address, or a verified address of a Workspace account (`hd`)."""
    if email is None or claims.get("email_verified") is not True:
        return False
    return email.endswith("@gmail.com") or isinstance(claims.get("hd"), str)


class GoogleKind(OIDCKind):
    name = "google"
    label = "Continue with Google"
    icon = "google.svg"
    connector_class = GoogleConnector
    settings_fields = {"issuer", "client_id"}

    def check_fields(self, settings: dict, http: UpstreamHttp, errors: dict) -> dict:
        if not settings.get("issuer"):
            settings["issuer"] = GOOGLE_ISSUER
        return {"issuer": fields.url_field(settings, "issuer", http, errors)}


KIND = GoogleKind()
