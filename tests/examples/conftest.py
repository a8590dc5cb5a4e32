"""The browser fixtures of the hosted-page tests, shared with the examples' end-to-end tests."""
from tests.web.conftest import chromium, demo_data, page  # noqa: F401 (fixtures)
