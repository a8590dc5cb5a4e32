"""The strict gate in front of pysaml2: pure checks over a SAML Response's XML before any signature
is verified, so that the element xmlsec1 verifies is the only one anything reads afterwards.

Every rule is an attack that happened. A response reaches pysaml2 only when it has no DTD, exactly
one (encrypted) assertion, unique IDs, each Signature a direct child of the element its single
Reference names (the Response or that one assertion), only enveloped-signature and exclusive c14n
transforms, only RSA/ECDSA with SHA-256 or stronger, and no comment or processing instruction
anywhere. `gate_response` applies them in that order; `gate_decrypted` applies them again to the
document pysaml2 decrypted. Every refusal is a FederationRefused with a short reason.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from xml.etree import ElementTree as ET

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import DefusedXMLParser

from idp.federation.connector import FederationRefused

SAMLP = "urn:oasis:names:tc:SAML:2.0:protocol"
SAML = "urn:oasis:names:tc:SAML:2.0:assertion"
DS = "http://www.w3.org/2000/09/xmldsig#"
XENC = "http://www.w3.org/2001/04/xmlenc#"

RESPONSE = f"{{{SAMLP}}}Response"
ASSERTION = f"{{{SAML}}}Assertion"
ENCRYPTED_ASSERTION = f"{{{SAML}}}EncryptedAssertion"
SIGNATURE = f"{{{DS}}}Signature"

EXC_C14N = "http://www.w3.org/2001/10/xml-exc-c14n#"
ENVELOPED = "http://www.w3.org/2000/09/xmldsig#enveloped-signature"
# Public-key signatures with SHA-2 only: no SHA-1 (SHAttered), never HMAC (a "key" any verifier
# holding the certificate can forge with: the HMAC key-confusion family, CVE-2021-21239's sibling).
SIGNATURE_METHODS = frozenset({
    "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256",
    "http://www.w3.org/2001/04/xmldsig-more#rsa-sha384",
    "http://www.w3.org/2001/04/xmldsig-more#rsa-sha512",
    "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha256",
    "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha384",
    "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha512",
})
DIGEST_METHODS = frozenset({
    "http://www.w3.org/2001/04/xmlenc#sha256",
    "http://www.w3.org/2001/04/xmldsig-more#sha384",
    "http://www.w3.org/2001/04/xmlenc#sha512",
})
ID_ATTRIBUTES = ("ID", "Id", "id", "{http://www.w3.org/XML/1998/namespace}id")
_DOCTYPE = re.compile(rb"<!\s*(DOCTYPE|ENTITY|ELEMENT|ATTLIST)", re.IGNORECASE)


@dataclass(frozen=True)
class GatedResponse:
    """A Response that passed the gate: its root, its one assertion (None while encrypted), the
    assertion's ID, and the IDs of the elements that carry a Signature."""

    root: ET.Element
    assertion: ET.Element | None
    assertion_id: str | None
    encrypted: bool
    signed_ids: frozenset[str]


def _refuse(reason: str, detail: str) -> FederationRefused:
    return FederationRefused(reason, detail=detail)


def refuse_doctype(xml: bytes) -> None:
    """No DTD, entity, element or attribute-list declaration, looked for in the raw bytes before any
    parser sees them: XXE and entity expansion ("billion laughs", CWE-776) are refused before they
    can expand (SAML core 1.3: SAML messages have no DTD; OWASP XXE Prevention Cheat Sheet)."""
    if _DOCTYPE.search(xml):
        raise _refuse("dtd_forbidden", "the document declares a DOCTYPE or entity")


def parse_xml(xml: bytes) -> ET.Element:
    """Parse with defusedxml (forbid_dtd, no entities, no external references), keeping comments
    and processing instructions as nodes so that the comment rule can see them (CVE-2017-11427)."""
    refuse_doctype(xml)
    builder = ET.TreeBuilder(insert_comments=True, insert_pis=True)
    parser = DefusedXMLParser(target=builder, forbid_dtd=True, forbid_entities=True, forbid_external=True)
    try:
        parser.feed(xml)
        return parser.close()
    except DefusedXmlException:
        raise _refuse("dtd_forbidden", "the parser met a DTD or entity") from None
    except ET.ParseError as error:
        raise _refuse("malformed", f"not well-formed XML: {error}") from None


