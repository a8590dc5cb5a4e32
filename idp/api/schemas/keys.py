"""Schemas of /api/v1/keys: the signing keys, as `flask keys list` shows them (never key material)."""
from __future__ import annotations

import marshmallow as ma

from idp.api.conventions import StrictSchema
from idp.services.signing_keys import SUPPORTED_ALGS

KEY_STATES = ["next", "active", "retired"]
KID_PATTERN = r"^[A-Za-z0-9._-]{1,100}$"


def alg_field() -> ma.fields.String:
    return ma.fields.String(load_default="RS256", validate=ma.validate.OneOf(SUPPORTED_ALGS),
                            metadata={"enum": list(SUPPORTED_ALGS), "default": "RS256",
                                      "description": "JWS algorithm (RFC 7518 3.1): RS256 signs every access "
                                                     "token and most ID tokens; ES256 the ID tokens of clients "
                                                     "registered with id_token_signed_response_alg ES256"})


class KeySchema(ma.Schema):
    kid = ma.fields.String(metadata={"description": "Key ID, the `kid` of the JWKS and of every JWS header it signs"})
    alg = ma.fields.String(metadata={"enum": list(SUPPORTED_ALGS)})
    state = ma.fields.String(metadata={"enum": KEY_STATES, "description": (
        "next: published, signs nothing yet; active: signs new tokens (the newest active key per alg); "
        "retired: signs nothing, published until its last tokens have expired")})
    created_at = ma.fields.DateTime()
    activated_at = ma.fields.DateTime(allow_none=True, metadata={"description": "When it started signing"})
    retired_at = ma.fields.DateTime(allow_none=True, metadata={"description": "When it stopped signing"})
    published = ma.fields.Boolean(metadata={"description": "Whether /oauth2/jwks serves it now"})
    published_until = ma.fields.DateTime(allow_none=True, metadata={
        "description": "A retired key leaves the JWKS then: the longest token lifetime after its retirement"})


class KeyAlgSchema(StrictSchema):
    alg = alg_field()


class RotationSchema(ma.Schema):
    outcome = ma.fields.String(metadata={"enum": ["activated", "published"], "description": (
        "activated: the oldest `next` key now signs and the previous active key is retired; published: no "
        "key was waiting, so a new `next` key was published instead (rotate again once relying parties have "
        "refreshed their JWKS cache)")})
    key = ma.fields.Nested(KeySchema, metadata={"description": "The key activated, or the key published"})
    retired = ma.fields.List(ma.fields.String(), metadata={"description": "Kids this rotation retired"})
