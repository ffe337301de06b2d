"""Lint and format: ruff for Python, snakefmt for the Snakefile and rules (configured in pyproject.toml)."""

from __future__ import annotations

import subprocess

import pytest

from conftest import REPO

CHECKS = {
    "ruff check": ["ruff", "check", "."],
    "ruff format": ["ruff", "format", "--check", "."],
    "snakefmt": ["snakefmt", "--check", "Snakefile", "rules"],
}


@pytest.mark.parametrize("name", list(CHECKS))
def test_code_is_lint_clean_and_formatted(name):
    result = subprocess.run(CHECKS[name], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, f"{name}:\n{result.stdout}\n{result.stderr}"
