"""pysaml2 and xmlsec1 behind the gate: the signature verified with the configured IdP certificates
only, the assertion decrypted with the SP key, pysaml2's own saml2int checks on top.

The configuration is built in memory for each response from the stored settings: the IdP's
metadata is rebuilt from them (so only certificates we trust are in pysaml2's metadata store,
never one from KeyInfo: CVE-2021-21239) and `only_use_keys_in_metadata` is set. xmlsec1 reads keys
from files, so the SP key and certificate live in a private temporary directory (mode 0700) for the
duration of one call and are removed after it.
"""
from __future__ import annotations

import base64
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from saml2 import BINDING_HTTP_POST, BINDING_HTTP_REDIRECT
from saml2.client import Saml2Client
from saml2.config import SPConfig
from saml2.response import StatusError, UnsolicitedResponse
from saml2.sigver import CryptoBackendXmlSec1, DecryptError, SigverError
from saml2.validate import ResponseLifetimeExceed, ToEarly

from idp.federation.connector import FederationRefused
from idp.federation.saml_assertion import SKEW
from idp.federation.saml_metadata import NAMEID_PERSISTENT, idp_metadata

XMLSEC_PATHS = ("/usr/bin", "/usr/local/bin", "/opt/homebrew/bin")


@dataclass(frozen=True)
class SpContext:
    """Who we are for one upstream: entity ID (the metadata URL), ACS and SLO URLs, key pair."""

    entity_id: str
    acs_url: str
    slo_url: str
    certificate: str
    private_key: str


def xmlsec_binary() -> str:
    """The xmlsec1 executable (Debian: /usr/bin/xmlsec1, package xmlsec1)."""
    found = shutil.which("xmlsec1") or next(
        (os.path.join(p, "xmlsec1") for p in XMLSEC_PATHS if os.path.exists(os.path.join(p, "xmlsec1"))), None)
    if not found:
        raise FederationRefused("xmlsec_missing", detail="xmlsec1 is not installed")
    return found


def _write_private(directory: str, name: str, text: str) -> str:
    path = os.path.join(directory, name)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w") as handle:
        handle.write(text)
    return path


def sp_config(sp: SpContext, idp: dict, certificates: list[str], *, allow_unsolicited: bool,
              key_file: str, cert_file: str) -> SPConfig:
    """pysaml2's SP configuration: our endpoints, the IdP rebuilt from `certificates`, a signature
    on the response or the assertion required, 60 s clock skew."""
    config = SPConfig()
    config.load({
        "entityid": sp.entity_id,
        "xmlsec_binary": xmlsec_binary(),
        "delete_tmpfiles": True,
        "key_file": key_file,
        "cert_file": cert_file,
        "encryption_keypairs": [{"key_file": key_file, "cert_file": cert_file}],
        "accepted_time_diff": int(SKEW.total_seconds()),
        "allow_unknown_attributes": True,
        "only_use_keys_in_metadata": True,
        "metadata": {"inline": [idp_metadata(idp["entity_id"], idp["sso_url"], idp.get("slo_url"), certificates)]},
        "service": {"sp": {
            "endpoints": {"assertion_consumer_service": [(sp.acs_url, BINDING_HTTP_POST)],
                          "single_logout_service": [(sp.slo_url, BINDING_HTTP_REDIRECT)]},
            "allow_unsolicited": allow_unsolicited,
            "want_assertions_or_response_signed": True,
            "want_response_signed": False,
            "want_assertions_signed": False,
            "authn_requests_signed": True,
            "name_id_format": NAMEID_PERSISTENT,
        }},
    })
    return config


@contextmanager
def sp_client(sp: SpContext, idp: dict, certificates: list[str], *, allow_unsolicited: bool) -> Iterator[Saml2Client]:
    """A Saml2Client for one operation, its key files removed afterwards."""
    directory = tempfile.mkdtemp(prefix="authy2-saml-")
    try:
        key_file = _write_private(directory, "sp.key", sp.private_key)
        cert_file = _write_private(directory, "sp.crt", sp.certificate)
        yield Saml2Client(config=sp_config(sp, idp, certificates, allow_unsolicited=allow_unsolicited,
                                           key_file=key_file, cert_file=cert_file))
    finally:
        shutil.rmtree(directory, ignore_errors=True)


# pysaml2's exceptions, most specific first, as our refusal reasons.
_REASONS = (
    (DecryptError, "decryption_failed"),
    (SigverError, "signature_invalid"),
    (ResponseLifetimeExceed, "expired"),
    (ToEarly, "not_yet_valid"),
    (StatusError, "status"),
    (UnsolicitedResponse, "in_response_to"),
)


def reason_for(error: Exception) -> str | None:
    """Our reason for a pysaml2 refusal, or None when pysaml2 did not say precisely why."""
    for kind, reason in _REASONS:
        if isinstance(error, kind):
            return reason
    return None


def verify_response(xml: bytes, sp: SpContext, idp: dict, certificates: list[str], request_id: str | None):
    """pysaml2's AuthnResponse for `xml` (the exact bytes the gate passed): signature verified with
    `certificates` only, assertion decrypted, saml2int checks done. Raises what pysaml2 raises;
    None when pysaml2 refused without an exception."""
    encoded = base64.b64encode(xml).decode("ascii")
    outstanding = {request_id: "sp-initiated"} if request_id else {}
    with sp_client(sp, idp, certificates, allow_unsolicited=request_id is None) as client:
        return client.parse_authn_request_response(encoded, BINDING_HTTP_POST, outstanding=outstanding)


def signature_verifies_with(xml: str, certificate: str, node_name: str, node_id: str) -> bool:
    """Whether xmlsec1 verifies the signature of the element `node_id` with `certificate` alone
    (used to know when a rolled-over certificate has taken over)."""
    directory = tempfile.mkdtemp(prefix="authy2-saml-")
    try:
        cert_file = _write_private(directory, "idp.crt", certificate)
        backend = CryptoBackendXmlSec1(xmlsec_binary())
        try:
            return bool(backend.validate_signature(xml, cert_file, "pem", node_name, node_id))
        except SigverError:
            return False
    finally:
        shutil.rmtree(directory, ignore_errors=True)
