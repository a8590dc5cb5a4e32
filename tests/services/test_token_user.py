"""The lean user a code exchange or refresh reads (services.tokens.TokenUser) carries every column
claim a scope can release, so an ID token minted from it says what UserInfo says (OIDC Core 5.4)."""
from dataclasses import fields

from idp.models import User
from idp.oidc.scopes import SCOPE_CLAIMS
from idp.services.tokens import CLAIM_USER_COLUMNS, TokenUser

# Claims not read from a user column: sub is TokenUser.subject, organizations is read from memberships.
NOT_COLUMNS = {"sub", "organizations"}


def test_every_scope_claim_column_is_read_with_the_code_or_token():
    released = {claim for claims in SCOPE_CLAIMS.values() for claim in claims} - NOT_COLUMNS
    assert set(CLAIM_USER_COLUMNS) == released


def test_token_user_fields_are_the_claim_columns_of_users():
    assert {f.name for f in fields(TokenUser)} == {"id", "subject", "is_active", *CLAIM_USER_COLUMNS}
    assert set(CLAIM_USER_COLUMNS) <= set(User.__table__.c.keys())
