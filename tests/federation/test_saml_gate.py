"""The gate's rules one by one, as pure functions over the XML, before any signature is verified."""
from __future__ import annotations

import pytest

from idp.federation import saml_gate as gate
from idp.federation.connector import FederationRefused
from idp.federation.saml_verify import signature_verifies_with
from tests.federation.standins.saml_messages import (NODE_ASSERTION, NODE_RESPONSE, KeyPair, ResponseSpec,
                                                     build_response)
from tests.federation.standins.saml_tamper import ASSERTION_SIGNED, RESPONSE_SIGNED, xsw

ACS, AUDIENCE = "http://sp.example/acs", "http://sp.example/metadata"
C14N_INCLUSIVE = "http://www.w3.org/TR/2001/REC-xml-c14n-20010315"
XPATH = "http://www.w3.org/TR/1999/REC-xpath-19991116"


@pytest.fixture(scope="module")
def keys() -> KeyPair:
    return KeyPair.generate("gate idp")


@pytest.fixture(scope="module")
def assertion_signed(keys) -> tuple[str, ResponseSpec]:
    spec = ResponseSpec(acs_url=ACS, audience=AUDIENCE, in_response_to="_r")
    return build_response(keys, spec), spec


@pytest.fixture(scope="module")
def response_signed(keys) -> tuple[str, ResponseSpec]:
    spec = ResponseSpec(acs_url=ACS, audience=AUDIENCE, in_response_to="_r", sign_assertion=False, sign_response=True)
    return build_response(keys, spec), spec


def reason(function, *args) -> str:
    with pytest.raises(FederationRefused) as refused:
        function(*args)
    return refused.value.reason


def root_of(xml: str):
    return gate.parse_xml(xml.encode())


def test_genuine_response_passes(assertion_signed):
    """The gate lets a well-formed, assertion-signed response through, naming the signed assertion."""
    xml, spec = assertion_signed
    gated = gate.gate_response(xml.encode())
    assert (gated.assertion_id, gated.signed_ids, gated.encrypted) == (spec.assertion_id, {spec.assertion_id}, False)


def test_doctype_refused_in_raw_bytes():
    """SAML core 1.3 / OWASP XXE: a DOCTYPE is refused by a byte scan before any parser runs."""
    assert reason(gate.refuse_doctype, b'<?xml version="1.0"?><!doctype r [<!ENTITY a "b">]><r/>') == "dtd_forbidden"


def test_doctype_hidden_in_utf16_refused_by_parser():
    """Billion laughs in UTF-16 escapes a byte scan; defusedxml's forbid_dtd refuses it at the DOCTYPE."""
    xml = '<?xml version="1.0" encoding="UTF-16"?><!DOCTYPE r [<!ENTITY a "aaaa">]><r>&a;</r>'.encode("utf-16")
    assert reason(gate.parse_xml, xml) == "dtd_forbidden"


def test_malformed_xml_refused():
    """XML 1.0 well-formedness: a truncated document is refused."""
    assert reason(gate.parse_xml, b"<samlp:Response") == "malformed"


def test_comment_kept_as_node_and_refused():
    """CVE-2017-11427: comments are parsed as nodes (never silently merged) and refused."""
    assert reason(gate.refuse_comments, root_of("<r><n>user@evil.com<!---->.victim.com</n></r>")) == "comment_refused"


def test_processing_instruction_refused():
    """XML 1.0 2.6: a processing instruction inside the document is refused like a comment."""
    assert reason(gate.refuse_comments, root_of("<r><n>a<?pi x?>b</n></r>")) == "comment_refused"


def test_root_must_be_a_response():
    """Core 3.3.3: a bare Assertion (or anything else) is not a Response."""
    root = root_of('<saml:Assertion xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" ID="_a"/>')
    assert reason(gate.require_response, root) == "malformed"


def test_no_assertion_refused(assertion_signed):
    """Profiles 4.1.4.2: a Response without an assertion."""
    xml, _ = assertion_signed
    start, end = xml.index("<saml:Assertion"), xml.index("</saml:Assertion>") + len("</saml:Assertion>")
    assert reason(gate.require_single_assertion, root_of(xml[:start] + xml[end:])) == "assertion_count"


