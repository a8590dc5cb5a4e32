"""The authorization endpoint's flow: validate, then sign in, consent, and issue the code.

A request that needs the user is stored server-side under an opaque id (services.authorization_
requests): only the parameters this server reads, each within its limit (authorization_bounds), and
no more rows per client address than RATELIMIT_AUTHORIZE_PENDING. The hosted pages send the browser
back to `oidc.resume` with only that id.
"""
from __future__ import annotations

from datetime import datetime, timedelta

from authlib.oauth2 import OAuth2Error
from authlib.oauth2.rfc6749 import AccessDeniedError
from authlib.oidc.core.errors import ConsentRequiredError, LoginRequiredError
from flask import Response, current_app, request, url_for
from werkzeug.routing import BuildError

from idp.errors import RateLimited
from idp.models import Session, SessionKind, utcnow
from idp.oidc.authorization_bounds import check_echoed_parameters, kept_parameters
from idp.oidc.authorization_checks import essential_acr_values, id_token_hint_subject, requested_subject
from idp.oidc.request_objects import resolve_request_object
from idp.oidc.oauth_requests import StoredAuthorizationRequest
from idp.oidc.responses import as_flask_response, error_page, error_response, redirect_to
from idp.security.client_ip import client_ip
from idp.services import authorization_requests as pending_requests
from idp.services import tokens as token_records
from idp.services.browser_sessions import current_sign_in, keep_sign_in, presented_sign_in_token
from idp.services.consent import has_consent
from idp.services.sessions import SignIn
from idp.services.single_statement_writes import writes_stand_alone

LOGIN, CONSENT, ISSUE = "login", "consent", "issue"
WRONG_USER, UNMET_ACR = "wrong_user", "unmet_acr"  # the request ends in an error at the redirect URI


class UnmetAuthenticationRequirements(OAuth2Error):
    """OpenID Connect Core Unmet Authentication Requirements 1.0, section 2."""

    error = "unmet_authentication_requirements"


REQUEST_ENDING_ERRORS = {
    WRONG_USER: (AccessDeniedError, "The signed-in user is not the one the request names."),
    UNMET_ACR: (UnmetAuthenticationRequirements, "The sign-in does not meet the essential 'acr' requested."),
}


def _server():
    return current_app.extensions["oidc"]["server"]


def begin_authorization() -> Response:
    """OIDC Core 3.1.2: validate a fresh authorization request and carry it as far as it can go.

    Its writes are each one statement complete by itself (the session's touch, the pending request,
    the code with its audit row), so on PostgreSQL they run without BEGIN and COMMIT round trips."""
    writes_stand_alone()
    server = _server()
    oauth_request = server.create_oauth2_request(request)
    try:
        check_echoed_parameters(oauth_request.payload.data)
        resolve_request_object(oauth_request, server.query_client(oauth_request.payload.client_id))
        grant = server.get_consent_grant(oauth_request)
    except OAuth2Error as error:
        return error_response(error, oauth_request.payload.data.get("response_mode"))
    issued = issue_code_on_sign_in(grant)
    return issued if issued is not None else proceed(grant, created_at=utcnow(), pending_id=None)


def issue_code_on_sign_in(grant) -> Response | None:
    """PostgreSQL, for a fresh request that every consented live sign-in answers with a code
    (issued_on_consented_sign_in): the statement that stores the code (and its audit row) reads the
    sign-in and the consent, one round trip instead of a SELECT of each and then the INSERT. None
    when that does not apply, or when no code was issued: then nothing is written, and proceed,
    knowing the sign-in (or that there is none), sends the browser to sign in or to consent."""
    token = presented_sign_in_token()
    if token is None or not token_records.stores_codes_on_sign_in() or not issued_on_consented_sign_in(grant):
        return None
    response, session = grant.create_authorization_response_on_sign_in(grant.redirect_uri, token, SessionKind.BROWSER)
    keep_sign_in(session)
    return as_flask_response(response) if response is not None else None


def issued_on_consented_sign_in(grant) -> bool:
    """Whether next_step answers ISSUE for every live session whose user consented to the scope (or
    for any, a first-party client), deciding nothing else from it: no prompt but `none`, and nothing
    that names or bounds the sign-in (max_age, id_token_hint, a claims request for `sub` or an
    essential `acr`)."""
    data = grant.request.payload.data
    return (set(data.get("prompt", "").split()) <= {"none"} and data.get("max_age") is None
            and not data.get("id_token_hint") and requested_subject(data) is None
            and not essential_acr_values(data))


