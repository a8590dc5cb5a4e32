"""Authorization codes, access-token records and refresh tokens: issue, look up, consume, revoke.

Codes and refresh tokens are stored as SHA-256 hashes only. Consuming is an atomic
UPDATE ... WHERE used IS NULL whose rowcount decides the single winner, so concurrent redemptions
on PostgreSQL let exactly one through.

On PostgreSQL a redemption is one statement: the consuming UPDATE ... RETURNING in a WITH, joined to
the user and session it needs, and the rows a token response mints are one INSERT in a WITH of the
other. SQLite has no data-modifying WITH, so there the same steps are one statement each.

New rows on the token hot path are written with a Core INSERT (in the request's transaction, so
they still commit or roll back with it): nothing reads the ORM object back, and the unit of work
costs more CPU per row than the INSERT itself. For the same reason a code or refresh token being
redeemed is read as one Core row (the code or token, its user's state and claim columns, its
session's status), not as ORM objects.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from functools import cache

from flask import current_app
from sqlalchemy import Boolean, bindparam, exists, func, inspect, literal, or_, select, true, update
from sqlalchemy.orm import joinedload
from sqlalchemy.sql import Executable

from idp.extensions import db
from idp.models import AccessToken, AuthorizationCode, OAuthClient, RefreshToken, Session, User, utcnow
from idp.models.grant import CodeBinding
from idp.models.token import TokenBinding
from idp.models.session import SessionStatus
from idp.models.session import is_live as session_is_live
from idp.security.secrets import hash_token, new_token
from idp.services import expiry
from idp.services.time_ordered_ids import time_ordered_id

NO_SYNC = {"synchronize_session": False}


# The user columns the claims of a token response can release (idp.oidc.scopes.SCOPE_CLAIMS).
CLAIM_USER_COLUMNS = ("name", "given_name", "family_name", "picture", "locale", "zoneinfo", "updated_at", "email",
                      "email_verified", "phone_number", "phone_number_verified", "address")


@dataclass(frozen=True)
class TokenUser:
    """The user as a code exchange or a refresh reads it, in the same SELECT as the code or token:
    its id, subject and state, and every column an ID token's claims can release (idp.oidc.claims)."""

    id: str
    subject: str
    is_active: bool
    name: str
    given_name: str | None
    family_name: str | None
    picture: str | None
    locale: str | None
    zoneinfo: str | None
    updated_at: datetime | None
    email: str
    email_verified: bool
    phone_number: str | None
    phone_number_verified: bool
    address: dict | None


def _token_user(row) -> TokenUser:
    values = row._mapping
    return TokenUser(id=values["user_id"], subject=values["user_subject"], is_active=values["user_is_active"],
                     **{name: values[f"user_{name}"] for name in CLAIM_USER_COLUMNS})


@dataclass(frozen=True)
class RedeemableCode(CodeBinding):
    """An authorization code row as a token request reads it, with its user and session state."""

    id: str
    oauth_client_id: str
    user_id: str
    session_id: str | None
    redirect_uri: str
    scope: str
    nonce: str | None
    code_challenge: str | None
    code_challenge_method: str | None
    claims: dict | None
    auth_time: datetime
    acr: str | None
    amr: list | None
    expires_at: datetime
    used_at: datetime | None
    user: TokenUser | None
    session_status: str | None
    session_expires_at: datetime | None

    def session_is_live(self, now: datetime) -> bool:
        """Whether the code's SSO session is still live (False once it ended or is gone)."""
        return session_is_live(self.session_status, self.session_expires_at, now)


