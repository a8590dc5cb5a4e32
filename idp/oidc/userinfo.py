"""UserInfo (OIDC Core 5.3): GET or POST, bearer token in the header or the form body (RFC 6750 2.1,
2.2); the access token must verify, be unexpired and not revoked (its jti row is checked)."""
from __future__ import annotations

from authlib.integrations.flask_oauth2 import ResourceProtector
from authlib.integrations.flask_oauth2.requests import FlaskJsonRequest
from authlib.oauth2 import OAuth2Error
from authlib.oauth2.rfc6749 import InvalidRequestError, MissingAuthorizationError
from authlib.oauth2.rfc6750 import BearerTokenValidator, InvalidTokenError
from flask import Response, current_app, jsonify, request

from idp.models import AccessToken
from idp.oidc.bearer import find_issuer_access_token
from idp.oidc.claims import userinfo_claims

REALM = "userinfo"


class JWTAccessTokenValidator(BearerTokenValidator):
    """RFC 9068 4: signature by a published key, typ at+jwt, iss, exp, aud the issuer; then the jti row."""

    def authenticate_token(self, token_string: str) -> AccessToken | None:
        token = find_issuer_access_token(token_string)
        return token if token is not None and not token.is_expired() else None

    def validate_token(self, token, scopes, request):
        super().validate_token(token, scopes, request)
        if token.user is None or not token.user.is_active:
            raise InvalidTokenError(realm=self.realm, description="The access token has no active end user.")


class UserInfoProtector(ResourceProtector):
    def parse_request_authorization(self, req):
        """The Authorization header, or (RFC 6750 2.2) a form-encoded POST body `access_token`."""
        in_body = request.method == "POST" and request.mimetype == "application/x-www-form-urlencoded" \
            and "access_token" in request.form
        if in_body and req.headers.get("Authorization"):
            raise InvalidRequestError("Send the access token in one place only.")
        if in_body:
            return self.get_token_validator("bearer"), request.form["access_token"]
        return super().parse_request_authorization(req)


def build_protector() -> UserInfoProtector:
    """The resource protector for UserInfo, kept in app.extensions."""
    protector = UserInfoProtector()
    protector.register_token_validator(JWTAccessTokenValidator(realm=REALM))
    return protector


def userinfo_response() -> Response:
    """OIDC Core 5.3.2: the claims the token's scope and claims request allow."""
    protector: UserInfoProtector = current_app.extensions["oidc"]["userinfo"]
    try:
        token = protector.validate_request(["openid"], FlaskJsonRequest(request))
    except OAuth2Error as error:
        return bearer_error(error)
    claims = userinfo_claims(token.user, token.scope, token.claims)
    if token.session is not None and token.session.idp:
        claims["idp"] = token.session.idp  # the upstream a federated sign-in went through, as in the ID token
    response = jsonify(claims)
    response.headers["Cache-Control"] = "no-store"
    return response


def bearer_error(error: OAuth2Error) -> Response:
    """RFC 6750 3: the error JSON with its WWW-Authenticate challenge."""
    status, body, headers = error()
    if isinstance(error, MissingAuthorizationError):
        body = {}  # RFC 6750 3.1: no error code when the request carried no credentials
        headers = [(k, v) for k, v in headers if k != "WWW-Authenticate"] + [
            ("WWW-Authenticate", f'Bearer realm="{REALM}"')]
    response = jsonify(body)
    response.status_code = status
    for name, value in headers:
        response.headers[name] = value
    return response
