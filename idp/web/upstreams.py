"""The sign-in page's "Continue with ..." buttons, from the upstreams federation configures.

Contract for federation: app.extensions["upstreams"] is a list of dicts or objects with `label`
(or `name`), shown as "Continue with <label>", and `url`, a same-origin path that starts the upstream
sign-in. When the sign-in serves an authorization request, `?request=<pending id>` is appended so
federation can resume it (url_for("oidc.resume", request_id=...)) after the upstream answers.
"""
from __future__ import annotations

from collections.abc import Mapping
from urllib.parse import urlencode

from flask import current_app

from idp.web.redirects import safe_next


def _field(upstream, key: str):
    return upstream.get(key) if isinstance(upstream, Mapping) else getattr(upstream, key, None)


def upstream_buttons(request_id: str | None) -> list[dict]:
    """One {label, url} per configured upstream; entries without a label or a same-origin url are skipped."""
    buttons = []
    for upstream in current_app.extensions.get("upstreams", []):
        label = _field(upstream, "label") or _field(upstream, "name")
        url = safe_next(_field(upstream, "url"))
        if not label or not url:
            continue
        if request_id:
            url += ("&" if "?" in url else "?") + urlencode({"request": request_id})
        buttons.append({"label": label, "url": url})
    return buttons
