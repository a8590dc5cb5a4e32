"""A stand-in SAML 2.0 IdP on loopback, speaking the Web Browser SSO and Single Logout profiles over
real HTTP, for the tests.

    idp = SamlIdp()
    idp.start()
    idp.metadata_url                      # the upstream's metadata_url
    idp.trust_sp(connector.metadata())    # our SP metadata: the ACS, SLO and certificate it trusts
    action, fields = idp.follow(start.url)   # the browser's trip: the auto-submitted form
    identity = connector.complete(fields, start.saved)
    idp.stop()

Endpoints: /metadata (IDPSSODescriptor: signing certificates, SSO and SLO over HTTP-Redirect),
/sso (HTTP-Redirect AuthnRequest, its query signature verified against the SP certificate from the
SP metadata with pysaml2's own verifier; answers an auto-submitting HTTP-POST form to the SP's
metadata ACS with a signed Response), /slo (the SP's signed LogoutRequest, answered with a signed
LogoutResponse to the SP's SLO URL; the SP's LogoutResponse to ours is recorded).

Knobs: `user` (name_id, attributes), `sign_assertion`, `sign_response`, `encrypt` (for the SP's
certificate), `rotate_keys(keep_old=...)`. Records: `authn_requests`, `logout_requests`,
`logout_responses`, `refusals`, `hits` (a Counter of endpoint names) (why an SP message was refused).
"""
from __future__ import annotations

import base64
import html
import re
import zlib
from collections import Counter
from datetime import datetime, timezone
from urllib.parse import parse_qs, urlsplit

import requests
from cryptography.hazmat.primitives.serialization import load_pem_private_key
from defusedxml.ElementTree import fromstring
from flask import Flask, request
from saml2.pack import http_redirect_message
from saml2.sigver import RSACrypto, verify_redirect_signature

from tests.federation.standins.saml_messages import (SAML, SAMLP, KeyPair, ResponseSpec, build_response, instant,
                                                     new_id)
from tests.servers import LiveServer

MD = "urn:oasis:names:tc:SAML:2.0:metadata"
DS = "http://www.w3.org/2000/09/xmldsig#"
REDIRECT = "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect"
POST = "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST"
RSA_SHA256 = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"


def inflate(value: str) -> bytes:
    return zlib.decompress(base64.b64decode(value), -15)


def read_form(page: str) -> tuple[str, dict[str, str]]:
    """The action and hidden fields of an auto-submitting HTTP-POST binding form (bindings 3.5.4)."""
    action = html.unescape(re.search(r'<form[^>]*action="([^"]*)"', page).group(1))
    fields = {html.unescape(name): html.unescape(value)
              for name, value in re.findall(r'<input type="hidden" name="([^"]*)" value="([^"]*)"', page)}
    return action, fields


