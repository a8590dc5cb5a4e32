"""Platform upstreams from the environment (the seed's "O-auth Setup"): GOOGLE_*, MICROSOFT_*, GITHUB_*,
SAML_IDP_METADATA_URL create or update the upstreams google, microsoft, github and saml."""
from __future__ import annotations

import logging
import socket

import pytest
from sqlalchemy import select

from idp.extensions import db
from idp.federation.bootstrap import VARIABLES, sync_env_upstreams, sync_on_start
from idp.models import AuditEvent, Upstream
from idp.services import upstreams
from tests.federation.standins.github import GitHubStandIn
from tests.federation.standins.oidc_provider import OidcProvider
from tests.federation.standins.saml_idp import SamlIdp


@pytest.fixture(scope="module")
def google():
    standin = OidcProvider("google", client_id="google-client", client_secret="google-secret-1").start()
    yield standin
    standin.stop()


@pytest.fixture(scope="module")
def entra():
    standin = OidcProvider("entra", client_id="entra-client", client_secret="entra-secret-1").start()
    yield standin
    standin.stop()


@pytest.fixture(scope="module")
def github():
    standin = GitHubStandIn().start()
    yield standin
    standin.stop()


@pytest.fixture(scope="module")
def saml_idp():
    standin = SamlIdp()
    standin.start()
    yield standin
    standin.stop()


def google_env(google, **extra) -> dict:
    return {"GOOGLE_CLIENT_ID": google.client_id, "GOOGLE_CLIENT_SECRET": google.client_secret,
            "GOOGLE_ISSUER": google.issuer, **extra}


def all_env(google, entra, github, saml_idp) -> dict:
    return {**google_env(google), "SAML_IDP_METADATA_URL": saml_idp.metadata_url,
            "MICROSOFT_CLIENT_ID": entra.client_id, "MICROSOFT_CLIENT_SECRET": entra.client_secret,
            "MICROSOFT_AUTHORITY": entra.authority,
            "GITHUB_CLIENT_ID": github.client_id, "GITHUB_CLIENT_SECRET": github.client_secret,
            "GITHUB_URL": github.base_url, "GITHUB_API_URL": github.api_url}


def sync(app) -> list[str]:
    with app.app_context():
        return sync_env_upstreams()


def platform_upstreams(app) -> dict[str, Upstream]:
    with app.app_context():
        found = {}
        for upstream in db.session.scalars(select(Upstream).order_by(Upstream.slug)):
            upstream.secrets = upstreams.secrets_of(upstream)
            db.session.expunge(upstream)
            found[upstream.slug] = upstream
        return found


def audit_actions(app) -> list[tuple[str, str | None, dict]]:
    with app.app_context():
        query = select(AuditEvent).where(AuditEvent.action.like("upstream.%")).order_by(AuditEvent.created_at)
        return [(event.action, event.actor_user_id, event.details) for event in db.session.scalars(query)]


def closed_port_url() -> str:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{probe.getsockname()[1]}"


def test_the_environment_creates_then_updates_the_four_platform_upstreams(make_app, google, entra, github, saml_idp):
    """google, microsoft, github and saml are created platform-wide, validated against their stand-ins,
    secrets encrypted, each creation audited with no actor and no secret; new client ids update them."""
    lines = sync(make_app(**all_env(google, entra, github, saml_idp)))
    assert lines == ["upstream google: created", "upstream microsoft: created", "upstream github: created",
                     "upstream saml: created"]
    made = platform_upstreams(make_app())
    assert sorted(made) == ["github", "google", "microsoft", "saml"]
    assert all(upstream.organization_id is None and upstream.enabled for upstream in made.values())
    assert made["google"].kind == "google" and made["google"].settings["issuer"] == google.issuer
    assert made["google"].secrets == {"client_secret": google.client_secret}
    assert made["microsoft"].settings["tenant"] == "common" and made["microsoft"].settings["authority"] == entra.authority
    assert made["github"].settings["api_url"] == github.api_url and made["github"].display_name == "GitHub"
    assert made["saml"].settings["entity_id"] == saml_idp.entity_id and "sp_private_key" in made["saml"].secrets
    actions = audit_actions(make_app())
    assert [(action, actor) for action, actor, _ in actions] == [("upstream.created", None)] * 4
    assert all(details["source"] == "environment" for _, _, details in actions)
    assert all(google.client_secret not in str(details) for _, _, details in actions)
    changed = {**all_env(google, entra, github, saml_idp), "GOOGLE_CLIENT_ID": "google-2",
               "MICROSOFT_CLIENT_ID": "entra-2", "GITHUB_CLIENT_ID": "github-2"}
    assert sync(make_app(**changed)) == ["upstream google: updated", "upstream microsoft: updated",
                                         "upstream github: updated", "upstream saml: unchanged"]
    assert {slug: u.settings["client_id"] for slug, u in platform_upstreams(make_app()).items() if slug != "saml"} == \
        {"google": "google-2", "microsoft": "entra-2", "github": "github-2"}


