"""Federation: upstream identity providers (OIDC, Google, Microsoft, GitHub, SAML 2.0) behind one
connector contract (connector.py), and the endpoints that send the browser upstream and back."""
from __future__ import annotations

from flask import Flask


def setup_federation(app: Flask) -> None:
    """Register the federation endpoints and their HTML error pages (the longest prefix wins over the
    API's envelope on /api/)."""
    from idp.error_handlers import register_renderer
    from idp.federation.views import bp, render_federation_error

    app.register_blueprint(bp)
    register_renderer(app, "/api/v1/auth/external/", render_federation_error)