@dataclass(frozen=True)
class RedeemableRefreshToken(TokenBinding):
    """A refresh-token row as a refresh request reads it (one SELECT), with its user and session state.

    The introspection and revocation endpoints read the ORM row instead (find_refresh_token)."""

    id: str
    oauth_client_id: str
    user_id: str | None
    session_id: str | None
    grant_id: str | None
    scope: str
    claims: dict | None
    auth_time: datetime | None
    acr: str | None
    amr: list | None
    issued_at: datetime
    expires_at: datetime
    revoked_at: datetime | None
    rotated_at: datetime | None
    user: TokenUser | None
    session_status: str | None

    def session_revoked(self) -> bool:
        """Its SSO session was ended on purpose (as RefreshToken.session_revoked)."""
        return self.session_status == SessionStatus.REVOKED.value


REFRESH_COLUMNS = ("id", "oauth_client_id", "user_id", "session_id", "grant_id", "scope", "claims", "auth_time", "acr",
                   "amr", "issued_at", "expires_at", "revoked_at", "rotated_at")


def _user_columns(users) -> list:
    return [users.c.subject.label("user_subject"), users.c.is_active.label("user_is_active"),
            *[users.c[name].label(f"user_{name}") for name in CLAIM_USER_COLUMNS]]


CODE_COLUMNS = ("id", "oauth_client_id", "user_id", "session_id", "redirect_uri", "scope", "nonce", "code_challenge",
                "code_challenge_method", "claims", "auth_time", "acr", "amr", "expires_at", "used_at")


# The columns of the rows a token response writes (idp.oidc.tokens.issue_tokens): every one is bound,
# so one statement built once serves every request.
ACCESS_ROW_COLUMNS = ("id", "jti", "oauth_client_id", "user_id", "session_id", "grant_id", "scope", "claims",
                      "issued_at", "expires_at")
REFRESH_ROW_COLUMNS = ("id", "token_hash", "oauth_client_id", "user_id", "session_id", "grant_id", "scope", "claims",
                       "auth_time", "acr", "amr", "issued_at", "expires_at")


# The columns of those rows that a grant chooses before the statement that consumes its code or
# refresh token writes them (idp.oidc.tokens.PlannedTokens); the rest they inherit from the consumed row.
PLANNED_ACCESS_COLUMNS = ("id", "jti", "issued_at", "expires_at")
PLANNED_REFRESH_COLUMNS = ("id", "token_hash", "issued_at", "expires_at")


def _bound_insert(table, columns: tuple[str, ...]):
    return table.insert().values({name: bindparam(f"{table.name}_{name}", type_=table.c[name].type)
                                  for name in columns})


def _joined_redemption(consuming, columns: tuple[str, ...], users, sessions, *session_columns: str):
    """PostgreSQL: `consuming` (an UPDATE ... RETURNING `columns`) in a WITH, joined to its user and
    session: the row, its user and its session in the statement that consumes it."""
    consumed = consuming.returning(*[consuming.table.c[name] for name in columns]).cte("consumed")
    return _joined(consumed, columns, users, sessions, *session_columns)


def _joined(consumed, columns: tuple[str, ...], users, sessions, *session_columns: str):
    return (select(*[consumed.c[name] for name in columns], *_user_columns(users),
                   *[sessions.c[name].label(f"session_{name}") for name in session_columns])
            .select_from(consumed.outerjoin(users, users.c.id == consumed.c.user_id)
                         .outerjoin(sessions, sessions.c.id == consumed.c.session_id)))


def _insert_from(table, consumed, bound: tuple[str, ...], inherited: dict, *where):
    """INSERT into `table` of a row per `consumed` row (that meets `where`): the `bound` columns from
    bind parameters named as _bound_insert names them, the `inherited` ones (column: expression over
    the consumed row) from it."""
    values = [*[bindparam(f"{table.name}_{name}", type_=table.c[name].type) for name in bound], *inherited.values()]
    rows = select(*values).select_from(consumed).where(*where)
    return table.insert().from_select([*bound, *inherited], rows)


def _same_columns(consumed, *names: str) -> dict:
    return {name: consumed.c[name] for name in names}