def elements(root: ET.Element):
    """Every element of the document (comments and processing instructions excluded)."""
    return (node for node in root.iter() if isinstance(node.tag, str))


def element_id(element: ET.Element) -> str | None:
    """The element's SAML ID attribute (SAML core 1.3.4: xs:ID)."""
    return element.get("ID")


def refuse_comments(root: ET.Element) -> None:
    """No comment or processing instruction anywhere: "user@evil.com<!---->.victim.com" makes
    libraries that read the first text node see "user@evil.com" while the signature covers the whole
    value (CVE-2017-11427, Duo Labs 2018). SAML IdPs emit none, so none is accepted."""
    for node in root.iter():
        if node.tag is ET.Comment or node.tag is ET.ProcessingInstruction:
            raise _refuse("comment_refused", "the document contains a comment or processing instruction")


def require_response(root: ET.Element) -> None:
    """The document is a samlp:Response (SAML core 3.3.3), nothing wrapped around it."""
    if root.tag != RESPONSE:
        raise _refuse("malformed", f"the root element is {root.tag}, not a samlp:Response")


def require_single_assertion(root: ET.Element, *, decrypted: bool = False) -> ET.Element:
    """Exactly one Assertion or EncryptedAssertion in the whole document, anywhere, as the Response's
    direct child: every signature-wrapping attack (XSW1-XSW8, Somorovsky et al., "On Breaking SAML:
    Be Whoever You Want to Be", USENIX Security 2012, 5) needs a second assertion somewhere. After
    decryption, the one Assertion sits in the EncryptedAssertion that held it."""
    found = [e for e in elements(root) if e.tag in (ASSERTION, ENCRYPTED_ASSERTION)]
    if decrypted:
        assertions = [e for e in found if e.tag == ASSERTION]
        wrappers = [e for e in found if e.tag == ENCRYPTED_ASSERTION]
        if len(assertions) != 1 or len(wrappers) > 1:
            raise _refuse("assertion_count", f"{len(assertions)} assertions after decryption")
        if wrappers and (assertions[0] not in list(wrappers[0]) or wrappers[0] not in list(root)):
            raise _refuse("assertion_count", "the decrypted assertion is not where its ciphertext was")
        return assertions[0]
    if len(found) != 1:
        raise _refuse("assertion_count", f"{len(found)} assertions in the response")
    if found[0] not in list(root):
        raise _refuse("assertion_count", "the assertion is not a direct child of the Response")
    return found[0]


def require_unique_ids(root: ET.Element) -> None:
    """No ID value occurs twice, whatever the attribute's spelling, so that a Reference URI names one
    element only (XML Signature 4.4.3.3 same-document references; XSW5/XSW6 duplicate the ID)."""
    seen: set[str] = set()
    for element in elements(root):
        for name in ID_ATTRIBUTES:
            value = element.get(name)
            if value is None:
                continue
            if value in seen:
                raise _refuse("duplicate_id", f"the ID {value!r} occurs more than once")
            seen.add(value)


