"""The `saml` connector against a stand-in IdP on loopback and against signed responses built
directly: the happy paths, and one refusal per rule of issue 10 with its single reason."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
import time_machine

from tests.federation.saml_support import (  # noqa: F401 (fixtures)
    connector, direct_settings, form, idp_keys, refusal, sp_keys, spec_for, standin)
from tests.federation.standins.saml_messages import (HMAC_SHA256, RSA_SHA1, SHA1, KeyPair,
                                                     NODE_ASSERTION, assertion_xml, build_response, hmac_sign,
                                                     signature_template)
from tests.federation.standins.saml_tamper import ASSERTION_SIGNED, EVIL_NAME_ID, replace_name_id, xsw


@pytest.fixture
def corp(idp_keys, sp_keys):
    return connector(sp_keys, direct_settings(idp_keys))


def signed(conn, keys, **overrides) -> str:
    return build_response(keys, spec_for(conn, **overrides))


# Happy paths


def test_sp_initiated_sign_in_end_to_end(standin, sp_keys):
    """Profiles 4.1: signed AuthnRequest over HTTP-Redirect, signed Response over HTTP-POST, verified identity."""
    conn = connector(sp_keys, {"metadata_url": standin.metadata_url})
    standin.trust_sp(conn.metadata())
    start = conn.begin("state-abc")
    action, fields = standin.follow(start.url)
    identity = conn.complete(fields, start.saved)
    request = standin.authn_requests[-1]
    assert (action, fields["RelayState"], request["id"]) == (conn.urls.acs, "state-abc", start.saved["request_id"])
    assert (request["acs"], request["issuer"], request["destination"]) == (conn.urls.acs, conn.urls.metadata,
                                                                          standin.sso_url)
    assert (identity.subject, identity.email, identity.name) == ("pers-0001", "ada@corp.example", "Ada Lovelace")


def test_authn_request_signature_covers_relay_state(standin, sp_keys):
    """Bindings 3.4.4.1: the IdP refuses our AuthnRequest once its signed RelayState is changed."""
    conn = connector(sp_keys, {"metadata_url": standin.metadata_url})
    standin.trust_sp(conn.metadata())
    url = conn.begin("state-abc").url.replace("RelayState=state-abc", "RelayState=state-evil")
    with pytest.raises(AssertionError):
        standin.follow(url)
    assert standin.refusals[-1] == "SAMLRequest signature invalid"


def test_authn_request_asks_for_persistent_name_id_with_rsa_sha256(standin, sp_keys):
    """Core 3.4.1.1 NameIDPolicy persistent; bindings 3.4.4.1 SigAlg RSA-SHA256."""
    conn = connector(sp_keys, {"metadata_url": standin.metadata_url})
    standin.trust_sp(conn.metadata())
    standin.follow(conn.begin("s").url)
    request = standin.authn_requests[-1]
    assert (request["sig_alg"], request["name_id_policy"]) == (
        "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256", "urn:oasis:names:tc:SAML:2.0:nameid-format:persistent")


def test_encrypted_assertion_accepted(standin, sp_keys):
    """Core 2.3.4 EncryptedAssertion for our metadata's encryption certificate: decrypted with the SP key."""
    conn = connector(sp_keys, {"metadata_url": standin.metadata_url})
    standin.trust_sp(conn.metadata())
    standin.encrypt = True
    try:
        start = conn.begin("state-enc")
        _, fields = standin.follow(start.url)
        identity = conn.complete(fields, start.saved)
    finally:
        standin.encrypt = False
    assert identity.subject == "pers-0001"


def test_response_signature_alone_accepted(standin, sp_keys):
    """Profiles 4.1.3.5: a signature on the Response enclosing the assertion suffices."""
    conn = connector(sp_keys, {"metadata_url": standin.metadata_url})
    standin.trust_sp(conn.metadata())
    standin.sign_assertion, standin.sign_response = False, True
    try:
        start = conn.begin("state-r")
        _, fields = standin.follow(start.url)
        identity = conn.complete(fields, start.saved)
    finally:
        standin.sign_assertion, standin.sign_response = True, False
    assert identity.subject == "pers-0001"


def test_idp_initiated_sign_in_when_allowed(standin, sp_keys):
    """Profiles 4.1.5: an unsolicited response (no InResponseTo) signs in where allow_idp_initiated."""
    conn = connector(sp_keys, {"metadata_url": standin.metadata_url, "allow_idp_initiated": True})
    standin.trust_sp(conn.metadata())
    identity = conn.complete(standin.response_form(None, "dashboard"), None)
    assert identity.subject == "pers-0001"