def _refresh_inheritance(consumed) -> dict:
    """What a refresh's new tokens take from the consumed token: everything it carries, and the
    requested scope or else the old one (RFC 6749 6)."""
    return {**_same_columns(consumed, "oauth_client_id", "user_id", "session_id", "grant_id", "claims"),
            "scope": func.coalesce(bindparam("requested_scope", type_=consumed.c.scope.type), consumed.c.scope)}


def _code_inheritance(consumed) -> dict:
    """What a code exchange's tokens take from the consumed code: its client, user, session, claims
    request and scope (RFC 6749 4.1.4), and the code itself as their grant."""
    return {**_same_columns(consumed, "oauth_client_id", "user_id", "session_id", "claims", "scope"),
            "grant_id": consumed.c.id}


def _offline_access_granted(consumed):
    """SQL for idp.oidc.tokens.refresh_allowed once the client is known: a refresh token for every
    code of a client with refresh_without_offline_access, else for a code whose scope has offline_access."""
    scopes = func.regexp_split_to_array(consumed.c.scope, r"\s+")
    return or_(bindparam("refresh_without_offline_access", type_=Boolean),
               literal("offline_access").op("=")(func.any(scopes)))


@cache
def _statement(name: str):
    """The hot-path statements, built once with bind parameters: SQLAlchemy memoizes a statement's
    cache key on the object, so reusing it skips rebuilding the query and its key on every request."""
    codes, refresh = AuthorizationCode.__table__, RefreshToken.__table__
    users, sessions = User.__table__, Session.__table__
    # The bind names differ from the column names: an UPDATE would read a same-named one as a SET value.
    redeem_code = (update(codes).where(codes.c.code_hash == bindparam("presented_hash"),
                                       codes.c.oauth_client_id == bindparam("client_id"), codes.c.used_at.is_(None))
                   .values(used_at=bindparam("now")))
    # An expired token is left as it is: the refusal needs no write.
    redeem_refresh_token = (update(refresh).where(refresh.c.token_hash == bindparam("presented_hash"),
                                                  refresh.c.rotated_at.is_(None), refresh.c.revoked_at.is_(None),
                                                  refresh.c.expires_at > bindparam("now"))
                            .values(rotated_at=bindparam("now")))
    access_rows, refresh_rows = _bound_insert(AccessToken.__table__, ACCESS_ROW_COLUMNS), \
        _bound_insert(refresh, REFRESH_ROW_COLUMNS)
    # The rows of the refresh's token response, written by the statement that consumes the old token
    # (PostgreSQL): what the new tokens inherit read from the consumed row, the rest bound.
    consumed = redeem_refresh_token.returning(*[refresh.c[name] for name in REFRESH_COLUMNS]).cte("consumed")
    access_rows_from = _insert_from(AccessToken.__table__, consumed, PLANNED_ACCESS_COLUMNS,
                                    _refresh_inheritance(consumed))
    refresh_rows_from = _insert_from(refresh, consumed, PLANNED_REFRESH_COLUMNS,
                                     {**_refresh_inheritance(consumed),
                                      **_same_columns(consumed, "auth_time", "acr", "amr")})
    # The rows of the code exchange's token response, written by the statement that consumes the code
    # (PostgreSQL); the refresh row only where refresh_allowed holds for the code's scope.
    consumed_code = redeem_code.returning(*[codes.c[name] for name in CODE_COLUMNS]).cte("consumed")
    code_access_rows = _insert_from(AccessToken.__table__, consumed_code, PLANNED_ACCESS_COLUMNS,
                                    _code_inheritance(consumed_code))
    code_refresh_rows = _insert_from(refresh, consumed_code, PLANNED_REFRESH_COLUMNS,
                                     {**_code_inheritance(consumed_code),
                                      **_same_columns(consumed_code, "auth_time", "acr", "amr")},
                                     _offline_access_granted(consumed_code))
    statements = {
        "redeem_refresh_token_issuing": _joined(consumed, REFRESH_COLUMNS, users, sessions, "status")
        .add_cte(access_rows_from.cte("access_row"), refresh_rows_from.cte("refresh_row")),
        "redeem_code": _joined_redemption(redeem_code, CODE_COLUMNS, users, sessions, "status", "expires_at"),
        "redeem_code_issuing_access": _joined(consumed_code, CODE_COLUMNS, users, sessions, "status", "expires_at")
        .add_cte(code_access_rows.cte("access_row")),
        "redeem_code_issuing": _joined(consumed_code, CODE_COLUMNS, users, sessions, "status", "expires_at")
        .add_cte(code_access_rows.cte("access_row"), code_refresh_rows.cte("refresh_row")),
        "redeem_refresh_token": _joined_redemption(redeem_refresh_token, REFRESH_COLUMNS, users, sessions, "status"),
        "insert_access_row": access_rows,
        "insert_refresh_row": refresh_rows,
        "insert_token_rows": refresh_rows.add_cte(access_rows.cte("access_row")),
        # Only the user and session columns the token request reads: the wide rows cost more to fetch
        # and load than the query itself.
        "find_code": (select(*[codes.c[name] for name in CODE_COLUMNS], *_user_columns(users),
                             sessions.c.status.label("session_status"),
                             sessions.c.expires_at.label("session_expires_at"))
                      .join(users, users.c.id == codes.c.user_id)
                      .outerjoin(sessions, sessions.c.id == codes.c.session_id)
                      .where(codes.c.code_hash == bindparam("code_hash"))),
        "consume_code": (update(codes).where(codes.c.id == bindparam("code_id"), codes.c.used_at.is_(None))
                         .values(used_at=bindparam("now"))),
        "find_refresh_token_row": (select(*[refresh.c[name] for name in REFRESH_COLUMNS], *_user_columns(users),
                                          sessions.c.status.label("session_status"))
                                   .outerjoin(users, users.c.id == refresh.c.user_id)
                                   .outerjoin(sessions, sessions.c.id == refresh.c.session_id)
                                   .where(refresh.c.token_hash == bindparam("token_hash"))),
        "find_refresh_token": (select(RefreshToken)
                               .options(joinedload(RefreshToken.user), joinedload(RefreshToken.session))
                               .where(RefreshToken.token_hash == bindparam("token_hash"))),
        "rotate_refresh_token": (update(refresh)
                                 .where(refresh.c.id == bindparam("token_id"), refresh.c.rotated_at.is_(None),
                                        refresh.c.revoked_at.is_(None))
                                 .values(rotated_at=bindparam("now"))),
    }
    for model in (AuthorizationCode, AccessToken, RefreshToken):
        statements[f"insert:{model.__tablename__}"] = model.__table__.insert()
    return statements[name]


