"""Settings of a `saml` upstream, as the management API hands them and as they are stored.

Given: `metadata_url` or `metadata_xml` (or `entity_id`, `sso_url`, `certificates` directly),
`allow_idp_initiated` (default false), optional `slo_url`, `name_id_attribute`,
`email_attribute`, `name_attribute`, `groups_attribute`. Stored: the IdP's `entity_id`, `sso_url`,
`slo_url` and signing `certificates` (PEM) read from the metadata, `retiring_certificates`
(rollover, saml_metadata.merge_certificates), `metadata_fetched_at`, and our `sp_certificate`;
the SP private key is the secret `sp_private_key`, made here when none is given.
Validation accepts its own output, so saving again (a PATCH) re-reads the metadata.
"""
from __future__ import annotations

from datetime import datetime, timezone

from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import load_pem_private_key

from idp.federation.connector import UpstreamSettingsInvalid
from idp.federation.http import UpstreamHttp, UpstreamHttpError
from idp.federation.saml_metadata import (IdpMetadata, MetadataInvalid, certificate_matches_key, certificate_pem,
                                          generate_sp_key_pair, logout_url_of, merge_certificates, parse_idp_metadata,
                                          self_signed_certificate)

ATTRIBUTE_FIELDS = ("name_id_attribute", "email_attribute", "name_attribute", "groups_attribute")
DERIVED_FIELDS = ("retiring_certificates", "metadata_fetched_at", "sp_certificate")
KNOWN_FIELDS = {"metadata_url", "metadata_xml", "entity_id", "sso_url", "slo_url", "certificates",
                "allow_idp_initiated", *ATTRIBUTE_FIELDS, *DERIVED_FIELDS}


def fetch_metadata(http: UpstreamHttp, url: str, entity_id: str | None = None) -> IdpMetadata:
    """The IdP metadata at `url` (one guarded GET: no redirects, size cap); MetadataInvalid saying
    what is wrong."""
    try:
        status, text = http.get_text(url, headers={"Accept": "application/samlmetadata+xml, application/xml"})
    except UpstreamHttpError as error:
        raise MetadataInvalid(f"could not be fetched: {error}") from None
    if status != 200:
        raise MetadataInvalid(f"answered HTTP {status}, not the metadata")
    return parse_idp_metadata(text, entity_id)


def validate_settings(settings: dict, secrets: dict, http: UpstreamHttp) -> tuple[dict, dict]:
    """The settings and secrets as stored; UpstreamSettingsInvalid naming each bad field."""
    unknown = sorted(set(settings) - KNOWN_FIELDS)
    if unknown:
        raise UpstreamSettingsInvalid({name: "is not a setting of a SAML upstream" for name in unknown})
    stored = _idp_settings(settings, http)
    stored["allow_idp_initiated"] = _bool(settings, "allow_idp_initiated")
    for name in ATTRIBUTE_FIELDS:
        value = settings.get(name)
        if value not in (None, ""):
            if not isinstance(value, str) or len(value) > 512:
                raise UpstreamSettingsInvalid({name: "must be an attribute name (Name or FriendlyName)"})
            stored[name] = value.strip()
    for name in ("sso_url", "slo_url"):
        if stored.get(name):
            try:
                http.check(stored[name], label=name)
            except UpstreamHttpError as error:
                raise UpstreamSettingsInvalid({name: f"is not allowed: {error}"}) from None
    return _sp_key_pair(stored, settings, secrets)


