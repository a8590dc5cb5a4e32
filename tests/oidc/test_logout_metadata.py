"""Back- and front-channel logout client metadata in registration (RFC 7591) and update (RFC 7592)."""
import pytest

from idp.extensions import db
from idp.models import OAuthClient
from tests.oidc.test_registration import register

CHANNELS = {"backchannel_logout_uri": "https://dyn.example/bcl?tenant=1", "backchannel_logout_session_required": True,
            "frontchannel_logout_uri": "https://dyn.example/fcl", "frontchannel_logout_session_required": True}


@pytest.fixture
def initial_token(app):
    return app.test_cli_runner().invoke(args=["clients", "initial-token"]).output.strip()


def stored(app, client_id: str) -> OAuthClient:
    with app.app_context():
        return db.session.query(OAuthClient).filter_by(client_id=client_id).one()


def test_logout_channels_are_registered_returned_and_stored(client, initial_token, app):
    """BCL 2.2, FCL 2: the four members are accepted, returned in the registration response and stored."""
    response = register(client, initial_token, **CHANNELS)
    body = response.get_json()
    assert response.status_code == 201, body
    assert {name: body[name] for name in CHANNELS} == CHANNELS
    row = stored(app, body["client_id"])
    assert {name: getattr(row, name) for name in CHANNELS} == CHANNELS


def test_update_changes_and_clears_the_logout_channels(client, initial_token, app):
    """RFC 7592 2.2: an update replaces the metadata; members left out are cleared (the flags to false)."""
    body = register(client, initial_token, **CHANNELS).get_json()
    auth = {"Authorization": f"Bearer {body['registration_access_token']}"}
    update = {name: body[name] for name in ("client_id", "client_name", "redirect_uris", "grant_types",
                                            "response_types", "scope")}
    update["backchannel_logout_uri"] = "https://dyn.example/other"
    response = client.put(f"/oauth2/register/{body['client_id']}", json=update, headers=auth)
    assert response.status_code == 200, response.get_json()
    row = stored(app, body["client_id"])
    assert (row.backchannel_logout_uri, row.backchannel_logout_session_required) == ("https://dyn.example/other", False)
    assert (row.frontchannel_logout_uri, row.frontchannel_logout_session_required) == (None, False)


@pytest.mark.parametrize("name,value", [
    ("backchannel_logout_uri", "https://dyn.example/bcl#frag"),  # BCL 2.2: no fragment
    ("frontchannel_logout_uri", "https://dyn.example/fcl#frag"),  # FCL 2: no fragment
    ("backchannel_logout_uri", "javascript:alert(1)"),
    ("backchannel_logout_uri", "/relative/path"),
    ("frontchannel_logout_uri", ["https://dyn.example/fcl"]),
    ("backchannel_logout_uri", "https://dyn.example/" + "a" * 500),
    ("backchannel_logout_uri", "https://dyn.example:99999/bcl"),
    ("frontchannel_logout_uri", "https://[::1/fcl"),
    ("backchannel_logout_session_required", "yes"),
    ("frontchannel_logout_session_required", 1),
])
def test_bad_logout_channel_metadata_is_refused(client, initial_token, name, value):
    """BCL 2.2 / FCL 2: absolute http(s) URLs without fragment, boolean flags; anything else is invalid_client_metadata."""
    response = register(client, initial_token, **{name: value})
    assert response.status_code == 400 and response.get_json()["error"] == "invalid_client_metadata"


def test_frontchannel_logout_uri_must_share_a_redirect_uris_origin(client, initial_token):
    """FCL 2: the frontchannel_logout_uri's scheme, host and port are those of a registered redirect URI."""
    for uri in ("https://elsewhere.example/fcl", "http://dyn.example/fcl", "https://dyn.example:8443/fcl"):
        response = register(client, initial_token, frontchannel_logout_uri=uri)
        assert response.status_code == 400 and "redirect URI" in response.get_json()["error_description"]
    assert register(client, initial_token, frontchannel_logout_uri="https://dyn.example:443/fcl").status_code == 201