# -- authorization codes --
def _insert(model, **values) -> None:
    """One Core INSERT of a new row (column defaults such as `id` apply) in the request's transaction."""
    db.session.execute(_statement(f"insert:{model.__tablename__}"), values)


def create_code(client: OAuthClient, user: User, **binding) -> str:
    """Store a new single-use code bound to client, user and `binding`; returns the raw code."""
    code, statement, values = code_insert(client, user, **binding)
    db.session.execute(statement, values)
    return code


def code_insert(client: OAuthClient, user: User, **binding) -> tuple[str, Executable, dict]:
    """A new single-use code bound to client, user and `binding`, and the INSERT that stores its hash:
    (raw code, statement, values), for a caller that runs it with more (audit.record_with)."""
    code, values = _new_code(client, user_id=user.id, **binding)
    return code, _statement(f"insert:{AuthorizationCode.__tablename__}"), values


def _new_code(client: OAuthClient, **binding) -> tuple[str, dict]:
    """A new raw code and its row's columns, every one given: a statement carrying another INSERT in
    its WITH runs no Python-side defaults."""
    code = new_token(32)
    now = utcnow()
    lifetime = current_app.config["AUTHORIZATION_CODE_LIFETIME"]
    return code, dict(id=time_ordered_id(), code_hash=hash_token(code), oauth_client_id=client.id, created_at=now,
                      expires_at=now + timedelta(seconds=lifetime), **binding)


