"""The layering of docs/architecture.md holds: imports point one way and no package has a cycle."""
from __future__ import annotations

from importlinter.cli import lint_imports

from idp.config import PROJECT_ROOT


def test_import_contracts_are_kept(monkeypatch):
    """models <- services <- surfaces <- create_app, surfaces independent, no cycles (pyproject.toml)."""
    monkeypatch.chdir(PROJECT_ROOT)
    assert lint_imports(config_filename=str(PROJECT_ROOT / "pyproject.toml"), no_cache=True) == 0