def test_replay_key_and_until_set(corp, idp_keys):
    """The assertion ID (namespaced by upstream) and its last acceptable instant feed the views' replay cache."""
    spec = spec_for(corp)
    identity = corp.complete(form(build_response(idp_keys, spec)), {"request_id": "_request-1"})
    assert identity.replay_key == f"saml:up-corp:{spec.assertion_id}"
    assert timedelta(minutes=5) <= identity.replay_until - datetime.now(timezone.utc) <= timedelta(minutes=6, seconds=1)


def test_upstream_session_carries_name_id_and_session_index(corp, idp_keys):
    """Core 3.7.1: what a later LogoutRequest names."""
    identity = corp.complete(form(signed(corp, idp_keys, session_index="_s-42")), {"request_id": "_request-1"})
    assert identity.upstream_session == {"name_id": "user-0001", "session_index": "_s-42",
                                         "name_id_format": "urn:oasis:names:tc:SAML:2.0:nameid-format:persistent"}


# XML Signature Wrapping (Somorovsky et al., "On Breaking SAML", USENIX Security 2012)


def _response_signed(conn, keys):
    return signed(conn, keys, sign_assertion=False, sign_response=True)


def test_xsw1_cloned_response_inside_signature_refused(corp, idp_keys):
    """XSW1 (Somorovsky et al. 2012, fig. 5): evil Response, the signed original inside its Signature."""
    assert refusal(corp, xsw("xsw1", _response_signed(corp, idp_keys))) == "assertion_count"


def test_xsw2_cloned_response_before_signature_refused(corp, idp_keys):
    """XSW2 (Somorovsky et al. 2012): evil Response, the signed original as a sibling before the Signature."""
    assert refusal(corp, xsw("xsw2", _response_signed(corp, idp_keys))) == "assertion_count"


def test_xsw3_evil_assertion_before_signed_one_refused(corp, idp_keys):
    """XSW3 (Somorovsky et al. 2012): an unsigned evil assertion before the signed one."""
    assert refusal(corp, xsw("xsw3", signed(corp, idp_keys))) == "assertion_count"


def test_xsw4_evil_assertion_wrapping_signed_one_refused(corp, idp_keys):
    """XSW4 (Somorovsky et al. 2012): the signed assertion inside an unsigned evil one."""
    assert refusal(corp, xsw("xsw4", signed(corp, idp_keys))) == "assertion_count"


def test_xsw5_evil_assertion_with_moved_signature_refused(corp, idp_keys):
    """XSW5 (Somorovsky et al. 2012): the evil assertion takes the ID and Signature, the original is appended."""
    assert refusal(corp, xsw("xsw5", signed(corp, idp_keys))) == "assertion_count"


def test_xsw6_original_inside_moved_signature_refused(corp, idp_keys):
    """XSW6 (Somorovsky et al. 2012): as XSW5, the original inside the moved Signature."""
    assert refusal(corp, xsw("xsw6", signed(corp, idp_keys))) == "assertion_count"


def test_xsw7_evil_assertion_in_extensions_refused(corp, idp_keys):
    """XSW7 (Somorovsky et al. 2012): an unsigned evil assertion in samlp:Extensions."""
    assert refusal(corp, xsw("xsw7", signed(corp, idp_keys))) == "assertion_count"


def test_xsw8_original_in_signature_object_refused(corp, idp_keys):
    """XSW8 (Somorovsky et al. 2012): the original inside a ds:Object of the evil assertion's Signature."""
    assert refusal(corp, xsw("xsw8", signed(corp, idp_keys))) == "assertion_count"


def test_every_wrapping_names_the_evil_subject(corp, idp_keys):
    """The wrappers are live: each document carries EVIL_NAME_ID, so a refusal is the gate's doing."""
    assert all(EVIL_NAME_ID in xsw(variant, signed(corp, idp_keys)) for variant in ASSERTION_SIGNED)


# Other attacks


def test_name_id_comment_injection_refused(corp, idp_keys):
    """CVE-2017-11427: a comment inserted into a signed NameID (c14n drops it, the signature still verifies)."""
    xml = signed(corp, idp_keys, name_id="user@evil.com.victim.com")
    xml = xml.replace("user@evil.com.victim.com", "user@evil.com<!---->.victim.com")
    assert refusal(corp, xml) == "comment_refused"