def test_lone_assertion_in_extensions_refused(assertion_signed):
    """XSW7's placement with one assertion only: it must be the Response's direct child."""
    xml, _ = assertion_signed
    start, end = xml.index("<saml:Assertion"), xml.index("</saml:Assertion>") + len("</saml:Assertion>")
    moved = (xml[:start] + xml[end:]).replace(
        "<samlp:Status>", f"<samlp:Extensions>{xml[start:end]}</samlp:Extensions><samlp:Status>")
    assert reason(gate.require_single_assertion, root_of(moved)) == "assertion_count"


def test_duplicate_id_refused(assertion_signed):
    """XML Signature 4.4.3.3: an ID used twice makes a Reference ambiguous."""
    xml, spec = assertion_signed
    assert reason(gate.require_unique_ids, root_of(xml.replace(spec.response_id, spec.assertion_id))) == "duplicate_id"


def _placement(xml: str) -> str:
    root = root_of(xml)
    return reason(gate.check_signature_placement, root, root.find(gate.ASSERTION))


def test_reference_to_another_element_refused(assertion_signed):
    """Core 5.4.2: the Reference URI must name the Signature's parent."""
    xml, spec = assertion_signed
    assert _placement(xml.replace(f'URI="#{spec.assertion_id}"', f'URI="#{spec.response_id}"')) == "signature_placement"


def test_whole_document_reference_refused(assertion_signed):
    """Core 5.4.2: URI="" (the whole document) is not an enveloped reference to the assertion."""
    xml, spec = assertion_signed
    assert _placement(xml.replace(f'URI="#{spec.assertion_id}"', 'URI=""')) == "signature_placement"


def test_two_signatures_on_one_element_refused(assertion_signed):
    """Core 5.4.2: one enveloped Signature per signed element."""
    xml, _ = assertion_signed
    start, end = xml.index("<ds:Signature"), xml.index("</ds:Signature>") + len("</ds:Signature>")
    assert _placement(xml[:end] + xml[start:end] + xml[end:]) == "signature_placement"


def test_signature_object_refused(assertion_signed):
    """Core 5.4 / Somorovsky et al. 2012 XSW8: a ds:Object can carry unsigned content."""
    xml, _ = assertion_signed
    assert _placement(xml.replace("</ds:KeyInfo>", "</ds:KeyInfo><ds:Object/>", 1)) == "signature_placement"


@pytest.mark.parametrize(("old", "new"), [
    ("xmldsig-more#rsa-sha256", "xmldsig-more#hmac-sha256"),
    ('SignatureMethod Algorithm="http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"',
     'SignatureMethod Algorithm="http://www.w3.org/2000/09/xmldsig#rsa-sha1"'),
    ('DigestMethod Algorithm="http://www.w3.org/2001/04/xmlenc#sha256"',
     'DigestMethod Algorithm="http://www.w3.org/2000/09/xmldsig#sha1"'),
    ('<ds:CanonicalizationMethod Algorithm="http://www.w3.org/2001/10/xml-exc-c14n#"/>',
     f'<ds:CanonicalizationMethod Algorithm="{C14N_INCLUSIVE}"/>'),
    ("</ds:Transforms>", f'<ds:Transform Algorithm="{XPATH}"/></ds:Transforms>'),
], ids=["hmac", "rsa-sha1", "sha1-digest", "inclusive-c14n", "xpath-transform"])
def test_weak_or_unexpected_algorithm_refused(assertion_signed, old, new):
    """Core 5.4.3-5.4.4, NIST SP 800-131A: only RSA/ECDSA SHA-2, exclusive c14n, enveloped transforms."""
    xml, _ = assertion_signed
    assert _placement(xml.replace(old, new, 1)) == "algorithm_refused"


def test_unsigned_refused():
    """Profiles 4.1.3.5: nothing signed and nothing encrypted."""
    assert reason(gate.require_signed, frozenset(), False) == "unsigned"


