"""Discovery (OIDC Discovery 1.0 3-4, RFC 8414 2-3): complete and truthful."""
from urllib.parse import urlparse

import pytest

PRIVATE_MEMBERS = {"d", "p", "q", "dp", "dq", "qi", "k"}


def test_openid_configuration_uses_configured_issuer_not_host(client, app):
    """OIDC Discovery 4.3: issuer equals ISSUER exactly, whatever the Host header says."""
    body = client.get("/.well-known/openid-configuration", headers={"Host": "evil.example"}).get_json()
    assert body["issuer"] == app.config["ISSUER"]
    assert all(body[k].startswith(app.config["ISSUER"]) for k in body if k.endswith(("_endpoint", "_uri")))


def test_rfc8414_metadata_matches_openid_configuration(client):
    """RFC 8414 3: the OAuth metadata agrees with the OpenID document on every shared member."""
    oidc = client.get("/.well-known/openid-configuration").get_json()
    oauth = client.get("/.well-known/oauth-authorization-server").get_json()
    assert all(oidc[k] == v for k, v in oauth.items())
    assert oauth["authorization_response_iss_parameter_supported"] is True


@pytest.mark.parametrize("member,method", [
    ("authorization_endpoint", "GET"), ("token_endpoint", "POST"), ("userinfo_endpoint", "GET"),
    ("jwks_uri", "GET"), ("introspection_endpoint", "POST"), ("revocation_endpoint", "POST"),
    ("end_session_endpoint", "GET"), ("registration_endpoint", "POST"),
])
def test_every_advertised_endpoint_answers(client, member, method):
    """RFC 8414 2: every advertised endpoint exists and answers its method (never 404/405)."""
    url = client.get("/.well-known/openid-configuration").get_json()[member]
    response = client.open(urlparse(url).path, method=method)
    assert response.status_code not in (404, 405, 500)


def test_advertised_values_match_what_works(client, app):
    """OIDC Discovery 3: advertised algorithms, methods and modes are the implemented ones."""
    body = client.get("/.well-known/openid-configuration").get_json()
    assert body["code_challenge_methods_supported"] == ["S256"]
    assert body["response_types_supported"] == ["code"] and body["response_modes_supported"] == ["query", "form_post"]
    assert set(body["token_endpoint_auth_methods_supported"]) == {"client_secret_basic", "client_secret_post",
                                                                  "private_key_jwt", "none"}
    assert body["request_uri_parameter_supported"] is False and body["claims_parameter_supported"] is True
    jwks = client.get("/oauth2/jwks").get_json()
    assert set(body["id_token_signing_alg_values_supported"]) <= {k["alg"] for k in jwks["keys"]}
    assert "organizations" in body["scopes_supported"]


def test_jwks_has_no_private_members_and_every_key_has_kid(client):
    """RFC 7517 4-5: the JWKS publishes public members only, each key with kid, alg and use."""
    keys = client.get("/oauth2/jwks").get_json()["keys"]
    assert keys and all(k["kid"] and k["use"] == "sig" and not (PRIVATE_MEMBERS & set(k)) for k in keys)


def test_webfinger_names_the_issuer_for_any_account_on_this_host(client, app):
    """OIDC Discovery 1.0 2.2: an acct: or URL resource on the issuer's host gets the issuer link
    (application/jrd+json, readable cross-origin per RFC 7033 5), the same for every account name,
    so WebFinger reveals nothing about which accounts exist."""
    from urllib.parse import urlsplit

    host = urlsplit(app.config["ISSUER"]).netloc
    rel = "http://openid.net/specs/connect/1.0/issuer"
    for resource in (f"acct:alice@{host}", f"acct:nobody-at-all@{host}", f"{app.config['ISSUER']}/joe"):
        response = client.get("/.well-known/webfinger", query_string={"resource": resource, "rel": rel},
                              headers={"Origin": "https://rp.example"})
        assert response.status_code == 200 and response.mimetype == "application/jrd+json"
        assert response.get_json() == {"subject": resource, "links": [{"rel": rel, "href": app.config["ISSUER"]}]}
        assert response.headers["Access-Control-Allow-Origin"] == "*"


def test_webfinger_refuses_other_hosts_and_missing_resource(client):
    """RFC 7033 4.2: a resource this server does not serve is 404; no resource is 400; a rel
    filter that matches nothing leaves the links empty."""
    assert client.get("/.well-known/webfinger", query_string={"resource": "acct:joe@elsewhere.example"}).status_code == 404
    assert client.get("/.well-known/webfinger").status_code == 400
    from urllib.parse import urlsplit

    host = urlsplit(client.application.config["ISSUER"]).netloc
    body = client.get("/.well-known/webfinger", query_string={"resource": f"acct:joe@{host}",
                                                              "rel": "http://webfinger.net/rel/avatar"}).get_json()
    assert body["links"] == []
