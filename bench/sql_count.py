"""Count the SQL statements one request of each kind executes, in-process; prints one JSON line.

Run with the bench's app environment (bench/run.py does). Each request is made twice and the
second is counted: the steady state, with per-process caches (client, keys) warm. `--show`
prints the statements too. A connection ping (`pool_pre_ping`'s, or idp.extensions' ping of an idle
pooled connection) counts as a statement: a round trip like any other, though it is sent below
SQLAlchemy's cursor events.
"""
from __future__ import annotations

import json
import sys
from urllib.parse import parse_qs, urlencode, urlsplit

from sqlalchemy import event, select

from bench import probe
from idp import create_app
from idp.extensions import db, idle_connection_ping
from idp.models import SessionKind, User
from idp.services import sessions
from idp.services.browser_sessions import cookie_name

TOKEN_HEADERS = {"Authorization": f"Basic {probe.BASIC}"}


class StatementLog:
    def __init__(self):
        self.statements: list[str] = []

    def __call__(self, conn, cursor, statement, parameters, context, executemany):
        self.statements.append(" ".join(statement.split())[:200])

    def watch_pings(self, engine) -> None:
        """Log pool_pre_ping's pings and the idle-connection ping's (idp.extensions) as statements."""
        self._log_calls(engine.dialect, "do_ping", "SELECT 1 (pool pre-ping)")
        self._log_calls(idle_connection_ping, "ping", "SELECT 1 (ping of an idle pooled connection)")

    def _log_calls(self, owner, method: str, label: str) -> None:
        original = getattr(owner, method)

        def logged(dbapi_connection):
            self.statements.append(label)
            return original(dbapi_connection)

        setattr(owner, method, logged)


def browser_cookie(app) -> str:
    with app.app_context():
        user = db.session.scalars(select(User).where(User.email == probe.LOGIN_EMAIL)).one()
        _, token = sessions.create_session(user, kind=SessionKind.BROWSER, user_agent="authy2-bench")
        db.session.commit()
        return f"{cookie_name()}={token}"


def authorize_query() -> str:
    return urlencode({"response_type": "code", "client_id": probe.CLIENT_ID, "redirect_uri": probe.REDIRECT_URI,
                      "scope": probe.CODE_SCOPE, "state": "sql", "nonce": "sql",
                      "code_challenge": probe.CODE_CHALLENGE, "code_challenge_method": "S256"})


def counted(log: StatementLog, send) -> tuple[int, list[str], object]:
    """Statements executed by one call of `send`, the last of two, and its response."""
    send()
    log.statements.clear()
    response = send()
    return len(log.statements), list(log.statements), response


class RequestKinds:
    """One request of each counted kind; code-flow steps keep the code/refresh token they need."""

    def __init__(self, app, log: StatementLog):
        self.client = app.test_client(use_cookies=False)
        self.cookie = browser_cookie(app)
        self.log = log
        self.code = ""
        self.refresh_token = ""

    def token(self, form: dict):
        return self.client.post("/oauth2/token", data=form, headers=TOKEN_HEADERS)

    def authorize(self):
        response = self.client.get(f"/oauth2/authorize?{authorize_query()}", headers={"Cookie": self.cookie})
        self.code = parse_qs(urlsplit(response.headers.get("Location", "")).query).get("code", [""])[0]
        return response

    def exchange(self):
        """Authorize (not counted), then the authorization_code token request (counted)."""
        self.authorize()
        self.log.statements.clear()
        response = self.token({"grant_type": "authorization_code", "code": self.code,
                               "redirect_uri": probe.REDIRECT_URI, "code_verifier": probe.CODE_VERIFIER})
        self.refresh_token = (response.get_json(silent=True) or {}).get("refresh_token", "")
        return response

    def refresh(self):
        """A full flow (not counted), then the refresh_token request (counted)."""
        self.exchange()
        self.log.statements.clear()
        return self.token({"grant_type": "refresh_token", "refresh_token": self.refresh_token})

    def table(self) -> dict:
        login = {"email": probe.LOGIN_EMAIL, "password": probe.LOGIN_PASSWORD}
        return {
            "client_credentials token": lambda: self.token({"grant_type": "client_credentials"}),
            "authorize (SSO session)": self.authorize,
            "authorization_code token": self.exchange,
            "refresh_token token": self.refresh,
            "password login": lambda: self.client.post("/api/v1/auth/login", json=login),
            "discovery": lambda: self.client.get("/.well-known/openid-configuration"),
            "jwks": lambda: self.client.get("/oauth2/jwks"),
        }


def measure(app) -> dict:
    """Statement counts per request kind; a failing request is marked not ok."""
    log = StatementLog()
    with app.app_context():
        event.listen(db.engine, "before_cursor_execute", log)
        log.watch_pings(db.engine)
    kinds = RequestKinds(app, log)
    results = {}
    for name, send in kinds.table().items():
        count, statements, response = counted(log, send)
        ok = response.status_code < 400 and (name != "authorize (SSO session)" or bool(kinds.code))
        results[name] = {"count": count, "status": response.status_code, "ok": ok, "statements": statements}
    return results


def main() -> None:
    app = create_app()
    results = measure(app)
    if "--show" in sys.argv:
        for name, result in results.items():
            print(f"== {name}: {result['count']} statements (HTTP {result['status']})", file=sys.stderr)
            for statement in result["statements"]:
                print(f"   {statement}", file=sys.stderr)
    print(json.dumps(results))


if __name__ == "__main__":
    main()
