"""The home page (/) and the site icon (/favicon.ico): what a first-time visitor of the IdP sees."""
from __future__ import annotations

from flask import current_app, redirect, render_template, send_from_directory, url_for

from idp.services.browser_sessions import current_browser_session
from idp.web.blueprint import bp

# Paths fixed by the specifications and the README, linked from the home page for developers.
DEVELOPER_LINKS = (
    ("API documentation", "/api/docs", "The management API's reference (OpenAPI 3)."),
    ("Discovery document", "/.well-known/openid-configuration", "Point an OpenID Connect client library here."),
)
ICON_MAX_AGE = 86400  # a day: browsers ask for the icon on every page otherwise


@bp.route("/")
def home():
    """Signed in: straight to the account page; otherwise say what this is and where to go."""
    if current_browser_session() is not None:
        return redirect(url_for("web.account"))
    return render_template("web/home.html", developer_links=DEVELOPER_LINKS)


@bp.route("/favicon.ico")
def favicon():
    """Browsers ask for /favicon.ico on their own (on JSON documents, for bookmarks): the committed
    icon, cacheable for a day, with no session or cookie work."""
    return send_from_directory(current_app.static_folder, "favicon.ico", max_age=ICON_MAX_AGE)