def test_a_new_saml_metadata_url_updates_the_saml_upstream(make_app, saml_idp):
    """SAML_IDP_METADATA_URL pointing at another IdP: "updated", with that IdP's entity ID and the same SP key."""
    other = SamlIdp()
    other.start()
    try:
        assert sync(make_app(SAML_IDP_METADATA_URL=saml_idp.metadata_url)) == ["upstream saml: created"]
        key = platform_upstreams(make_app())["saml"].secrets["sp_private_key"]
        assert sync(make_app(SAML_IDP_METADATA_URL=other.metadata_url)) == ["upstream saml: updated"]
    finally:
        other.stop()
    updated = platform_upstreams(make_app())["saml"]
    assert updated.settings["entity_id"] == other.entity_id and updated.secrets["sp_private_key"] == key


def test_an_unchanged_environment_asks_no_upstream_and_a_changed_one_updates(make_app, google):
    """A second start with the same variables is "unchanged" without a discovery request; a new secret is "updated"."""
    assert sync(make_app(**google_env(google))) == ["upstream google: created"]
    before = google.hits["discovery"]
    assert sync(make_app(**google_env(google))) == ["upstream google: unchanged"]
    assert google.hits["discovery"] == before
    assert sync(make_app(**google_env(google, GOOGLE_CLIENT_SECRET="google-secret-2"))) == ["upstream google: updated"]
    assert google.hits["discovery"] == before + 1
    assert platform_upstreams(make_app())["google"].secrets == {"client_secret": "google-secret-2"}
    [_, (action, actor, details)] = audit_actions(make_app())
    assert (action, actor, details["fields"], details["source"]) == ("upstream.updated", None, ["client_secret"],
                                                                     "environment")


def test_an_update_keeps_what_an_admin_changed(make_app, google):
    """The environment updates only the settings it names: display name, enabled and domains stay."""
    app = make_app(**google_env(google))
    sync(app)
    with app.app_context():
        upstream = db.session.scalars(select(Upstream).where(Upstream.slug == "google")).one()
        upstream.display_name, upstream.enabled, upstream.email_domains = "Google Workspace", False, ["acme.example"]
        db.session.commit()
    assert sync(make_app(**google_env(google, GOOGLE_CLIENT_ID="google-client-2"))) == ["upstream google: updated"]
    updated = platform_upstreams(app)["google"]
    assert updated.settings["client_id"] == "google-client-2"
    assert (updated.display_name, updated.enabled, updated.email_domains) == ("Google Workspace", False, ["acme.example"])


def test_an_unreachable_upstream_is_logged_naming_the_variable_and_the_rest_go_on(make_app, github, caplog):
    """GOOGLE_ISSUER on a closed port: google is not saved and the error names GOOGLE_ISSUER; github is created."""
    app = make_app(GOOGLE_CLIENT_ID="id", GOOGLE_CLIENT_SECRET="secret", GOOGLE_ISSUER=closed_port_url(),
                   GITHUB_CLIENT_ID=github.client_id, GITHUB_CLIENT_SECRET=github.client_secret,
                   GITHUB_URL=github.base_url, GITHUB_API_URL=github.api_url)
    with caplog.at_level(logging.ERROR):
        lines = sync(app)
    assert lines[0].startswith("upstream google: not saved:") and "GOOGLE_ISSUER" in lines[0]
    assert lines[1] == "upstream github: created"
    [record] = [r for r in caplog.records if "google" in r.getMessage()]
    assert record.levelno == logging.ERROR and "GOOGLE_ISSUER" in record.getMessage()
    assert "secret" not in record.getMessage().replace("GOOGLE_CLIENT_SECRET", "")
    assert sorted(platform_upstreams(app)) == ["github"]


def test_a_missing_secret_names_its_variable(make_app, google):
    """GOOGLE_CLIENT_ID without GOOGLE_CLIENT_SECRET: not saved, and the line names GOOGLE_CLIENT_SECRET."""
    [line] = sync(make_app(GOOGLE_CLIENT_ID=google.client_id, GOOGLE_ISSUER=google.issuer))
    assert line.startswith("upstream google: not saved:") and "GOOGLE_CLIENT_SECRET" in line


