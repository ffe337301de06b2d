"""Cross-key configuration checks and the lookups the workflow rules share.

The JSON schema (``schemas/config.schema.yaml``) checks types and ranges key by key; this module
checks what a schema cannot: that names refer to things that exist, that files are there, that
architectures are consistent. Every message names the offending key.
"""

from __future__ import annotations

from pathlib import Path

from proxyscale.errors import ConfigError

RULE_GROUPS = ("data", "train", "evaluate", "report")
_DEFAULT_RESOURCES = {"mem_mb": 2000, "runtime": 30, "gpu": 0, "threads": 1}


def check_config(config: dict, base_dir: str | Path = ".") -> None:
    """Raise :class:`ConfigError` naming the first inconsistent key."""
    base = Path(base_dir)
    sizes, sources = config["sizes"], config["sources"]
    if config["reference"] not in sizes:
        raise ConfigError(
            f"reference: size '{config['reference']}' is not defined under sizes (defined: {', '.join(sizes)})"
        )
    for name, spec in sizes.items():
        if spec["d_model"] % spec["n_heads"]:
            raise ConfigError(
                f"sizes.{name}: d_model={spec['d_model']} is not divisible by n_heads={spec['n_heads']}"
            )
    for name, files in sources.items():
        for i, entry in enumerate(files):
            if not (base / entry["path"]).is_file():
                raise ConfigError(f"sources.{name}[{i}].path: file '{entry['path']}' does not exist")
    for dist, weights in config["distributions"].items():
        for shard in weights:
            if shard not in sources:
                raise ConfigError(
                    f"distributions.{dist}: '{shard}' is not a source (sources: {', '.join(sources)})"
                )
    for test, spec in config["test_sets"].items():
        if spec["format"] == "pile":
            continue
        if "path" not in spec:
            raise ConfigError(f"test_sets.{test}.path: required for format '{spec['format']}'")
        if not (base / spec["path"]).is_file():
            raise ConfigError(f"test_sets.{test}.path: file '{spec['path']}' does not exist")
    for group in config.get("resources", {}):
        if group not in RULE_GROUPS:
            raise ConfigError(f"resources.{group}: not a rule group (one of: {', '.join(RULE_GROUPS)})")


def proxies(config: dict) -> list[str]:
    """Proxy size names (every size but the reference), in config order."""
    return [s for s in config["sizes"] if s != config["reference"]]


def resources(config: dict, group: str) -> dict:
    """Cluster resources of a rule group, defaults filled in."""
    return {**_DEFAULT_RESOURCES, **config.get("resources", {}).get(group, {})}
