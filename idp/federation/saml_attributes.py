"""The upstream identity a verified SAML assertion names: its subject (the persistent NameID, or a
configured attribute: never the e-mail unless an admin chose that), profile attributes under the
names IdPs commonly use (eduPerson / inetOrgPerson OIDs, their friendly names, the ADFS / Entra
claim URIs), and what single logout and the replay cache need."""
from __future__ import annotations

from datetime import datetime
from xml.etree import ElementTree as ET

from idp.federation.connector import FederationRefused, UpstreamConfig
from idp.federation.saml_assertion import read_attributes, read_name_id, read_session_index
from idp.federation.saml_metadata import NAMEID_PERSISTENT
from idp.services.upstream_identity import UpstreamIdentity

MAX_SUBJECT = 255  # FederatedIdentity.subject
CLAIMS = "http://schemas.xmlsoap.org/ws/2005/05/identity/claims"
# Attribute names tried in order when the upstream's settings name none (RFC 4519 / eduPerson OIDs).
DEFAULT_ATTRIBUTES = {
    "email": ("urn:oid:0.9.2342.19200300.100.1.3", "mail", "email", "emailAddress", f"{CLAIMS}/emailaddress"),
    "name": ("urn:oid:2.16.840.1.113730.3.1.241", "displayName", "http://schemas.microsoft.com/identity/claims/"
             "displayname", "urn:oid:2.5.4.3", "cn", "name"),
    "given_name": ("urn:oid:2.5.4.42", "givenName", f"{CLAIMS}/givenname"),
    "family_name": ("urn:oid:2.5.4.4", "sn", "surname", f"{CLAIMS}/surname"),
    "groups": ("urn:oid:1.3.6.1.4.1.5923.1.5.1.1", "isMemberOf", "memberOf", "groups", "Group",
               "http://schemas.microsoft.com/ws/2008/06/identity/claims/groups",
               "http://schemas.xmlsoap.org/claims/Group"),
}


def _values(attributes: dict[str, list[str]], names: tuple[str, ...]) -> list[str]:
    for name in names:
        if attributes.get(name):
            return attributes[name]
    return []


def _first(attributes: dict[str, list[str]], names: tuple[str, ...]) -> str | None:
    values = _values(attributes, names)
    return values[0] if values else None


def _names(settings: dict, field: str) -> tuple[str, ...]:
    configured = settings.get(f"{field}_attribute")
    return (configured,) if configured else DEFAULT_ATTRIBUTES[field]


def subject_of(settings: dict, name_id: str | None, name_id_format: str | None,
               attributes: dict[str, list[str]]) -> str:
    """The configured `name_id_attribute`'s value, else a persistent NameID (SAML core 8.3.7: an
    opaque, stable identifier); anything else (transient, e-mail) is not an identity key."""
    configured = settings.get("name_id_attribute")
    subject = _first(attributes, (configured,)) if configured else (
        name_id if name_id_format == NAMEID_PERSISTENT else None)
    if not subject:
        wanted = f"the attribute {configured!r}" if configured else "a persistent NameID"
        raise FederationRefused("subject_missing", detail=f"the assertion has no {wanted} (got NameID format "
                                f"{name_id_format!r}; set name_id_attribute to use an attribute)")
    if len(subject) > MAX_SUBJECT:
        raise FederationRefused("subject_missing", detail="the subject is longer than 255 characters")
    return subject


def email_trusted(config: UpstreamConfig, email: str | None) -> bool:
    """An organization's upstream vouches for addresses of the organization's own domains only
    (issue 10: "SAML upstreams of an organization for that organization's domains")."""
    if not email or not config.organization_id or "@" not in email:
        return False
    return email.rsplit("@", 1)[1].lower() in {domain.lower() for domain in config.email_domains}


def identity_from(config: UpstreamConfig, settings: dict, assertion: ET.Element, until: datetime) -> UpstreamIdentity:
    """The UpstreamIdentity of the verified `assertion`; replay_key is the assertion ID namespaced
    with the upstream, replay_until the last instant it could be accepted."""
    name_id, name_id_format = read_name_id(assertion)
    attributes = read_attributes(assertion)
    subject = subject_of(settings, name_id, name_id_format, attributes)
    email = _first(attributes, _names(settings, "email"))
    return UpstreamIdentity(
        upstream_id=config.id, subject=subject, email=email, email_verified=email_trusted(config, email),
        name=_first(attributes, _names(settings, "name")),
        given_name=_first(attributes, DEFAULT_ATTRIBUTES["given_name"]),
        family_name=_first(attributes, DEFAULT_ATTRIBUTES["family_name"]),
        groups=tuple(_values(attributes, _names(settings, "groups"))),
        upstream_session={"name_id": name_id, "name_id_format": name_id_format,
                          "session_index": read_session_index(assertion)},
        replay_key=f"saml:{config.id}:{assertion.get('ID')}", replay_until=until,
        claims={name: values for name, values in attributes.items()})
