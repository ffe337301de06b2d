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
        if isinstance(node, ast.ImportFrom) and node.module:
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


def test_shared_pieces_import_no_experiment():
    rooms = {f"proxyscale.{r}" for r in ROOMS}
    shared = [p for p in (REPO / "proxyscale").rglob("*.py") if p.parent.name not in ROOMS]
    for path in shared:
        crossing = {m for m in _imported_modules(path) if ".".join(m.split(".")[:2]) in rooms}
        assert not crossing, f"{path.relative_to(REPO)} imports {sorted(crossing)}"
