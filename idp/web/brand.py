"""/brand.css: the brand colour as a CSS variable, so pages need no inline style (CSP holds)."""
from __future__ import annotations

import re

from flask import Response, current_app

from idp.web.blueprint import bp

HEX_COLOR = re.compile(r"^#(?:[0-9a-fA-F]{3}|[0-9a-fA-F]{6})$")
DEFAULT_COLOR = "#3b5bdb"


def brand_color() -> str:
    """BRAND_COLOR when it is a plain hex colour; anything else could inject CSS, so the default."""
    color = current_app.config.get("BRAND_COLOR") or DEFAULT_COLOR
    return color if HEX_COLOR.match(color) else DEFAULT_COLOR


@bp.route("/brand.css")
def brand_css():
    body = f":root {{ --brand: {brand_color()}; }}\n"
    response = Response(body, mimetype="text/css")
    response.headers["Cache-Control"] = "public, max-age=300"
    return response
