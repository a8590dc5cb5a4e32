"""The URL tables of API v1, in one list."""
from idp.api.health import blp as health

BLUEPRINTS = [health]
