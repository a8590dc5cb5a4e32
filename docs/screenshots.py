"""Render every hosted page in headless Chromium and save PNGs to docs/screenshots/.

Run: .venv/bin/python docs/screenshots.py [page ...]   (names, e.g. `home`, limit what is written)
Starts Authy2 on a loopback port with demo data (a throw-away SQLite database, signing keys and mail
outbox in a temporary folder), walks through the pages as the demo user bob@acme-corp.com, and writes
<page>-desktop.png (1280 px wide) and <page>-phone.png (390 px wide) for each page.
"""
from __future__ import annotations

import logging
import os
import shutil
import socket
import sys
import tempfile
import threading
from email import message_from_bytes, policy
from pathlib import Path
from urllib.parse import urlencode

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "docs" / "screenshots"
VIEWPORTS = {"desktop": {"width": 1280, "height": 800}, "phone": {"width": 390, "height": 844}}
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
BOB = ("bob@acme-corp.com", "UserPass123!")
ONLY = set(sys.argv[1:])  # the walk visits the pages before them too: later pages need the earlier steps
SHOT: set[str] = set()


class WalkDone(Exception):
    """Every page named on the command line is written."""


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def build_app(workdir: Path, base_url: str):
    """The app on a fresh SQLite file with the seed's demo data."""
    os.environ["FLASK_ENV"] = "development"
    sys.path.insert(0, str(ROOT))
    from idp import create_app
    from idp.extensions import db
    from idp.services.seed import seed_demo_data

    app = create_app({"SQLALCHEMY_DATABASE_URI": f"sqlite:///{workdir / 'screens.db'}", "ISSUER": base_url,
                      "KEYS_DIR": str(workdir / "keys"), "MAIL_OUTBOX_DIR": str(workdir / "outbox"),
                      "BCRYPT_LOG_ROUNDS": 4, "SMTP_HOST": None, "REDIS_URL": None,
                      "RATELIMIT_STORAGE_URI": "memory://"})
    with app.app_context():
        db.create_all()
        seed_demo_data()
        db.session.commit()
    return app


def serve(app, port: int):
    from werkzeug.serving import make_server

    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    app.logger.setLevel(logging.WARNING)
    server = make_server("127.0.0.1", port, app, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def latest_mail_link(outbox: Path, marker: str) -> str:
    newest = max(outbox.glob("*.eml"), key=lambda p: p.stat().st_mtime)
    text = message_from_bytes(newest.read_bytes(), policy=policy.default).get_body(("plain",)).get_content()
    return next(word for word in text.split() if marker in word)


def shoot(page, name: str) -> None:
    if ONLY and name not in ONLY:
        return
    for label, size in VIEWPORTS.items():
        page.set_viewport_size(size)
        page.screenshot(path=str(OUT / f"{name}-{label}.png"), full_page=True)
    print(f"  {name}")
    SHOT.add(name)
    if ONLY and ONLY <= SHOT:
        raise WalkDone


def sign_in(page, email: str, password: str) -> None:
    page.get_by_label("Email address").fill(email)
    page.get_by_label("Password", exact=True).fill(password)
    page.get_by_role("button", name="Sign in").click()


def allow_and_reach_callback(page) -> None:
    """Allow on the consent page; the browser then goes to the demo RP, where nothing listens."""
    from playwright.sync_api import Error as PlaywrightError

    try:
        with page.expect_event("framenavigated", lambda frame: frame.url.startswith("chrome-error:")):
            page.get_by_role("button", name="Allow").click()
    except PlaywrightError:
        pass


def walk(page, base: str, outbox: Path, app) -> None:
    """Visit each page in a user's order and photograph it."""
    walk_federated(page, base, app)
    walk_signed_in(page, base)
    walk_signed_out(page, base, outbox)


def authorize_url(base: str) -> str:
    """acme-portal-001's authorization request: the sign-in page then says "to continue to Acme Portal"."""
    return base + "/oauth2/authorize?" + urlencode({
        "client_id": "acme-portal-001", "response_type": "code", "redirect_uri": "http://localhost:3000/callback",
        "scope": "openid profile email offline_access", "state": "demo", "nonce": "demo"})


def walk_federated(page, base: str, app) -> None:
    """The sign-in page with Google, GitHub and Microsoft upstreams. Only their rows are stored: the page
    shows a button per enabled platform upstream and contacts none. They are removed again afterwards, so
    the other pages look as with no upstream configured."""
    from idp.extensions import db
    from idp.models import Upstream

    with app.app_context():
        rows = [Upstream(slug=kind, kind=kind, display_name=name, settings={})
                for kind, name in (("google", "Google"), ("github", "GitHub"), ("microsoft", "Microsoft"))]
        db.session.add_all(rows)
        db.session.commit()
        ids = [row.id for row in rows]
    try:
        page.goto(authorize_url(base))
        shoot(page, "sign-in-federated")
    finally:
        with app.app_context():
            for upstream_id in ids:
                db.session.delete(db.session.get(Upstream, upstream_id))
            db.session.commit()


def walk_signed_in(page, base: str) -> None:
    """The home page, sign-in (with and without an error), consent, the account pages, sign out."""
    page.goto(base + "/")
    shoot(page, "home")
    page.goto(authorize_url(base))
    shoot(page, "sign-in")
    sign_in(page, BOB[0], "wrong password")
    page.get_by_role("alert").wait_for()
    shoot(page, "sign-in-error")
    sign_in(page, *BOB)
    page.wait_for_url("**/consent/**")
    shoot(page, "consent")
    allow_and_reach_callback(page)
    for path, name in [("/account/apps", "account-apps"), ("/account", "account"),
                       ("/account/sessions", "account-sessions"), ("/account/password", "account-password"),
                       ("/oauth2/logout", "rp-logout-confirm"), ("/logout", "logout")]:
        page.goto(base + path)
        shoot(page, name)
    page.get_by_role("button", name="Sign out").click()


def walk_signed_out(page, base: str, outbox: Path) -> None:
    """Registration, password reset by the mailed link, and the error pages."""
    page.goto(base + "/register")
    page.get_by_label("Full name").fill("Ada Lovelace")
    page.get_by_label("Email address").fill("ada@example.com")
    page.get_by_label("Password", exact=True).fill("password")
    page.get_by_label("Confirm password").fill("password")
    page.get_by_role("button", name="Create account").click()
    shoot(page, "register")
    page.goto(base + "/forgot-password")
    shoot(page, "forgot-password")
    page.get_by_label("Email address").fill(BOB[0])
    page.get_by_role("button", name="Send reset link").click()
    shoot(page, "check-email")
    page.goto(latest_mail_link(outbox, "/reset-password?token="))
    shoot(page, "reset")
    page.goto(base + "/oauth2/authorize?client_id=unknown-client&response_type=code")
    shoot(page, "error")
    page.goto(base + "/no-such-page")
    shoot(page, "error-404")


def main() -> None:
    from playwright.sync_api import sync_playwright

    executable = shutil.which("chromium") or shutil.which("chromium-browser")
    if executable is None:
        sys.exit("chromium is not installed (apt-get install -y chromium)")
    OUT.mkdir(parents=True, exist_ok=True)
    workdir = Path(tempfile.mkdtemp(prefix="authy2-screens-"))
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    app = build_app(workdir, base)
    server = serve(app, port)
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
            page = browser.new_page()
            print(f"writing screenshots to {OUT}")
            try:
                walk(page, base, workdir / "outbox", app)
            except WalkDone:
                pass
            browser.close()
    finally:
        server.shutdown()
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
