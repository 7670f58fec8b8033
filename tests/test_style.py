"""The code follows the project's formatter and linter configuration (ruff, 120 columns, in pyproject.toml)."""

from __future__ import annotations

import shutil
import subprocess
import sys

import pytest
from support import REPO_ROOT

PATHS = ["medseg", "scripts", "tests"]


def _ruff(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "ruff", *args, *PATHS], cwd=REPO_ROOT, capture_output=True, text=True)


@pytest.fixture(scope="module")
def ruff_available():
    if shutil.which("ruff") is None and subprocess.run([sys.executable, "-m", "ruff", "--version"]).returncode:
        pytest.fail("ruff is not installed: it is part of the dev extra (pip install -e '.[dev]')")


def test_ruff_lint(ruff_available):
    result = _ruff("check", "--no-cache")
    assert result.returncode == 0, result.stdout + result.stderr


def test_ruff_format(ruff_available):
    result = _ruff("format", "--check", "--no-cache")
    assert result.returncode == 0, result.stdout + result.stderr