def test_keyinfo_certificate_not_trusted(corp):
    """CVE-2021-21239: signed by an attacker key whose certificate rides in KeyInfo."""
    attacker = KeyPair.generate("attacker")
    assert refusal(corp, signed(corp, attacker)) == "signature_invalid"


def test_tampered_name_id_after_signing_refused(corp, idp_keys):
    """XML Signature 3.2.1: a value changed after signing breaks the reference digest."""
    assert refusal(corp, replace_name_id(signed(corp, idp_keys), EVIL_NAME_ID)) == "signature_invalid"


def test_unsigned_response_refused(corp, idp_keys):
    """Profiles 4.1.3.5: neither the Response nor the assertion signed."""
    assert refusal(corp, signed(corp, idp_keys, sign_assertion=False)) == "unsigned"


def test_sha1_signature_refused(corp, idp_keys):
    """NIST SP 800-131A: RSA-SHA1 with SHA-1 digests is refused before verification."""
    assert refusal(corp, signed(corp, idp_keys, signature_method=RSA_SHA1, digest_method=SHA1)) == "algorithm_refused"


def test_hmac_signature_refused(corp, idp_keys):
    """HMAC key confusion: an HMAC "signature" keyed with public material is refused before verification."""
    spec = spec_for(corp, sign_assertion=False)
    unsigned = assertion_xml(spec)
    with_template = unsigned.replace("</saml:Issuer>", "</saml:Issuer>" + signature_template(
        spec.assertion_id, HMAC_SHA256).replace("<ds:KeyInfo><ds:X509Data></ds:X509Data></ds:KeyInfo>", ""), 1)
    assertion = hmac_sign(with_template, idp_keys.cert_pem.encode(), NODE_ASSERTION, spec.assertion_id)
    assert refusal(corp, build_response(idp_keys, spec, assertion=assertion)) == "algorithm_refused"


def test_billion_laughs_refused_before_expansion(corp):
    """CWE-776 / OWASP XXE: an entity-expansion payload is refused before any parser expands it."""
    lol = ('<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;'
           '&lol;&lol;&lol;&lol;&lol;"><!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">]>'
           '<samlp:Response xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol">&lol3;</samlp:Response>')
    assert refusal(corp, lol) == "dtd_forbidden"


def test_external_entity_refused(corp):
    """XXE (OWASP): an external entity naming a local file is refused."""
    xxe = ('<?xml version="1.0"?><!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
           '<samlp:Response xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol">&x;</samlp:Response>')
    assert refusal(corp, xxe) == "dtd_forbidden"


def test_oversized_response_refused(corp):
    """A response far larger than any IdP sends is refused unread."""
    assert refusal(corp, "<a>" + "x" * 400_000 + "</a>") == "response_too_large"


def test_wrong_audience_refused(corp, idp_keys):
    """Core 2.5.1.4, profiles 4.1.4.2: the AudienceRestriction must name our entity ID."""
    assert refusal(corp, signed(corp, idp_keys, audience="http://other-sp.example/metadata")) == "audience"


def test_wrong_recipient_refused(corp, idp_keys):
    """Profiles 4.1.4.2: the bearer SubjectConfirmationData Recipient must be our ACS."""
    assert refusal(corp, signed(corp, idp_keys, recipient="http://other-sp.example/acs")) == "recipient"


def test_wrong_destination_refused(corp, idp_keys):
    """Bindings 3.5.5.2: the Response Destination must be our ACS."""
    assert refusal(corp, signed(corp, idp_keys, destination="http://other-sp.example/acs")) == "destination"


def test_missing_destination_refused(corp, idp_keys):
    """Bindings 3.5.5.2: Destination is required here (a response for nobody in particular is for no one)."""
    assert refusal(corp, signed(corp, idp_keys, destination=None)) == "destination"


def test_expired_assertion_refused(corp, idp_keys):
    """Core 2.5.1.2 NotOnOrAfter, 60 s skew: ten minutes later the assertion is dead."""
    xml = signed(corp, idp_keys)
    with time_machine.travel(datetime.now(timezone.utc) + timedelta(minutes=10)):
        assert refusal(corp, xml) == "expired"


