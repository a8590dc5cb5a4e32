"""The examples drive the demo RP with the hosted pages' seed data fixture."""
from tests.web.conftest import demo_data  # noqa: F401 (fixture)
