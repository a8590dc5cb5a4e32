"""The authorization code grant: codes bound to everything they must be, single use, replay revokes."""
from __future__ import annotations

from authlib.oauth2.rfc6749 import AccessDeniedError, InvalidGrantError, InvalidScopeError, grants
from authlib.oidc.core import OpenIDCode
from flask import current_app

from idp.extensions import db
from idp.models import Session, User, utcnow
from idp.oidc.client_auth import AUTH_METHODS
from idp.oidc.claims import parse_claims_parameter
from idp.oidc.responses import authorization_response
from idp.oidc.tokens import GrantContext, issue_tokens, mint_id_token, plan_tokens, refresh_allowed
from idp.services import audit, consent, sessions
from idp.services import tokens as token_records
from idp.services.management_scopes import management_scopes_in
from idp.services.sessions import SignIn
from idp.services.tokens import RedeemableCode, TokenUser


class AuthorizationCodeGrant(grants.AuthorizationCodeGrant):
    TOKEN_ENDPOINT_AUTH_METHODS = AUTH_METHODS

    def validate_requested_scope(self):
        """RFC 6749 3.3 / 4.1.2.1 invalid_scope: management scopes go only to a first-party client
        whose registration has them (its token then acts as the user, limited to those scopes, for
        the management API alone: RFC 9068 2.2 `aud`); a third-party client never gets one. They are
        not in the server's scopes_supported, so the rest is checked against that list."""
        requested = (self.request.payload.scope or "").split()
        management = management_scopes_in(requested)
        client = self.request.client
        if management and not (client.first_party and set(management) <= set(client.scopes)):
            raise InvalidScopeError("The client may not request management scopes.")
        self.server.validate_requested_scope(" ".join(s for s in requested if s not in management))

    def create_authorization_response(self, redirect_uri: str, grant_user: User):
        """RFC 6749 4.1.2: the code (bound to client, redirect URI, PKCE, nonce, session), state, iss."""
        if not grant_user:
            raise AccessDeniedError(redirect_uri=redirect_uri)
        self.request.user = grant_user
        return self._code_response(redirect_uri, self.save_authorization_code(None, self.request))

    def save_authorization_code(self, code, request) -> str:
        """Store the code and audit the user's authorization of the client, in one statement where
        the database can (audit.record_with)."""
        session: Session | SignIn = request.browser_session
        code, statement, values = token_records.code_insert(
            request.client, request.user, session_id=session.id, auth_time=session.auth_time, acr=session.acr,
            amr=session.amr, **self._code_binding(request))
        audit.record_with(statement, values, "oauth.authorized", actor_user_id=session.user_id,
                          target_type="client", target_id=request.client.client_id,
                          details={"scope": request.scope})
        return code

    def create_authorization_response_on_sign_in(self, redirect_uri: str, session_token: str, kind):
        """PostgreSQL: create_authorization_response for the user of the live sign-in behind
        `session_token` if the client needs no consent or that user consented to the scope, read by
        the statement that stores the code and its audit row (one round trip). (response, SignIn); the
        response is None, nothing stored, when consent is missing, and the SignIn too when no live
        sign-in is there."""
        client = self.request.client
        sign_in = sessions.live_sign_in()
        code, statement, values, stored = token_records.code_insert_on_sign_in(
            client, sign_in, None if client.first_party else consent.consented_on(sign_in),
            **self._code_binding(self.request))
        values.update(sessions.live_sign_in_values(session_token, kind))
        if not client.first_party:
            values.update(consent.consented_on_values(client, (self.request.scope or "").split()))
        row = audit.record_with_actor_of(statement, values, stored, "oauth.authorized", target_type="client",
                                         target_id=client.client_id, details={"scope": self.request.scope}).first()
        session = sessions.sign_in_from(row) if row is not None else None
        if session is None or not row.issued:
            return None, session
        self.request.user, self.request.browser_session = session.user, session
        return self._code_response(redirect_uri, code), session

    def _code_response(self, redirect_uri: str, code: str):
        params = [("code", code)]
        if self.request.payload.state:
            params.append(("state", self.request.payload.state))
        return authorization_response(redirect_uri, params, self.request.payload.data.get("response_mode"))

    @staticmethod
    def _code_binding(request) -> dict:
        """What a code is bound to from the authorization request (RFC 6749 4.1.2, RFC 7636 4.4)."""
        data = request.payload.data
        return dict(redirect_uri=data["redirect_uri"], scope=request.scope or "", nonce=data.get("nonce"),
                    code_challenge=data.get("code_challenge"),
                    code_challenge_method=data.get("code_challenge_method") if data.get("code_challenge") else None,
                    claims=parse_claims_parameter(data.get("claims")))

    def query_authorization_code(self, code: str, client) -> RedeemableCode | None:
        """RFC 6749 4.1.2 / RFC 9700 4.5: a second redemption fails and revokes the code's tokens.

        The code is consumed as it is read; every refusal after that answers 400, whose rollback undoes
        the redemption (and, on PostgreSQL, the token rows written with it)."""
        row = self.redeem_code(code, client)
        if row is None:
            spent = token_records.find_code(code, client)
            if spent is not None and spent.used_at is not None:
                revoke_after_replay(spent.id, client.client_id)
                raise InvalidGrantError("The authorization code was already used.")
            return None
        if row.expires_at <= utcnow():
            return None
        if not row.session_is_live(utcnow()):
            raise InvalidGrantError("The sign-in session of this code has ended.")
        return row

    def redeem_code(self, code: str, client) -> RedeemableCode | None:
        if not token_records.writes_rows_with_redemption():
            return token_records.redeem_code(code, client)
        # The tokens' rows are written by the statement that consumes the code.
        self.request.planned_tokens = planned = plan_tokens(client, client.check_grant_type("refresh_token"))
        return token_records.redeem_code_issuing(code, client, planned.access_row, planned.refresh_row,
                                                 client.refresh_without_offline_access)

    def delete_authorization_code(self, authorization_code) -> None:
        """Nothing to delete: the code was consumed atomically when it was looked up."""

    def authenticate_user(self, authorization_code: RedeemableCode) -> TokenUser | None:
        user = authorization_code.user
        return user if user is not None and user.is_active else None

    def generate_token(self, user=None, scope=None, grant_type=None, expires_in=None, include_refresh_token=True):
        code: RedeemableCode = self.request.authorization_code
        context = GrantContext(grant_id=code.id, session_id=code.session_id, claims=code.claims,
                               auth_time=code.auth_time, acr=code.acr, amr=code.amr)
        self.request.grant_context = context
        # The user's authorization of this client was audited when the code was issued; the token rows
        # (grant_id = this code) record what was minted from it.
        return issue_tokens(self.client, user, scope, context, refresh_allowed(self.client, scope),
                            planned=getattr(self.request, "planned_tokens", None))


