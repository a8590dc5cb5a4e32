"""The OIDC/OAuth URL table (blueprint "oidc"): thin views over the server and the flow modules."""
from __future__ import annotations

from functools import partial

from authlib.oauth2 import OAuth2Error
from flask import Blueprint, current_app, jsonify, render_template, request

from idp.errors import BadRequest, NotFound
from idp.oidc import authorization, discovery, logout, userinfo
from idp.oidc import published_documents as published
from idp.oidc.responses import error_page
from idp.machine_plumbing import machine_endpoint

bp = Blueprint("oidc", __name__)

# Cache lifetimes of the public documents. The JWKS's is short so that relying parties see a key
# published as `next` well before it signs (keys/README.md: wait longer than this between
# `flask keys generate` and `flask keys rotate`); a relying party meeting an unknown kid refetches.
JWKS_MAX_AGE = 60
METADATA_MAX_AGE = 300


@bp.record_once
def _publish_metadata(state) -> None:
    """The discovery documents' bytes live with the app: one build per configuration and key change."""
    state.app.extensions["oidc"]["metadata"] = discovery.PublishedMetadata(state.app, state.app.extensions["oidc"]["keys"])


def published_documents(app) -> tuple[published.Publication, ...]:
    """The documents published_documents answers in front of Flask, at their routes' paths."""
    metadata, keys = app.extensions["oidc"]["metadata"], app.extensions["oidc"]["keys"]
    documents = {"oidc.openid_configuration": (metadata.openid_configuration, METADATA_MAX_AGE),
                 "oidc.authorization_server_metadata": (metadata.authorization_server_metadata, METADATA_MAX_AGE),
                 "oidc.jwks": (keys.published_jwks, JWKS_MAX_AGE)}
    return tuple(published.Publication(next(app.url_map.iter_rules(endpoint)).rule, document, max_age)
                 for endpoint, (document, max_age) in documents.items())


def _server():
    return current_app.extensions["oidc"]["server"]


def _json(body: dict, max_age: int = 300):
    response = jsonify(body)
    response.headers["Cache-Control"] = f"public, max-age={max_age}"
    return response


def _published():
    """The published document's answer when Flask routes the request: published_documents answers
    GET and HEAD before Flask, so these views serve what reaches them otherwise (a method werkzeug
    takes for GET or HEAD but not spelt so) with the same bytes and headers."""
    return partial(current_app.extensions["oidc"]["published"].serve, request.path)


@bp.get("/.well-known/openid-configuration")
@machine_endpoint(carries_tokens=False)
def openid_configuration():
    """OIDC Discovery 1.0 4."""
    return _published()


@bp.get("/.well-known/oauth-authorization-server")
@machine_endpoint(carries_tokens=False)
def authorization_server_metadata():
    """RFC 8414 3."""
    return _published()


@bp.get("/.well-known/webfinger")
@machine_endpoint(carries_tokens=False)
def webfinger():
    """OIDC Discovery 1.0 2 / RFC 7033 4: which issuer serves a user or URL on this host."""
    resource = request.args.get("resource", "")
    if not resource:
        raise BadRequest("The 'resource' parameter is required.")
    body = discovery.webfinger(resource, request.args.getlist("rel"))
    if body is None:
        raise NotFound("This server does not know that resource.")
    response = _json(body)
    response.content_type = "application/jrd+json"
    return response


@bp.get("/oauth2/jwks")
@machine_endpoint(carries_tokens=False)
def jwks():
    """The public signing keys (RFC 7517), rebuilt when the keys change (a rotation shows at once)."""
    return _published()


@bp.route("/oauth2/authorize", methods=["GET", "POST"])
def authorize():
    """OIDC Core 3.1.2 (GET and form POST)."""
    return authorization.begin_authorization()


@bp.get("/oauth2/authorize/resume/<request_id>")
def resume(request_id: str):
    """Continue a pending authorization request after sign-in or consent."""
    return authorization.resume_authorization(request_id)


@bp.post("/oauth2/token")
@machine_endpoint
def token():
    """RFC 6749 3.2."""
    return _server().create_token_response()


@bp.post("/oauth2/introspect")
@machine_endpoint
def introspect():
    """RFC 7662 2."""
    return _server().create_endpoint_response("introspection")


@bp.post("/oauth2/revoke")
@machine_endpoint
def revoke():
    """RFC 7009 2."""
    return _server().create_endpoint_response("revocation")


@bp.route("/oauth2/userinfo", methods=["GET", "POST"])
@machine_endpoint
def userinfo_endpoint():
    """OIDC Core 5.3."""
    return userinfo.userinfo_response()


@bp.route("/oauth2/logout", methods=["GET", "POST"])
def end_session():
    """OpenID Connect RP-Initiated Logout 1.0."""
    try:
        req = _server().validate_endpoint_request("end_session")
    except OAuth2Error as error:
        # RP-Initiated Logout 4: on an error the OP must not redirect.
        return error_page(error.error, error.get_error_description() or "The logout request is not valid.")
    form = logout.confirm_form()
    confirmed = request.method == "POST" and form.validate_on_submit()
    if not logout.tied_to_user(req) and not confirmed:
        return render_template("oidc/logout_confirm.html", form=form, client=req.client)
    return _server().create_endpoint_response("end_session", req) or render_template("oidc/logged_out.html")


@bp.post("/oauth2/register")
@machine_endpoint
def register_client():
    """RFC 7591 3."""
    return _server().create_endpoint_response("client_registration")


@bp.route("/oauth2/register/<client_id>", methods=["GET", "PUT", "DELETE"])
@machine_endpoint
def client_configuration(client_id: str):
    """RFC 7592 2 (read, update, delete)."""
    return _server().create_endpoint_response("client_configuration")


def registration_views() -> tuple:
    """The registration views, for CSRF exemption."""
    return (register_client, client_configuration)
