"""The conda environments (envs/*.yaml) are complete and pinned.

Snakemake puts the host's site-packages on a conda job's path (the script preamble adds snakemake's own
install location), so a package missing from a rule's environment is found on the host and the gap only
shows on a machine without it. These checks read, statically, what each rule's script imports, directly or
through the proxyscale modules it reaches (imports inside functions too: lazy imports run as well), and
require each third-party package to be listed in the environment of the rule's ``conda:`` group; and they
require every environment entry to be pinned to one version.
"""

from __future__ import annotations

import ast
import re
import sys
from collections import deque
from functools import cache
from pathlib import Path

import pytest
import yaml

from proxyscale.config import ENVIRONMENTS

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = "proxyscale"
RULE_FILES = [ROOT / "Snakefile", *sorted((ROOT / "rules").glob("*.smk"))]
ENV_FILES = sorted((ROOT / "envs").glob("*.yaml"))

# Import name -> the environment entries (conda-forge or PyPI names) that provide it, where they differ; any
# other import is looked up under its own name. Names compare case-insensitively, "_", "-" and "." alike.
PROVIDERS = {
    "torch": ("pytorch", "pytorch-cpu", "pytorch-gpu"),  # the CPU and CUDA metapackages pull in pytorch
    "yaml": ("pyyaml",),
    "trak": ("traker",),
    "sklearn": ("scikit-learn",),
    "PIL": ("pillow",),
    "matplotlib": ("matplotlib", "matplotlib-base"),
    "fast_jl": ("traker[fast]", "fast-jl"),  # (OPTIONAL below)
}

# Imports a rule may lack: each is inside ``try: ... except ImportError`` and the code goes on without it.
# Keyed by (module, import); an entry no longer found guarded there fails test_optional_imports_are_guarded.
# (The other guarded imports -- datasets, tokenizers, transformers, safetensors -- only turn a missing package
# into a clearer ConfigError: the job still fails, so their rules' environments must list them.)
OPTIONAL = {
    ("proxyscale/datamodels/projectors.py", "fast_jl"): (
        "traker's CUDA projector: without it fast_jl_available() is False and projector_kind() picks the sjlt "
        "projector on a GPU (and logs why); it compiles against the host's CUDA toolkit at install (the gpu "
        "extra, traker[fast]), so a CPU-solvable environment cannot list it"
    ),
}

# Entries pinned to a release series rather than one version, and why.
SERIES_PINS = {"python": "3.11: the interpreter series; the lock (conda-lock / snakedeploy) fixes the patch release"}


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


# --- rules -----------------------------------------------------------------------------------------------

_HEADER = re.compile(r"^(\s*)(?:rule|checkpoint)\s+(\w+)\s*:")
_USE = re.compile(r"^(\s*)use\s+rule\s+(\w+)\s+as\s+(\w+)(?:\s+with)?\s*:?")
_CONDA = re.compile(r"conda_env\(\s*[\"'](\w+)[\"']\s*\)")
_SCRIPT = re.compile(r"script:\s*(?:\n\s*)?[\"']([^\"']+)[\"']")


def _blocks(path: Path):
    """(name, parent or None, block text, path) of each rule, checkpoint and ``use rule`` in ``path``."""
    lines = path.read_text().splitlines()
    heads = []
    for i, line in enumerate(lines):
        if m := _USE.match(line):
            heads.append((i, len(m[1]), m[3], m[2]))
        elif m := _HEADER.match(line):
            heads.append((i, len(m[1]), m[2], None))
    for i, indent, name, parent in heads:
        end = i + 1
        while end < len(lines):
            text = lines[end]
            if text.strip() and not text.lstrip().startswith("#") and len(text) - len(text.lstrip()) <= indent:
                break
            end += 1
        yield name, parent, "\n".join(lines[i:end]), path


@cache
def rules() -> dict:
    """{rule: (group or None, script path or None, where)}; ``use rule X as Y`` inherits what it does not set."""
    raw = {}
    for path in RULE_FILES:
        for name, parent, text, where in _blocks(path):
            conda, script = _CONDA.search(text), _SCRIPT.search(text)
            script_path = (path.parent / script[1]).resolve() if script else None
            raw[name] = (parent, conda[1] if conda else None, script_path, where.relative_to(ROOT))
    resolved = {}

    def resolve(name):
        if name not in resolved:
            parent, group, script, where = raw[name]
            if parent is not None:
                p_group, p_script, _ = resolve(parent)
                group, script = group or p_group, script or p_script
            resolved[name] = (group, script, where)
        return resolved[name]

    for name in raw:
        resolve(name)
    return resolved


