"""Two nodes, one PostgreSQL, one Redis, one keys/ directory: the scale-out shape of the README's
production topology. Each node is its own gunicorn master (`-c python:idp.gunicorn_conf`, two workers)
on a loopback port; nothing a node keeps in its own memory may let it disagree with the other for
longer than a second.

Runs only on PostgreSQL + Redis (the suite's TEST_DATABASE_URL and TEST_REDIS_URL): the nodes serve the
suite's database, whose rows the factories write and the suite's clean-up empties after each test.
"""
from __future__ import annotations

import base64
import hashlib
import json
import secrets
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
import requests
from joserfc import jwt
from joserfc.jwk import KeySet, RSAKey

from idp.extensions import db
from idp.models import SessionKind, User
from idp.services import sessions
from idp.services.signing_keys import KeyStore
from tests.conftest import DATABASE_URL, REDIS_URL, REQUIRE_SERVICES
from tests.deploy.processes import Process, clean_env, free_port, start_gunicorn
from tests.factories import DEFAULT_PASSWORD
from tests.web.helpers import csrf_from

pytestmark = [pytest.mark.postgres, pytest.mark.redis]

# One public issuer for both nodes, as behind one load balancer; plain HTTP is allowed only on loopback names.
ISSUER = "http://localhost"
TOKEN_AUDIENCE = f"{ISSUER}/oauth2/token"
REDIRECT_URI = "https://rp.example/callback"
# Every "within one second" claim polls at most this long, then asserts.
PROPAGATION_BOUND = 1.0
REGISTRATIONS_PER_HOUR = 2


@dataclass
class Node:
    name: str
    base: str
    server: Process

    def url(self, path: str) -> str:
        return self.base + path


@dataclass
class Pair:
    a: Node
    b: Node


def _require_services() -> None:
    if DATABASE_URL.startswith("postgresql") and REDIS_URL:
        return
    why = "two nodes need TEST_DATABASE_URL on PostgreSQL and TEST_REDIS_URL"
    if REQUIRE_SERVICES:
        pytest.fail(f"{why} (REQUIRE_SERVICES=1)")
    pytest.skip(why)


@pytest.fixture(scope="module")
def nodes(app, tmp_path_factory):
    """Nodes A and B started once for the module, sharing the database, Redis and KEYS_DIR."""
    _require_services()
    home = tmp_path_factory.mktemp("two-nodes")
    keys_dir = home / "keys"
    # Made before the nodes start, as the one-shot deploy step would: two first starts would both make keys.
    KeyStore(str(keys_dir), retention_seconds=86400).ensure()
    ports = {name: free_port() for name in ("a", "b")}

    def start(name: str) -> Node:
        env = clean_env(home, FLASK_ENV="development", FLASK_SKIP_DOTENV="1", DATABASE_URL=DATABASE_URL,
                        REDIS_URL=REDIS_URL, KEYS_DIR=str(keys_dir), MAIL_OUTBOX_DIR=str(home / f"outbox-{name}"),
                        ISSUER=ISSUER, SECRET_KEY="two-nodes-test-secret-key-" + "x" * 20,
                        BCRYPT_LOG_ROUNDS="4", CLIENT_CACHE_SECONDS="30", SMTP_HOST="",
                        RATELIMIT_REGISTER=f"{REGISTRATIONS_PER_HOUR} per hour",
                        GUNICORN_BIND=f"127.0.0.1:{ports[name]}", WEB_CONCURRENCY="2", GUNICORN_THREADS="4",
                        GUNICORN_GRACEFUL_TIMEOUT="2")
        server = start_gunicorn(env, home / f"gunicorn-{name}.log", ports[name])
        return Node(name, f"http://127.0.0.1:{ports[name]}", server)

    with ThreadPoolExecutor(2) as pool:  # both boot at once: the module's set-up is one boot long
        starts = [pool.submit(start, name) for name in ports]
    started = [future.result() for future in starts if future.exception() is None]
    try:
        failed = [future.exception() for future in starts if future.exception() is not None]
        if failed:
            raise failed[0]
        yield Pair(started[0], started[1])
    finally:
        with ThreadPoolExecutor(2) as pool:
            list(pool.map(lambda node: node.server.stop(), started))


def within(bound: float, probe):
    """Call `probe` until it returns a true value or `bound` seconds have passed. Returns the value and
    how long after the first call the answering call began (the change was visible by then, however long
    that call itself took on a loaded machine). The caller asserts on both."""
    start = time.monotonic()
    while True:
        began = time.monotonic() - start
        value = probe()
        if value or time.monotonic() - start >= bound:
            return value, began
        time.sleep(0.05)