def test_a_saml_upstream_that_cannot_be_saved_is_logged_naming_its_variable(make_app, caplog):
    """SAML_IDP_METADATA_URL on a closed port: logged as an error naming the variable, nothing stored, no exception."""
    with caplog.at_level(logging.ERROR):
        [line] = sync(make_app(SAML_IDP_METADATA_URL=closed_port_url() + "/metadata"))
    assert line.startswith("upstream saml: not saved:")
    assert any("SAML_IDP_METADATA_URL" in r.getMessage() and r.levelno == logging.ERROR for r in caplog.records)
    assert platform_upstreams(make_app()) == {}


def test_a_slug_held_by_an_organizations_upstream_is_not_taken_over(make_app, factories, google):
    """An organization's upstream called google stays its own: the environment's google is not saved."""
    organization = factories.organization()
    factories.upstream(slug="google", kind="google", organization_id=organization.id, settings={"client_id": "theirs"})
    [line] = sync(make_app(**google_env(google)))
    assert line.startswith("upstream google: not saved:")
    kept = platform_upstreams(make_app())["google"]
    assert kept.organization_id == organization.id and kept.settings == {"client_id": "theirs"}


def test_start_up_on_an_unmigrated_database_logs_and_goes_on(make_app, tmp_path, caplog):
    """sync_on_start before `flask db upgrade`: a warning saying so, no exception, the app still starts."""
    app = make_app(SQLALCHEMY_DATABASE_URI=f"sqlite:///{tmp_path}/empty.db", GOOGLE_CLIENT_ID="id",
                   GOOGLE_CLIENT_SECRET="secret")
    with caplog.at_level(logging.WARNING):
        sync_on_start(app)
    assert any("not migrated" in r.getMessage() for r in caplog.records)


def test_start_up_syncs_on_a_migrated_database(make_app, google):
    """sync_on_start creates the configured upstreams when the upstreams table exists."""
    sync_on_start(make_app(**google_env(google)))
    assert sorted(platform_upstreams(make_app())) == ["google"]


def test_tests_never_sync_at_start_up(make_app, google):
    """create_app in the testing profile leaves the upstreams alone even with the variables set."""
    make_app(**google_env(google))
    assert platform_upstreams(make_app()) == {}


def test_the_cli_command_prints_one_line_per_upstream(make_app, google):
    """`flask upstreams sync-env` reports each upstream's outcome, and says when none is configured."""
    result = make_app(**google_env(google)).test_cli_runner().invoke(args=["upstreams", "sync-env"])
    assert result.exit_code == 0 and result.output == "upstream google: created\n"
    empty = make_app(**dict.fromkeys(VARIABLES)).test_cli_runner().invoke(args=["upstreams", "sync-env"])
    assert empty.exit_code == 0 and empty.output == "upstreams: none configured in the environment\n"


def test_restarts_and_a_display_name_patch_keep_the_sp_certificate(make_app, saml_idp):
    """SAML metadata 2.4.1.1: the IdP admin imported our SP certificate once; a restart with the same variable,
    one that re-validates (SAML_IDP_METADATA_URL changed), and a PATCH of display_name keep the key pair."""
    from idp.models import User
    from idp.services.sessions import create_session

    assert sync(make_app(SAML_IDP_METADATA_URL=saml_idp.metadata_url)) == ["upstream saml: created"]
    first = platform_upstreams(make_app())["saml"]
    assert sync(make_app(SAML_IDP_METADATA_URL=saml_idp.metadata_url)) == ["upstream saml: unchanged"]
    assert sync(make_app(SAML_IDP_METADATA_URL=saml_idp.metadata_url + "?v=2")) == ["upstream saml: updated"]
    app = make_app()
    with app.app_context():
        admin = User(email="root@example.com", name="Root", is_admin=True)
        db.session.add(admin)
        db.session.flush()
        token = create_session(admin)[1]
        db.session.commit()
    response = app.test_client().patch(f"/api/v1/upstreams/{first.id}", json={"display_name": "Corp SSO"},
                                       headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200, response.get_json()
    after = platform_upstreams(make_app())["saml"]
    assert (after.display_name, after.settings["metadata_url"]) == ("Corp SSO", saml_idp.metadata_url + "?v=2")
    assert (after.settings["sp_certificate"], after.secrets["sp_private_key"]) == (
        first.settings["sp_certificate"], first.secrets["sp_private_key"])
    assert response.get_json()["data"]["sp_certificate"] == first.settings["sp_certificate"]
