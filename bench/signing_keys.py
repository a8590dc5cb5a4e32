"""Fallback for `flask keys ensure` while that command is missing: the key store's own ensure()."""
from __future__ import annotations

import os

from idp.oidc.keys import KeyStore

if __name__ == "__main__":
    made = KeyStore(os.environ["KEYS_DIR"], 0).ensure()
    print(", ".join(entry["kid"] for entry in made) or "keys already present")