def check_signature_placement(root: ET.Element, assertion: ET.Element) -> frozenset[str]:
    """Each Signature is a direct child of the Response or of the one assertion, at most one per
    element, with a single Reference whose URI is "#" + its parent's ID, and no ds:Object (SAML core
    5.4.1-5.4.2 enveloped signatures; Somorovsky et al. 2012, 7.1 "only process what is hashed").
    Returns the IDs of the signed elements."""
    parents = {child: parent for parent in elements(root) for child in parent}
    signed: set[str] = set()
    for signature in (e for e in elements(root) if e.tag == SIGNATURE):
        parent = parents.get(signature)
        if parent is not root and parent is not assertion:
            raise _refuse("signature_placement", "a Signature is not a direct child of the Response or the assertion")
        parent_id = element_id(parent)
        if not parent_id or parent_id in signed:
            raise _refuse("signature_placement", "a signed element has no ID or more than one Signature")
        references = signature.findall(f"{{{DS}}}SignedInfo/{{{DS}}}Reference")
        if len(references) != 1 or references[0].get("URI") != f"#{parent_id}":
            raise _refuse("signature_placement", "the Signature does not reference exactly its parent element")
        if signature.find(f"{{{DS}}}Object") is not None:
            raise _refuse("signature_placement", "the Signature carries a ds:Object")
        check_signature_algorithms(signature)
        signed.add(parent_id)
    return frozenset(signed)


def check_signature_algorithms(signature: ET.Element) -> None:
    """Exclusive c14n; transforms only enveloped-signature and exclusive c14n, enveloped included;
    RSA or ECDSA with SHA-256 or stronger; SHA-256 or stronger digests (SAML core 5.4.3-5.4.4;
    NIST SP 800-131A rev. 2: no SHA-1 signatures; never HMAC)."""
    info = signature.find(f"{{{DS}}}SignedInfo")
    c14n = info.find(f"{{{DS}}}CanonicalizationMethod")
    method = info.find(f"{{{DS}}}SignatureMethod")
    reference = info.find(f"{{{DS}}}Reference")
    digest = reference.find(f"{{{DS}}}DigestMethod")
    transforms = [t.get("Algorithm") for t in reference.findall(f"{{{DS}}}Transforms/{{{DS}}}Transform")]
    if c14n is None or c14n.get("Algorithm") != EXC_C14N:
        raise _refuse("algorithm_refused", "the canonicalization is not exclusive c14n")
    if ENVELOPED not in transforms or not set(transforms) <= {ENVELOPED, EXC_C14N} or len(transforms) > 2:
        raise _refuse("algorithm_refused", f"transforms {transforms} are not enveloped-signature + exclusive c14n")
    signature_method = method.get("Algorithm") if method is not None else None
    digest_method = digest.get("Algorithm") if digest is not None else None
    if signature_method not in SIGNATURE_METHODS:
        raise _refuse("algorithm_refused", f"signature method {signature_method}")
    if digest_method not in DIGEST_METHODS:
        raise _refuse("algorithm_refused", f"digest method {digest_method}")


def require_signed(signed_ids: frozenset[str], encrypted: bool) -> None:
    """The Response or its assertion is signed (SAML profiles 4.1.3.5: the assertion MUST be signed
    or the response enclosing it). An encrypted assertion may carry its signature inside: that is
    checked again on the decrypted document."""
    if not signed_ids and not encrypted:
        raise _refuse("unsigned", "neither the Response nor its assertion is signed")


def gate_response(xml: bytes) -> GatedResponse:
    """Every rule above, in order, on a received Response (before pysaml2 or xmlsec1 see it)."""
    root = parse_xml(xml)
    refuse_comments(root)
    require_response(root)
    assertion = require_single_assertion(root)
    require_unique_ids(root)
    encrypted = assertion.tag == ENCRYPTED_ASSERTION
    signed = check_signature_placement(root, assertion)
    require_signed(signed, encrypted)
    if encrypted:
        return GatedResponse(root, None, None, True, signed)
    return GatedResponse(root, assertion, element_id(assertion), False, signed)


def gate_decrypted(xml: bytes | str) -> GatedResponse:
    """The same rules on the document pysaml2 decrypted: one plain assertion where the ciphertext
    was, unique IDs, well-placed strong signatures, no comments (the ciphertext hid them before)."""
    root = parse_xml(xml.encode("utf-8") if isinstance(xml, str) else xml)
    refuse_comments(root)
    require_response(root)
    assertion = require_single_assertion(root, decrypted=True)
    require_unique_ids(root)
    signed = check_signature_placement(root, assertion)
    require_signed(signed, False)
    return GatedResponse(root, assertion, element_id(assertion), True, signed)