# The code's columns an INSERT binds when the user's sign-in is read in the same statement
# (code_insert_on_sign_in); the rest it takes from the sign-in.
CODE_ROW_COLUMNS = ("id", "code_hash", "oauth_client_id", "redirect_uri", "scope", "nonce", "code_challenge",
                    "code_challenge_method", "claims", "created_at", "expires_at")


def stores_codes_on_sign_in() -> bool:
    """Whether code_insert_on_sign_in can run: on PostgreSQL (a data-modifying WITH)."""
    return _consumes_in_one_statement()


def code_insert_on_sign_in(client: OAuthClient, sign_in, allowed=None, **binding) -> tuple[str, Executable, dict, object]:
    """PostgreSQL: code_insert for the user of `sign_in` (idp.services.sessions.live_sign_in), read by
    the statement that stores the code, where `allowed` (SQL over the sign-in; None: always) holds:
    the code is bound to that session, its user, auth_time, acr and amr. (raw code, statement, values,
    a CTE with a row and its `user_id` for each code stored); the caller adds the bind values of
    `sign_in` and `allowed`. The statement answers the sign-in's row with `issued` (whether the code
    was stored), or no row, and then stores nothing, when there is no live sign-in."""
    code, row = _new_code(client, **binding)
    statement, stored = _code_on_sign_in(sign_in, allowed)
    return code, statement, _bound(AuthorizationCode, row), stored


@cache
def _code_on_sign_in(sign_in, allowed) -> tuple[Executable, object]:
    codes = AuthorizationCode.__table__
    inherited = {"user_id": sign_in.c.user_id, "session_id": sign_in.c.id,
                 **_same_columns(sign_in, "auth_time", "acr", "amr")}
    if allowed is None:  # a code for every live sign-in: its row is the sign-in's
        stored = _insert_from(codes, sign_in, CODE_ROW_COLUMNS, inherited).cte("code_row")
        return select(*sign_in.c, true().label("issued")).add_cte(stored), sign_in
    stored = _insert_from(codes, sign_in, CODE_ROW_COLUMNS, inherited, allowed).returning(codes.c.user_id).cte("code_row")
    return select(*sign_in.c, exists(select(stored.c.user_id)).label("issued")), stored


def _consumes_in_one_statement() -> bool:
    """PostgreSQL runs a data-modifying WITH; SQLite has none."""
    return db.engine.dialect.name == "postgresql"


def _redeemable_code(row) -> RedeemableCode:
    values = row._mapping
    return RedeemableCode(**{name: values[name] for name in CODE_COLUMNS},
                          user=_token_user(row) if row.user_subject is not None else None,
                          session_status=row.session_status, session_expires_at=row.session_expires_at)


def find_code(code: str, client: OAuthClient) -> RedeemableCode | None:
    """The code `code` issued to `client` (used or not), or None."""
    row = db.session.execute(_statement("find_code"), {"code_hash": hash_token(code)}).first()
    if row is None or row.oauth_client_id != client.id:
        return None
    return _redeemable_code(row)


def consume_code(code: RedeemableCode) -> bool:
    """Mark the code used; True only for the one caller that flipped it (atomic)."""
    result = db.session.execute(_statement("consume_code"), {"code_id": code.id, "now": utcnow()})
    return result.rowcount == 1


def redeem_code(code: str, client: OAuthClient) -> RedeemableCode | None:
    """The unused code `code` of `client`, marked used by this call (the one winner of concurrent
    redemptions), or None: unknown, another client's, or already used (find_code tells which)."""
    if not _consumes_in_one_statement():
        row = find_code(code, client)
        return row if row is not None and row.used_at is None and consume_code(row) else None
    row = db.session.execute(_statement("redeem_code"), {"presented_hash": hash_token(code), "client_id": client.id,
                                                         "now": utcnow()}).first()
    return _redeemable_code(row) if row is not None else None


