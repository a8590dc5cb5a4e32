"""Fetching clients' jwks_uri (OIDC Registration 2): no server-side request forgery, brief caching."""
import socket
import time
import uuid

import pytest
import urllib3
from flask import Flask, jsonify
from joserfc import jwt
from joserfc.jwk import RSAKey

from idp.oidc import client_jwks
from idp.security import outbound
from tests.servers import LiveServer

TOKEN_URL = "http://localhost:5000/oauth2/token"
HOST = "keys.rp.example"
URI = f"https://{HOST}/jwks.json"
PUBLIC, PUBLIC_TOO, LOOPBACK, INTERNAL = "93.184.216.34", "2606:2800:220:1::1", "127.0.0.1", "10.0.0.8"


class KeyHost:
    """A client's own key host on loopback, counting how often the IdP fetches from it."""

    def __init__(self, key):
        self.key, self.fetches = key, 0
        app = Flask("client-keys")
        app.add_url_rule("/jwks.json", "jwks", self.serve)
        self.server = LiveServer(app)

    def serve(self):
        self.fetches += 1
        return jsonify({"keys": [self.key.as_dict(private=False)]})


@pytest.fixture
def key_host():
    host = KeyHost(RSAKey.generate_key(2048, private=True, parameters={"kid": "k1"}))
    host.server.start()
    yield host
    host.server.stop()
    client_jwks.forget_jwks(f"{host.server.url}/jwks.json")


@pytest.fixture
def uri_client(factories, key_host):
    return factories.client(secret=None, token_endpoint_auth_method="private_key_jwt", scope="reports:read",
                            grant_types=["client_credentials"], jwks_uri=f"{key_host.server.url}/jwks.json")


def authenticate(client, rp, key):
    now = int(time.time())
    claims = {"iss": rp.client_id, "sub": rp.client_id, "aud": TOKEN_URL, "iat": now, "exp": now + 60,
              "jti": str(uuid.uuid4())}
    token = jwt.encode({"alg": "RS256", "kid": key.kid}, claims, key)
    return client.post("/oauth2/token", data={
        "grant_type": "client_credentials", "client_id": rp.client_id, "client_assertion": token,
        "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"})


def test_fetched_keys_are_reused(client, uri_client, key_host):
    """Repeated assertions within the cache life fetch the client's jwks_uri once."""
    for _ in range(3):
        assert authenticate(client, uri_client, key_host.key).status_code == 200
    assert key_host.fetches == 1


def test_rotated_client_keys_work_after_one_refusal(client, uri_client, key_host):
    """A signature the cached keys reject drops them, so the client's next attempt sees its new key."""
    assert authenticate(client, uri_client, key_host.key).status_code == 200
    key_host.key = RSAKey.generate_key(2048, private=True, parameters={"kid": "k2"})
    refused = authenticate(client, uri_client, key_host.key)
    assert refused.status_code == 400 and refused.get_json()["error"] == "invalid_client"
    assert authenticate(client, uri_client, key_host.key).status_code == 200


def test_internal_jwks_uri_is_not_fetched_in_production_mode(make_app, uri_client, key_host):
    """SSRF guard: with ALLOW_PRIVATE_JWKS_URI off, an http or loopback jwks_uri is never requested."""
    guarded = make_app(ALLOW_PRIVATE_JWKS_URI=False).test_client()
    response = authenticate(guarded, uri_client, key_host.key)
    assert response.status_code == 400 and response.get_json()["error"] == "invalid_client"
    assert key_host.fetches == 0


@pytest.mark.parametrize("uri", ["https://127.0.0.1/jwks.json", "https://10.0.0.8/keys", "https://[::1]/k",
                                 "https://169.254.169.254/latest", "file:///etc/passwd", "ftp://example.com/k"])
def test_non_public_or_non_https_uris_are_refused(make_app, uri):
    """SSRF guard: loopback, private, link-local addresses and non-https schemes are refused before any request."""
    guarded = make_app(ALLOW_PRIVATE_JWKS_URI=False)
    with guarded.app_context(), pytest.raises(client_jwks.JwksFetchError):
        client_jwks.check_jwks_uri(uri)


