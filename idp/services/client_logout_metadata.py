"""Client metadata of Back-Channel Logout 1.0 (section 2.2) and Front-Channel Logout 1.0 (section 2),
registered (RFC 7591) and updated (RFC 7592, /api/v1/clients) like the rest, through one more Authlib
claims class."""
from __future__ import annotations

from urllib.parse import urlsplit

from authlib.oauth2.claims import BaseClaims
from joserfc.errors import JoseError

URI_LIMIT = 500  # the columns' size: longer values are refused, never truncated
URI_NAMES = ("backchannel_logout_uri", "frontchannel_logout_uri")
FLAG_NAMES = ("backchannel_logout_session_required", "frontchannel_logout_session_required")


def _origin(uri: str) -> tuple | None:
    """(scheme, host, port) with the scheme's default port; None for a URL that does not parse."""
    try:
        parts = urlsplit(uri)
        return parts.scheme, parts.hostname, parts.port or {"https": 443, "http": 80}.get(parts.scheme)
    except ValueError:
        return None


class MetadataRefused(JoseError):
    """A metadata member this server refuses, with the reason (idp.services.client_metadata names it)."""

    error = "invalid_client_metadata"

    def __init__(self, name: str, description: str):
        super().__init__(description)
        self.name = name


class LogoutChannelMetadata(BaseClaims):
    REGISTERED_CLAIMS = [*URI_NAMES, *FLAG_NAMES]

    def validate(self, now=None, leeway=0):
        super().validate(now, leeway)
        for name in URI_NAMES:
            self._check_uri(name)
        for name in FLAG_NAMES:
            if name in self and not isinstance(self[name], bool):
                raise MetadataRefused(name, f"{name} must be a boolean.")
        self._check_frontchannel_origin()

    def _check_uri(self, name: str) -> None:
        """BCL 2.2 / FCL 2: an absolute http(s) URL (the OP requests it, or frames it), no fragment."""
        value = self.get(name)
        if value in (None, ""):
            return
        is_url = isinstance(value, str) and value.startswith(("https://", "http://"))
        origin = _origin(value) if is_url and not any(c.isspace() for c in value) else None
        if origin is None or not origin[1]:
            raise MetadataRefused(name, f"{name} must be an absolute http or https URL.")
        if "#" in value:
            raise MetadataRefused(name, f"{name} must not contain a fragment.")
        if len(value) > URI_LIMIT:
            raise MetadataRefused(name, f"{name} is too long.")

    def _check_frontchannel_origin(self) -> None:
        """FCL 2: the frontchannel_logout_uri's scheme, host and port are those of a registered redirect URI."""
        uri = self.get("frontchannel_logout_uri")
        redirect_uris = self.get("redirect_uris")
        if not uri or not isinstance(redirect_uris, list):
            return
        if _origin(uri) not in {_origin(r) for r in redirect_uris if isinstance(r, str)} - {None}:
            raise MetadataRefused(
                "frontchannel_logout_uri", "frontchannel_logout_uri must have the scheme, host and port of a registered redirect URI.")