def _idp_settings(settings: dict, http: UpstreamHttp) -> dict:
    for name in ("metadata_url", "metadata_xml", "entity_id", "sso_url", "slo_url"):
        if settings.get(name) is not None and not isinstance(settings[name], str):
            raise UpstreamSettingsInvalid({name: "must be a string"})
    entity_hint = settings.get("entity_id") or None
    try:
        if settings.get("metadata_url"):
            metadata = fetch_metadata(http, settings["metadata_url"], entity_hint)
            origin = {"metadata_url": settings["metadata_url"],
                      "metadata_fetched_at": datetime.now(timezone.utc).isoformat()}
        elif settings.get("metadata_xml"):
            metadata, origin = parse_idp_metadata(str(settings["metadata_xml"]), entity_hint), {}
        else:
            metadata, origin = _direct_metadata(settings), {}
    except MetadataInvalid as error:
        field = "metadata_url" if settings.get("metadata_url") else "metadata_xml"
        raise UpstreamSettingsInvalid({field: str(error)}) from None
    if origin or settings.get("metadata_xml"):
        previous = {"certificates": settings.get("certificates") or [],
                    "retiring_certificates": settings.get("retiring_certificates") or []}
        stored = merge_certificates({**_normalized(previous), "entity_id": settings.get("entity_id")},
                                    metadata.certificates, metadata.entity_id)
    else:
        stored = {"certificates": list(metadata.certificates), "retiring_certificates": []}
    stored.update(origin, entity_id=metadata.entity_id, sso_url=metadata.sso_url,
                  slo_url=logout_url_of(settings, metadata.slo_url, metadata.entity_id))
    return stored


def _normalized(previous: dict) -> dict:
    try:
        return {name: [certificate_pem(pem) for pem in values if isinstance(pem, str)]
                for name, values in previous.items()}
    except MetadataInvalid:
        return {}


def _direct_metadata(settings: dict) -> IdpMetadata:
    """entity_id, sso_url and certificates given without metadata."""
    missing = [name for name in ("entity_id", "sso_url", "certificates") if not settings.get(name)]
    if missing:
        raise UpstreamSettingsInvalid({name: "is required without metadata_url or metadata_xml" for name in missing})
    given = settings["certificates"]
    given = [given] if isinstance(given, str) else given
    try:
        certificates = tuple(dict.fromkeys(certificate_pem(pem) for pem in given if isinstance(pem, str)))
    except MetadataInvalid as error:
        raise UpstreamSettingsInvalid({"certificates": str(error)}) from None
    if not certificates:
        raise UpstreamSettingsInvalid({"certificates": "at least one signing certificate (PEM) is required"})
    return IdpMetadata(str(settings["entity_id"]), str(settings["sso_url"]), settings.get("slo_url"), certificates)


def _bool(settings: dict, name: str) -> bool:
    value = settings.get(name, False)
    if not isinstance(value, bool):
        raise UpstreamSettingsInvalid({name: "must be true or false"})
    return value


def _sp_key_pair(stored: dict, settings: dict, secrets: dict) -> tuple[dict, dict]:
    """Our key pair: the given `sp_private_key` (RSA, 2048 bits or more) with its certificate, or a
    new one; the certificate is public (our metadata), the key stays secret."""
    key_pem = secrets.get("sp_private_key")
    entity_id = stored["entity_id"]
    if not key_pem:
        key_pem, certificate = generate_sp_key_pair(entity_id)
        return {**stored, "sp_certificate": certificate}, {**secrets, "sp_private_key": key_pem}
    try:
        key = load_pem_private_key(str(key_pem).encode("ascii"), password=None)
    except (ValueError, TypeError):
        raise UpstreamSettingsInvalid({"sp_private_key": "must be an unencrypted PEM private key"}) from None
    if not isinstance(key, rsa.RSAPrivateKey) or key.key_size < 2048:
        raise UpstreamSettingsInvalid({"sp_private_key": "must be an RSA key of 2048 bits or more"})
    certificate = settings.get("sp_certificate")
    if not _matches(certificate, key_pem):
        certificate = self_signed_certificate(key_pem, entity_id)
    return {**stored, "sp_certificate": certificate}, secrets


def _matches(certificate, key_pem: str) -> bool:
    try:
        return bool(certificate) and certificate_matches_key(str(certificate), key_pem)
    except ValueError:
        return False
