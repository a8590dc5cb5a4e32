"""Resource indicators at the token endpoint (RFC 8707 2): which audience a token is for.

This server issues tokens for two resources: the issuer itself (userinfo) and the management API
(API_AUDIENCE). The granted scope decides the audience (idp.services.management_scopes); a
`resource` parameter must name that audience, and for client_credentials without a `scope` it
selects the client's scopes for that resource. One token has one audience, so several distinct
`resource` values are refused rather than silently narrowed.
"""
from __future__ import annotations

from urllib.parse import urlsplit

from authlib.oauth2 import OAuth2Error
from flask import has_request_context, request

from idp.services.management_scopes import (api_audience, audience_for_scope, is_management_scope,
                                            known_resources)


class InvalidTargetError(OAuth2Error):
    """RFC 8707 2: the requested resource is invalid, unknown, or not one the granted scope is for."""

    error = "invalid_target"


def requested_resources() -> list[str]:
    """The distinct `resource` values of the current token request's form body, in order."""
    if not has_request_context():
        return []
    form = request.form
    if "resource" not in form:  # most token requests: no list built
        return []
    values: list[str] = []
    for value in form.getlist("resource"):
        if value not in values:
            values.append(value)
    return values


def requested_resource() -> str | None:
    """The one resource the token request names, or None; InvalidTargetError when it names a value
    that is not an absolute URI without a fragment (RFC 8707 2), an unknown one, or several."""
    values = requested_resources()
    if not values:
        return None
    if len(values) > 1:
        raise InvalidTargetError("Name one resource per token request: a token has one audience.")
    resource = values[0]
    parts = urlsplit(resource)
    if not parts.scheme or parts.fragment or "#" in resource:
        raise InvalidTargetError("The resource must be an absolute URI without a fragment.")
    if resource not in known_resources():
        raise InvalidTargetError("Tokens are not issued for this resource.")
    return resource


def scopes_for_resource(scopes: list[str], resource: str | None) -> list[str]:
    """The scopes among `scopes` that a token for `resource` carries: management scopes for the
    management API, the others for the issuer (all of them when no resource is named)."""
    if resource is None:
        return list(scopes)
    for_api = resource == api_audience()
    return [s for s in scopes if is_management_scope(s) == for_api]


def check_resource(scope: str) -> None:
    """RFC 8707 2: a named resource must be the audience the granted scope gets."""
    resource = requested_resource()
    if resource is not None and resource != audience_for_scope(scope):
        raise InvalidTargetError("The granted scope is not for this resource.")
