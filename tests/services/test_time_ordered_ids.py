"""Code and token rows get time-ordered ids (UUIDv7, RFC 9562 5.7), so their indexes append at any
table size; the value stays a 36-character UUID, and the grant id a token carries is its code's id."""
import time
import uuid

from sqlalchemy import select

from idp.extensions import db
from idp.models import AuthorizationCode, RefreshToken
from idp.services import tokens
from idp.services.time_ordered_ids import time_ordered_id


def test_time_ordered_id_is_a_version_7_uuid_of_the_current_millisecond():
    before = time.time_ns() // 1_000_000
    value = uuid.UUID(time_ordered_id())
    after = time.time_ns() // 1_000_000
    assert (value.version, value.variant) == (7, uuid.RFC_4122)
    assert before <= value.int >> 80 <= after


def test_later_ids_sort_after_earlier_ones_and_never_repeat():
    first = time_ordered_id()
    time.sleep(0.002)
    later = [time_ordered_id() for _ in range(1000)]
    assert all(first < value for value in later)
    assert len(set(later)) == len(later)


def test_issued_code_and_refresh_token_rows_have_time_ordered_ids(ctx, factories):
    client, user = factories.client(), factories.user()
    code = tokens.create_code(client, user, redirect_uri="https://rp.example/cb", scope="openid",
                              auth_time=tokens.utcnow())
    tokens.create_refresh_token(client, user, "openid offline_access", grant_id=None)
    db.session.flush()
    code_id = db.session.scalar(select(AuthorizationCode.id).where(
        AuthorizationCode.code_hash == tokens.hash_token(code)))
    refresh_id = db.session.scalar(select(RefreshToken.id))
    assert uuid.UUID(code_id).version == 7 and uuid.UUID(refresh_id).version == 7
    assert len(code_id) == len(refresh_id) == 36