def script_rules() -> list[str]:
    return sorted(name for name, (_, script, _) in rules().items() if script is not None)


# --- imports ---------------------------------------------------------------------------------------------


def _guarded(node: ast.AST, parents: dict) -> bool:
    """Whether ``node`` sits in the body of a ``try`` one of whose handlers catches ImportError."""
    child, parent = node, parents.get(node)
    while parent is not None:
        if isinstance(parent, ast.Try) and child in parent.body:
            for handler in parent.handlers:
                names = [handler.type] if not isinstance(handler.type, ast.Tuple) else handler.type.elts
                if any(isinstance(n, ast.Name) and n.id in ("ImportError", "ModuleNotFoundError") for n in names):
                    return True
        child, parent = parent, parents.get(parent)
    return False


def _type_checking(node: ast.AST, parents: dict) -> bool:
    """Whether ``node`` is in the body of an ``if TYPE_CHECKING:`` (which never runs)."""
    child, parent = node, parents.get(node)
    while parent is not None:
        if isinstance(parent, ast.If) and child in parent.body:
            test = parent.test
            name = test.id if isinstance(test, ast.Name) else test.attr if isinstance(test, ast.Attribute) else ""
            if name == "TYPE_CHECKING":
                return True
        child, parent = parent, parents.get(parent)
    return False


