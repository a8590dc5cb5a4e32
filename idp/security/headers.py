"""Security headers on every response: CSP with per-request nonces, nosniff, framing, HSTS."""
from __future__ import annotations

import secrets

from flask import Flask, current_app, g, request


def csp_nonce() -> str:
    """The nonce for this response's CSP; templates put it on any <script>/<style> they need."""
    if "csp_nonce" not in g:
        g.csp_nonce = secrets.token_urlsafe(16)
    return g.csp_nonce


def content_security_policy() -> str:
    nonce = g.get("csp_nonce")
    script = f"'self' 'nonce-{nonce}'" if nonce else "'self'"
    return "; ".join([
        "default-src 'self'",
        f"script-src {script}",
        f"style-src {script}",
        "img-src 'self' data: https:",
        "object-src 'none'",
        "base-uri 'none'",
        "frame-ancestors 'none'",
    ])


def apply_security_headers(response):
    headers = response.headers
    headers.setdefault("Content-Security-Policy", content_security_policy())
    headers.setdefault("X-Content-Type-Options", "nosniff")
    headers.setdefault("X-Frame-Options", "DENY")
    headers.setdefault("Referrer-Policy", "no-referrer")
    headers.setdefault("Cross-Origin-Opener-Policy", "same-origin")
    if request.is_secure or current_app.config["ISSUER"].startswith("https://"):
        headers.setdefault("Strict-Transport-Security", "max-age=31536000; includeSubDomains")
    return response


def setup_security_headers(app: Flask) -> None:
    app.after_request(apply_security_headers)
    app.jinja_env.globals["csp_nonce"] = csp_nonce
