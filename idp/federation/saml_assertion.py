"""Our own checks on the verified Response and its one assertion, and what we read from them.

Everything here walks down from the element the gate found and xmlsec1 verified (by direct
children, never a document-wide search), so an unsigned element elsewhere can never be read
(Somorovsky et al., "On Breaking SAML", USENIX Security 2012, 7.1). Each check raises
FederationRefused with its own reason.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from xml.etree import ElementTree as ET

from idp.federation.connector import FederationRefused
from idp.federation.saml_gate import SAML, SAMLP
from idp.federation.saml_metadata import parse_instant

SKEW = timedelta(seconds=60)
BEARER = "urn:oasis:names:tc:SAML:2.0:cm:bearer"
SUCCESS = "urn:oasis:names:tc:SAML:2.0:status:Success"


@dataclass(frozen=True)
class Expected:
    """What the verified response must say: its issuer, our entity ID and ACS, the request it
    answers (None for an allowed unsolicited response), and the time now."""

    idp_entity_id: str
    sp_entity_id: str
    acs_url: str
    request_id: str | None
    now: datetime


def _children(element: ET.Element, ns: str, name: str) -> list[ET.Element]:
    return element.findall(f"{{{ns}}}{name}")


def child(element: ET.Element | None, ns: str, name: str) -> ET.Element | None:
    """The one direct child `name`; two of them are refused (schema: at most one)."""
    if element is None:
        return None
    found = _children(element, ns, name)
    if len(found) > 1:
        raise FederationRefused("malformed", detail=f"{len(found)} {name} elements")
    return found[0] if found else None


def text_of(element: ET.Element | None) -> str | None:
    """The element's whole text content, stripped; an element with child elements is refused (SAML
    simple-content values; the gate already refused comments, CVE-2017-11427)."""
    if element is None:
        return None
    if len(element):
        raise FederationRefused("malformed", detail=f"{element.tag} has child elements")
    return (element.text or "").strip() or None


def _instant(element: ET.Element, attribute: str) -> datetime | None:
    value = element.get(attribute)
    if value is None:
        return None
    try:
        return parse_instant(value)
    except ValueError:
        raise FederationRefused("malformed", detail=f"{attribute}={value!r} is not an xs:dateTime") from None


def check_status(response: ET.Element) -> None:
    """The top-level StatusCode is Success (SAML core 3.2.2.2)."""
    code = child(child(response, SAMLP, "Status"), SAMLP, "StatusCode")
    if code is None or code.get("Value") != SUCCESS:
        raise FederationRefused("status", detail=f"status {code.get('Value') if code is not None else None}")


def check_issuer(response: ET.Element, assertion: ET.Element, expected: Expected) -> None:
    """The assertion's Issuer, and the Response's when present, is the IdP's entity ID (SAML
    profiles 4.1.4.2, 4.1.4.3)."""
    for issuer in (text_of(child(response, SAML, "Issuer")), text_of(child(assertion, SAML, "Issuer"))):
        if issuer is not None and issuer != expected.idp_entity_id:
            raise FederationRefused("issuer", detail=f"Issuer {issuer!r}")
    if child(assertion, SAML, "Issuer") is None:
        raise FederationRefused("issuer", detail="the assertion has no Issuer")


def check_destination(response: ET.Element, expected: Expected) -> None:
    """The Response's Destination is our ACS URL (SAML bindings 3.5.5.2; required here, so that a
    response for another SP's ACS is never accepted at ours)."""
    if response.get("Destination") != expected.acs_url:
        raise FederationRefused("destination", detail=f"Destination {response.get('Destination')!r}")


def check_in_response_to(response: ET.Element, confirmations: list[ET.Element], expected: Expected) -> None:
    """InResponseTo on the Response and on every bearer SubjectConfirmationData equals the ID of
    the AuthnRequest this browser started, and is absent on an allowed unsolicited response (SAML
    profiles 4.1.4.2-4.1.4.3, 4.1.5)."""
    values = [response.get("InResponseTo")] + [data.get("InResponseTo") for data in confirmations]
    if expected.request_id is None:
        if any(value is not None for value in values):
            raise FederationRefused("in_response_to", detail="an unsolicited response names a request")
    elif any(value != expected.request_id for value in values):
        raise FederationRefused("in_response_to", detail=f"InResponseTo {values}")


def bearer_confirmations(assertion: ET.Element) -> list[ET.Element]:
    """The SubjectConfirmationData of the bearer SubjectConfirmations; at least one is required
    (SAML profiles 4.1.4.2)."""
    subject = child(assertion, SAML, "Subject")
    found = []
    for confirmation in _children(subject, SAML, "SubjectConfirmation") if subject is not None else []:
        if confirmation.get("Method") == BEARER:
            data = child(confirmation, SAML, "SubjectConfirmationData")
            if data is None:
                raise FederationRefused("subject_confirmation", detail="a bearer confirmation has no data")
            found.append(data)
    if not found:
        raise FederationRefused("subject_confirmation", detail="no bearer SubjectConfirmation")
    return found


