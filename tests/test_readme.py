"""The README's first-contact claims: its make targets exist, its commands work as written."""
from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from importlib.metadata import distribution
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()


def test_every_make_command_in_the_readme_is_a_makefile_target():
    """`make <target>` in the README names a target the Makefile defines."""
    targets = set(re.findall(r"^([a-z][\w-]*):", (ROOT / "Makefile").read_text(), re.MULTILINE))
    named = set(re.findall(r"`make ([a-z][\w-]*)", README)) | set(re.findall(r"^make ([a-z][\w-]*)", README, re.MULTILINE))
    assert {"run", "test", "demo"} <= named and named <= targets


def test_readme_says_flask_commands_run_in_the_venv_and_they_do(tmp_path):
    """`.venv/bin/flask ...` works from the checkout with no FLASK_APP and no venv on PATH (README Quick start)."""
    assert "`. .venv/bin/activate`" in README and "`.venv/bin/flask ...`" in README
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "FLASK_ENV": "testing",
           "KEYS_DIR": str(tmp_path / "keys"), "DATABASE_URL": f"sqlite:///{tmp_path / 'cli.db'}"}
    venv_flask = Path(sys.executable).parent / "flask"
    result = subprocess.run([str(venv_flask), "clients", "--help"], cwd=ROOT, env=env, capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert "initial-token" in result.stdout


def test_sqlite_web_is_a_dev_extra_and_the_readme_runs_its_real_executable():
    """sqlite-web (the seed's database browser) is in the dev extra; the README calls the script it installs."""
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]["dev"]
    assert any(re.match(r"sqlite-web\b", requirement) for requirement in extras)
    scripts = {entry.name for entry in distribution("sqlite-web").entry_points if entry.group == "console_scripts"}
    assert "sqlite_web" in scripts
    assert "`.venv/bin/sqlite_web instance/authy2.db --port 9999`" in README


def test_quick_start_names_what_the_browser_tests_need():
    """The Quick start names the Debian packages the browser tests need."""
    quick_start = README.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    assert "`chromium`" in quick_start and "`chromium-driver`" in quick_start
