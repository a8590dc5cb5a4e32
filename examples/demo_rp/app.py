"""A tiny relying party for Authy2: signs in with the demo client acme-portal-001 (authorization code
with PKCE S256 and a checked nonce), shows the ID token claims and the UserInfo answer, refreshes the
tokens, and signs out through RP-Initiated Logout.

Run: `make demo` (serves http://localhost:3000; the IdP runs beside it with `make run`).
Settings (environment): DEMO_IDP_URL (http://localhost:5000), DEMO_BASE_URL (http://localhost:3000),
DEMO_CLIENT_ID, DEMO_CLIENT_SECRET, DEMO_SECRET_KEY (random per start when unset).
"""
from __future__ import annotations

import os
import secrets
import threading
from datetime import datetime, timezone
from urllib.parse import urlsplit

import requests
from authlib.integrations.base_client import MismatchingStateError, OAuthError
from authlib.integrations.flask_client import OAuth
from flask import Flask, current_app, flash, redirect, render_template, request, session, url_for
from joserfc.errors import JoseError

SCOPE = "openid profile email offline_access"


def settings_from_env() -> dict:
    """The demo's settings; the defaults match the seeded client and `make run`."""
    return {
        "DEMO_IDP_URL": os.environ.get("DEMO_IDP_URL", "http://localhost:5000").rstrip("/"),
        "DEMO_BASE_URL": os.environ.get("DEMO_BASE_URL", "http://localhost:3000").rstrip("/"),
        "DEMO_CLIENT_ID": os.environ.get("DEMO_CLIENT_ID", "acme-portal-001"),
        "DEMO_CLIENT_SECRET": os.environ.get("DEMO_CLIENT_SECRET", "acme_secret_portal_2024"),
        "SECRET_KEY": os.environ.get("DEMO_SECRET_KEY") or secrets.token_hex(32),
    }


class TokenStore:
    """Tokens stay in this process; the browser's cookie carries only a random key. So tokens never
    reach the browser, and an ID token plus a JWT access token cannot overflow a 4 KB cookie.
    Restarting the demo signs everyone out of it."""

    def __init__(self):
        self._records: dict[str, dict] = {}
        self._lock = threading.Lock()

    def get(self, key: str | None) -> dict | None:
        with self._lock:
            return self._records.get(key) if key else None

    def put(self, record: dict) -> str:
        key = secrets.token_urlsafe(24)
        with self._lock:
            self._records[key] = record
        return key

    def pop(self, key: str | None) -> dict | None:
        with self._lock:
            return self._records.pop(key, None) if key else None


def create_app(overrides: dict | None = None) -> Flask:
    app = Flask(__name__)
    app.config.update(settings_from_env())
    app.config.update(overrides or {})
    # The IdP on localhost:5000 shares the host (cookies ignore ports): a name of our own, never its cookies.
    app.config.update(SESSION_COOKIE_NAME="demo_rp_session", SESSION_COOKIE_SAMESITE="Lax",
                      SESSION_COOKIE_HTTPONLY=True)
    oauth = OAuth(app)
    oauth.register(
        "authy2",
        client_id=app.config["DEMO_CLIENT_ID"],
        client_secret=app.config["DEMO_CLIENT_SECRET"],
        server_metadata_url=app.config["DEMO_IDP_URL"] + "/.well-known/openid-configuration",
        client_kwargs={"scope": SCOPE, "code_challenge_method": "S256"},
    )
    app.extensions["demo_tokens"] = TokenStore()
    app.before_request(use_base_url_host)
    app.register_error_handler(OAuthError, show_oauth_error)
    app.register_error_handler(requests.RequestException, show_idp_unreachable)
    app.register_error_handler(JoseError, show_bad_id_token)
    app.jinja_env.filters["timestamp"] = format_timestamp
    add_routes(app)
    return app


def idp():
    return current_app.extensions["authlib.integrations.flask_client"].authy2


def tokens() -> TokenStore:
    return current_app.extensions["demo_tokens"]


def base_url(path: str = "/") -> str:
    return current_app.config["DEMO_BASE_URL"] + path