def _decrypted(xml: str) -> str:
    """A response as pysaml2 hands it back after decryption: the assertion inside EncryptedAssertion."""
    start, end = xml.index("<saml:Assertion"), xml.index("</saml:Assertion>") + len("</saml:Assertion>")
    return f"{xml[:start]}<saml:EncryptedAssertion>{xml[start:end]}</saml:EncryptedAssertion>{xml[end:]}"


def test_decrypted_document_passes(assertion_signed):
    """The same rules after decryption: one assertion where its ciphertext was."""
    xml, spec = assertion_signed
    assert gate.gate_decrypted(_decrypted(xml)).assertion_id == spec.assertion_id


def test_comment_hidden_by_encryption_refused(assertion_signed):
    """CVE-2017-11427 inside an EncryptedAssertion: the comment shows only after decryption."""
    xml, _ = assertion_signed
    hidden = _decrypted(xml).replace("<saml:NameID Format", "<!-- x --><saml:NameID Format")
    assert reason(gate.gate_decrypted, hidden) == "comment_refused"


def test_second_assertion_after_decryption_refused(assertion_signed):
    """XSW with an encrypted wrapper: a plain assertion beside the decrypted one."""
    xml, _ = assertion_signed
    decrypted = _decrypted(xml)
    start, end = xml.index("<saml:Assertion"), xml.index("</saml:Assertion>") + len("</saml:Assertion>")
    extra = xml[start:end].replace('ID="_', 'ID="_x')
    assert reason(gate.gate_decrypted, decrypted.replace("</samlp:Response>", extra + "</samlp:Response>")) \
        == "assertion_count"


# XSW1-XSW8 (Somorovsky et al., "On Breaking SAML", USENIX Security 2012): the attacks are live
# against xmlsec1 alone, and each is stopped by a second rule even with the one-assertion rule set aside.

XMLSEC_VERIFIES = {"xsw1": False, "xsw2": True, "xsw3": True, "xsw4": True, "xsw5": False, "xsw6": False,
                   "xsw7": True, "xsw8": False}


@pytest.mark.parametrize("variant", RESPONSE_SIGNED + ASSERTION_SIGNED)
def test_xmlsec1_alone_on_wrapped_documents(variant, assertion_signed, response_signed, keys):
    """xmlsec1 verifies the moved signature in XSW2-4 and 7 (only structure checks stop them); it
    refuses XSW1 itself (a Response inside ds:Signature breaks its schema) and XSW5, 6 and 8 (duplicate IDs)."""
    if variant in RESPONSE_SIGNED:
        # The Signature now sits in the evil Response: that is where a verifier finds it.
        (xml, _), node, node_id = response_signed, NODE_RESPONSE, "_evil_response"
    else:
        (xml, _), node, node_id = assertion_signed, NODE_ASSERTION, assertion_signed[1].assertion_id
    assert signature_verifies_with(xsw(variant, xml), keys.cert_pem, node, node_id) is XMLSEC_VERIFIES[variant]


SECOND_RULE = {"xsw1": "signature_placement", "xsw2": "signature_placement", "xsw3": "signature_placement",
               "xsw4": "signature_placement", "xsw5": "duplicate_id", "xsw6": "duplicate_id",
               "xsw7": "signature_placement", "xsw8": "duplicate_id"}


@pytest.mark.parametrize("variant", RESPONSE_SIGNED + ASSERTION_SIGNED)
def test_wrapping_refused_by_second_rule(variant, assertion_signed, response_signed):
    """Defence in depth: the ID and placement rules refuse each XSW variant on their own, with the
    SP reading the first assertion in document order (what a naive SP reads)."""
    xml = (response_signed if variant in RESPONSE_SIGNED else assertion_signed)[0]
    root = root_of(xsw(variant, xml))
    first = next(e for e in gate.elements(root) if e.tag == gate.ASSERTION)

    def rules():
        gate.require_unique_ids(root)
        gate.check_signature_placement(root, first)

    assert reason(rules) == SECOND_RULE[variant]
