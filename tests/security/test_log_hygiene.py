"""No secret reaches a log line: passwords, session tokens, emailed tokens, codes, client secrets."""
from __future__ import annotations

import logging
from urllib.parse import parse_qs, urlsplit

import pytest

from idp.services.browser_sessions import PLAIN_COOKIE
from tests.oidc.conftest import SECRET, Flow
from tests.web.helpers import link_in, sign_in, submit

FIRST_PASSWORD = "Amber-Kettle-Drums-31"
SECOND_PASSWORD = "Velvet-Comet-Rises-58"
WRONG_PASSWORD = "Wrong-Guess-Attempt-77"
SMTP_SINK_LOGGER = "mail.log"  # aiosmtpd, the test's receiving mail server, logs every line it receives


def _token_of(url: str) -> str:
    return parse_qs(urlsplit(url).query)["token"][0]


def _path(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.path}?{parts.query}"


def _register_and_verify(client, smtp_sink, secrets: list[str]) -> None:
    submit(client, "/register", {"name": "Grace Hopper", "email": "grace@example.com",
                                 "password": FIRST_PASSWORD, "confirm": FIRST_PASSWORD})
    link = link_in(smtp_sink.wait_for(1)[0], "/verify-email")
    secrets.append(_token_of(link))
    assert client.get(_path(link)).status_code == 302


def _sign_in_everywhere(client, secrets: list[str]) -> None:
    assert sign_in(client, "grace@example.com", WRONG_PASSWORD).status_code == 401
    assert sign_in(client, "grace@example.com", FIRST_PASSWORD).status_code == 302
    secrets.append(client.get_cookie(PLAIN_COOKIE).value)
    login = client.post("/api/v1/auth/login", json={"email": "grace@example.com", "password": FIRST_PASSWORD})
    bearer = login.get_json()["data"]["token"]
    secrets.append(bearer)
    assert client.get("/api/v1/users/me", headers={"Authorization": f"Bearer {bearer}"}).status_code == 200
    assert client.post("/api/v1/auth/login", json={"email": "grace@example.com",
                                                    "password": WRONG_PASSWORD}).status_code == 401


def _reset_password(client, smtp_sink, secrets: list[str]) -> None:
    submit(client, "/forgot-password", {"email": "grace@example.com"})
    link = link_in(smtp_sink.wait_for(2)[1], "/reset-password")
    secrets.append(_token_of(link))
    response = submit(client, _path(link), {"token": _token_of(link), "password": SECOND_PASSWORD,
                                            "confirm": SECOND_PASSWORD},
                      action="/reset-password")
    assert response.status_code == 302


def _code_flow(app, client, rp, secrets: list[str]) -> None:
    assert sign_in(client, "grace@example.com", SECOND_PASSWORD).status_code == 302
    flow = Flow(app, client, rp)
    code = flow.code(scope="openid profile email offline_access")
    tokens = flow.exchange(code).get_json()
    secrets.extend([code, tokens["access_token"], tokens["id_token"], tokens["refresh_token"]])
    assert flow.refresh(tokens["refresh_token"]).status_code == 200
    assert flow.exchange(code).status_code == 400  # a replayed code is refused (and must not be logged)


def _run_every_flow(make_app, smtp_sink, factories, caplog) -> tuple[list[str], str]:
    """Drive every flow that handles a secret; (the secrets seen, what our loggers wrote)."""
    app = make_app(SMTP_HOST=smtp_sink.host, SMTP_PORT=smtp_sink.port, ISSUER="http://localhost")
    rp = factories.client(redirect_uris=["https://rp.example/callback"], first_party=True,
                          scope="openid profile email offline_access")
    client = app.test_client()
    secrets = [FIRST_PASSWORD, SECOND_PASSWORD, WRONG_PASSWORD, SECRET]
    _register_and_verify(client, smtp_sink, secrets)
    _sign_in_everywhere(client, secrets)
    _reset_password(client, smtp_sink, secrets)
    _code_flow(app, client, rp, secrets)
    ours = [r for r in caplog.records if not r.name.startswith(SMTP_SINK_LOGGER)]
    assert ours, "the flows logged nothing, so the check proves nothing"
    return secrets, "\n".join(f"{r.getMessage()} {r.exc_text or ''} {r.args}" for r in ours)


def test_no_secret_appears_in_any_log_line(make_app, smtp_sink, factories, caplog):
    """Across register, verify, sign-in, API login, reset and the code flow no secret is logged (OWASP ASVS 7.1.1).

    Libraries log at INFO (a production root level); the app's own logger at DEBUG.
    """
    caplog.set_level(logging.INFO)
    caplog.set_level(logging.DEBUG, logger="idp")
    secrets, logged = _run_every_flow(make_app, smtp_sink, factories, caplog)
    leaked = [secret[:6] + "..." for secret in secrets if secret in logged]
    assert not leaked, f"secrets found in logs: {leaked}"


def test_no_secret_appears_even_with_library_debug_logging(make_app, smtp_sink, factories, caplog):
    """With every logger at DEBUG (an operator debugging) tokens still never reach a log line (OWASP ASVS 7.1.1)."""
    caplog.set_level(logging.DEBUG)
    secrets, logged = _run_every_flow(make_app, smtp_sink, factories, caplog)
    leaked = [secret[:6] + "..." for secret in secrets if secret in logged]
    assert not leaked, f"secrets found in logs: {leaked}"


def test_development_server_request_lines_drop_query_strings():
    """Emailed links carry single-use tokens in the query string; request logs keep only the path."""
    from idp.log_hygiene import StripQueryStrings

    record = logging.LogRecord("werkzeug", logging.INFO, __file__, 1, '%s - - [%s] "%s" %s %s',
                               ("127.0.0.1", "now", "GET /reset?token=s3cr3t-token HTTP/1.1", "200", "-"), None)
    StripQueryStrings().filter(record)
    assert "s3cr3t-token" not in record.getMessage() and "GET /reset?" in record.getMessage()
