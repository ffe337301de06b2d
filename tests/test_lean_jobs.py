"""Every workflow job pays for what its entry script imports; the many small jobs import only what they use."""

from __future__ import annotations

import ast
import subprocess
import sys

import pytest

from conftest import REPO

HEAVY = ("torch", "trak", "scipy", "seaborn", "matplotlib")
# Training jobs need torch, but neither traker, scipy nor plotting; data jobs do not need torch at all.
# (What training loads while it runs, TorchDynamo above all, is tested in test_train.py.)
NOT_LOADED = {
    "train": {"trak", "scipy", "seaborn", "matplotlib"},
    "lds_subset": {"trak", "scipy", "seaborn", "matplotlib"},
    "selection_retrain": {"trak", "scipy", "seaborn", "matplotlib"},
    "trak_featurize": {"scipy", "seaborn", "matplotlib"},
    "trak": {"scipy", "seaborn", "matplotlib"},
    "prepare_source": set(HEAVY),
    "build_testset": set(HEAVY),
}


def loaded_by_imports(script: str) -> set[str]:
    """The heavy modules loaded by running only the top-level imports of a workflow entry script."""
    tree = ast.parse((REPO / "workflow_scripts" / f"{script}.py").read_text())
    imports = "\n".join(ast.unparse(n) for n in tree.body if isinstance(n, (ast.Import, ast.ImportFrom)))
    code = f"import sys\n{imports}\nprint(' '.join(m for m in {HEAVY!r} if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=REPO)
    return set(out.stdout.split())


@pytest.mark.parametrize("script", sorted(NOT_LOADED))
def test_a_jobs_entry_script_imports_only_what_the_job_uses(script):
    assert not loaded_by_imports(script) & NOT_LOADED[script]
