"""SAML 2.0 upstream (kind `saml`): a Web Browser SSO Service Provider (SAML profiles 4.1) on
pysaml2 + xmlsec1 with our strict gate in front (saml_gate.py) and our own checks after it.

Connector methods (the federation views call these):
- begin(state, login_hint=None) -> LoginStart: a signed AuthnRequest over HTTP-Redirect
  (RSA-SHA256 query signature), RelayState = state; saved = {"request_id": <AuthnRequest ID>}.
  login_hint is accepted and not sent (saml_protocol.authn_request_xml says why).
- complete(params, saved) -> UpstreamIdentity: params["SAMLResponse"] (HTTP-POST). saved None
  means unsolicited (IdP-initiated), refused ("unsolicited") unless `allow_idp_initiated`. Order:
  size cap, base64, the gate, pysaml2 (signature with the configured certificates only, decryption
  with the SP key, its saml2int checks), then our checks on the verified element: Issuer, Destination,
  bearer SubjectConfirmation (Recipient, NotOnOrAfter), InResponseTo, Conditions (times with 60 s
  skew, Audience), Status. replay_key/replay_until are set: the views keep the one-time-use cache.
  A signature that fails with the stored certificates of a `metadata_url` upstream makes the
  connector refresh the metadata (at most every REFRESH_AFTER) and try once more.
- metadata() -> str: our SP metadata (its URL is our entity ID).
- logout_request(upstream_session, relay_state=None) -> str | None: the IdP's SLO URL with a signed
  LogoutRequest, or None when the IdP has no SLO URL; begin_logout(...) -> LoginStart | None, the same
  with saved = {"request_id": <LogoutRequest ID>}.
- handle_slo(params, raw_query=None) -> SloResult: the IdP's LogoutRequest (the sessions to end and
  our signed LogoutResponse URL) or its LogoutResponse to ours.
- refresh_metadata() -> dict | None: the settings with re-fetched metadata (certificate rollover:
  old certificates kept as retiring while the entity ID stays the same), None without `metadata_url`.

`updated_settings` is not None after a call that changed what must be stored (metadata refreshed,
or a rollover settled because a current certificate verified a response): the views persist it
whether the call returned or raised.
"""
from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta, timezone

from idp.federation.connector import (FederationRefused, LoginStart, UpstreamConfig, UpstreamSettingsInvalid,
                                      UpstreamUrls)
from idp.federation.http import UpstreamHttp, UpstreamHttpError
from idp.federation.saml_assertion import Expected, check_assertion
from idp.federation.saml_attributes import identity_from
from idp.federation.saml_binding import decode_and_inflate, decode_post_value, redirect_url, verify_redirect_signature
from idp.federation.saml_gate import ASSERTION, RESPONSE, GatedResponse, gate_decrypted, gate_response
from idp.federation.saml_metadata import (MetadataInvalid, logout_url_of, merge_certificates, parse_instant,
                                          sp_metadata)
from idp.federation.saml_protocol import (SloResult, authn_request_xml, logout_request_xml, logout_response_xml,
                                          new_message_id, read_logout_request, read_logout_response)
from idp.federation.saml_settings import fetch_metadata, validate_settings
from idp.federation.saml_verify import SpContext, reason_for, signature_verifies_with, verify_response
from idp.services.upstream_identity import UpstreamIdentity

# A signature failure re-fetches metadata_url at most this often (an attacker's bad signatures
# must not turn us into a request amplifier against the IdP).
REFRESH_AFTER = timedelta(minutes=5)