def redeem_code_issuing(code: str, client: OAuthClient, access_row: dict, refresh_row: dict | None,
                        refresh_without_offline_access: bool) -> RedeemableCode | None:
    """PostgreSQL: redeem_code, and in the same statement the rows of the exchange's token response:
    `access_row` and `refresh_row` give their own columns (id, jti or token hash, times), the rest is
    the consumed code's. The refresh row (None: the client may not refresh) is written only for a
    client with `refresh_without_offline_access` or a code whose scope has offline_access. Nothing is
    written when nothing is consumed; a refusal after it rolls the rows back with the redemption."""
    values = {"presented_hash": hash_token(code), "client_id": client.id, "now": utcnow(),
              **_bound(AccessToken, access_row)}
    if refresh_row is None:
        row = db.session.execute(_statement("redeem_code_issuing_access"), values).first()
    else:
        row = db.session.execute(_statement("redeem_code_issuing"), {
            **values, **_bound(RefreshToken, refresh_row),
            "refresh_without_offline_access": refresh_without_offline_access}).first()
    return _redeemable_code(row) if row is not None else None


# -- access tokens (JWTs; a row per jti so revocation is honoured) --
def access_token_row(client: OAuthClient, user: User | TokenUser | None, jti: str, scope: str,
                     expires_at: datetime, session_id: str | None = None, grant_id: str | None = None,
                     claims: dict | None = None) -> dict:
    """The row recording access token `jti` (ACCESS_ROW_COLUMNS), for record_issued_tokens."""
    return {"id": time_ordered_id(), "jti": jti, "oauth_client_id": client.id, "user_id": user.id if user else None,
            "session_id": session_id, "grant_id": grant_id, "scope": scope, "claims": claims,
            "issued_at": utcnow(), "expires_at": expires_at}


def record_access_token(client: OAuthClient, user: User | None, jti: str, scope: str, expires_at: datetime,
                        **binding) -> None:
    """Record an issued access token by jti, so revocation is honoured on use."""
    _insert(AccessToken, **access_token_row(client, user, jti, scope, expires_at, **binding))


def record_issued_tokens(access_row: dict, refresh_row: dict | None) -> None:
    """Write the rows of one token response (access_token_row, refresh_token_row) in the request's
    transaction: on PostgreSQL both in one statement."""
    if refresh_row is None:
        db.session.execute(_statement("insert_access_row"), _bound(AccessToken, access_row))
    elif _consumes_in_one_statement():
        db.session.execute(_statement("insert_token_rows"),
                           {**_bound(AccessToken, access_row), **_bound(RefreshToken, refresh_row)})
    else:
        db.session.execute(_statement("insert_access_row"), _bound(AccessToken, access_row))
        db.session.execute(_statement("insert_refresh_row"), _bound(RefreshToken, refresh_row))


def _bound(model, row: dict) -> dict:
    """`row`'s values under the bind names of _bound_insert."""
    return {f"{model.__tablename__}_{name}": value for name, value in row.items()}


def find_access_token(jti: str | None) -> AccessToken | None:
    """The record of access token `jti`, or None."""
    if not jti:
        return None
    return db.session.scalars(select(AccessToken).where(AccessToken.jti == jti)).first()


def unrecorded_machine_token(claims: dict, client: OAuthClient) -> AccessToken:
    """A transient record for a verified client-credentials token, which is stored only once revoked."""
    return AccessToken(jti=claims["jti"], oauth_client_id=client.id, client=client, user_id=None,
                       scope=claims.get("scope", ""), issued_at=datetime.fromtimestamp(claims["iat"], timezone.utc),
                       expires_at=datetime.fromtimestamp(claims["exp"], timezone.utc))


