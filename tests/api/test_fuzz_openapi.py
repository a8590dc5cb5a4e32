"""Property-based fuzzing of every documented /api operation with schemathesis, in-process over WSGI.

Each operation gets inputs generated from /api/openapi.json, both fitting the schema (positive) and
breaking it (negative), sent with a live bearer token; every answer must be documented (status,
content type, headers, body schema) and never a 5xx. schemathesis' "schema-valid data is accepted"
check is left out: rules JSON Schema cannot state (password policy, the current password, a free
slug, exactly one of email/user_id) rightly answer 422 or 409 to schema-valid bodies.
schemathesis' pytest loader does not support pytest 9, so the operations are driven through its
Python API (`APIOperation.as_strategy`). Generation is derandomized so CI runs are reproducible.

The management operations (issue #11) run a second time with a platform admin's token, so inputs get
past the permission checks a plain user meets; in positive mode their path parameters name real rows
(an organization and a member of it, a client, a key, an upstream), so bodies reach the services
instead of a 404. Upstream settings are checked offline there: every URL is refused (a 422), so no
generated host name is ever resolved or requested.
"""
from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode

from idp.extensions import db
from idp.federation import validation
from idp.federation.http import UpstreamHttp, UpstreamHttpError
from idp.models import Role, User
from idp.services.sessions import create_session
from tests.factories import DEFAULT_PASSWORD

EXAMPLES_PER_OPERATION = 50
# The admin pass reaches the services with real rows (slower cases); fewer examples keep CI's two runs short.
ADMIN_EXAMPLES_PER_OPERATION = 20
MANAGEMENT_PATHS = ("/api/v1/clients", "/api/v1/admin/", "/api/v1/audit", "/api/v1/keys", "/api/v1/organizations",
                    "/api/v1/upstreams")
# Operations whose DELETE takes their row away get rows of their own, so the others keep reaching theirs
# whatever order the operations run in: the organization item a spare organization, a member's DELETE a
# member of its own.
ORGANIZATION_ITEM = "/api/v1/organizations/{organization_id}"
MEMBER_ITEM = "/api/v1/organizations/{organization_id}/members/{user_id}"


def _bearer(app, user_id: str) -> dict:
    with app.app_context():
        _, token = create_session(db.session.get(User, user_id))
        db.session.commit()
    return {"Authorization": f"Bearer {token}"}


def _fuzz(operation, mode: GenerationMode, headers: dict, path_values: dict | None = None,
          examples: int = EXAMPLES_PER_OPERATION) -> None:
    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(max_examples=examples, deadline=None, database=None, derandomize=True,
              suppress_health_check=list(HealthCheck))
    def run(case):
        for name in set(case.path_parameters or {}) & set(path_values or {}):
            case.path_parameters[name] = path_values[name]
        case.call_and_validate(headers=headers, excluded_checks=[schemathesis.checks.positive_data_acceptance])

    run()


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_every_operation_answers_as_documented(app, factories, mode):
    """No input makes an /api operation answer 5xx or outside its documented responses (OpenAPI 3.0.3 4.7.16)."""
    schema = schemathesis.openapi.from_wsgi("/api/openapi.json", app)
    user = factories.user(email="fuzz@example.com", password=DEFAULT_PASSWORD)
    failures = []
    for result in schema.get_all_operations():
        operation = result.ok()
        try:
            _fuzz(operation, mode, _bearer(app, user.id))  # a fresh session: a fuzzed logout ends the last one
        except Unsatisfiable:
            continue  # nothing to break in negative mode: an operation without parameters or body
        except (Exception, BaseExceptionGroup) as exc:  # collect every operation's failure, not just the first
            failures.append(f"{operation.label}: {exc}")
    assert not failures, "\n\n".join(failures)


class OfflineUpstreamHttp(UpstreamHttp):
    """Refuses every upstream URL as the outbound guard would a forbidden one."""

    def check(self, url: str, label: str = "upstream URL") -> list[str]:
        raise UpstreamHttpError(f"{label} is not requested in tests")

    def _send(self, method: str, url: str, *, parse, **kwargs):
        raise UpstreamHttpError(f"{method} {url} is not requested in tests")


def _real_rows(app, factories) -> dict:
    """Rows the admin's fuzzed path parameters name: its organization with another user as a member,
    a client, a key, an upstream of the organization, and a spare organization for its item operations."""
    admin = factories.user(email="fuzz-admin@example.com", password=DEFAULT_PASSWORD, is_admin=True)
    organization, spare = factories.organization(), factories.organization()
    factories.membership(organization, admin, Role.OWNER)
    factories.membership(spare, admin, Role.OWNER)
    other = factories.user(email="fuzz-target@example.com")
    leaver = factories.user(email="fuzz-leaver@example.com")
    for member in (other, leaver):
        factories.membership(organization, member, Role.MEMBER)
    client = factories.client(organization_id=organization.id)
    upstream = factories.upstream(kind="github", organization_id=organization.id)
    kid = app.extensions["oidc"]["keys"].signing_key("ES256").kid
    return {"admin": admin, "spare_organization_id": spare.id, "leaver_id": leaver.id,
            "path_values": {"organization_id": organization.id, "user_id": other.id, "client_id": client.client_id,
                            "kid": kid, "upstream_id": upstream.id}}


def _path_values_for(operation, rows: dict) -> dict:
    values = dict(rows["path_values"])
    if operation.path == ORGANIZATION_ITEM:
        values["organization_id"] = rows["spare_organization_id"]
    if operation.path == MEMBER_ITEM and operation.method.upper() == "DELETE":
        values["user_id"] = rows["leaver_id"]
    return values


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_management_operations_answer_as_documented_for_a_platform_admin(make_app, tmp_path, factories, mode,
                                                                        monkeypatch):
    """Past the permission checks, no input makes a management operation answer 5xx or outside its
    documented responses (OpenAPI 3.0.3 4.7.16); key changes stay in this test's own KEYS_DIR."""
    app = make_app(KEYS_DIR=str(tmp_path / "keys"))
    monkeypatch.setattr(validation, "upstream_http", lambda: OfflineUpstreamHttp(allow_private=False, timeout=1))
    schema = schemathesis.openapi.from_wsgi("/api/openapi.json", app)
    rows = _real_rows(app, factories)
    failures, fuzzed = [], []
    for result in schema.get_all_operations():
        operation = result.ok()
        if not operation.path.startswith(MANAGEMENT_PATHS):
            continue
        fuzzed.append(operation.label)
        path_values = _path_values_for(operation, rows) if mode == GenerationMode.POSITIVE else None
        try:
            _fuzz(operation, mode, _bearer(app, rows["admin"].id), path_values, ADMIN_EXAMPLES_PER_OPERATION)
        except Unsatisfiable:
            continue
        except (Exception, BaseExceptionGroup) as exc:
            failures.append(f"{operation.label}: {exc}")
    assert len(fuzzed) >= 42, fuzzed  # every operation of issue #11 (tests/api/test_openapi.py lists them)
    assert not failures, "\n\n".join(failures)