def resume_authorization(request_id: str) -> Response:
    """Continue a pending request after the hosted pages signed the user in or took consent."""
    pending = pending_requests.get_pending(request_id)
    oauth_request = StoredAuthorizationRequest(pending.params)
    try:
        grant = _server().get_consent_grant(oauth_request)
        if pending.denied:
            pending_requests.complete(pending.id)
            raise AccessDeniedError(redirect_uri=grant.redirect_uri, state=pending.params.get("state"))
    except OAuth2Error as error:
        return error_response(error, pending.params.get("response_mode"))
    return proceed(grant, created_at=pending.created_at, pending_id=pending.id)


def next_step(data: dict, grant, session: Session | SignIn | None, created_at: datetime) -> str:
    """What the request still needs: sign-in, consent, or nothing (issue the code)."""
    if session is None:
        return LOGIN
    # A sign-in completed during this request satisfies prompt=login, select_account and max_age.
    fresh = session.auth_time >= created_at
    prompts = set(data.get("prompt", "").split())
    if not fresh and prompts & {"login", "select_account"}:
        return LOGIN
    max_age = data.get("max_age")
    if not fresh and max_age is not None and utcnow() - session.auth_time > timedelta(seconds=int(max_age)):
        return LOGIN
    hinted = id_token_hint_subject(data)
    if not fresh and hinted and hinted != session.user.subject:
        return LOGIN
    named = requested_subject(data)
    if named is not None and named != session.user.subject:
        # OIDC Core 5.5.1: never a token for another user than the `sub` the claims request names.
        return WRONG_USER if fresh else LOGIN
    required_acr = essential_acr_values(data)
    if required_acr and (session.acr or "0") not in required_acr:
        # OIDC Core 5.5.1.1: an essential acr the sign-in cannot meet is a failed authentication
        # (no sign-in method here reaches a higher level, so signing in again would not help).
        return UNMET_ACR
    return consent_step(prompts, grant, session, created_at)


def consent_step(prompts: set[str], grant, session: Session | SignIn, created_at: datetime) -> str:
    """Consent: always asked under prompt=consent, else unless remembered or first-party."""
    scopes = (grant.request.scope or "").split()
    client, user = grant.client, session.user
    if "consent" in prompts:
        return ISSUE if has_consent(user, client, scopes, since=created_at) else CONSENT
    if client.first_party or has_consent(user, client, scopes):
        return ISSUE
    return CONSENT


def proceed(grant, created_at: datetime, pending_id: str | None) -> Response:
    """Issue the code, answer prompt=none errors, or send the browser to sign-in/consent."""
    data = grant.request.payload.data
    session = current_sign_in()
    step = next_step(data, grant, session, created_at)
    state, mode = data.get("state"), data.get("response_mode")
    if pending_id and (step == ISSUE or step in REQUEST_ENDING_ERRORS):
        pending_requests.complete(pending_id)  # a final answer closes the pending request
    if step in REQUEST_ENDING_ERRORS:
        error_cls, description = REQUEST_ENDING_ERRORS[step]
        return error_response(error_cls(description, redirect_uri=grant.redirect_uri, state=state), mode)
    if step != ISSUE and "none" in data.get("prompt", "").split():
        error_cls = LoginRequiredError if step == LOGIN else ConsentRequiredError
        return error_response(error_cls(redirect_uri=grant.redirect_uri, state=state), mode)
    if step == ISSUE:
        return issue_code(grant, session)
    if pending_id is None:
        try:
            pending_id = store_pending(grant)
        except RateLimited as refusal:
            return too_many_pending(refusal)
    return redirect_to(interaction_url(step, pending_id))


def store_pending(grant) -> str:
    """Keep the request's own parameters (its granted scope in place of the asked one) under a new id."""
    params = {**kept_parameters(grant.request.payload.data), "scope": grant.request.scope or ""}
    return pending_requests.create_pending(grant.client, params, address=client_ip()).id


def too_many_pending(refusal: RateLimited) -> Response:
    """An HTML 429 with Retry-After: the relying party cannot help, so the browser is not redirected."""
    response = error_page("temporarily_unavailable", refusal.message, status=429)
    response.headers.update(refusal.headers)
    return response


def issue_code(grant, session: Session | SignIn) -> Response:
    """Redirect a new code to the client (the grant audits it with the code's row)."""
    grant.request.browser_session = session
    return as_flask_response(grant.create_authorization_response(grant.redirect_uri, session.user))


def interaction_url(step: str, pending_id: str) -> str:
    """The hosted page for `step`, given only the pending request's id."""
    try:
        if step == LOGIN:
            return url_for("web.login", request=pending_id)
        return url_for("web.consent", request_id=pending_id)
    except BuildError:  # hosted pages not registered (API-only deployments, early tests)
        return f"/login?request={pending_id}" if step == LOGIN else f"/consent/{pending_id}"
