"""SAML 2.0 messages as an IdP writes them, signed and encrypted with xmlsec1 (the same tool real
IdPs such as Shibboleth's C++ SP and SimpleSAMLphp-era stacks use), for the stand-in IdP and for
tests that need a response without HTTP.

    keys = KeyPair.generate("idp")
    xml = build_response(keys, ResponseSpec(acs_url=..., audience=..., in_response_to=...))

`ResponseSpec` fields say everything a test may want wrong: issuer, audience, destination,
recipient, times, NameID (raw XML allowed, for comment injection), which element is signed and how,
and whether the assertion is encrypted for an SP certificate.
"""
from __future__ import annotations

import os
import secrets
import subprocess
import tempfile
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from xml.sax.saxutils import escape, quoteattr

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

XMLSEC = "/usr/bin/xmlsec1"
SAMLP = "urn:oasis:names:tc:SAML:2.0:protocol"
SAML = "urn:oasis:names:tc:SAML:2.0:assertion"
DS = "http://www.w3.org/2000/09/xmldsig#"
XENC = "http://www.w3.org/2001/04/xmlenc#"
PERSISTENT = "urn:oasis:names:tc:SAML:2.0:nameid-format:persistent"
RSA_SHA256 = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"
RSA_SHA1 = "http://www.w3.org/2000/09/xmldsig#rsa-sha1"
HMAC_SHA256 = "http://www.w3.org/2001/04/xmldsig-more#hmac-sha256"
SHA256 = "http://www.w3.org/2001/04/xmlenc#sha256"
SHA1 = "http://www.w3.org/2000/09/xmldsig#sha1"
EXC_C14N = "http://www.w3.org/2001/10/xml-exc-c14n#"
ENVELOPED = "http://www.w3.org/2000/09/xmldsig#enveloped-signature"
NODE_ASSERTION = f"{SAML}:Assertion"
NODE_RESPONSE = f"{SAMLP}:Response"


@dataclass(frozen=True)
class KeyPair:
    """An RSA key and its self-signed certificate, as PEM."""

    key_pem: str
    cert_pem: str

    @classmethod
    def generate(cls, name: str, bits: int = 2048) -> "KeyPair":
        key = rsa.generate_private_key(public_exponent=65537, key_size=bits)
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
        now = datetime.now(timezone.utc)
        cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject).public_key(key.public_key())
                .serial_number(x509.random_serial_number()).not_valid_before(now - timedelta(days=1))
                .not_valid_after(now + timedelta(days=3650)).sign(key, hashes.SHA256()))
        key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                    serialization.NoEncryption()).decode()
        return cls(key_pem, cert.public_bytes(serialization.Encoding.PEM).decode())

    @property
    def cert_body(self) -> str:
        return "".join(line for line in self.cert_pem.strip().splitlines() if not line.startswith("-----"))


def new_id() -> str:
    return "_" + secrets.token_hex(16)


