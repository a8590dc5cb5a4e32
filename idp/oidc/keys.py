"""The signing keys, for the OpenID Provider: the KeyStore lives in idp.services.signing_keys (the
management API needs it too and may not import idp.oidc); re-exported here for the provider's modules."""
from idp.services.signing_keys import (  # noqa: F401 (re-exports)
    METADATA_FILE, SUPPORTED_ALGS, KeyOperationError, KeyStore, LastSigningKey, PublishedDocument, SigningKey,
    UnknownKey, UnsupportedAlgorithm,
)