def use_base_url_host():
    """Opened as 127.0.0.1:3000 but configured as localhost:3000 (or the reverse): move to the configured
    host first, or the session cookie set here would be missing when the IdP sends the browser back."""
    if request.host != urlsplit(base_url()).netloc:
        return redirect(base_url(request.full_path.rstrip("?")))
    return None


def format_timestamp(value) -> str:
    return datetime.fromtimestamp(int(value), timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC") if value else "-"


def add_routes(app: Flask) -> None:
    app.add_url_rule("/", view_func=index)
    app.add_url_rule("/login", view_func=login)
    app.add_url_rule("/callback", view_func=callback)
    app.add_url_rule("/refresh", view_func=refresh, methods=["POST"])
    app.add_url_rule("/logout", view_func=logout, methods=["POST"])


def index():
    """Signed in: the claims, UserInfo and token expiry. Back from the IdP's logout: say so."""
    if "state" in request.args:
        idp().validate_logout_response()
        flash("You are signed out, here and at the identity provider.")
        return redirect(url_for("index"))
    record = tokens().get(session.get("sign_in"))
    return render_template("index.html", record=record, idp_url=current_app.config["DEMO_IDP_URL"])


def login():
    """Send the browser to the IdP: Authlib adds state, nonce and the PKCE S256 challenge."""
    return idp().authorize_redirect(base_url("/callback"))


def callback():
    """The IdP's answer: check state and iss, redeem the code (Authlib checks the ID token and its
    nonce), ask UserInfo, remember the sign-in."""
    if not idp().framework.get_state_data(session, request.args.get("state")):
        raise MismatchingStateError()  # not a sign-in this browser started here: no request to the IdP
    issuer = idp().load_server_metadata()["issuer"]
    if request.args.get("iss", issuer) != issuer:  # RFC 9207: the answer came from our IdP
        raise OAuthError(error="invalid_issuer", description="The response names another issuer.")
    token = idp().authorize_access_token()
    record = {"token": dict(token), "id_token_claims": dict(token["userinfo"]),
              "userinfo": dict(idp().userinfo(token=token)), "refreshed": 0}
    tokens().pop(session.get("sign_in"))
    session["sign_in"] = tokens().put(record)
    flash("Signed in.")
    return redirect(url_for("index"))


def refresh():
    """Use the refresh token (rotated by the IdP on each use) for a new access token."""
    record = tokens().get(session.get("sign_in"))
    if record is None or not record["token"].get("refresh_token"):
        flash("Sign in first.")
        return redirect(url_for("index"))
    new = idp().fetch_access_token(grant_type="refresh_token", refresh_token=record["token"]["refresh_token"])
    record["token"] = {**record["token"], **dict(new)}
    record["userinfo"] = dict(idp().userinfo(token=new))
    record["refreshed"] += 1
    flash(f"Tokens refreshed: the new access token expires at {format_timestamp(new.get('expires_at'))}.")
    return redirect(url_for("index"))


def logout():
    """Forget the sign-in here, then end the IdP session (RP-Initiated Logout 1.0 with id_token_hint)."""
    record = tokens().pop(session.pop("sign_in", None))
    if record is None:
        return redirect(url_for("index"))
    return idp().logout_redirect(post_logout_redirect_uri=base_url("/"), id_token_hint=record["token"]["id_token"])


def show_oauth_error(error: OAuthError):
    return render_template("error.html", title="The sign-in did not work",
                           message=f"{error.error}: {error.description or 'no description'}"), 400


def show_idp_unreachable(error: requests.RequestException):
    current_app.logger.warning("identity provider request failed: %s", error)
    message = (f"Could not reach the identity provider at {current_app.config['DEMO_IDP_URL']}, or it refused a "
               "request. Is it running? Start it with `make run` in another terminal.")
    return render_template("error.html", title="Identity provider unavailable", message=message), 502


def show_bad_id_token(error: JoseError):
    return render_template("error.html", title="The ID token was refused", message=str(error)), 400


if __name__ == "__main__":
    demo = create_app()
    address = urlsplit(demo.config["DEMO_BASE_URL"])
    print(f" * Demo relying party: open {demo.config['DEMO_BASE_URL']} (the IdP at {demo.config['DEMO_IDP_URL']})")
    demo.run(host=os.environ.get("DEMO_HOST", "127.0.0.1"), port=address.port or 80)
