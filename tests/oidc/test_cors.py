"""CORS for browser-based relying parties (public clients using PKCE, RFC 8252 / OAuth for browser apps)."""
import pytest

SPA = "https://spa.example"


@pytest.mark.parametrize("path", ["/oauth2/token", "/oauth2/userinfo", "/oauth2/revoke"])
def test_preflight_allows_any_origin_without_credentials(client, path):
    """A browser app may call the token, userinfo and revocation endpoints; no cookies are allowed."""
    response = client.options(path, headers={"Origin": SPA, "Access-Control-Request-Method": "POST",
                                             "Access-Control-Request-Headers": "Authorization, Content-Type"})
    assert response.headers.get("Access-Control-Allow-Origin") == "*"
    assert "Access-Control-Allow-Credentials" not in response.headers


@pytest.mark.parametrize("path", ["/.well-known/openid-configuration", "/oauth2/jwks"])
def test_metadata_is_readable_from_any_origin(client, path):
    """OIDC Discovery 1.0 4 metadata and the JWKS can be fetched by browser apps."""
    response = client.get(path, headers={"Origin": SPA})
    assert response.status_code == 200 and response.headers.get("Access-Control-Allow-Origin") == "*"


def test_token_errors_are_readable_cross_origin(client):
    """RFC 6749 5.2 errors reach a browser app, which needs them to recover."""
    response = client.post("/oauth2/token", data={"grant_type": "authorization_code", "code": "x"},
                           headers={"Origin": SPA})
    assert response.status_code in (400, 401) and response.headers.get("Access-Control-Allow-Origin") == "*"


@pytest.mark.parametrize("path", ["/oauth2/authorize", "/oauth2/introspect", "/login", "/account"])
def test_browser_pages_and_server_endpoints_get_no_cors(client, path):
    """Pages with cookies and the server-to-server introspection endpoint are not opened to other origins."""
    response = client.get(path, headers={"Origin": SPA})
    assert "Access-Control-Allow-Origin" not in response.headers


def test_cacheable_metadata_carries_the_wildcard_even_without_origin(client):
    """A shared cache may store the metadata or the JWKS fetched by a server and hand it to a browser
    app later, so `*` is on every such response; the uncacheable token answer to a server (no Origin)
    carries no CORS headers at all."""
    for path in ("/.well-known/openid-configuration", "/oauth2/jwks"):
        assert client.get(path).headers.get("Access-Control-Allow-Origin") == "*"
    token = client.post("/oauth2/token", data={"grant_type": "client_credentials"})
    assert not [name for name in token.headers.keys() if name.startswith("Access-Control-")]
