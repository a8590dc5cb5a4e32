"""The SAML protocol messages we send (AuthnRequest, LogoutRequest, LogoutResponse: SAML core 3.4,
3.7) and the logout messages we read, each carried by the HTTP-Redirect binding (saml_binding.py)."""
from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from xml.sax.saxutils import escape, quoteattr

from idp.federation.connector import FederationRefused
from idp.federation.saml_assertion import SKEW, child, text_of
from idp.federation.saml_gate import SAML, SAMLP, parse_xml, refuse_comments
from idp.federation.saml_metadata import HTTP_POST, NAMEID_PERSISTENT, parse_instant

SUCCESS = "urn:oasis:names:tc:SAML:2.0:status:Success"
LOGOUT_LIFETIME = timedelta(minutes=5)


@dataclass(frozen=True)
class SloResult:
    """What an SLO message said. kind "logout_request": the IdP ends the session of `name_id`
    (`session_indexes`, empty = all of them) and the browser goes on to `redirect_url`, our signed
    LogoutResponse. kind "logout_response": the IdP answered our LogoutRequest, `success` says how."""

    kind: str
    name_id: str | None = None
    session_indexes: tuple[str, ...] = ()
    redirect_url: str | None = None
    success: bool = False
    in_response_to: str | None = None

    @property
    def session_index(self) -> str | None:
        """The first SessionIndex named, if any (most IdPs name one)."""
        return self.session_indexes[0] if self.session_indexes else None


def new_message_id() -> str:
    """An xs:ID with 128 random bits (SAML core 1.3.4: IDs are unguessable)."""
    return "_" + secrets.token_hex(20)


def _instant(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _header(kind: str, message_id: str, destination: str, issuer: str, extra: str = "") -> str:
    return (f'<samlp:{kind} xmlns:samlp="{SAMLP}" xmlns:saml="{SAML}" ID="{message_id}" Version="2.0" '
            f'IssueInstant="{_instant(datetime.now(timezone.utc))}" Destination={quoteattr(destination)}{extra}>'
            f"<saml:Issuer>{escape(issuer)}</saml:Issuer>")


def authn_request_xml(message_id: str, *, destination: str, acs_url: str, issuer: str) -> str:
    """An AuthnRequest (SAML core 3.4.1) asking for a persistent NameID, answered over HTTP-POST to
    our ACS (profiles 4.1.4.1). It carries no Subject: Entra ID refuses AuthnRequests that name one
    and Shibboleth treats it as a requirement, so a login hint is not worth a failed sign-in."""
    extra = f' AssertionConsumerServiceURL={quoteattr(acs_url)} ProtocolBinding="{HTTP_POST}"'
    return (_header("AuthnRequest", message_id, destination, issuer, extra)
            + f'<samlp:NameIDPolicy Format="{NAMEID_PERSISTENT}" AllowCreate="true"/></samlp:AuthnRequest>')


def logout_request_xml(message_id: str, *, destination: str, issuer: str, name_id: str,
                       name_id_format: str | None, session_index: str | None) -> str:
    """A LogoutRequest for one NameID and SessionIndex (SAML core 3.7.1)."""
    expiry = _instant(datetime.now(timezone.utc) + LOGOUT_LIFETIME)
    fmt = f" Format={quoteattr(name_id_format)}" if name_id_format else ""
    index = f"<samlp:SessionIndex>{escape(session_index)}</samlp:SessionIndex>" if session_index else ""
    return (_header("LogoutRequest", message_id, destination, issuer, f' NotOnOrAfter="{expiry}"')
            + f"<saml:NameID{fmt}>{escape(name_id)}</saml:NameID>{index}</samlp:LogoutRequest>")


def logout_response_xml(message_id: str, *, destination: str, issuer: str, in_response_to: str,
                        status: str = SUCCESS) -> str:
    """A LogoutResponse to the IdP's LogoutRequest (SAML core 3.7.2)."""
    return (_header("LogoutResponse", message_id, destination, issuer, f" InResponseTo={quoteattr(in_response_to)}")
            + f'<samlp:Status><samlp:StatusCode Value="{status}"/></samlp:Status></samlp:LogoutResponse>')


def _read_message(xml: bytes, kind: str, idp_entity_id: str, slo_url: str):
    root = parse_xml(xml)
    refuse_comments(root)
    if root.tag != f"{{{SAMLP}}}{kind}":
        raise FederationRefused("malformed", detail=f"not a {kind}")
    if text_of(child(root, SAML, "Issuer")) != idp_entity_id:
        raise FederationRefused("issuer", detail=f"the {kind} is not from the IdP")
    if root.get("Destination") not in (None, slo_url):
        raise FederationRefused("destination", detail=f"Destination {root.get('Destination')!r}")
    return root


def read_logout_request(xml: bytes, idp_entity_id: str, slo_url: str) -> tuple[str, str | None, tuple[str, ...]]:
    """(request ID, NameID, SessionIndexes) of a signature-verified LogoutRequest from the IdP,
    refused when it is not the IdP's, not for our SLO URL, or expired (SAML core 3.7.1, 3.7.3.2)."""
    root = _read_message(xml, "LogoutRequest", idp_entity_id, slo_url)
    expiry = root.get("NotOnOrAfter")
    if expiry and datetime.now(timezone.utc) - SKEW >= parse_instant(expiry):
        raise FederationRefused("expired", detail=f"LogoutRequest NotOnOrAfter {expiry}")
    if not root.get("ID"):
        raise FederationRefused("malformed", detail="the LogoutRequest has no ID")
    indexes = tuple(text for index in root.findall(f"{{{SAMLP}}}SessionIndex") if (text := text_of(index)))
    return root.get("ID"), text_of(child(root, SAML, "NameID")), indexes


def read_logout_response(xml: bytes, idp_entity_id: str, slo_url: str) -> tuple[bool, str | None]:
    """(success, InResponseTo) of a signature-verified LogoutResponse from the IdP (SAML core 3.7.2)."""
    root = _read_message(xml, "LogoutResponse", idp_entity_id, slo_url)
    code = child(child(root, SAMLP, "Status"), SAMLP, "StatusCode")
    return code is not None and code.get("Value") == SUCCESS, root.get("InResponseTo")
