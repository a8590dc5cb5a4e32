"""Opening the connector of a stored upstream: its kind, settings, secrets and this IdP's URLs."""
from __future__ import annotations

from flask import current_app

from idp.federation.connector import CallbackConnector, UpstreamConfig, UpstreamUrls
from idp.federation.http import UpstreamHttp
from idp.federation.registry import kind_of
from idp.models import Upstream
from idp.services import upstreams

EXTERNAL_PREFIX = "/api/v1/auth/external"


def upstream_http() -> UpstreamHttp:
    """The guarded HTTP client for upstream requests, as configured for this app."""
    cfg = current_app.config
    return UpstreamHttp(allow_private=cfg["ALLOW_PRIVATE_UPSTREAM_URLS"], timeout=cfg["UPSTREAM_HTTP_TIMEOUT"])


def urls_for(slug: str) -> UpstreamUrls:
    """This IdP's endpoints for the upstream `slug`, absolute under ISSUER (never the Host header)."""
    base = f"{current_app.config['ISSUER']}{EXTERNAL_PREFIX}/{slug}"
    return UpstreamUrls(login=f"{base}/login", callback=f"{base}/callback", metadata=f"{base}/metadata",
                        acs=f"{base}/acs", slo=f"{base}/slo")


def config_of(upstream: Upstream) -> UpstreamConfig:
    return UpstreamConfig(id=upstream.id, slug=upstream.slug, kind=upstream.kind, display_name=upstream.display_name,
                          settings=dict(upstream.settings or {}), secrets=upstreams.secrets_of(upstream),
                          scopes=tuple(upstream.scopes or ()), email_domains=tuple(upstream.email_domains or ()),
                          organization_id=upstream.organization_id)


def open_connector(upstream: Upstream) -> CallbackConnector:
    """The connector for `upstream`, ready to begin or complete a sign-in."""
    return kind_of(upstream.kind).open(config_of(upstream), urls_for(upstream.slug), upstream_http())
