"""The OpenID Provider on Authlib: server setup, grants, client auth, keys, endpoints."""
from __future__ import annotations

from flask import Flask


def setup_oidc(app: Flask) -> None:
    """Register the authorization server and its endpoints on `app`."""