def api_login(node: Node, email: str, password: str = DEFAULT_PASSWORD) -> requests.Response:
    return requests.post(node.url("/api/v1/auth/login"), json={"email": email, "password": password}, timeout=10)


def bearer(node: Node, email: str) -> dict:
    answer = api_login(node, email)
    assert answer.status_code == 200, answer.text
    return {"Authorization": f"Bearer {answer.json()['data']['token']}"}


def browser_cookie(app, user) -> tuple[str, str]:
    """An SSO session for `user`, as a sign-in on the hosted page leaves it: (Cookie header, session id)."""
    with app.app_context():
        session, token = sessions.create_session(db.session.get(User, user.id), kind=SessionKind.BROWSER,
                                                 user_agent="two-nodes-test")
        db.session.commit()
        return f"authy2_session={token}", session.id


def pkce_pair() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    return verifier, challenge


def authorize(node: Node, cookie: str, client_id: str, challenge: str) -> requests.Response:
    query = urlencode({"response_type": "code", "client_id": client_id, "redirect_uri": REDIRECT_URI,
                       "scope": "openid email", "state": "st", "nonce": "n", "code_challenge": challenge,
                       "code_challenge_method": "S256"})
    return requests.get(node.url(f"/oauth2/authorize?{query}"), headers={"Cookie": cookie}, allow_redirects=False,
                        timeout=10)


def issued_code(answer: requests.Response) -> str | None:
    location = answer.headers.get("Location", "")
    if answer.status_code not in (302, 303) or not location.startswith(REDIRECT_URI):
        return None
    return parse_qs(urlsplit(location).query).get("code", [None])[0]


def client_credentials(node: Node, client_id: str, secret: str) -> requests.Response:
    return requests.post(node.url("/oauth2/token"), data={"grant_type": "client_credentials"},
                         auth=(client_id, secret), timeout=10)


def jose_header(token: str) -> dict:
    segment = token.split(".")[0]
    return json.loads(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)))


def jwks_kids(node: Node) -> set[str]:
    return {key["kid"] for key in requests.get(node.url("/oauth2/jwks"), timeout=10).json()["keys"]}


@pytest.fixture
def rp(factories):
    """A first-party relying party (no consent page) with a secret, for code flows on an SSO session."""
    client = factories.client(secret="rp-secret-two-nodes", first_party=True, require_pkce=True,
                              redirect_uris=[REDIRECT_URI], grant_types=["authorization_code"])
    return client.client_id, "rp-secret-two-nodes"