class SamlIdp:
    def __init__(self):
        self.keys = KeyPair.generate("stand-in idp")
        self.published = [self.keys]
        self.user = {"name_id": "pers-0001", "attributes": {"urn:oid:0.9.2342.19200300.100.1.3": "ada@corp.example",
                                                            "urn:oid:2.16.840.1.113730.3.1.241": "Ada Lovelace"}}
        self.sign_assertion, self.sign_response, self.encrypt = True, False, False
        self.sp: dict | None = None
        self.authn_requests: list[dict] = []
        self.logout_requests: list[dict] = []
        self.logout_responses: list[dict] = []
        self.refusals: list[str] = []
        self.hits: Counter = Counter()
        self.app = self._build_app()
        self._server = LiveServer(self.app)
        self.url = self._server.url

    def start(self) -> None:
        self._server.start()

    def stop(self) -> None:
        self._server.stop()

    @property
    def entity_id(self) -> str:
        return f"{self.url}/metadata"

    metadata_url = entity_id

    @property
    def sso_url(self) -> str:
        return f"{self.url}/sso"

    @property
    def slo_url(self) -> str:
        return f"{self.url}/slo"

    def rotate_keys(self, *, keep_old: bool = False) -> None:
        """A new signing key; the metadata publishes it (and the old one too when keep_old)."""
        self.keys = KeyPair.generate("stand-in idp (rotated)")
        self.published = ([*self.published, self.keys] if keep_old else [self.keys])

    def trust_sp(self, metadata_xml: str) -> None:
        """Register the SP from its metadata: entity ID, ACS (HTTP-POST), SLO, signing certificate."""
        root = fromstring(metadata_xml.encode())
        descriptor = root.find(f"{{{MD}}}SPSSODescriptor")
        acs = [e for e in descriptor.findall(f"{{{MD}}}AssertionConsumerService") if e.get("Binding") == POST]
        slo = descriptor.find(f"{{{MD}}}SingleLogoutService")
        signing = [k for k in descriptor.findall(f"{{{MD}}}KeyDescriptor") if k.get("use") in (None, "signing")]
        cert = "".join(signing[0].find(f".//{{{DS}}}X509Certificate").text.split())
        encryption = [k for k in descriptor.findall(f"{{{MD}}}KeyDescriptor") if k.get("use") == "encryption"]
        enc_cert = "".join(encryption[0].find(f".//{{{DS}}}X509Certificate").text.split())
        self.sp = {"entity_id": root.get("entityID"), "acs": acs[0].get("Location"),
                   "slo": slo.get("Location") if slo is not None else None, "cert": cert,
                   "encryption_pem": "-----BEGIN CERTIFICATE-----\n" + enc_cert + "\n-----END CERTIFICATE-----\n",
                   "authn_requests_signed": descriptor.get("AuthnRequestsSigned") == "true"}

    def metadata(self) -> str:
        keys = "".join(f'<md:KeyDescriptor use="signing"><ds:KeyInfo><ds:X509Data><ds:X509Certificate>'
                       f"{pair.cert_body}</ds:X509Certificate></ds:X509Data></ds:KeyInfo></md:KeyDescriptor>"
                       for pair in self.published)
        return (f'<?xml version="1.0"?><md:EntityDescriptor xmlns:md="{MD}" xmlns:ds="{DS}" '
                f'entityID="{self.entity_id}"><md:IDPSSODescriptor WantAuthnRequestsSigned="true" '
                f'protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol">{keys}'
                f'<md:SingleLogoutService Binding="{REDIRECT}" Location="{self.slo_url}"/>'
                f"<md:NameIDFormat>urn:oasis:names:tc:SAML:2.0:nameid-format:persistent</md:NameIDFormat>"
                f'<md:SingleSignOnService Binding="{REDIRECT}" Location="{self.sso_url}"/>'
                f'<md:SingleSignOnService Binding="{POST}" Location="{self.sso_url}"/>'
                f"</md:IDPSSODescriptor></md:EntityDescriptor>")

    def response_spec(self, in_response_to: str | None, **overrides) -> ResponseSpec:
        """The Response this IdP sends the registered SP for `user`."""
        values = dict(acs_url=self.sp["acs"], audience=self.sp["entity_id"], issuer=self.entity_id,
                      in_response_to=in_response_to, name_id=self.user["name_id"],
                      attributes=self.user["attributes"], sign_assertion=self.sign_assertion,
                      sign_response=self.sign_response,
                      encrypt_for=self.sp["encryption_pem"] if self.encrypt else None)
        values.update(overrides)
        return ResponseSpec(**values)

    def response_form(self, in_response_to: str | None, relay_state: str | None = None, **overrides) -> dict:
        """The HTTP-POST form fields of a signed Response (IdP-initiated when in_response_to is None)."""
        xml = build_response(self.keys, self.response_spec(in_response_to, **overrides))
        fields = {"SAMLResponse": base64.b64encode(xml.encode()).decode()}
        if relay_state:
            fields["RelayState"] = relay_state
        return fields

    def follow(self, login_url: str) -> tuple[str, dict[str, str]]:
        """The browser's trip to /sso: the form's action and fields (the IdP authenticates at once)."""
        answer = requests.get(login_url, allow_redirects=False, timeout=5)
        assert answer.status_code == 200, answer.text
        return read_form(answer.text)

    def _verified_query(self, kind: str) -> bytes | None:
        message = {name: values[0] for name, values in parse_qs(urlsplit(request.url).query).items()}
        if self.sp is None or "Signature" not in message:
            self.refusals.append(f"{kind} unsigned or SP unknown")
            return None
        crypto = RSACrypto(None)
        if not verify_redirect_signature(message, crypto, cert=self.sp["cert"]):
            self.refusals.append(f"{kind} signature invalid")
            return None
        return inflate(message[kind])

    def _redirect_to_sp(self, xml: str, kind: str, relay_state: str | None = None) -> str:
        key = load_pem_private_key(self.keys.key_pem.encode(), password=None)
        info = http_redirect_message(xml, self.sp["slo"], relay_state or "", kind, sigalg=RSA_SHA256, sign=True,
                                     backend=RSACrypto(key))
        return dict(info["headers"])["Location"]

    def logout_request_url(self, name_id: str, session_index: str | None = None, relay_state: str | None = None) -> str:
        """An IdP-initiated LogoutRequest to the SP's SLO URL (profiles 4.4.3.1), signed."""
        index = f"<samlp:SessionIndex>{session_index}</samlp:SessionIndex>" if session_index else ""
        xml = (f'<samlp:LogoutRequest xmlns:samlp="{SAMLP}" xmlns:saml="{SAML}" ID="{new_id()}" Version="2.0" '
               f'IssueInstant="{instant(datetime.now(timezone.utc))}" Destination="{self.sp["slo"]}">'
               f"<saml:Issuer>{self.entity_id}</saml:Issuer><saml:NameID>{name_id}</saml:NameID>{index}"
               f"</samlp:LogoutRequest>")
        return self._redirect_to_sp(xml, "SAMLRequest", relay_state)

    def _build_app(self) -> Flask:
        app = Flask("saml-idp-standin")

        @app.get("/metadata")
        def metadata():
            self.hits["metadata"] += 1
            return self.metadata(), 200, {"Content-Type": "application/samlmetadata+xml"}

        @app.get("/sso")
        def sso():
            xml = self._verified_query("SAMLRequest")
            if xml is None:
                return "AuthnRequest refused", 400
            authn = fromstring(xml)
            record = {"id": authn.get("ID"), "acs": authn.get("AssertionConsumerServiceURL"),
                      "destination": authn.get("Destination"), "issuer": authn.find(f"{{{SAML}}}Issuer").text,
                      "relay_state": request.args.get("RelayState"), "sig_alg": request.args.get("SigAlg"),
                      "name_id_policy": authn.find(f"{{{SAMLP}}}NameIDPolicy").get("Format")}
            self.authn_requests.append(record)
            if record["acs"] != self.sp["acs"] or record["issuer"] != self.sp["entity_id"]:
                self.refusals.append("AuthnRequest ACS or issuer not the SP's metadata")
                return "AuthnRequest refused", 400
            fields = self.response_form(record["id"], record["relay_state"])
            inputs = "".join(f'<input type="hidden" name="{name}" value="{html.escape(value)}"/>'
                             for name, value in fields.items())
            return (f'<!doctype html><html><body onload="document.forms[0].submit()"><form method="post" '
                    f'action="{html.escape(self.sp["acs"])}">{inputs}<noscript><button>Continue</button></noscript>'
                    f"</form></body></html>")

        @app.get("/slo")
        def slo():
            kind = "SAMLRequest" if "SAMLRequest" in request.args else "SAMLResponse"
            xml = self._verified_query(kind)
            if xml is None:
                return "logout message refused", 400
            message = fromstring(xml)
            if kind == "SAMLResponse":
                status = message.find(f"{{{SAMLP}}}Status/{{{SAMLP}}}StatusCode").get("Value")
                self.logout_responses.append({"in_response_to": message.get("InResponseTo"), "status": status})
                return "logged out", 200
            index = message.find(f"{{{SAMLP}}}SessionIndex")
            self.logout_requests.append({"id": message.get("ID"), "name_id": message.find(f"{{{SAML}}}NameID").text,
                                         "session_index": index.text if index is not None else None,
                                         "destination": message.get("Destination")})
            answer = (f'<samlp:LogoutResponse xmlns:samlp="{SAMLP}" xmlns:saml="{SAML}" ID="{new_id()}" '
                      f'Version="2.0" IssueInstant="{instant(datetime.now(timezone.utc))}" '
                      f'Destination="{self.sp["slo"]}" InResponseTo="{message.get("ID")}">'
                      f"<saml:Issuer>{self.entity_id}</saml:Issuer><samlp:Status><samlp:StatusCode "
                      f'Value="urn:oasis:names:tc:SAML:2.0:status:Success"/></samlp:Status></samlp:LogoutResponse>')
            return "", 302, {"Location": self._redirect_to_sp(answer, "SAMLResponse", request.args.get("RelayState"))}

        return app