def instant(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class ResponseSpec:
    """One Response to build; defaults make a valid, assertion-signed answer."""

    acs_url: str
    audience: str
    issuer: str = "http://idp.example/metadata"
    in_response_to: str | None = None
    destination: str | None = "acs"          # "acs" = acs_url
    recipient: str | None = "acs"
    name_id: str = "user-0001"
    name_id_xml: str | None = None           # raw NameID element content (may carry a comment)
    name_id_format: str = PERSISTENT
    attributes: dict = field(default_factory=dict)
    session_index: str = "_session-1"
    now: datetime | None = None
    not_before: timedelta | None = timedelta(minutes=-1)    # relative to now; None omits it
    not_on_or_after: timedelta = timedelta(minutes=5)
    confirmation_not_on_or_after: timedelta = timedelta(minutes=5)
    status: str = "urn:oasis:names:tc:SAML:2.0:status:Success"
    assertion_id: str = field(default_factory=new_id)
    response_id: str = field(default_factory=new_id)
    sign_assertion: bool = True
    sign_response: bool = False
    signature_method: str = RSA_SHA256
    digest_method: str = SHA256
    encrypt_for: str | None = None           # an SP certificate PEM: send an EncryptedAssertion


def signature_template(reference_id: str, method: str = RSA_SHA256, digest: str = SHA256) -> str:
    """An enveloped-signature template for xmlsec1 (XML Signature 2.1; SAML core 5.4)."""
    return (f'<ds:Signature xmlns:ds="{DS}"><ds:SignedInfo>'
            f'<ds:CanonicalizationMethod Algorithm="{EXC_C14N}"/><ds:SignatureMethod Algorithm="{method}"/>'
            f'<ds:Reference URI="#{reference_id}"><ds:Transforms><ds:Transform Algorithm="{ENVELOPED}"/>'
            f'<ds:Transform Algorithm="{EXC_C14N}"/></ds:Transforms><ds:DigestMethod Algorithm="{digest}"/>'
            f"<ds:DigestValue></ds:DigestValue></ds:Reference></ds:SignedInfo><ds:SignatureValue></ds:SignatureValue>"
            f"<ds:KeyInfo><ds:X509Data></ds:X509Data></ds:KeyInfo></ds:Signature>")


def _run_xmlsec(args: list[str], document: str) -> str:
    with tempfile.TemporaryDirectory() as tmp:
        source, output = os.path.join(tmp, "in.xml"), os.path.join(tmp, "out.xml")
        with open(source, "w") as handle:
            handle.write(document)
        subprocess.run([XMLSEC, *args, "--output", output, source], check=True, capture_output=True)
        with open(output) as handle:
            text = handle.read()
    return text.split("?>", 1)[1].lstrip() if text.startswith("<?xml") else text


def sign(document: str, keys: KeyPair, node: str, node_id: str) -> str:
    """Fill in the Signature template of the element `node_id` (xmlsec1 --sign)."""
    with tempfile.TemporaryDirectory() as tmp:
        key, cert = os.path.join(tmp, "key.pem"), os.path.join(tmp, "cert.pem")
        with open(key, "w") as handle:
            handle.write(keys.key_pem)
        with open(cert, "w") as handle:
            handle.write(keys.cert_pem)
        return _run_xmlsec(["--sign", "--privkey-pem", f"{key},{cert}", "--id-attr:ID", node,
                            "--node-id", node_id], document)


def hmac_sign(document: str, secret: bytes, node: str, node_id: str) -> str:
    """Sign with HMAC under `secret` (what an attacker who knows a public "key" would do)."""
    with tempfile.TemporaryDirectory() as tmp:
        key = os.path.join(tmp, "hmac.bin")
        with open(key, "wb") as handle:
            handle.write(secret)
        return _run_xmlsec(["--sign", "--hmackey", key, "--id-attr:ID", node, "--node-id", node_id], document)


def encrypt(element_xml: str, sp_cert_pem: str) -> str:
    """An xenc:EncryptedData of `element_xml` for the SP certificate: AES-256-CBC content key
    wrapped with RSA-OAEP (XML Encryption 5.2, 5.4.2)."""
    template = (f'<xenc:EncryptedData xmlns:xenc="{XENC}" Type="{XENC}Element">'
                f'<xenc:EncryptionMethod Algorithm="{XENC}aes256-cbc"/>'
                f'<ds:KeyInfo xmlns:ds="{DS}"><xenc:EncryptedKey>'
                f'<xenc:EncryptionMethod Algorithm="{XENC}rsa-oaep-mgf1p"/>'
                f"<xenc:CipherData><xenc:CipherValue></xenc:CipherValue></xenc:CipherData></xenc:EncryptedKey>"
                f"</ds:KeyInfo><xenc:CipherData><xenc:CipherValue></xenc:CipherValue></xenc:CipherData>"
                f"</xenc:EncryptedData>")
    with tempfile.TemporaryDirectory() as tmp:
        data, cert = os.path.join(tmp, "data.xml"), os.path.join(tmp, "sp.pem")
        with open(data, "w") as handle:
            handle.write(element_xml)
        with open(cert, "w") as handle:
            handle.write(sp_cert_pem)
        return _run_xmlsec(["--encrypt", "--pubkey-cert-pem", cert, "--session-key", "aes-256", "--xml-data", data],
                           template)


def _attributes_xml(attributes: dict) -> str:
    if not attributes:
        return ""
    parts = []
    for name, values in attributes.items():
        values = values if isinstance(values, (list, tuple)) else [values]
        body = "".join(f"<saml:AttributeValue>{escape(str(v))}</saml:AttributeValue>" for v in values)
        parts.append(f'<saml:Attribute Name={quoteattr(name)} '
                     f'NameFormat="urn:oasis:names:tc:SAML:2.0:attrname-format:uri">{body}</saml:Attribute>')
    return f"<saml:AttributeStatement>{''.join(parts)}</saml:AttributeStatement>"


def assertion_xml(spec: ResponseSpec, keys: KeyPair | None = None) -> str:
    """The Assertion (SAML core 2.3.3), signed when spec.sign_assertion (with `keys`)."""
    now = spec.now or datetime.now(timezone.utc)
    recipient = spec.acs_url if spec.recipient == "acs" else spec.recipient
    in_response_to = f" InResponseTo={quoteattr(spec.in_response_to)}" if spec.in_response_to else ""
    recipient_attr = f" Recipient={quoteattr(recipient)}" if recipient else ""
    not_before = f' NotBefore="{instant(now + spec.not_before)}"' if spec.not_before is not None else ""
    name_id = spec.name_id_xml if spec.name_id_xml is not None else escape(spec.name_id)
    signature = signature_template(spec.assertion_id, spec.signature_method, spec.digest_method) \
        if spec.sign_assertion else ""
    xml = (f'<saml:Assertion xmlns:saml="{SAML}" ID="{spec.assertion_id}" Version="2.0" IssueInstant="{instant(now)}">'
           f"<saml:Issuer>{escape(spec.issuer)}</saml:Issuer>{signature}"
           f"<saml:Subject><saml:NameID Format={quoteattr(spec.name_id_format)}>{name_id}</saml:NameID>"
           f'<saml:SubjectConfirmation Method="urn:oasis:names:tc:SAML:2.0:cm:bearer">'
           f'<saml:SubjectConfirmationData NotOnOrAfter="{instant(now + spec.confirmation_not_on_or_after)}"'
           f"{recipient_attr}{in_response_to}/></saml:SubjectConfirmation></saml:Subject>"
           f'<saml:Conditions{not_before} NotOnOrAfter="{instant(now + spec.not_on_or_after)}">'
           f"<saml:AudienceRestriction><saml:Audience>{escape(spec.audience)}</saml:Audience>"
           f"</saml:AudienceRestriction></saml:Conditions>"
           f'<saml:AuthnStatement AuthnInstant="{instant(now)}" SessionIndex={quoteattr(spec.session_index)}>'
           f"<saml:AuthnContext><saml:AuthnContextClassRef>"
           f"urn:oasis:names:tc:SAML:2.0:ac:classes:PasswordProtectedTransport</saml:AuthnContextClassRef>"
           f"</saml:AuthnContext></saml:AuthnStatement>{_attributes_xml(spec.attributes)}</saml:Assertion>")
    if spec.sign_assertion:
        xml = sign(xml, keys, NODE_ASSERTION, spec.assertion_id)
    return xml


def build_response(keys: KeyPair, spec: ResponseSpec, *, assertion: str | None = None) -> str:
    """The samlp:Response (SAML core 3.3.3) carrying the assertion (built from `spec` unless given),
    encrypted when spec.encrypt_for, the Response signed when spec.sign_response."""
    now = spec.now or datetime.now(timezone.utc)
    body = assertion if assertion is not None else assertion_xml(spec, keys)
    if spec.encrypt_for:
        encrypted = encrypt(body, spec.encrypt_for)
        body = f'<saml:EncryptedAssertion xmlns:saml="{SAML}">{encrypted}</saml:EncryptedAssertion>'
    destination = spec.acs_url if spec.destination == "acs" else spec.destination
    attrs = f' Destination={quoteattr(destination)}' if destination else ""
    if spec.in_response_to:
        attrs += f" InResponseTo={quoteattr(spec.in_response_to)}"
    signature = signature_template(spec.response_id, spec.signature_method, spec.digest_method) \
        if spec.sign_response else ""
    xml = (f'<samlp:Response xmlns:samlp="{SAMLP}" xmlns:saml="{SAML}" ID="{spec.response_id}" Version="2.0" '
           f'IssueInstant="{instant(now)}"{attrs}><saml:Issuer>{escape(spec.issuer)}</saml:Issuer>{signature}'
           f'<samlp:Status><samlp:StatusCode Value={quoteattr(spec.status)}/></samlp:Status>{body}</samlp:Response>')
    if spec.sign_response:
        xml = sign(xml, keys, NODE_RESPONSE, spec.response_id)
    return xml