def test_code_issued_by_a_is_redeemed_at_b_once(app, nodes, factories, rp):
    """RFC 6749 4.1.2 and 10.5: a code is single use across nodes. B redeems the code A issued; A, asked
    again for the same code, answers invalid_grant (the consumed code is in the shared database)."""
    client_id, secret = rp
    cookie, _ = browser_cookie(app, factories.user())
    verifier, challenge = pkce_pair()
    code = issued_code(authorize(nodes.a, cookie, client_id, challenge))
    assert code
    form = {"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT_URI, "code_verifier": verifier}
    redeemed = requests.post(nodes.b.url("/oauth2/token"), data=form, auth=(client_id, secret), timeout=10)
    assert redeemed.status_code == 200, redeemed.text
    assert redeemed.json()["token_type"] == "Bearer" and redeemed.json()["id_token"].count(".") == 2
    replayed = requests.post(nodes.a.url("/oauth2/token"), data=form, auth=(client_id, secret), timeout=10)
    assert replayed.status_code == 400 and replayed.json()["error"] == "invalid_grant"


def test_sign_in_started_on_a_finishes_on_b(nodes, factories, rp):
    """A browser the balancer sends to either node: the authorization request A stored, the sign-in page
    B rendered (its CSRF token in B's signed cookie session) and the form POSTed to A make one sign-in,
    and the code comes back to the registered redirect URI (OIDC Core 3.1.2.5)."""
    client_id, secret = rp
    user = factories.user()
    verifier, challenge = pkce_pair()
    browser = requests.Session()  # cookies are not port-bound: both nodes get the same ones, as behind nginx
    pending = authorize(nodes.a, "", client_id, challenge)
    assert pending.status_code == 302 and urlsplit(pending.headers["Location"]).path == "/login"
    login_page = urlsplit(pending.headers["Location"])
    page = browser.get(nodes.b.url(f"{login_page.path}?{login_page.query}"), timeout=10)
    assert page.status_code == 200
    form = {"csrf_token": csrf_from(page.text), "email": user.email, "password": DEFAULT_PASSWORD,
            "request": parse_qs(login_page.query)["request"][0]}
    answer = browser.post(nodes.a.url("/login"), data=form, allow_redirects=False, timeout=10)
    for node in (nodes.b, nodes.a, nodes.b):  # each redirect within the IdP lands on the other node
        if issued_code(answer) or answer.status_code != 302:
            break
        target = urlsplit(answer.headers["Location"])
        answer = browser.get(node.url(f"{target.path}?{target.query}"), allow_redirects=False, timeout=10)
    code = issued_code(answer)
    assert code, (answer.status_code, answer.headers.get("Location"))
    tokens = requests.post(nodes.b.url("/oauth2/token"), auth=(client_id, secret), timeout=10, data={
        "grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT_URI, "code_verifier": verifier})
    assert tokens.status_code == 200 and tokens.json()["id_token"].count(".") == 2, tokens.text


def test_session_revoked_on_a_is_refused_on_b_within_a_second(app, nodes, factories, rp):
    """A browser SSO session revoked through A's API (DELETE /api/v1/auth/sessions/<id>) issues no more
    codes at B, and an API session signed out at A (POST /api/v1/auth/logout) is 401 at B."""
    user = factories.user()
    client_id, _ = rp
    cookie, browser_session_id = browser_cookie(app, user)
    _, challenge = pkce_pair()
    assert issued_code(authorize(nodes.b, cookie, client_id, challenge))  # B knows the session now
    api = bearer(nodes.a, user.email)
    assert requests.get(nodes.b.url("/api/v1/auth/me"), headers=api, timeout=10).status_code == 200

    revoked = requests.delete(nodes.a.url(f"/api/v1/auth/sessions/{browser_session_id}"), headers=api, timeout=10)
    assert revoked.status_code == 200, revoked.text
    refused, elapsed = within(PROPAGATION_BOUND,
                              lambda: issued_code(authorize(nodes.b, cookie, client_id, challenge)) is None)
    assert refused and elapsed <= PROPAGATION_BOUND
    sign_in = authorize(nodes.b, cookie, client_id, challenge)
    assert sign_in.status_code == 302 and urlsplit(sign_in.headers["Location"]).path == "/login"

    assert requests.post(nodes.a.url("/api/v1/auth/logout"), headers=api, timeout=10).status_code == 200
    unauthorized, elapsed = within(PROPAGATION_BOUND, lambda: requests.get(
        nodes.b.url("/api/v1/auth/me"), headers=api, timeout=10).status_code == 401)
    assert unauthorized and elapsed <= PROPAGATION_BOUND


def test_client_deactivated_on_a_is_refused_on_b_within_a_second(nodes, factories):
    """A client made through A's management API, cached by B (CLIENT_CACHE_SECONDS=30), then deactivated
    through A's API is refused by B's token endpoint within a second: 401 invalid_client (RFC 6749 5.2)."""
    headers = bearer(nodes.a, factories.user(is_admin=True).email)
    made = requests.post(nodes.a.url("/api/v1/clients"), headers=headers, timeout=10, json={
        "client_name": "Robot", "grant_types": ["client_credentials"], "scope": "openid"})
    assert made.status_code == 201, made.text
    client_id, secret = made.json()["data"]["client_id"], made.json()["data"]["client_secret"]
    for _ in range(6):  # both of B's workers read and cache the client
        assert client_credentials(nodes.b, client_id, secret).status_code == 200
    path = nodes.a.url(f"/api/v1/clients/{client_id}")
    etag = requests.get(path, headers=headers, timeout=10).headers["ETag"]
    patched = requests.patch(path, json={"is_active": False}, headers={**headers, "If-Match": etag}, timeout=10)
    assert patched.status_code == 200, patched.text

    def refused_by_b():
        # Several requests, so that each of B's workers is asked.
        answers = [client_credentials(nodes.b, client_id, secret) for _ in range(4)]
        return all(a.status_code == 401 and a.json()["error"] == "invalid_client" for a in answers)

    refused, elapsed = within(PROPAGATION_BOUND, refused_by_b)
    assert refused and elapsed <= PROPAGATION_BOUND


def test_key_rotated_on_a_is_published_and_used_by_b_within_a_second(nodes, factories):
    """POST /api/v1/keys/rotate on A writes the shared KEYS_DIR: B's JWKS (RFC 7517) lists the new key
    and B's tokens carry its kid in their JOSE header (RFC 7515 4.1.4) within a second."""
    admin = factories.user(is_admin=True)
    machine = factories.client(secret="machine-secret", grant_types=["client_credentials"], scope="reports:read",
                               redirect_uris=[])
    headers = bearer(nodes.a, admin.email)

    def b_signs_with(kid: str) -> bool:
        answers = [client_credentials(nodes.b, machine.client_id, "machine-secret") for _ in range(4)]
        return all(jose_header(a.json()["access_token"])["kid"] == kid for a in answers)

    old = jose_header(client_credentials(nodes.b, machine.client_id, "machine-secret").json()["access_token"])["kid"]
    waiting = requests.post(nodes.a.url("/api/v1/keys"), json={"alg": "RS256"}, headers=headers, timeout=10)
    assert waiting.status_code == 201, waiting.text
    new = waiting.json()["data"]["kid"]
    published, elapsed = within(PROPAGATION_BOUND, lambda: all(new in jwks_kids(nodes.b) for _ in range(4)))
    assert published and elapsed <= PROPAGATION_BOUND
    assert b_signs_with(old)  # a `next` key is published, it signs nothing yet

    rotated = requests.post(nodes.a.url("/api/v1/keys/rotate"), json={"alg": "RS256"}, headers=headers, timeout=10)
    assert rotated.status_code == 200 and rotated.json()["data"]["key"]["kid"] == new, rotated.text
    switched, elapsed = within(PROPAGATION_BOUND, lambda: b_signs_with(new))
    assert switched and elapsed <= PROPAGATION_BOUND
    token = client_credentials(nodes.b, machine.client_id, "machine-secret").json()["access_token"]
    published_keys = KeySet.import_key_set(requests.get(nodes.a.url("/oauth2/jwks"), timeout=10).json())
    assert jwt.decode(token, published_keys).header["kid"] == new  # A's JWKS verifies what B signs
    assert {old, new} <= jwks_kids(nodes.b)  # the retired key stays published for the tokens it signed


def test_sign_in_lockout_counts_failures_on_both_nodes(nodes, factories):
    """The pair lockout (LOCKOUT_PAIR_THRESHOLD: the 5th failure of one address on one account locks the
    pair) counts both nodes' failures together: 2 at A and 2 at B, then the 5th at A is refused (429),
    and so is the right password at B."""
    user = factories.user()
    for node in (nodes.a, nodes.b, nodes.a, nodes.b):
        assert api_login(node, user.email, "Wrong-Password-1").status_code == 401
    locking = api_login(nodes.a, user.email, "Wrong-Password-1")
    assert locking.status_code == 429 and locking.headers.get("Retry-After") == "30", locking.text
    locked = api_login(nodes.b, user.email)  # the right password, yet refused
    assert locked.status_code == 429 and locked.json()["error"]["type"] == "RATE_LIMITED", locked.text


def test_rate_limit_counts_requests_on_both_nodes(nodes):
    """RATELIMIT_REGISTER (2 per hour here) counts registrations from one address at A and B together."""
    def register(node: Node) -> requests.Response:
        return requests.post(node.url("/api/v1/auth/register"), timeout=10, json={
            "email": f"new-{uuid.uuid4().hex[:10]}@example.com", "password": "Sturdy-Lantern-93", "name": "New"})

    assert register(nodes.a).status_code == 201
    assert register(nodes.b).status_code == 201
    over = register(nodes.a)
    assert over.status_code == 429 and over.json()["error"]["type"] == "RATE_LIMITED", over.text


def test_client_assertion_jti_used_at_a_is_refused_at_b(nodes, factories):
    """RFC 7523 3 (item 7) and OIDC Core 9: a private_key_jwt assertion is accepted once; the same
    assertion, replayed at the other node, is refused with invalid_client (the jti cache is shared)."""
    key = RSAKey.generate_key(2048, private=True, parameters={"kid": "two-nodes-key"})
    client = factories.client(secret=None, token_endpoint_auth_method="private_key_jwt", redirect_uris=[],
                              grant_types=["client_credentials"], scope="reports:read",
                              jwks={"keys": [key.as_dict(private=False)]})

    def token_request(node: Node, jti: str) -> requests.Response:
        now = int(time.time())
        assertion = jwt.encode({"alg": "RS256", "kid": "two-nodes-key"},
                               {"iss": client.client_id, "sub": client.client_id, "aud": TOKEN_AUDIENCE,
                                "jti": jti, "iat": now, "exp": now + 60}, key)
        return requests.post(node.url("/oauth2/token"), timeout=10, data={
            "grant_type": "client_credentials", "client_id": client.client_id, "client_assertion": assertion,
            "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"})

    used = uuid.uuid4().hex
    accepted = token_request(nodes.a, used)
    assert accepted.status_code == 200, accepted.text
    replayed = token_request(nodes.b, used)
    # 400, not 401: the client authenticated in the body, not with an Authorization header (RFC 6749 5.2).
    assert replayed.status_code == 400 and replayed.json()["error"] == "invalid_client", replayed.text
    assert token_request(nodes.b, uuid.uuid4().hex).status_code == 200  # a fresh jti: B knows the client