# -- refresh tokens (opaque, hashed, rotated on every use) --
def refresh_token_row(client: OAuthClient, user: User | TokenUser, scope: str, session_id: str | None = None,
                      grant_id: str | None = None, claims: dict | None = None, auth_time: datetime | None = None,
                      acr: str | None = None, amr: list | None = None) -> tuple[str, dict]:
    """A new refresh token and the row storing its hash (REFRESH_ROW_COLUMNS), for record_issued_tokens."""
    token, own = new_refresh_token(client, utcnow())
    return token, {**own, "oauth_client_id": client.id, "user_id": user.id, "session_id": session_id,
                   "grant_id": grant_id, "scope": scope, "claims": claims, "auth_time": auth_time, "acr": acr,
                   "amr": amr}


def new_refresh_token(client: OAuthClient, now: datetime) -> tuple[str, dict]:
    """A new refresh token of `client` issued at `now`, and its row's own columns (id, hash, times)."""
    token = new_token(32)
    lifetime = client.refresh_token_lifetime or current_app.config["REFRESH_TOKEN_LIFETIME"]
    return token, {"id": time_ordered_id(), "token_hash": hash_token(token), "issued_at": now,
                   "expires_at": now + timedelta(seconds=lifetime)}


def create_refresh_token(client: OAuthClient, user: User, scope: str, **binding) -> str:
    """Store a new refresh token (hash only); returns the raw token."""
    token, row = refresh_token_row(client, user, scope, **binding)
    _insert(RefreshToken, **row)
    return token


def find_refresh_token(token: str | None) -> RefreshToken | None:
    """The refresh-token row behind `token` (any state), or None."""
    if not token:
        return None
    return db.session.scalars(_statement("find_refresh_token"), {"token_hash": hash_token(token)}).first()


def find_refresh_token_to_redeem(token: str | None) -> RedeemableRefreshToken | None:
    """The refresh-token row behind `token` (any state) with its user and session state, or None."""
    if not token:
        return None
    row = db.session.execute(_statement("find_refresh_token_row"), {"token_hash": hash_token(token)}).first()
    return _redeemable_refresh_token(row) if row is not None else None


def _redeemable_refresh_token(row) -> RedeemableRefreshToken:
    values = row._mapping
    return RedeemableRefreshToken(**{name: values[name] for name in REFRESH_COLUMNS},
                                  user=_token_user(row) if row.user_subject is not None else None,
                                  session_status=row.session_status)


def rotate_refresh_token(row: RefreshToken | RedeemableRefreshToken) -> bool:
    """Mark `row` exchanged; True only for the one caller that flipped it (atomic)."""
    result = db.session.execute(_statement("rotate_refresh_token"), {"token_id": row.id, "now": utcnow()})
    return result.rowcount == 1


def redeem_refresh_token(token: str | None) -> RedeemableRefreshToken | None:
    """The unexpired refresh token `token`, neither revoked nor exchanged before, marked exchanged by
    this call (the one winner of concurrent refreshes), or None (find_refresh_token_to_redeem tells why).
    Its session and client are the caller's to check: a refusal rolls the exchange back."""
    if not token:
        return None
    if not _consumes_in_one_statement():
        row = find_refresh_token_to_redeem(token)
        usable = row is not None and row.revoked_at is None and row.rotated_at is None and not row.is_expired()
        return row if usable and rotate_refresh_token(row) else None
    row = db.session.execute(_statement("redeem_refresh_token"),
                             {"presented_hash": hash_token(token), "now": utcnow()}).first()
    return _redeemable_refresh_token(row) if row is not None else None


def writes_rows_with_redemption() -> bool:
    """Whether a grant's new token rows are written by the statement that consumes its code or old
    refresh token (redeem_code_issuing, redeem_refresh_token_issuing): on PostgreSQL."""
    return _consumes_in_one_statement()