def revoke_after_replay(grant_id: str, client_id: str) -> None:
    """Revoke every token of a replayed code in its own committed transaction.

    The request's transaction rolls back on the 400 it answers with, yet the revocation must stand;
    so the replay path discards the (empty) request work and commits the revocation itself.
    """
    db.session.rollback()
    count = token_records.revoke_grant(grant_id)
    # A refusal and a security alert (a stolen or leaked code): a failure row, which finish_transaction
    # writes after the 400's rollback.
    audit.record_failure("oauth.code_replay", target_type="client", target_id=client_id,
                         details={"reason": "code_replay", "alert": True, "grant_id": grant_id,
                                  "tokens_revoked": count})
    db.session.commit()
    current_app.logger.warning("authorization code replay for client %s: %d token(s) revoked", client_id, count)


class OpenIDCodeExtension(OpenIDCode):
    """OIDC Core 3.1.3.3: an ID token in the token response when `openid` was granted."""

    def encode_id_token(self, token, request):
        code: RedeemableCode = request.authorization_code
        return mint_id_token(request.client, request.user, token["scope"], request.grant_context, code.nonce,
                             token.get("access_token"))

    def __call__(self, grant):
        # Prompt and nonce rules are enforced by idp.oidc.authorization before a code exists.
        grant.register_hook("after_create_token_response", self.process_token)
