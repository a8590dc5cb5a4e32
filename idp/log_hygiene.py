"""Keep secrets out of logs that libraries write: tokens at DEBUG, query strings in request lines."""
from __future__ import annotations

import logging
import re

# Authlib logs every issued token and every validated request body at DEBUG.
SECRET_BEARING_LOGGERS = ("authlib",)
_QUERY = re.compile(r"\?[^\s\"]*")


class StripQueryStrings(logging.Filter):
    """The development server's request lines, without query strings (emailed links carry tokens)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.args and isinstance(record.args, tuple):
            record.args = tuple(_QUERY.sub("?…", a) if isinstance(a, str) else a for a in record.args)
        return True


def apply_log_hygiene() -> None:
    for name in SECRET_BEARING_LOGGERS:
        logging.getLogger(name).setLevel(logging.INFO)
    werkzeug = logging.getLogger("werkzeug")
    if not any(isinstance(f, StripQueryStrings) for f in werkzeug.filters):
        werkzeug.addFilter(StripQueryStrings())