def check_confirmation(data: ET.Element, expected: Expected) -> datetime:
    """A bearer SubjectConfirmationData: Recipient is our ACS, NotOnOrAfter present and not past,
    NotBefore (if any) not in the future, with SKEW (SAML profiles 4.1.4.2, core 2.4.1.2). Returns
    its NotOnOrAfter."""
    if data.get("Recipient") != expected.acs_url:
        raise FederationRefused("recipient", detail=f"Recipient {data.get('Recipient')!r}")
    not_on_or_after = _instant(data, "NotOnOrAfter")
    if not_on_or_after is None:
        raise FederationRefused("subject_confirmation", detail="the bearer confirmation has no NotOnOrAfter")
    _check_window(_instant(data, "NotBefore"), not_on_or_after, expected.now)
    return not_on_or_after


def check_conditions(assertion: ET.Element, expected: Expected) -> datetime | None:
    """Conditions: NotBefore / NotOnOrAfter with SKEW, and an AudienceRestriction naming our entity
    ID; every AudienceRestriction must (SAML core 2.5.1.4; profiles 4.1.4.2 requires one). Returns
    the Conditions' NotOnOrAfter."""
    conditions = child(assertion, SAML, "Conditions")
    if conditions is None:
        raise FederationRefused("audience", detail="the assertion has no Conditions")
    not_on_or_after = _instant(conditions, "NotOnOrAfter")
    _check_window(_instant(conditions, "NotBefore"), not_on_or_after, expected.now)
    restrictions = _children(conditions, SAML, "AudienceRestriction")
    if not restrictions:
        raise FederationRefused("audience", detail="no AudienceRestriction")
    for restriction in restrictions:
        audiences = [text_of(audience) for audience in _children(restriction, SAML, "Audience")]
        if expected.sp_entity_id not in audiences:
            raise FederationRefused("audience", detail=f"Audience {audiences}")
    return not_on_or_after


def _check_window(not_before: datetime | None, not_on_or_after: datetime | None, now: datetime) -> None:
    if not_before is not None and now + SKEW < not_before:
        raise FederationRefused("not_yet_valid", detail=f"NotBefore {not_before.isoformat()}")
    if not_on_or_after is not None and now - SKEW >= not_on_or_after:
        raise FederationRefused("expired", detail=f"NotOnOrAfter {not_on_or_after.isoformat()}")


def check_assertion(response: ET.Element, assertion: ET.Element, expected: Expected) -> datetime:
    """Every check above, in order; returns the instant until which the assertion could be
    accepted (the earliest NotOnOrAfter, plus SKEW), for the replay cache."""
    check_status(response)
    check_issuer(response, assertion, expected)
    check_destination(response, expected)
    confirmations = bearer_confirmations(assertion)
    check_in_response_to(response, confirmations, expected)
    until = [check_confirmation(data, expected) for data in confirmations]
    conditions_until = check_conditions(assertion, expected)
    if conditions_until is not None:
        until.append(conditions_until)
    return min(until) + SKEW


def read_name_id(assertion: ET.Element) -> tuple[str | None, str | None]:
    """The Subject's NameID text and Format (SAML core 2.2.3, 2.4.1)."""
    name_id = child(child(assertion, SAML, "Subject"), SAML, "NameID")
    if name_id is None:
        return None, None
    return text_of(name_id), name_id.get("Format")


def read_session_index(assertion: ET.Element) -> str | None:
    """The AuthnStatement's SessionIndex, which single logout names (SAML core 2.7.2)."""
    statement = child(assertion, SAML, "AuthnStatement")
    return statement.get("SessionIndex") if statement is not None else None


def read_attributes(assertion: ET.Element) -> dict[str, list[str]]:
    """Attribute values by Name, and by FriendlyName too (SAML core 2.7.3)."""
    values: dict[str, list[str]] = {}
    for statement in _children(assertion, SAML, "AttributeStatement"):
        for attribute in _children(statement, SAML, "Attribute"):
            # Complex values (an eduPersonTargetedID's NameID) are not text: they are skipped, never flattened.
            texts = [text for value in _children(attribute, SAML, "AttributeValue")
                     if not len(value) and (text := text_of(value)) is not None]
            for key in {attribute.get("Name"), attribute.get("FriendlyName")} - {None}:
                values.setdefault(key, []).extend(texts)
    return values
