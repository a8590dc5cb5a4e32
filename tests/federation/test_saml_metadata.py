"""SAML upstream settings (metadata fetched or given, parsed safely), our SP metadata, and the
IdP certificate rollover (metadata 2.4.1.1)."""
from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone
from xml.etree import ElementTree as ET

import pytest
import requests
import time_machine

from idp.federation.connector import FederationRefused, UpstreamSettingsInvalid
from idp.federation.saml import KIND
from idp.federation.saml_metadata import certificate_pem
from tests.federation.saml_support import (  # noqa: F401 (fixtures)
    HTTP, connector, direct_settings, form, idp_keys, open_stored, own_idp, sp_keys, spec_for, standin)
from tests.federation.standins.saml_messages import build_response

MD = "urn:oasis:names:tc:SAML:2.0:metadata"
DS = "http://www.w3.org/2000/09/xmldsig#"


def invalid(settings: dict, secrets: dict | None = None) -> dict:
    with pytest.raises(UpstreamSettingsInvalid) as error:
        KIND.validate(settings, secrets or {"sp_private_key": "unused"}, HTTP)
    return error.value.errors


def test_metadata_url_read_and_key_pair_made(standin):
    """Metadata 2.4.3: entity ID, HTTP-Redirect SSO and SLO, signing certificate; our key pair made if none is given."""
    stored, secrets = KIND.validate({"metadata_url": standin.metadata_url}, {}, HTTP)
    assert (stored["entity_id"], stored["sso_url"], stored["slo_url"]) == (standin.entity_id, standin.sso_url,
                                                                          standin.slo_url)
    assert stored["certificates"] == [certificate_pem(standin.keys.cert_pem)]
    assert secrets["sp_private_key"].startswith("-----BEGIN PRIVATE KEY-----") and "sp_private_key" not in stored


def test_validation_accepts_its_own_output(standin, sp_keys):
    """Saving again (PATCH) re-reads the metadata and keeps our key pair and certificate."""
    stored, secrets = KIND.validate({"metadata_url": standin.metadata_url}, {"sp_private_key": sp_keys.key_pem}, HTTP)
    again, secrets_again = KIND.validate(dict(stored), dict(secrets), HTTP)
    assert (again["sp_certificate"], again["certificates"], secrets_again) == (
        stored["sp_certificate"], stored["certificates"], secrets)


def _metadata_without(standin, fragment_start: str, fragment_end: str) -> str:
    xml = standin.metadata()
    start = xml.index(fragment_start)
    return xml[:start] + xml[xml.index(fragment_end, start) + len(fragment_end):]


def test_metadata_without_signing_certificate_refused(standin):
    """Metadata 2.4.1.1: an IdP without a signing KeyDescriptor cannot be verified."""
    xml = _metadata_without(standin, "<md:KeyDescriptor", "</md:KeyDescriptor>")
    assert "signing certificate" in invalid({"metadata_xml": xml})["metadata_xml"]


def test_metadata_without_redirect_sso_refused(standin):
    """Metadata 2.4.3: an SSO service with the HTTP-Redirect binding is what our AuthnRequest needs."""
    xml = standin.metadata().replace('<md:SingleSignOnService Binding="urn:oasis:names:tc:SAML:2.0:bindings:'
                                     'HTTP-Redirect"', '<md:SingleSignOnService Binding="urn:x"')
    assert "SingleSignOnService" in invalid({"metadata_xml": xml})["metadata_xml"]


def test_metadata_with_doctype_refused(standin):
    """OWASP XXE: metadata with a DOCTYPE is refused unparsed."""
    xml = standin.metadata().replace('<?xml version="1.0"?>', '<?xml version="1.0"?><!DOCTYPE m [<!ENTITY e "x">]>')
    assert "not safe" in invalid({"metadata_xml": xml})["metadata_xml"]


