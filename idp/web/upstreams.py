"""The sign-in page's upstream buttons and home-realm discovery.

A button per enabled platform-wide upstream ("Continue with Google"), with the provider's mark from
static/upstreams/ (local files, no third-party assets). An address whose domain an upstream claims
(its email_domains), a `login_hint` with such an address, or `idp_hint=<slug>` on the authorization
request sends the browser straight to that upstream instead.
"""
from __future__ import annotations

from urllib.parse import urlencode

from flask import url_for

from idp.federation.connectors import EXTERNAL_PREFIX
from idp.models import Upstream
from idp.services import upstreams


def login_url(upstream: Upstream, request_id: str | None) -> str:
    """The same-origin path that starts a sign-in at `upstream`, resuming `request_id` afterwards."""
    url = f"{EXTERNAL_PREFIX}/{upstream.slug}/login"
    return f"{url}?{urlencode({'request': request_id})}" if request_id else url


def upstream_buttons(request_id: str | None) -> list[dict]:
    """One {label, url, icon} per enabled platform upstream, in display-name order."""
    return [{"label": upstream.display_name, "url": login_url(upstream, request_id),
             "icon": url_for("static", filename=f"upstreams/{upstream.kind}.svg")}
            for upstream in upstreams.enabled_platform_upstreams()]


def hinted_upstream(pending) -> Upstream | None:
    """The upstream an authorization request points at: `idp_hint=<slug>`, else its `login_hint`'s domain."""
    if pending is None:
        return None
    hinted = upstreams.find_enabled(pending.params.get("idp_hint"))
    return hinted or upstreams.upstream_for_email(pending.login_hint)