class Dns:
    """A stand-in resolver: each lookup of HOST gets the next answer (the last one repeats); no other name resolves."""

    def __init__(self, *answers):
        self.answers, self.lookups = answers, 0

    def __call__(self, host, port, *args, **kwargs):
        if host != HOST:
            raise socket.gaierror(socket.EAI_NONAME, f"unexpected lookup of {host}")
        answer = self.answers[min(self.lookups, len(self.answers) - 1)]
        self.lookups += 1
        return [(socket.AF_INET6 if ":" in address else socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP, "",
                 (address, port)) for address in answer]


@pytest.fixture
def guarded_ctx(make_app):
    with make_app(ALLOW_PRIVATE_JWKS_URI=False).app_context():
        yield


@pytest.fixture
def connects(monkeypatch):
    """Every TCP connection urllib3 opens, recorded and refused: nothing leaves the machine."""
    attempts = []

    def refuse(address, *args, **kwargs):
        attempts.append(address)
        raise ConnectionRefusedError("test: no network")

    monkeypatch.setattr(urllib3.util.connection, "create_connection", refuse)
    return attempts


def test_dns_rebinding_after_the_check_does_not_reach_the_new_address(guarded_ctx, monkeypatch, connects):
    """A jwks_uri whose DNS answer flips to a loopback address after the check is still fetched from the
    checked public address, never from the loopback one: the name is resolved once, at the check."""
    dns = Dns([PUBLIC], [LOOPBACK])
    monkeypatch.setattr(outbound.socket, "getaddrinfo", dns)
    with pytest.raises(client_jwks.JwksFetchError):
        client_jwks.fetch_jwks(URI)
    assert connects == [(PUBLIC, 443)]
    assert dns.lookups == 1


def test_pinned_fetch_still_verifies_the_relying_partys_hostname(guarded_ctx, monkeypatch):
    """Pinning changes only where the IdP connects: the relying party's certificate is still required and
    checked against its hostname, which is also the SNI name and the Host header, so a name-based
    (virtual-hosted, CDN) key host keeps working and a certificate for another name is refused."""
    monkeypatch.setattr(outbound.socket, "getaddrinfo", Dns([PUBLIC, PUBLIC_TOO]))
    seen = []

    def record(pool, method, url, headers=None, **kwargs):
        seen.append(dict(address=(pool.host, pool.port), sni=pool.conn_kw.get("server_hostname"),
                         verify_name=pool.assert_hostname, cert_reqs=pool.cert_reqs, host_header=headers["Host"],
                         path=url))
        raise ConnectionRefusedError("test: no network")

    monkeypatch.setattr(urllib3.HTTPSConnectionPool, "urlopen", record)
    with pytest.raises(client_jwks.JwksFetchError):
        client_jwks.fetch_jwks(URI)
    assert seen == [dict(address=(PUBLIC, 443), sni=HOST, verify_name=HOST, cert_reqs="CERT_REQUIRED",
                         host_header=HOST, path="/jwks.json")]


def test_check_returns_the_public_addresses_it_approved(guarded_ctx, monkeypatch):
    """The operator's guard hands the fetch exactly the addresses it checked, in the resolver's order."""
    monkeypatch.setattr(outbound.socket, "getaddrinfo", Dns([PUBLIC, PUBLIC_TOO]))
    assert client_jwks.check_jwks_uri(URI) == [PUBLIC, PUBLIC_TOO]


def test_a_name_with_any_internal_address_is_refused(guarded_ctx, monkeypatch, connects):
    """A jwks_uri whose name answers with a public and an internal address is refused outright and never
    requested, not fetched from the public address."""
    monkeypatch.setattr(outbound.socket, "getaddrinfo", Dns([PUBLIC, INTERNAL]))
    with pytest.raises(client_jwks.JwksFetchError, match="non-public"):
        client_jwks.fetch_jwks(URI)
    assert connects == []