class SamlConnector:
    """One SAML upstream, opened with its stored settings and decrypted secrets."""

    def __init__(self, config: UpstreamConfig, urls: UpstreamUrls, http: UpstreamHttp):
        self.config = config
        self.urls = urls
        self.http = http
        self.settings = dict(config.settings)
        self.updated_settings: dict | None = None

    @property
    def sp(self) -> SpContext:
        return SpContext(entity_id=self.urls.metadata, acs_url=self.urls.acs, slo_url=self.urls.slo,
                         certificate=self.settings["sp_certificate"], private_key=self.config.secrets["sp_private_key"])

    def _trusted(self) -> list[str]:
        return list(self.settings.get("certificates") or []) + list(self.settings.get("retiring_certificates") or [])

    def begin(self, state: str, *, login_hint: str | None = None) -> LoginStart:
        """A signed AuthnRequest to the IdP's SSO URL over HTTP-Redirect (profiles 4.1.4.1;
        bindings 3.4.4.1), RelayState = state (bindings 3.4.3: at most 80 bytes); no Subject for
        login_hint."""
        request_id = new_message_id()
        xml = authn_request_xml(request_id, destination=self.settings["sso_url"], acs_url=self.urls.acs,
                                issuer=self.urls.metadata)
        url = redirect_url(self.settings["sso_url"], "SAMLRequest", xml, self.sp.private_key, relay_state=state)
        return LoginStart(url=url, saved={"request_id": request_id})

    def complete(self, params: Mapping[str, str], saved: dict | None) -> UpstreamIdentity:
        """The identity a verified Response names (profiles 4.1.4.3 and the gate's rules)."""
        if saved is None and not self.settings.get("allow_idp_initiated"):
            raise FederationRefused("unsolicited", detail="IdP-initiated sign-in is not allowed for this upstream")
        request_id = saved.get("request_id") if saved is not None else None
        if saved is not None and not request_id:
            raise FederationRefused("in_response_to", detail="the started sign-in saved no AuthnRequest ID")
        xml = decode_post_value(params.get("SAMLResponse"))
        gated = gate_response(xml)
        authn = self._verified(xml, gated, request_id)
        document = gate_decrypted(authn.xmlstr) if gated.encrypted else gated
        _same_assertion(authn, document)
        until = check_assertion(document.root, document.assertion, self._expected(request_id))
        self._settle_rollover(xml, authn.xmlstr, document)
        return identity_from(self.config, self.settings, document.assertion, until)

    def _expected(self, request_id: str | None) -> Expected:
        return Expected(idp_entity_id=self.settings["entity_id"], sp_entity_id=self.urls.metadata,
                        acs_url=self.urls.acs, request_id=request_id, now=datetime.now(timezone.utc))

    def _verified(self, xml: bytes, gated: GatedResponse, request_id: str | None):
        try:
            return self._pysaml2(xml, gated, request_id)
        except FederationRefused as refused:
            if refused.reason != "signature_invalid" or not self._may_refresh():
                raise
            before = set(self._trusted())
            try:
                self.settings = self.updated_settings = self.refresh_metadata()
            except UpstreamSettingsInvalid:
                raise refused from None
            if set(self._trusted()) == before:
                raise
        return self._pysaml2(xml, gated, request_id)

    def _pysaml2(self, xml: bytes, gated: GatedResponse, request_id: str | None):
        try:
            authn = verify_response(xml, self.sp, self.settings, self._trusted(), request_id)
        except FederationRefused:
            raise
        except Exception as error:  # pysaml2 raises bare Exceptions for several of its checks
            raise self._refusal(error, gated, request_id) from None
        if authn is None or authn.assertion is None:
            raise self._refusal(None, gated, request_id)
        return authn

    def _refusal(self, error: Exception | None, gated: GatedResponse, request_id: str | None) -> FederationRefused:
        """pysaml2 said no: its reason when it gave a precise one, else the first of our checks that
        the (unverified, refused anyway) plaintext assertion fails, else "assertion_invalid"."""
        detail = f"pysaml2: {type(error).__name__}: {error}"[:500] if error else "pysaml2 returned no response"
        reason = reason_for(error) if error is not None else None
        if reason is None and gated.assertion is not None:
            try:
                check_assertion(gated.root, gated.assertion, self._expected(request_id))
            except FederationRefused as found:
                reason = found.reason
        return FederationRefused(reason or "assertion_invalid", detail=detail)

    def _may_refresh(self) -> bool:
        if not self.settings.get("metadata_url"):
            return False
        fetched = self.settings.get("metadata_fetched_at")
        return not fetched or datetime.now(timezone.utc) - parse_instant(fetched) >= REFRESH_AFTER

    def _settle_rollover(self, xml: bytes, verified_xml: str, document: GatedResponse) -> None:
        """Drop the retiring certificates once a current one verifies a response (metadata 2.4.1.1)."""
        if not self.settings.get("retiring_certificates"):
            return
        if document.assertion_id in document.signed_ids:
            text, node, node_id = verified_xml, ASSERTION, document.assertion_id
        else:
            text, node, node_id = xml.decode("utf-8"), RESPONSE, document.root.get("ID")
        node_name = node[1:].replace("}", ":")
        if any(signature_verifies_with(text, pem, node_name, node_id) for pem in self.settings["certificates"]):
            self.settings = self.updated_settings = {**self.settings, "retiring_certificates": []}

    def refresh_metadata(self) -> dict | None:
        """The settings with the IdP metadata fetched again from `metadata_url` (entity ID, SSO and
        SLO URLs, certificates; the previous certificates kept as retiring); None without one.
        UpstreamSettingsInvalid({"metadata_url": ...}) when it cannot be used."""
        url = self.settings.get("metadata_url")
        if not url:
            return None
        try:
            metadata = fetch_metadata(self.http, url, self.settings.get("entity_id"))
        except MetadataInvalid as error:
            raise UpstreamSettingsInvalid({"metadata_url": str(error)}) from None
        refreshed = merge_certificates(self.settings, metadata.certificates, metadata.entity_id)
        refreshed.update(entity_id=metadata.entity_id, sso_url=metadata.sso_url,
                         slo_url=logout_url_of(self.settings, metadata.slo_url, metadata.entity_id),
                         metadata_fetched_at=datetime.now(timezone.utc).isoformat())
        for name in ("sso_url", "slo_url"):
            # The same outbound rule as when an admin saved the upstream (saml_settings.validate_settings).
            if refreshed.get(name):
                try:
                    self.http.check(refreshed[name], label=name)
                except UpstreamHttpError as error:
                    raise UpstreamSettingsInvalid({"metadata_url": f"names a {name} that is not allowed: {error}"}) \
                        from None
        return refreshed

    def metadata(self) -> str:
        """Our SP metadata (metadata 2.4.4), entityID = the metadata URL."""
        return sp_metadata(self.urls.metadata, self.urls.acs, self.urls.slo, self.settings["sp_certificate"])

    def logout_request(self, upstream_session: dict | None, relay_state: str | None = None) -> str | None:
        """The IdP's SLO URL with a signed LogoutRequest for the session's NameID and SessionIndex
        (profiles 4.4.3.1, bindings 3.4), or None without an SLO URL or a NameID."""
        start = self.begin_logout(upstream_session, relay_state)
        return start.url if start is not None else None

    def begin_logout(self, upstream_session: dict | None, relay_state: str | None = None) -> LoginStart | None:
        """As logout_request, with saved = {"request_id": <LogoutRequest ID>} for checking the
        LogoutResponse's InResponseTo (core 3.7.2)."""
        slo_url = self.settings.get("slo_url")
        if not slo_url or not upstream_session or not upstream_session.get("name_id"):
            return None
        request_id = new_message_id()
        xml = logout_request_xml(request_id, destination=slo_url, issuer=self.urls.metadata,
                                 name_id=upstream_session["name_id"],
                                 name_id_format=upstream_session.get("name_id_format"),
                                 session_index=upstream_session.get("session_index"))
        url = redirect_url(slo_url, "SAMLRequest", xml, self.sp.private_key, relay_state=relay_state)
        return LoginStart(url=url, saved={"request_id": request_id})

    def handle_slo(self, params: Mapping[str, str], raw_query: str | None = None) -> SloResult:
        """An HTTP-Redirect LogoutRequest or LogoutResponse from the IdP, its query signature
        verified with the IdP certificates (over `raw_query` as received when given, bindings
        3.4.4.1) before its XML is read (profiles 4.4.3.2-4.4.3.4)."""
        kind = "SAMLRequest" if params.get("SAMLRequest") else "SAMLResponse" if params.get("SAMLResponse") else None
        if kind is None:
            raise FederationRefused("malformed", detail="no SAMLRequest or SAMLResponse")
        xml = decode_and_inflate(params[kind])
        verify_redirect_signature(kind, dict(params), self._trusted(), raw_query)
        if kind == "SAMLResponse":
            success, in_response_to = read_logout_response(xml, self.settings["entity_id"], self.urls.slo)
            return SloResult("logout_response", success=success, in_response_to=in_response_to)
        request_id, name_id, indexes = read_logout_request(xml, self.settings["entity_id"], self.urls.slo)
        answer_url = None
        if self.settings.get("slo_url"):
            answer = logout_response_xml(new_message_id(), destination=self.settings["slo_url"],
                                         issuer=self.urls.metadata, in_response_to=request_id)
            answer_url = redirect_url(self.settings["slo_url"], "SAMLResponse", answer, self.sp.private_key,
                                      relay_state=params.get("RelayState"))
        return SloResult("logout_request", name_id=name_id, session_indexes=indexes, redirect_url=answer_url,
                         success=True, in_response_to=request_id)


def _same_assertion(authn, document: GatedResponse) -> None:
    """The assertion pysaml2 verified is the one we read (a last guard against wrapping)."""
    if getattr(authn.assertion, "id", None) != document.assertion_id:
        raise FederationRefused("signature_placement", detail="pysaml2 verified another assertion than the gate's")


class SamlKind:
    """The `saml` kind: any SAML 2.0 IdP by its metadata."""

    name = "saml"
    label = "Continue with {display_name}"
    icon = "saml.svg"
    SECRET_FIELDS = ("sp_private_key",)

    def validate(self, settings: dict, secrets: dict, http: UpstreamHttp) -> tuple[dict, dict]:
        """Metadata fetched or given, parsed safely, naming an IdPSSODescriptor with an SSO service
        and a signing certificate; our key pair made when none is given (saml_settings.py)."""
        return validate_settings(settings, secrets, http)

    def open(self, config: UpstreamConfig, urls: UpstreamUrls, http: UpstreamHttp) -> SamlConnector:
        return SamlConnector(config, urls, http)


KIND = SamlKind()