def test_expired_metadata_refused(standin):
    """Metadata 2.3.1: validUntil in the past."""
    xml = standin.metadata().replace("<md:EntityDescriptor ", '<md:EntityDescriptor validUntil="2001-01-01T00:00:00Z" ')
    assert "expired" in invalid({"metadata_xml": xml})["metadata_xml"]


def test_unreachable_metadata_url_refused():
    """The metadata_url must answer: a closed port says so on the field."""
    assert "could not be fetched" in invalid({"metadata_url": "http://127.0.0.1:9/metadata"})["metadata_url"]


def test_unknown_setting_refused(idp_keys):
    """Only the saml kind's settings are stored."""
    assert invalid(direct_settings(idp_keys, client_id="x")) == {"client_id": "is not a setting of a SAML upstream"}


def test_direct_settings_need_a_certificate():
    """Without metadata, entity_id, sso_url and certificates are all required."""
    assert invalid({"entity_id": "http://idp", "sso_url": "http://idp/sso"}) == {
        "certificates": "is required without metadata_url or metadata_xml"}


def test_sp_metadata_names_our_endpoints_and_certificate(idp_keys, sp_keys):
    """Metadata 2.4.4: entityID = metadata URL, ACS HTTP-POST, SLO, signing and encryption keys, signed requests."""
    conn = connector(sp_keys, direct_settings(idp_keys))
    root = ET.fromstring(conn.metadata())
    descriptor = root.find(f"{{{MD}}}SPSSODescriptor")
    acs = descriptor.find(f"{{{MD}}}AssertionConsumerService")
    keys = {key.get("use"): key.find(f".//{{{DS}}}X509Certificate").text for key in
            descriptor.findall(f"{{{MD}}}KeyDescriptor")}
    body = "".join(conn.settings["sp_certificate"].strip().splitlines()[1:-1])
    assert (root.get("entityID"), acs.get("Location"), acs.get("Binding")) == (
        conn.urls.metadata, conn.urls.acs, "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST")
    assert (descriptor.find(f"{{{MD}}}SingleLogoutService").get("Location"), keys) == (
        conn.urls.slo, {"signing": body, "encryption": body})
    assert (descriptor.get("AuthnRequestsSigned"), descriptor.get("WantAssertionsSigned")) == ("true", "true")


def test_old_certificate_kept_until_the_new_one_verifies(own_idp, sp_keys):
    """Metadata 2.4.1.1 rollover: after a refresh the old key still verifies, until the new one has."""
    conn = connector(sp_keys, {"metadata_url": own_idp.metadata_url})
    old = own_idp.keys
    own_idp.rotate_keys()
    refreshed = conn.refresh_metadata()
    assert (refreshed["certificates"], refreshed["retiring_certificates"]) == (
        [certificate_pem(own_idp.keys.cert_pem)], [certificate_pem(old.cert_pem)])
    rolled = open_stored(refreshed, conn.config.secrets)
    rolled.complete(form(build_response(old, spec_for(rolled, issuer=own_idp.entity_id))),
                    {"request_id": "_request-1"})
    assert rolled.updated_settings is None
    rolled.complete(form(build_response(own_idp.keys, spec_for(rolled, issuer=own_idp.entity_id))),
                    {"request_id": "_request-1"})
    assert rolled.updated_settings["retiring_certificates"] == []


def test_signature_failure_refreshes_metadata_and_retries(own_idp, sp_keys):
    """Rollover on a signature failure: the connector re-fetches metadata_url and the new key verifies."""
    conn = connector(sp_keys, {"metadata_url": own_idp.metadata_url})
    own_idp.trust_sp(conn.metadata())
    own_idp.rotate_keys()
    with time_machine.travel(datetime.now(timezone.utc) + timedelta(minutes=6)):
        start = conn.begin("state-roll")
        _, fields = own_idp.follow(start.url)
        identity = conn.complete(fields, start.saved)
    assert identity.subject == "pers-0001"
    assert (conn.updated_settings["certificates"], conn.updated_settings["retiring_certificates"]) == (
        [certificate_pem(own_idp.keys.cert_pem)], [])