def test_not_before_in_future_refused(corp, idp_keys):
    """Core 2.5.1.2 NotBefore, 60 s skew: an assertion valid only from ten minutes on."""
    assert refusal(corp, signed(corp, idp_keys, not_before=timedelta(minutes=10))) == "not_yet_valid"


def test_clock_skew_within_a_minute_accepted(corp, idp_keys):
    """The 60 s skew: an assertion whose NotBefore is 30 s ahead is accepted."""
    identity = corp.complete(form(signed(corp, idp_keys, not_before=timedelta(seconds=30))),
                             {"request_id": "_request-1"})
    assert identity.subject == "user-0001"


def test_in_response_to_mismatch_refused(corp, idp_keys):
    """Profiles 4.1.4.3: InResponseTo must be the AuthnRequest this browser started."""
    assert refusal(corp, signed(corp, idp_keys, request_id="_someone-elses")) == "in_response_to"


def test_unsolicited_refused_when_not_allowed(corp, idp_keys):
    """Profiles 4.1.5: an unsolicited response where allow_idp_initiated is false."""
    assert refusal(corp, signed(corp, idp_keys, request_id=None), unsolicited=True) == "unsolicited"


def test_unsolicited_naming_a_request_refused(idp_keys, sp_keys):
    """Profiles 4.1.5: an answer with no started sign-in that claims to answer a request is refused."""
    conn = connector(sp_keys, direct_settings(idp_keys, allow_idp_initiated=True))
    assert refusal(conn, signed(conn, idp_keys, request_id="_request-9"), unsolicited=True) == "in_response_to"


def test_status_not_success_refused(corp, idp_keys):
    """Core 3.2.2.2: a Responder status is not a sign-in."""
    xml = signed(corp, idp_keys, status="urn:oasis:names:tc:SAML:2.0:status:Responder")
    assert refusal(corp, xml) == "status"


def test_assertion_of_another_idp_refused(corp):
    """Issue 10 cross-upstream: upstream A's IdP (own key, own entity ID) cannot sign in at upstream B."""
    other = KeyPair.generate("idp A")
    assert refusal(corp, signed(corp, other, issuer="http://idp-a.example/metadata")) == "signature_invalid"


def test_assertion_for_another_upstream_of_same_idp_refused(idp_keys, sp_keys):
    """Issue 10 cross-upstream: an assertion for upstream A's ACS, same IdP, presented at upstream B."""
    settings = direct_settings(idp_keys)
    upstream_a, upstream_b = connector(sp_keys, settings, "corp-a"), connector(sp_keys, settings, "corp-b")
    assert refusal(upstream_b, signed(upstream_a, idp_keys)) == "destination"


def test_transient_name_id_is_not_an_identity(corp, idp_keys):
    """Core 8.3.8: a transient NameID is not a stable key, and the e-mail never is (issue 10)."""
    xml = signed(corp, idp_keys, name_id_format="urn:oasis:names:tc:SAML:2.0:nameid-format:transient")
    assert refusal(corp, xml) == "subject_missing"


def test_name_id_attribute_is_the_subject(idp_keys, sp_keys):
    """A configured attribute (e.g. Entra's objectidentifier) replaces the NameID as the subject."""
    oid = "http://schemas.microsoft.com/identity/claims/objectidentifier"
    conn = connector(sp_keys, direct_settings(idp_keys, name_id_attribute=oid))
    xml = signed(conn, idp_keys, name_id_format="urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress",
                 name_id="ada@corp.example", attributes={oid: "7f3c-oid"})
    assert conn.complete(form(xml), {"request_id": "_request-1"}).subject == "7f3c-oid"


@pytest.mark.parametrize(("organization_id", "domains", "verified"), [
    ("org-1", ("corp.example",), True), (None, ("corp.example",), False), ("org-1", ("other.example",), False)])
def test_email_verified_only_for_organization_domains(idp_keys, sp_keys, organization_id, domains, verified):
    """Issue 10: SAML upstreams of an organization vouch for that organization's domains only."""
    conn = connector(sp_keys, direct_settings(idp_keys), organization_id=organization_id, email_domains=domains)
    xml = signed(conn, idp_keys, attributes={"mail": "ada@corp.example", "groups": ["idp-admins", "staff"]})
    identity = conn.complete(form(xml), {"request_id": "_request-1"})
    assert (identity.email, identity.email_verified, identity.groups) == ("ada@corp.example", verified,
                                                                          ("idp-admins", "staff"))
