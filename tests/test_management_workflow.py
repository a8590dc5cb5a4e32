"""The README's management workflow (docs/management-workflow.sh) against a live Authy2 with the demo data:
a service account made by the platform admin registers a relying party that completes a code flow."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
from sqlalchemy import func, select

from idp.extensions import db
from idp.models import AuditEvent, OAuthClient, User
from tests.conftest import REQUIRE_SERVICES
from tests.servers import LiveServer
from tests.web.conftest import demo_data  # noqa: F401 (fixture)

SCRIPT = Path(__file__).resolve().parents[1] / "docs" / "management-workflow.sh"
ADMIN_EMAIL = "admin@acme-corp.com"


@pytest.fixture
def idp_server(make_app, demo_data):  # noqa: F811 (the imported fixture)
    """Authy2 on a loopback port, its ISSUER that port's URL (the script checks `iss` against it)."""
    server = LiveServer(make_app())
    server.app.config["ISSUER"] = server.url
    server.start()
    yield server
    server.stop()


def run_workflow(server: LiveServer, **settings: str) -> subprocess.CompletedProcess:
    """The script as a user runs it: bash, with only PATH, HOME and its own settings in the environment."""
    if shutil.which("curl") is None:
        if REQUIRE_SERVICES:
            pytest.fail("the workflow script needs curl (REQUIRE_SERVICES=1)")
        pytest.skip("curl is not installed")
    env = {"PATH": os.environ["PATH"], "HOME": os.environ.get("HOME", "/tmp"), "IDP_URL": server.url, **settings}
    return subprocess.run(["bash", str(SCRIPT)], env=env, capture_output=True, text=True, timeout=120)


def test_the_readme_workflow_ends_with_the_demo_admins_id_token(idp_server, app):
    """Admin -> service account with manage:clients -> client_credentials token (RFC 6749 4.4) -> new RP ->
    code flow with PKCE (RFC 7636) -> an ID token of the demo admin whose signature the script checked."""
    result = run_workflow(idp_server)
    assert result.returncode == 0, result.stderr
    claims = json.loads(result.stdout)
    with app.app_context():
        admin = db.session.scalars(select(User).where(User.email == ADMIN_EMAIL)).one()
        rp = db.session.scalars(select(OAuthClient).where(OAuthClient.client_id == claims["aud"])).one()
        service_account = db.session.scalars(select(OAuthClient).where(OAuthClient.scope == "manage:clients")).one()
        created = db.session.scalar(select(func.count()).select_from(AuditEvent)
                                    .where(AuditEvent.action == "client.created"))
    assert claims["sub"] == admin.subject and claims["email"] == ADMIN_EMAIL
    assert claims["iss"] == idp_server.url and rp.redirect_uris == ["http://127.0.0.1:8765/callback"]
    assert service_account.organization_id is None and service_account.grant_types == ["client_credentials"]
    assert created == 2
    assert "service account" in result.stderr and "consent" in result.stderr


def test_the_workflow_stops_with_the_api_answer_on_a_wrong_password(idp_server):
    """The script fails loudly (non-zero, the envelope's message) instead of carrying on with no token."""
    result = run_workflow(idp_server, ADMIN_PASSWORD="not-the-password")
    assert result.returncode != 0 and result.stdout == ""
    assert "POST /api/v1/auth/login answered HTTP 401" in result.stderr


def test_the_readme_shows_the_workflow_under_api():
    """The README's API section points to the script and shows its first calls."""
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    api_section = readme.split("\n## API\n", 1)[1].split("\n## ", 1)[0]
    assert "docs/management-workflow.sh" in api_section and "grant_type=client_credentials" in api_section
