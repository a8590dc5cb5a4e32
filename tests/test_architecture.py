"""The layering of docs/architecture.md holds: imports point one way and no package has a cycle."""
from __future__ import annotations

import subprocess
import sys

from idp.config import PROJECT_ROOT


def test_import_contracts_are_kept():
    """models <- services <- surfaces <- create_app, surfaces independent, no cycles (pyproject.toml).

    In its own process: import-linter reconfigures logging in the process it runs in, which left every
    later test's caplog empty."""
    result = subprocess.run(
        [sys.executable, "-c", "import sys; from importlinter.cli import lint_imports; "
         f"sys.exit(lint_imports(config_filename={str(PROJECT_ROOT / 'pyproject.toml')!r}, no_cache=True))"],
        cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
