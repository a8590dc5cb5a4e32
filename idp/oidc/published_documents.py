"""GET and HEAD of the discovery documents and the JWKS, answered in front of Flask (issue #12).

These public documents are the same bytes for everyone until the keys or the configuration change,
so a small WSGI middleware answers them the way WhiteNoise serves static files: from the prebuilt
bytes and header lists, with no Flask request or app context, no URL matching and no hooks. Every
other method (POST's 405, the CORS preflight's OPTIONS) and every other path goes to Flask unchanged.
The headers are those the machine plumbing gives these endpoints (machine_plumbing, security.headers):
nosniff, HSTS where Flask would add it, the echoed or new X-Request-ID, Flask-CORS's own answer.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Callable

from werkzeug.http import parse_etags

from idp.machine_plumbing import CORS_ENVIRON_KEYS, app_cors_headers
from idp.oidc.keys import PublishedDocument
from idp.request_id import request_id_for
from idp.security.headers import HSTS, NOSNIFF

OK = "200 OK"
NOT_MODIFIED = "304 NOT MODIFIED"  # werkzeug's status line, as Flask sent it
SERVED_METHODS = ("GET", "HEAD")


@dataclass(frozen=True)
class Publication:
    """One document served at one exact path: how to get its current bytes, and its cache lifetime."""
    path: str
    document: Callable[[], PublishedDocument]
    max_age: int


def no_cors_headers(method: str, *values: str | None) -> tuple:
    return ()


class PublishedDocuments:
    """WSGI middleware answering GET and HEAD of each publication's exact path; the rest goes to `app`.

    A publication's `cors_headers(method, *environ values of CORS_ENVIRON_KEYS)` is Flask-CORS's
    answer for its path (machine_plumbing.app_cors_headers).
    """

    def __init__(self, app, publications: tuple[Publication, ...], served: dict[str, Callable], *,
                 https_issuer: bool):
        self.app = app
        self._documents = {publication.path: publication for publication in publications}
        # path -> (publication, its cors_headers), for the paths answered here
        self._publications = {path: (self._documents[path], cors_headers) for path, cors_headers in served.items()}
        self._https_issuer = https_issuer

    def __call__(self, environ, start_response):
        served = self._publications.get(environ.get("PATH_INFO"))
        if served is None or environ.get("REQUEST_METHOD") not in SERVED_METHODS:
            return self.app(environ, start_response)
        try:
            return self._serve(*served, environ, start_response)
        except Exception:  # the keys cannot be read: Flask's error handling answers (its JSON 500), via the view
            return self.app(environ, start_response)

    def serve(self, path: str, environ, start_response):
        """The answer for `path` (a publication's) as a WSGI app, for its view when Flask routes the
        request: Flask's hooks then add the CORS headers (and put their request id in place of this one)."""
        return self._serve(self._documents[path], no_cors_headers, environ, start_response)

    def _serve(self, publication: Publication, cors_headers, environ, start_response):
        """The document's 200, or 304 Not Modified when If-None-Match matches its tag (weak
        comparison, RFC 9110 13.1.2; `*` matches) with the same ETag and Cache-Control and no body
        (RFC 9110 15.4.5). HEAD gets the GET's headers and no body (RFC 9110 9.3.2)."""
        document = publication.document()
        method = environ.get("REQUEST_METHOD")
        secure = self._https_issuer or environ.get("wsgi.url_scheme") == "https"
        condition = environ.get("HTTP_IF_NONE_MATCH")
        not_modified = bool(condition) and parse_etags(condition).contains_weak(document.tag)
        headers = [*_headers(document, publication.max_age, secure, not_modified),
                   ("X-Request-ID", request_id_for(environ)),
                   *cors_headers(method.upper(), *map(environ.get, CORS_ENVIRON_KEYS))]
        start_response(NOT_MODIFIED if not_modified else OK, headers)
        return [] if not_modified or method == "HEAD" else [document.body]


def install(app, publications: tuple[Publication, ...]) -> None:
    """Put the middleware in front of `app`'s WSGI app, each path with Flask-CORS's answer for it.
    A path whose CORS answer cannot be resolved now (an unknown Flask-CORS) is left to Flask's view,
    which gives the same document through Flask's hooks. Call once every route and hook is registered."""
    served = {}
    for publication in publications:
        try:
            served[publication.path] = app_cors_headers(app, publication.path) or no_cors_headers
        except LookupError:
            continue
    app.wsgi_app = PublishedDocuments(app.wsgi_app, publications, served,
                                      https_issuer=app.config["ISSUER"].startswith("https://"))
    app.extensions["oidc"]["published"] = app.wsgi_app


@lru_cache(maxsize=32)
def _headers(document: PublishedDocument, max_age: int, secure: bool, not_modified: bool) -> tuple:
    """The headers before the request id, built once per document (a key change makes a new one)."""
    validators = (("ETag", document.etag), ("Cache-Control", f"public, max-age={max_age}"))
    entity = () if not_modified else (("Content-Type", "application/json"), ("Content-Length", str(len(document.body))))
    return (*validators, *entity, NOSNIFF, *((("Strict-Transport-Security", HSTS),) if secure else ()))