def _module_file(dotted: str) -> Path | None:
    """The file of a proxyscale module or package (its __init__.py), or None."""
    base = ROOT.joinpath(*dotted.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def _with_parents(dotted: str) -> list[Path]:
    """Importing ``a.b.c`` runs a/__init__.py, a/b/__init__.py and then a/b/c."""
    parts = dotted.split(".")
    files = [_module_file(".".join(parts[:i])) for i in range(1, len(parts) + 1)]
    return [f for f in files if f is not None]


@cache
def imports_of(path: Path) -> tuple[list[Path], list[tuple[str, int, bool]]]:
    """(proxyscale files that ``path`` imports, [(third-party top-level name, line, guarded)]), read with ast."""
    tree = ast.parse(path.read_text(), filename=str(path))
    parents = {child: node for node in ast.walk(tree) for child in ast.iter_child_nodes(node)}
    local, external = [], []
    package = path.relative_to(ROOT).parts[:-1]  # the importing module's package, for relative imports
    for node in ast.walk(tree):
        if not isinstance(node, (ast.Import, ast.ImportFrom)) or _type_checking(node, parents):
            continue
        if isinstance(node, ast.Import):
            targets = [(alias.name, []) for alias in node.names]
        else:
            base = node.module or ""
            if node.level:  # relative: from the importing module's package
                base = ".".join([*package[: len(package) - node.level + 1], *([base] if base else [])])
            targets = [(base, [alias.name for alias in node.names])]
        for dotted, names in targets:
            top = dotted.split(".")[0]
            if top == PACKAGE:
                local += _with_parents(dotted)
                local += [f for n in names if (f := _module_file(f"{dotted}.{n}")) is not None]  # submodules
            elif top and top not in sys.stdlib_module_names:
                external.append((top, node.lineno, _guarded(node, parents)))
    return local, sorted(external, key=lambda e: e[1])  # by line: chains name a module's first import of it


def _display(path: Path) -> str:
    return str(path.relative_to(ROOT))


def required_packages(script: Path) -> dict[str, list[str]]:
    """{third-party import: the shortest import chain to it} of what ``script`` runs, less OPTIONAL."""
    chains = {script: [_display(script)]}
    queue, needed = deque([script]), {}
    while queue:
        current = queue.popleft()
        local, external = imports_of(current)
        for name, line, guarded in external:
            if guarded and (_display(current), name) in OPTIONAL:
                continue
            needed.setdefault(name, [*chains[current][:-1], f"{chains[current][-1]}:{line}", name])
        for module in local:
            if module not in chains:
                chains[module] = [*chains[current], _display(module)]
                queue.append(module)
    return needed


# --- environments ----------------------------------------------------------------------------------------

_SPEC = re.compile(r"^\s*(?:[\w.-]+::)?([A-Za-z0-9_.\-]+(?:\[[\w,\s-]+\])?)\s*(.*)$")


def env_entries(env: Path) -> list[tuple[str, str, str]]:
    """[(section, package name, version spec)] of an environment file: section "conda" or "pip"."""
    data = yaml.safe_load(env.read_text())
    entries = []
    for dep in data.get("dependencies") or []:
        if isinstance(dep, dict):
            for spec in dep.get("pip") or []:
                m = _SPEC.match(str(spec))
                entries.append(("pip", m[1], m[2].strip()))
        else:
            m = _SPEC.match(str(dep))
            entries.append(("conda", m[1], m[2].strip()))
    return entries


def env_packages(env: Path) -> set[str]:
    """The normalised names an environment provides: each entry's, and ``name[extra]`` for its extras."""
    names = set()
    for _, name, _ in env_entries(env):
        base, _, extras = name.partition("[")
        names |= {_norm(base), *(f"{_norm(base)}[{e.strip()}]" for e in extras.rstrip("]").split(",") if e.strip())}
    return names


def env_file(group: str) -> Path:
    return ROOT / "envs" / f"{ENVIRONMENTS[group]}.yaml"


# --- tests -----------------------------------------------------------------------------------------------


def test_rules_are_found():
    """The parser sees the workflow's job rules, each with its environment (guards the checks below)."""
    found = script_rules()
    assert len(found) >= 20 and {"lds", "train", "trak_featurize_kept", "evaluate_imported"} <= set(found), found
    for name in found:
        group, script, where = rules()[name]
        assert group is not None, f"rule {name} ({where}) runs a script but has no conda: conda_env(...)"
        assert group in ENVIRONMENTS, f"rule {name} ({where}): conda group '{group}' is not in ENVIRONMENTS"
        assert env_file(group).is_file(), f"rule {name}: {_display(env_file(group))} does not exist"
        assert script.is_file(), f"rule {name} ({where}): script {script} does not exist"


@pytest.mark.parametrize("rule", script_rules())
def test_rule_environment_has_its_imports(rule):
    group, script, where = rules()[rule]
    env = env_file(group)
    listed = env_packages(env)
    missing = []
    for name, chain in sorted(required_packages(script).items()):
        providers = PROVIDERS.get(name, (name,))
        if not any(_norm(p) in listed for p in providers):
            missing.append(
                f"rule {rule} ({where}) uses {_display(env)}, which lacks {' or '.join(providers)} "
                f"(import {name}): {' -> '.join(chain)}"
            )
    assert not missing, "\n".join(missing)


def test_optional_imports_are_guarded():
    """Each OPTIONAL entry names an import still there and still inside try/except ImportError."""
    for (module, name), reason in OPTIONAL.items():
        assert reason
        path = ROOT / module
        assert path.is_file(), f"OPTIONAL: {module} no longer exists"
        _, external = imports_of(path)
        hits = [guarded for top, _, guarded in external if top == name]
        assert hits, f"OPTIONAL: {module} no longer imports {name}; drop the entry"
        assert all(hits), f"OPTIONAL: {module} imports {name} outside try/except ImportError; it is required now"


_EXACT = re.compile(r"^==\d+(\.\d+)*([a-z]+\d*)?(\.post\d+)?$")  # one release: no ranges, no wildcards


@pytest.mark.parametrize("env", ENV_FILES, ids=lambda p: p.name)
def test_environment_is_pinned(env):
    """Every entry names one version (``==X.Y.Z``), so that environments do not drift from what was tested."""
    data = yaml.safe_load(env.read_text())
    assert data.get("channels") == ["conda-forge"], f"{_display(env)}: channels must be [conda-forge]"
    loose = []
    for section, name, spec in env_entries(env):
        if name in SERIES_PINS:
            ok = spec == "=" + SERIES_PINS[name].split(":")[0]
        else:  # conda's "=X.Y" matches X.Y.*, its "==" (like pip's) one version
            ok = _EXACT.match(spec) is not None
        if not ok:
            loose.append(f"{section}: {name}{spec}")
    assert not loose, f"{_display(env)}: entries not pinned to one version (==X.Y.Z): {', '.join(loose)}"
