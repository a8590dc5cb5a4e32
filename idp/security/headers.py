"""Security headers on every response: CSP with per-request nonces, nosniff, framing, HSTS; machine
endpoints (JSON for programs) get only nosniff, HSTS and, where tokens travel, no-store."""
from __future__ import annotations

import secrets
from urllib.parse import urlsplit

from flask import Flask, current_app, g, request


def csp_nonce() -> str:
    """The nonce for this response's CSP; templates put it on any <script>/<style> they need."""
    if "csp_nonce" not in g:
        g.csp_nonce = secrets.token_urlsafe(16)
    return g.csp_nonce


def _policy(script: str) -> str:
    return "; ".join([
        "default-src 'self'",
        f"script-src {script}",
        f"style-src {script}",
        "img-src 'self' data: https:",
        "object-src 'none'",
        "base-uri 'none'",
        "frame-ancestors 'none'",
    ])


# Built once: most responses (every JSON and token response) carry no nonce.
NO_NONCE_POLICY = _policy("'self'")
NOSNIFF = ("X-Content-Type-Options", "nosniff")
CONSTANT_HEADERS = (NOSNIFF, ("X-Frame-Options", "DENY"),
                    ("Referrer-Policy", "no-referrer"), ("Cross-Origin-Opener-Policy", "same-origin"))
HSTS = "max-age=31536000; includeSubDomains"


def allow_frames(uris: list[str]) -> None:
    """Let this response, and no other, frame exactly the origins of `uris` (the Front-Channel Logout
    iframes of a signed-out page): its CSP gets a frame-src of those origins."""
    origins = sorted({origin for origin in map(origin_of, uris) if origin})
    if origins:
        g.csp_frame_src = " ".join(origins)


def origin_of(uri: str) -> str | None:
    """scheme://host[:port] of an absolute URL, as a CSP source (no path, no user info); None if unparsable."""
    try:
        parts = urlsplit(uri)
        port = parts.port
    except ValueError:
        return None
    if not parts.hostname:
        return None
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    return f"{parts.scheme}://{host}" + (f":{port}" if port else "")


def content_security_policy() -> str:
    nonce, frames = g.get("csp_nonce"), g.get("csp_frame_src")
    if not nonce and not frames:
        return NO_NONCE_POLICY
    policy = _policy(f"'self' 'nonce-{nonce}'" if nonce else "'self'")
    return f"{policy}; frame-src {frames}" if frames else policy


def apply_security_headers(response):
    headers = response.headers
    present = {name.lower() for name, _ in headers.items()}
    missing = [(name, value) for name, value in CONSTANT_HEADERS if name.lower() not in present]
    if "content-security-policy" not in present:
        missing.append(("Content-Security-Policy", content_security_policy()))
    if "strict-transport-security" not in present and (
            current_app.config["ISSUER"].startswith("https://") or request.is_secure):
        missing.append(("Strict-Transport-Security", HSTS))
    headers.extend(missing)
    return response


def machine_headers(*, https_issuer: bool, carries_tokens: bool):
    """The after-request hook of one machine endpoint (JSON for programs, never rendered): only what
    such a response needs, decided when the route is registered. nosniff (the JSON is never sniffed
    into HTML); HSTS as on every response (RFC 6797); and where tokens or credentials travel,
    `Cache-Control: no-store` and `Pragma: no-cache` (RFC 6749 5.1) unless the view chose its own.
    CSP, framing and referrer policies govern documents a browser renders, so they are left off."""
    always = tuple((name.lower(), name, value)
                   for name, value in (NOSNIFF, *([("Strict-Transport-Security", HSTS)] if https_issuer else [])))
    no_store = (("Cache-Control", "no-store"), ("Pragma", "no-cache")) if carries_tokens else ()

    def apply_machine_headers(response):
        headers = response.headers
        present = {name.lower() for name, _ in headers}  # one pass over the few headers a view set
        for lowered, name, value in always:
            if lowered not in present:
                headers.add(name, value)
        if not https_issuer and "strict-transport-security" not in present and request.is_secure:
            headers.add("Strict-Transport-Security", HSTS)
        if "cache-control" not in present:
            for name, value in no_store:
                headers.add(name, value)
        return response

    return apply_machine_headers


def setup_security_headers(app: Flask) -> None:
    app.after_request(apply_security_headers)
    app.jinja_env.globals["csp_nonce"] = csp_nonce
