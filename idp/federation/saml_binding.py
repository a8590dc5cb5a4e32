"""SAML 2.0 bindings (saml-bindings-2.0-os): HTTP-Redirect with its query-string signature (3.4) and
the HTTP-POST form value (3.5), with size caps so that neither base64 nor DEFLATE can be a bomb."""
from __future__ import annotations

import base64
import binascii
import zlib
from urllib.parse import quote_plus, urlencode

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.serialization import load_pem_private_key

from idp.federation.connector import FederationRefused

RSA_SHA256 = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"
# Query-string signature algorithms accepted from an IdP (bindings 3.4.4.1): SHA-2 only, never HMAC.
SIG_ALGS = {
    RSA_SHA256: hashes.SHA256,
    "http://www.w3.org/2001/04/xmldsig-more#rsa-sha384": hashes.SHA384,
    "http://www.w3.org/2001/04/xmldsig-more#rsa-sha512": hashes.SHA512,
    "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha256": hashes.SHA256,
    "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha384": hashes.SHA384,
    "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha512": hashes.SHA512,
}
# A signed SAML Response with a few dozen attributes is under 20 KB; anything far larger is refused unread.
MAX_MESSAGE_BYTES = 256 * 1024


def decode_post_value(value: str | None) -> bytes:
    """The XML of an HTTP-POST binding form value (bindings 3.5.4: base64, no DEFLATE), size-capped."""
    if not value:
        raise FederationRefused("malformed", detail="no SAML message in the form")
    if len(value) > MAX_MESSAGE_BYTES * 4 // 3 + 4:
        raise FederationRefused("response_too_large", detail=f"{len(value)} bytes of base64")
    try:
        return base64.b64decode("".join(value.split()), validate=True)
    except (binascii.Error, ValueError):
        raise FederationRefused("malformed", detail="the SAML message is not base64") from None


def deflate_and_encode(xml: str) -> str:
    """DEFLATE (RFC 1951, raw) then base64: the HTTP-Redirect encoding (bindings 3.4.4.1)."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    return base64.b64encode(compressor.compress(xml.encode("utf-8")) + compressor.flush()).decode("ascii")


def decode_and_inflate(value: str) -> bytes:
    """The XML of an HTTP-Redirect parameter, inflated at most to MAX_MESSAGE_BYTES."""
    try:
        compressed = base64.b64decode(value, validate=True)
        inflater = zlib.decompressobj(-15)
        xml = inflater.decompress(compressed, MAX_MESSAGE_BYTES)
    except (binascii.Error, ValueError, zlib.error):
        raise FederationRefused("malformed", detail="the SAML message is not base64 DEFLATE") from None
    if inflater.unconsumed_tail:
        raise FederationRefused("response_too_large", detail="the inflated SAML message is too large")
    return xml


def _signed_octets(kind: str, params: dict[str, str]) -> bytes:
    """`kind=...&RelayState=...&SigAlg=...`, each URL-encoded, in that order (bindings 3.4.4.1)."""
    order = (kind, "RelayState", "SigAlg")
    return "&".join(f"{name}={quote_plus(params[name])}" for name in order if name in params).encode("ascii")


def _raw_signed_octets(kind: str, raw_query: str) -> bytes:
    """The same octets taken from the query string exactly as received (bindings 3.4.4.1: the
    signature is over the original encoding, which need not be ours)."""
    parts = dict(part.split("=", 1) for part in raw_query.split("&") if "=" in part)
    return "&".join(f"{name}={parts[name]}" for name in (kind, "RelayState", "SigAlg") if name in parts).encode("ascii")


def redirect_url(location: str, kind: str, xml: str, private_key_pem: str, relay_state: str | None = None) -> str:
    """`location` with the DEFLATE-encoded message, RelayState and an RSA-SHA256 query signature
    (bindings 3.4.4.1), as an IdP expecting signed AuthnRequests or logout messages wants it."""
    params = {kind: deflate_and_encode(xml)}
    if relay_state:
        params["RelayState"] = relay_state
    params["SigAlg"] = RSA_SHA256
    key = load_private_key(private_key_pem)
    params["Signature"] = base64.b64encode(
        key.sign(_signed_octets(kind, params), padding.PKCS1v15(), hashes.SHA256())).decode("ascii")
    return f"{location}{'&' if '?' in location else '?'}{urlencode(params)}"


def load_private_key(pem: str) -> rsa.RSAPrivateKey:
    return load_pem_private_key(pem.encode("ascii"), password=None)


def verify_redirect_signature(kind: str, params: dict[str, str], certificates: list[str],
                              raw_query: str | None = None) -> None:
    """The query signature of a received HTTP-Redirect message, checked against the configured
    certificates only (bindings 3.4.4.1); FederationRefused "unsigned" or "signature_invalid"."""
    sig_alg, signature = params.get("SigAlg"), params.get("Signature")
    if not sig_alg or not signature:
        raise FederationRefused("unsigned", detail=f"the {kind} carries no query signature")
    if sig_alg not in SIG_ALGS:
        raise FederationRefused("algorithm_refused", detail=f"SigAlg {sig_alg}")
    try:
        signature_bytes = base64.b64decode(signature, validate=True)
    except (binascii.Error, ValueError):
        raise FederationRefused("signature_invalid", detail="the Signature is not base64") from None
    octets = _raw_signed_octets(kind, raw_query) if raw_query else _signed_octets(kind, params)
    digest = SIG_ALGS[sig_alg]()
    for pem in certificates:
        public_key = x509.load_pem_x509_certificate(pem.encode("ascii")).public_key()
        if _verifies(public_key, sig_alg, signature_bytes, octets, digest):
            return
    raise FederationRefused("signature_invalid", detail=f"the {kind} query signature does not verify")


def _verifies(public_key, sig_alg: str, signature: bytes, octets: bytes, digest) -> bool:
    try:
        if isinstance(public_key, rsa.RSAPublicKey) and "#rsa-" in sig_alg:
            public_key.verify(signature, octets, padding.PKCS1v15(), digest)
        elif isinstance(public_key, ec.EllipticCurvePublicKey) and "#ecdsa-" in sig_alg:
            public_key.verify(signature, octets, ec.ECDSA(digest))
        else:
            return False
    except InvalidSignature:
        return False
    return True
