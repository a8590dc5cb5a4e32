"""Authy2: an OpenID Connect / OAuth 2.0 identity provider."""
from __future__ import annotations

import logging

from flask import Flask

from idp.config import PROJECT_ROOT, ConfigError, as_flask_config, load_settings


def create_app(overrides: dict | None = None) -> Flask:
    """Build the app: config, extensions, per-request plumbing, surfaces, CLI."""
    from idp.machine_plumbing import IdentityProviderFlask

    settings = load_settings(overrides)
    if settings.problems:
        raise ConfigError("Authy2 cannot start:\n  - " + "\n  - ".join(settings.problems))
    app = IdentityProviderFlask(__name__, template_folder=str(PROJECT_ROOT / "templates"),
                                static_folder=str(PROJECT_ROOT / "static"),
                                instance_path=str(PROJECT_ROOT / "instance"))
    app.config.update(as_flask_config(settings))
    setup_logging(app, settings.warnings)
    setup_extensions(app)
    setup_plumbing(app)
    setup_surfaces(app)
    setup_cli(app)
    setup_env_upstreams(app)
    setup_machine_plumbing(app)
    return app


def setup_logging(app: Flask, warnings: list[str]) -> None:
    from idp.log_hygiene import apply_log_hygiene

    apply_log_hygiene()
    app.logger.setLevel(app.config["LOG_LEVEL"])
    if not app.logger.handlers and not app.testing:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        app.logger.addHandler(handler)
    for warning in warnings:
        app.logger.warning("UNSAFE DEVELOPMENT DEFAULT: %s", warning)


def setup_extensions(app: Flask) -> None:
    from idp import models  # noqa: F401  (registers every table)
    from idp.extensions import cors, csrf, db, limiter, migrate
    from idp.services.cache import setup_cache

    db.init_app(app)
    migrate.init_app(app, db, directory=str(PROJECT_ROOT / "migrations"))
    csrf.init_app(app)
    # Browser apps (public clients with PKCE) call the token, userinfo and revocation endpoints and read
    # the metadata from any origin; none of them honours cookies, so no credentials are allowed.
    # The uncacheable endpoints answer CORS headers only to cross-origin requests (browsers always send
    # Origin then); the cacheable metadata and keys carry `*` always, so a shared cache serves it to all.
    public_oauth = {"origins": "*", "send_wildcard": True, "supports_credentials": False}
    cors.init_app(app, resources={r"/api/*": {"origins": app.config["CORS_ORIGINS"]},
                                  r"/oauth2/(token|userinfo|revoke)": {**public_oauth, "always_send": False},
                                  r"/oauth2/jwks|/\.well-known/.*": public_oauth},
                  expose_headers=["X-Request-ID", "Retry-After", "WWW-Authenticate"], supports_credentials=False)
    limiter.init_app(app)
    setup_cache(app)


def setup_plumbing(app: Flask) -> None:
    from idp.error_handlers import setup_error_handlers
    from idp.requests import setup_requests
    from idp.security.headers import setup_security_headers
    from idp.services.browser_sessions import setup_browser_sessions

    setup_browser_sessions(app)
    setup_requests(app)
    setup_security_headers(app)
    setup_error_handlers(app)


def setup_surfaces(app: Flask) -> None:
    from idp.api import setup_api
    from idp.federation import setup_federation
    from idp.oidc import setup_oidc
    from idp.web import setup_web

    setup_api(app)
    setup_oidc(app)
    setup_web(app)
    setup_federation(app)


def setup_machine_plumbing(app: Flask) -> None:
    """Machine endpoints' hooks, decided once every route and hook is registered, and the public
    documents answered in front of Flask (issue #12)."""
    from idp.machine_plumbing import plan_machine_plumbing
    from idp.oidc import endpoints, published_documents
    from idp.web import allow_same_origin_referrer

    plan_machine_plumbing(app, page_only=(allow_same_origin_referrer,))
    published_documents.install(app, endpoints.published_documents(app))


def setup_env_upstreams(app: Flask) -> None:
    """Platform upstreams from GOOGLE_*, MICROSOFT_*, GITHUB_*, SAML_IDP_METADATA_URL (not in tests)."""
    if app.config["ENV_PROFILE"] != "testing":
        from idp.federation.bootstrap import sync_on_start

        sync_on_start(app)


def setup_cli(app: Flask) -> None:
    from idp.cli import register_commands

    register_commands(app)
