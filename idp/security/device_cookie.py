"""The device cookie: a signed note that this browser once signed in to one account with its password.

OWASP's "Slow Down Online Guessing Attacks with Device Cookies": a browser that proved the password
carries a cookie naming the user (id, never the email) and a random nonce, signed with SECRET_KEY
under its own salt, so it cannot be forged, moved to another account or mistaken for another
signed value. The sign-in lockout (idp.services.lockout) lets such a device past the account-wide
slow-down that untrusted clients get, and counts the device's own failures by its nonce.
"""
from __future__ import annotations

import secrets
from dataclasses import dataclass

from flask import after_this_request, current_app, request
from itsdangerous import BadData, URLSafeTimedSerializer

PLAIN_COOKIE = "authy2_device"
HOST_COOKIE = "__Host-authy2_device"
SALT = "authy2.device-cookie"
LIFETIME = 365 * 24 * 3600
_MAX_COOKIE = 512  # a real one is about 120 characters; anything longer is not ours


@dataclass(frozen=True)
class Device:
    user_id: str
    nonce: str


def cookie_name() -> str:
    # Under HTTPS the __Host- prefix makes the browser refuse a cookie planted by a sibling domain.
    return HOST_COOKIE if _secure() else PLAIN_COOKIE


def _secure() -> bool:
    return current_app.config["ISSUER"].startswith("https://")


def _serializer() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.config["SECRET_KEY"], salt=SALT)


def presented_device() -> Device | None:
    """The device this request's cookie names, if the cookie is ours, intact and under a year old."""
    raw = request.cookies.get(cookie_name())
    if not raw or len(raw) > _MAX_COOKIE:
        return None
    try:
        value = _serializer().loads(raw, max_age=LIFETIME)
    except BadData:
        return None
    if not isinstance(value, dict) or not all(isinstance(value.get(k), str) for k in ("u", "n")):
        return None
    return Device(user_id=value["u"], nonce=value["n"])


def issue_device_cookie(user_id: str) -> Device:
    """Give this browser a fresh device cookie for `user_id` on the response (unless it is an error)."""
    device = Device(user_id=user_id, nonce=secrets.token_urlsafe(16))
    value = _serializer().dumps({"u": device.user_id, "n": device.nonce})

    @after_this_request
    def _set_cookie(response):
        if response.status_code < 400:
            response.set_cookie(cookie_name(), value, max_age=LIFETIME, path="/", secure=_secure(),
                                httponly=True, samesite="Lax")
        return response

    return device
