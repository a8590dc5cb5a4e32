"""SAML Single Logout (profiles 4.4) over HTTP-Redirect with the stand-in IdP: our signed
LogoutRequest, the IdP's LogoutRequest and our signed LogoutResponse, and the refusals."""
from __future__ import annotations

from urllib.parse import parse_qsl, urlsplit

import pytest
import requests

from idp.federation.connector import FederationRefused
from tests.federation.saml_support import connector, direct_settings, idp_keys, sp_keys, standin  # noqa: F401
from tests.federation.standins.saml_messages import KeyPair

SESSION = {"name_id": "pers-0001", "name_id_format": "urn:oasis:names:tc:SAML:2.0:nameid-format:persistent",
           "session_index": "_s-7"}


@pytest.fixture
def corp(standin, sp_keys):
    conn = connector(sp_keys, {"metadata_url": standin.metadata_url})
    standin.trust_sp(conn.metadata())
    return conn


def query(url: str) -> tuple[dict, str]:
    raw = urlsplit(url).query
    return dict(parse_qsl(raw)), raw


def test_logout_request_is_signed_and_the_answer_verified(corp, standin):
    """Profiles 4.4.3.1, 4.4.3.4: our signed LogoutRequest names NameID and SessionIndex; the IdP's answer verifies."""
    answer = requests.get(corp.logout_request(SESSION), allow_redirects=False, timeout=5)
    params, raw = query(answer.headers["Location"])
    result = corp.handle_slo(params, raw_query=raw)
    sent = standin.logout_requests[-1]
    assert (sent["name_id"], sent["session_index"], sent["destination"]) == ("pers-0001", "_s-7", standin.slo_url)
    assert (result.kind, result.success, result.in_response_to) == ("logout_response", True, sent["id"])


def test_idp_logout_request_names_the_session_and_is_answered(corp, standin):
    """Profiles 4.4.3.2-4.4.3.3: the IdP's LogoutRequest says whom to sign out; our signed answer verifies there."""
    params, raw = query(standin.logout_request_url("pers-0001", "_s-7", relay_state="rs-1"))
    result = corp.handle_slo(params, raw_query=raw)
    answered = requests.get(result.redirect_url, timeout=5)
    assert (result.kind, result.name_id, result.session_index) == ("logout_request", "pers-0001", "_s-7")
    assert (answered.status_code, standin.logout_responses[-1]["status"]) == (
        200, "urn:oasis:names:tc:SAML:2.0:status:Success")


def test_idp_logout_request_verified_without_the_raw_query(corp, standin):
    """Bindings 3.4.4.1: re-encoding the parameters reproduces the signed octets of a canonical encoder."""
    params, _ = query(standin.logout_request_url("pers-0001"))
    assert corp.handle_slo(params).name_id == "pers-0001"


def test_tampered_logout_request_refused(corp, standin):
    """Bindings 3.4.4.1: a changed RelayState breaks the query signature."""
    params, _ = query(standin.logout_request_url("pers-0001", relay_state="rs-1"))
    params["RelayState"] = "rs-evil"
    with pytest.raises(FederationRefused) as refused:
        corp.handle_slo(params)
    assert refused.value.reason == "signature_invalid"


def test_unsigned_logout_request_refused(corp, standin):
    """Profiles 4.4.3.2: an unsigned LogoutRequest ends nobody's session."""
    params, _ = query(standin.logout_request_url("pers-0001"))
    del params["Signature"], params["SigAlg"]
    with pytest.raises(FederationRefused) as refused:
        corp.handle_slo(params)
    assert refused.value.reason == "unsigned"


def test_logout_request_signed_by_another_key_refused(corp, standin):
    """The LogoutRequest must verify with the IdP's metadata certificates, nothing else."""
    genuine = standin.keys
    standin.keys = KeyPair.generate("attacker")
    try:
        params, _ = query(standin.logout_request_url("pers-0001"))
    finally:
        standin.keys = genuine
    with pytest.raises(FederationRefused) as refused:
        corp.handle_slo(params)
    assert refused.value.reason == "signature_invalid"


def test_no_logout_request_without_an_idp_slo_url(idp_keys, sp_keys):
    """Profiles 4.4: an IdP without a SingleLogoutService gets no LogoutRequest."""
    assert connector(sp_keys, direct_settings(idp_keys)).logout_request(SESSION) is None
