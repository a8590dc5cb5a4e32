"""The refresh token grant: rotated on every use; reuse of a rotated token revokes the family; a new
ID token when the scope has `openid` (OIDC Core 12.2)."""
from __future__ import annotations

from authlib.oauth2.rfc6749 import InvalidGrantError, grants
from flask import current_app

from idp.extensions import db
from idp.oidc.client_auth import AUTH_METHODS
from idp.oidc.scopes import scope_list
from idp.oidc.tokens import GrantContext, issue_tokens, mint_id_token, plan_refresh
from idp.services import audit
from idp.services import tokens as token_records
from idp.services.tokens import RedeemableRefreshToken, TokenUser


class RefreshTokenGrant(grants.RefreshTokenGrant):
    TOKEN_ENDPOINT_AUTH_METHODS = AUTH_METHODS
    INCLUDE_NEW_REFRESH_TOKEN = True

    def authenticate_refresh_token(self, refresh_token: str) -> RedeemableRefreshToken | None:
        """RFC 9700 4.14.2: a token already exchanged is reuse; the whole family is revoked.

        The token is exchanged (rotated) as it is read; every refusal after that answers 400, whose
        rollback undoes the exchange."""
        if token_records.writes_rows_with_redemption():
            # The new tokens' rows are written by the statement that consumes this one.
            self.request.planned_tokens = planned = plan_refresh(self.request.client)
            row = token_records.redeem_refresh_token_issuing(refresh_token, self.request.payload.scope,
                                                             planned.access_row, planned.refresh_row)
        else:
            row = token_records.redeem_refresh_token(refresh_token)
        if row is None:
            spent = token_records.find_refresh_token_to_redeem(refresh_token)
            if spent is None or spent.revoked_at is not None or spent.is_expired() or spent.session_revoked():
                return None
            if spent.rotated_at is not None:
                revoke_family_after_reuse(spent)
                raise InvalidGrantError("The refresh token was already used.")
            return None
        return None if row.session_revoked() else row

    def authenticate_user(self, refresh_token: RedeemableRefreshToken) -> TokenUser | None:
        user = refresh_token.user
        return user if user is not None and user.is_active else None

    def issue_token(self, user: TokenUser, refresh_token: RedeemableRefreshToken) -> dict:
        scope = self.request.payload.scope or refresh_token.scope
        context = GrantContext(grant_id=refresh_token.grant_id, session_id=refresh_token.session_id,
                               claims=refresh_token.claims, auth_time=refresh_token.auth_time,
                               acr=refresh_token.acr, amr=refresh_token.amr)
        body = issue_tokens(self.client, user, scope, context, include_refresh_token=True,
                            planned=getattr(self.request, "planned_tokens", None))
        if "openid" in scope_list(scope):
            # OIDC Core 12.2: the original iss, sub, aud, azp and auth_time (the context carries them),
            # a new iat, no nonce, and at_hash of the new access token.
            body["id_token"] = mint_id_token(self.client, user, scope, context, None, body["access_token"])
        return body

    def revoke_old_credential(self, refresh_token: RedeemableRefreshToken) -> None:
        """Nothing left to do: authenticate_refresh_token rotated the old token atomically as it read it."""


def revoke_family_after_reuse(row: RedeemableRefreshToken) -> None:
    """Revoke the family in its own committed transaction (the 400 response rolls the request back)."""
    grant_id, client_id, user_id = row.grant_id, row.oauth_client_id, row.user_id
    db.session.rollback()
    # Refresh tokens only descend from authorization codes, so grant_id names their family.
    count = token_records.revoke_grant(grant_id) if grant_id else 0
    # A refusal and a security alert (a stolen refresh token): a failure row, which finish_transaction
    # writes after the 400's rollback.
    audit.record_failure("oauth.refresh_reuse", actor_user_id=user_id, target_type="client", target_id=client_id,
                         details={"reason": "refresh_reuse", "alert": True, "grant_id": grant_id,
                                  "tokens_revoked": count})
    db.session.commit()
    current_app.logger.warning("refresh token reuse (grant %s): family revoked", grant_id)
