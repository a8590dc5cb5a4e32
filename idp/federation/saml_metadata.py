"""SAML metadata (saml-metadata-2.0-os): reading an IdP's, writing ours, the SP key pair, and the
IdP certificate rollover state.

Rollover: `certificates` are the IdP signing certificates trusted now; after a metadata refresh that
brings new ones, the old ones stay trusted in `retiring_certificates` until a response verifies with
a current one (then they are dropped), so neither side has to switch at the same second.
"""
from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from xml.etree import ElementTree as ET
from xml.sax.saxutils import escape, quoteattr

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from idp.federation.connector import FederationRefused
from idp.federation.saml_gate import DS, parse_xml

MD = "urn:oasis:names:tc:SAML:2.0:metadata"
PROTOCOL = "urn:oasis:names:tc:SAML:2.0:protocol"
HTTP_REDIRECT = "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect"
HTTP_POST = "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST"
NAMEID_PERSISTENT = "urn:oasis:names:tc:SAML:2.0:nameid-format:persistent"


class MetadataInvalid(ValueError):
    """The IdP metadata cannot be used; the message says what is wrong, for the admin."""


@dataclass(frozen=True)
class IdpMetadata:
    entity_id: str
    sso_url: str
    slo_url: str | None
    certificates: tuple[str, ...]


def parse_idp_metadata(xml: str | bytes, entity_id: str | None = None) -> IdpMetadata:
    """The IdP named by `xml` (an EntityDescriptor, or the one `entity_id` of an EntitiesDescriptor): its
    IDPSSODescriptor's HTTP-Redirect SingleSignOnService, SingleLogoutService and signing
    certificates (metadata 2.4.3, 2.4.1.1 KeyDescriptor use); parsed without DTDs or entities."""
    try:
        root = parse_xml(xml.encode("utf-8") if isinstance(xml, str) else xml)
    except FederationRefused as refused:
        raise MetadataInvalid(f"the metadata is not safe, well-formed XML ({refused.detail})") from None
    entity = _pick_entity(root, entity_id)
    descriptor = _idp_descriptor(entity)
    _refuse_expired(root, entity, descriptor)
    sso_url = _service_location(descriptor, "SingleSignOnService")
    if not sso_url:
        raise MetadataInvalid("the IDPSSODescriptor has no SingleSignOnService with the HTTP-Redirect binding")
    certificates = signing_certificates(descriptor)
    if not certificates:
        raise MetadataInvalid("the IDPSSODescriptor names no signing certificate (KeyDescriptor use=\"signing\")")
    return IdpMetadata(entity.get("entityID"), sso_url, _service_location(descriptor, "SingleLogoutService"),
                       certificates)


def _pick_entity(root: ET.Element, entity_id: str | None) -> ET.Element:
    if root.tag == f"{{{MD}}}EntityDescriptor":
        candidates = [root]
    elif root.tag == f"{{{MD}}}EntitiesDescriptor":
        candidates = [e for e in root.iter(f"{{{MD}}}EntityDescriptor")
                      if e.find(f"{{{MD}}}IDPSSODescriptor") is not None]
    else:
        raise MetadataInvalid("the document is not SAML 2.0 metadata (no md:EntityDescriptor)")
    if entity_id and root.tag == f"{{{MD}}}EntitiesDescriptor":
        candidates = [e for e in candidates if e.get("entityID") == entity_id]
    if len(candidates) != 1 or not candidates[0].get("entityID"):
        raise MetadataInvalid(f"the metadata must describe exactly one IdP entity; it describes {len(candidates)}")
    return candidates[0]


def _idp_descriptor(entity: ET.Element) -> ET.Element:
    for descriptor in entity.findall(f"{{{MD}}}IDPSSODescriptor"):
        if PROTOCOL in (descriptor.get("protocolSupportEnumeration") or "").split():
            return descriptor
    raise MetadataInvalid("the entity has no IDPSSODescriptor supporting the SAML 2.0 protocol")


def _refuse_expired(*elements: ET.Element) -> None:
    now = datetime.now(timezone.utc)
    for element in elements:
        valid_until = element.get("validUntil")
        if valid_until and parse_instant(valid_until) <= now:
            raise MetadataInvalid(f"the metadata expired at {valid_until} (validUntil)")


def _service_location(descriptor: ET.Element, service: str) -> str | None:
    for endpoint in descriptor.findall(f"{{{MD}}}{service}"):
        if endpoint.get("Binding") == HTTP_REDIRECT and endpoint.get("Location"):
            return endpoint.get("Location")
    return None


def signing_certificates(descriptor: ET.Element) -> tuple[str, ...]:
    """PEM certificates of KeyDescriptors for signing (no `use` means both, metadata 2.4.1.1)."""
    found = []
    for key in descriptor.findall(f"{{{MD}}}KeyDescriptor"):
        if key.get("use", "signing") != "signing":
            continue
        for value in key.iter(f"{{{DS}}}X509Certificate"):
            pem = certificate_pem("".join(value.itertext()))
            if pem not in found:
                found.append(pem)
    return tuple(found)


def certificate_pem(value: str) -> str:
    """A certificate given as PEM or bare base64 DER, as normalized PEM; MetadataInvalid otherwise."""
    body = "".join(line for line in value.strip().splitlines() if not line.startswith("-----"))
    try:
        certificate = x509.load_der_x509_certificate(base64.b64decode("".join(body.split()), validate=True))
    except (binascii.Error, ValueError):
        raise MetadataInvalid("a certificate is not a valid X.509 certificate") from None
    return certificate.public_bytes(serialization.Encoding.PEM).decode("ascii")


