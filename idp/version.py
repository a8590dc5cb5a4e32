"""The product version, from the installed package metadata."""
from importlib.metadata import PackageNotFoundError, version

try:
    VERSION = version("authy2")
except PackageNotFoundError:
    VERSION = "0.0.0"
