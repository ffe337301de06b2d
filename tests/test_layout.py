"""The library's layout: each experiment's room imports no other experiment's room.

Rooms meet only through the shared pieces (data, models, training, the datamodel pipeline and the
small generic modules), so a change to one experiment cannot silently change another.
"""

from __future__ import annotations

import ast

import pytest

from conftest import REPO

ROOMS = ("correlation", "attribution", "selection")


def _imported_modules(path) -> set[str]:
    tree = ast.parse(path.read_text())
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module == "proxyscale":
            found.update(f"proxyscale.{alias.name}" for alias in node.names)  # from proxyscale import stats
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return found


@pytest.mark.parametrize("room", ROOMS)
def test_an_experiment_imports_no_other_experiment(room):
    others = {f"proxyscale.{r}" for r in ROOMS if r != room}
    for path in (REPO / "proxyscale" / room).glob("*.py"):
        crossing = {m for m in _imported_modules(path) if ".".join(m.split(".")[:2]) in others}
        assert not crossing, f"{path.relative_to(REPO)} imports {sorted(crossing)}"


FLOORS = (
    ("errors", "io", "layout", "artifacts", "device", "markdown", "plotting", "stats", "summary", "losses"),
    ("data",),
    ("models",),
    ("training",),
    ("datamodels",),
    ROOMS,
    ("config", "schema", "plan", "benchmarks", "runner"),
)
"""The package's floors, lowest first: the small generic modules, then the data, model, training and
datamodel pieces every experiment shares, the experiments' rooms, and the workflow's own modules (the
config checks and lookups, the plan, the job runner), which know every experiment. A module imports
only from its own floor or below."""


def _floor(module: str) -> int:
    part = module.split(".")[1]
    return next(i for i, names in enumerate(FLOORS) if part in names)


def _modules():
    for path in sorted((REPO / "proxyscale").rglob("*.py")):
        parts = path.relative_to(REPO).with_suffix("").parts
        if parts[-1] != "__init__" or len(parts) > 2:
            yield path, ".".join(parts[:2]) if len(parts) > 1 else parts[0]


def test_every_module_has_a_floor():
    for _, module in _modules():
        if module != "proxyscale.__init__":
            _floor(module)  # StopIteration: a new top-level module needs its floor in FLOORS


def test_no_import_runs_back_up_a_floor():
    upward = []
    for path, module in _modules():
        if module == "proxyscale.__init__":
            continue
        for imported in _imported_modules(path):
            if imported.startswith("proxyscale.") and _floor(imported) > _floor(module):
                upward.append(f"{path.relative_to(REPO)} imports {imported}")
    assert not upward, upward