def certificate_body(pem: str) -> str:
    """The base64 DER inside a PEM certificate, as ds:X509Certificate holds it."""
    return "".join(line for line in pem.strip().splitlines() if not line.startswith("-----"))


def parse_instant(value: str) -> datetime:
    """An xs:dateTime in UTC (SAML core 1.3.3); a value without a zone is taken as UTC."""
    parsed = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)


def merge_certificates(settings: dict, new: tuple[str, ...], entity_id: str) -> dict:
    """Settings trusting `new` (the certificates of IdP `entity_id`), keeping every previously
    trusted certificate not in `new` as retiring until a response verifies with a current one
    (rollover, metadata 2.4.1.1). Only a rollover of the same IdP keeps them: when the metadata now
    names another entity, the old IdP's certificates are dropped, or its key could sign assertions
    carrying the new IdP's Issuer."""
    previous = list(settings.get("certificates") or []) + list(settings.get("retiring_certificates") or [])
    same_idp = settings.get("entity_id") == entity_id
    retiring = [pem for pem in dict.fromkeys(previous) if pem not in new] if same_idp else []
    return {**settings, "certificates": list(new), "retiring_certificates": retiring}


def logout_url_of(settings: dict, metadata_slo_url: str | None, entity_id: str) -> str | None:
    """The IdP's SLO URL after reading its metadata: the metadata's, else the stored one only while the
    IdP is the same entity (or none was stored yet), so our LogoutRequests, NameID included, never go to
    an IdP this upstream switched away from."""
    if metadata_slo_url:
        return metadata_slo_url
    return settings.get("slo_url") if settings.get("entity_id") in (None, entity_id) else None


def generate_sp_key_pair(entity_id: str) -> tuple[str, str]:
    """A new RSA-3072 key and a ten-year self-signed certificate for it (metadata 2.4.1.1: SAML
    peers trust the key in metadata, not a CA), as (private key PEM, certificate PEM)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=3072)
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption()).decode("ascii")
    return key_pem, self_signed_certificate(key_pem, entity_id)


def self_signed_certificate(key_pem: str, entity_id: str) -> str:
    """A self-signed certificate for `key_pem`, valid ten years."""
    key = serialization.load_pem_private_key(key_pem.encode("ascii"), password=None)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Authy2 SAML SP"),
                      x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, entity_id[:64])])
    now = datetime.now(timezone.utc)
    certificate = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
                   .serial_number(x509.random_serial_number()).not_valid_before(now - timedelta(minutes=5))
                   .not_valid_after(now + timedelta(days=3650)).sign(key, hashes.SHA256()))
    return certificate.public_bytes(serialization.Encoding.PEM).decode("ascii")


def certificate_matches_key(certificate_pem_text: str, key_pem: str) -> bool:
    key = serialization.load_pem_private_key(key_pem.encode("ascii"), password=None)
    public = x509.load_pem_x509_certificate(certificate_pem_text.encode("ascii")).public_key()
    return public.public_numbers() == key.public_key().public_numbers()


def _key_descriptor(use: str, pem: str) -> str:
    return (f'<md:KeyDescriptor use="{use}"><ds:KeyInfo><ds:X509Data><ds:X509Certificate>'
            f"{certificate_body(pem)}</ds:X509Certificate></ds:X509Data></ds:KeyInfo></md:KeyDescriptor>")


def sp_metadata(entity_id: str, acs_url: str, slo_url: str, certificate: str) -> str:
    """Our SP metadata (metadata 2.4.4): signed AuthnRequests, signed assertions wanted, the SP
    certificate for signing and encryption, ACS over HTTP-POST, SLO over HTTP-Redirect."""
    return (f'<?xml version="1.0" encoding="UTF-8"?>\n<md:EntityDescriptor xmlns:md="{MD}" xmlns:ds="{DS}" '
            f"entityID={quoteattr(entity_id)}>"
            f'<md:SPSSODescriptor AuthnRequestsSigned="true" WantAssertionsSigned="true" '
            f'protocolSupportEnumeration="{PROTOCOL}">'
            f"{_key_descriptor('signing', certificate)}{_key_descriptor('encryption', certificate)}"
            f"<md:SingleLogoutService Binding=\"{HTTP_REDIRECT}\" Location={quoteattr(slo_url)}/>"
            f"<md:NameIDFormat>{NAMEID_PERSISTENT}</md:NameIDFormat>"
            f"<md:AssertionConsumerService Binding=\"{HTTP_POST}\" Location={quoteattr(acs_url)} index=\"0\" "
            f'isDefault="true"/></md:SPSSODescriptor></md:EntityDescriptor>\n')


def idp_metadata(entity_id: str, sso_url: str, slo_url: str | None, certificates: list[str]) -> str:
    """The IdP's metadata rebuilt from the stored settings, for pysaml2's in-memory metadata store:
    only the certificates we trust, whatever the IdP's original document said."""
    keys = "".join(_key_descriptor("signing", pem) for pem in certificates)
    slo = f'<md:SingleLogoutService Binding="{HTTP_REDIRECT}" Location={quoteattr(slo_url)}/>' if slo_url else ""
    return (f'<md:EntityDescriptor xmlns:md="{MD}" xmlns:ds="{DS}" entityID={quoteattr(entity_id)}>'
            f'<md:IDPSSODescriptor protocolSupportEnumeration="{PROTOCOL}" WantAuthnRequestsSigned="true">'
            f"{keys}{slo}<md:NameIDFormat>{escape(NAMEID_PERSISTENT)}</md:NameIDFormat>"
            f'<md:SingleSignOnService Binding="{HTTP_REDIRECT}" Location={quoteattr(sso_url)}/>'
            f"</md:IDPSSODescriptor></md:EntityDescriptor>")
