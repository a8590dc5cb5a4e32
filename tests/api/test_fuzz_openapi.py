"""Property-based fuzzing of every documented /api operation with schemathesis, in-process over WSGI.

Each operation gets inputs generated from /api/openapi.json, both fitting the schema (positive) and
breaking it (negative), sent with a live bearer token; every answer must be documented (status,
content type, headers, body schema) and never a 5xx. schemathesis' "schema-valid data is accepted"
check is left out: rules JSON Schema cannot state (password policy, the current password, a free
slug, exactly one of email/user_id) rightly answer 422 or 409 to schema-valid bodies.
schemathesis' pytest loader does not support pytest 9, so the operations are driven through its
Python API (`APIOperation.as_strategy`). Generation is derandomized so CI runs are reproducible.
"""
from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode

from idp.extensions import db
from idp.models import User
from idp.services.sessions import create_session
from tests.factories import DEFAULT_PASSWORD

EXAMPLES_PER_OPERATION = 50


def _bearer(app, user_id: str) -> dict:
    with app.app_context():
        _, token = create_session(db.session.get(User, user_id))
        db.session.commit()
    return {"Authorization": f"Bearer {token}"}


def _fuzz(operation, mode: GenerationMode, headers: dict) -> None:
    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(max_examples=EXAMPLES_PER_OPERATION, deadline=None, database=None, derandomize=True,
              suppress_health_check=list(HealthCheck))
    def run(case):
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
