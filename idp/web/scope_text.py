"""Scopes in plain words, for the consent page and the account's connected apps."""
from __future__ import annotations

SCOPE_DESCRIPTIONS: dict[str, str] = {
    "openid": "Sign you in and know who you are",
    "profile": "Your name, picture and locale",
    "email": "Your email address and whether it is verified",
    "phone": "Your phone number",
    "address": "Your postal address",
    "organizations": "The organizations you belong to and your role in each",
    "offline_access": "Stay connected when you are not using the app",
}


def scope_lines(scopes: list[str]) -> list[dict]:
    """Each requested scope in plain words (openid itself says nothing a person needs to read)."""
    return [{"scope": scope, "text": SCOPE_DESCRIPTIONS.get(scope, f"Use the “{scope}” permission")}
            for scope in scopes if scope != "openid"]