def test_signature_failure_refetches_at_most_every_five_minutes(own_idp, sp_keys):
    """A burst of bad signatures must not make us hammer the IdP's metadata URL."""
    conn = connector(sp_keys, {"metadata_url": own_idp.metadata_url})
    own_idp.trust_sp(conn.metadata())
    own_idp.rotate_keys()
    fetched = own_idp.hits["metadata"]
    start = conn.begin("state-roll")
    _, fields = own_idp.follow(start.url)
    with pytest.raises(FederationRefused) as refused:
        conn.complete(fields, start.saved)
    assert (refused.value.reason, own_idp.hits["metadata"], conn.updated_settings) == (
        "signature_invalid", fetched, None)


def test_switch_to_another_idp_drops_the_old_idps_certificates(standin, own_idp, sp_keys):
    """Metadata 2.4.1.1 rollover is for one IdP: after metadata_url moves to another IdP (a PATCH saves the
    stored settings with the new URL over them), the old IdP's key signing an assertion with the new IdP's
    Issuer is refused; the new IdP's own answer verifies."""
    stored, secrets = KIND.validate({"metadata_url": standin.metadata_url}, {"sp_private_key": sp_keys.key_pem}, HTTP)
    switched, secrets = KIND.validate({**stored, "metadata_url": own_idp.metadata_url}, secrets, HTTP)
    assert (switched["entity_id"], switched["retiring_certificates"]) == (own_idp.entity_id, [])
    conn = open_stored(switched, secrets)
    forged = build_response(standin.keys, spec_for(conn, issuer=own_idp.entity_id))
    with pytest.raises(FederationRefused) as refused:
        conn.complete(form(forged), {"request_id": "_request-1"})
    assert refused.value.reason == "signature_invalid"
    genuine = build_response(own_idp.keys, spec_for(conn, issuer=own_idp.entity_id))
    assert conn.complete(form(genuine), {"request_id": "_request-1"}).subject == "user-0001"


def test_refresh_naming_another_entity_keeps_no_retiring_certificate(standin, own_idp, sp_keys):
    """A metadata refresh whose document now names another entity ID is no rollover: the previously trusted
    certificates are not kept as retiring."""
    stored, secrets = KIND.validate({"metadata_url": standin.metadata_url}, {"sp_private_key": sp_keys.key_pem}, HTTP)
    refreshed = open_stored({**stored, "metadata_url": own_idp.metadata_url}, secrets).refresh_metadata()
    assert (refreshed["entity_id"], refreshed["certificates"], refreshed["retiring_certificates"]) == (
        own_idp.entity_id, [certificate_pem(own_idp.keys.cert_pem)], [])


def test_non_string_metadata_url_refused():
    """A metadata_url that is not a string is a field error, not a crash."""
    assert invalid({"metadata_url": 5}) == {"metadata_url": "must be a string"}


def test_switch_to_an_idp_without_slo_forgets_the_old_idps_slo_url(standin, own_idp, sp_keys):
    """After moving to another IdP whose metadata names no SingleLogoutService, our LogoutRequests (NameID
    included) are never sent to the IdP the upstream switched away from: no SLO URL is kept."""
    stored, secrets = KIND.validate({"metadata_url": standin.metadata_url}, {"sp_private_key": sp_keys.key_pem}, HTTP)
    assert stored["slo_url"] == standin.slo_url
    xml = requests.get(own_idp.metadata_url, timeout=5).text
    without_slo = re.sub(r"<md:SingleLogoutService[^>]*/>", "", xml)
    switched, _ = KIND.validate({**stored, "metadata_url": None, "metadata_xml": without_slo}, secrets, HTTP)
    assert (switched["entity_id"], switched["slo_url"]) == (own_idp.entity_id, None)
