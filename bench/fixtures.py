"""In-process set-up the bench needs beyond `flask seed`; prints one JSON line.

Run with the bench's app environment (bench/prepare.py does): makes the demo client first-party (so authorize on an SSO session issues a code without
a consent page, the steady state of a user who already consented), and opens one browser SSO
session for the demo user, whose cookie the code-flow scenario sends.
"""
from __future__ import annotations

import json

from sqlalchemy import select

from idp import create_app
from idp.extensions import db
from idp.models import OAuthClient, SessionKind, User
from idp.services import sessions
from idp.services.browser_sessions import cookie_name

CLIENT_ID = "acme-portal-001"
USER_EMAIL = "bob@acme-corp.com"


def open_browser_session() -> dict:
    user = db.session.scalars(select(User).where(User.email == USER_EMAIL)).one()
    session, token = sessions.create_session(user, kind=SessionKind.BROWSER, user_agent="authy2-bench")
    return {"cookie": f"{cookie_name()}={token}", "session_id": session.id}


def main() -> None:
    app = create_app()
    with app.app_context():
        client = db.session.scalars(select(OAuthClient).where(OAuthClient.client_id == CLIENT_ID)).one()
        client.first_party = True
        browser = open_browser_session()
        db.session.commit()
    print(json.dumps(browser))


if __name__ == "__main__":
    main()
