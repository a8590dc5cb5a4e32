"""Hosted, server-rendered pages: sign-in, registration, consent, logout, account."""
from __future__ import annotations

from flask import Flask


def setup_web(app: Flask) -> None:
    """Register the hosted pages on `app`."""