def redeem_refresh_token_issuing(token: str | None, requested_scope: str | None, access_row: dict,
                                 refresh_row: dict) -> RedeemableRefreshToken | None:
    """PostgreSQL: redeem_refresh_token, and in the same statement the rows of the refresh's response:
    `access_row` and `refresh_row` give their own columns (id, jti or token hash, times), the rest is
    the consumed token's, with the requested scope or else its scope. Nothing is written when nothing
    is consumed; a refusal after it rolls the rows back with the exchange."""
    if not token:
        return None
    row = db.session.execute(_statement("redeem_refresh_token_issuing"), {
        "presented_hash": hash_token(token), "now": utcnow(), "requested_scope": requested_scope or None,
        **_bound(AccessToken, access_row), **_bound(RefreshToken, refresh_row)}).first()
    return _redeemable_refresh_token(row) if row is not None else None


# -- revocation --
def _revoke_where(*criteria) -> int:
    now = utcnow()
    count = 0
    for model in (AccessToken, RefreshToken):
        query = update(model).where(model.revoked_at.is_(None), *[c(model) for c in criteria]).values(revoked_at=now)
        count += db.session.execute(query, execution_options=NO_SYNC).rowcount
    return count


def revoke_grant(grant_id: str) -> int:
    """Revoke every access and refresh token descending from one authorization code."""
    return _revoke_where(lambda m: m.grant_id == grant_id)


def revoke_tokens_of_sessions(session_ids: list[str]) -> int:
    """Revoke every token issued under any of these SSO sessions (they were signed out or revoked)."""
    return _revoke_where(lambda m: m.session_id.in_(session_ids)) if session_ids else 0


def clients_of_sessions(session_ids: list[str]) -> list[tuple[OAuthClient, str]]:
    """(client, session id) for every active client that got a code or a token under one of these
    sessions: the relying parties a logout of those sessions must reach."""
    if not session_ids:
        return []
    pairs = set()
    for model in (AuthorizationCode, AccessToken, RefreshToken):
        query = select(model.oauth_client_id, model.session_id).where(model.session_id.in_(session_ids)).distinct()
        pairs.update(db.session.execute(query).tuples())
    clients = {c.id: c for c in db.session.scalars(select(OAuthClient).where(
        OAuthClient.id.in_({client_id for client_id, _ in pairs}), OAuthClient.is_active.is_(True)))}
    return sorted(((clients[cid], sid) for cid, sid in pairs if cid in clients), key=lambda p: (p[0].client_id, p[1]))


def revoke_client_user_tokens(client: OAuthClient, user: User) -> int:
    """Revoke every token `client` holds for `user` (consent withdrawn)."""
    return _revoke_where(lambda m: m.oauth_client_id == client.id, lambda m: m.user_id == user.id)


def revoke_user_tokens(user: User) -> int:
    """Revoke every access and refresh token of `user`, offline ones outliving their session included
    (the account was disabled, or an admin ended its sessions)."""
    return _revoke_where(lambda m: m.user_id == user.id)


def revoke_client_tokens(client: OAuthClient) -> int:
    """Revoke every token issued to `client` (client deleted)."""
    return _revoke_where(lambda m: m.oauth_client_id == client.id)


def revoke_access_token(row: AccessToken) -> None:
    """Revoke one access token; an unrecorded client-credentials token is recorded as revoked."""
    if row.revoked_at is None:
        row.revoked_at = utcnow()
    if inspect(row).transient:
        db.session.add(row)


def revoke_refresh_token(row: RefreshToken) -> None:
    """RFC 7009 2.1: revoking a refresh token also revokes the access tokens of its grant."""
    if row.grant_id:
        revoke_grant(row.grant_id)
    elif row.revoked_at is None:
        row.revoked_at = utcnow()


def purge_expired(now: datetime | None = None, limit: int | None = None) -> int:
    """Delete at most `limit` (JOB_PURGE_BATCH) codes and token records past their expiry, revoked or
    not (an expired token is refused whatever its state); the job runner calls this until it returns
    less than a batch."""
    now = now or utcnow()
    return expiry.delete_batches([(model.__table__, model.__table__.c.expires_at < now)
                                  for model in (AuthorizationCode, AccessToken, RefreshToken)],
                                 expiry.batch_size(limit))

