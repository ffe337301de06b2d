"""Cross-key configuration checks and the lookups the workflow rules share.

The JSON schema (``schemas/config.schema.yaml``) checks types and ranges key by key; this module
checks what a schema cannot: that names refer to things that exist, that files are there, that
architectures are consistent. Every message names the offending key.
"""

from __future__ import annotations

from pathlib import Path

from proxyscale.datamodels.conditioning import check_projection
from proxyscale.errors import ConfigError
from proxyscale.models.architecture import GPTConfig
from proxyscale.selection.registry import selection_names

RULE_GROUPS = ("data", "train", "evaluate", "datamodels", "report")
"""The groups of rules that share cluster resources (``resources:``); ``datamodels`` holds the rules that
train and featurize the datamodel experiments' models and retrain their references, for attribution and
selection alike."""
RENAMED_GROUPS = {"attribution": "datamodels"}  # resource groups of earlier versions, named in the error
TRAINING_GROUPS = ("train", "datamodels")  # groups whose training rules may run several processes
DATAMODEL_EXPERIMENTS = ("attribution", "selection")  # the experiments that train models and build TRAK datamodels
_DEFAULT_RESOURCES = {"mem_mb": 2000, "runtime": 30, "gpu": 0, "threads": 1, "processes": 1}
ENVIRONMENTS = {"data": "data", "train": "train", "evaluate": "train", "imported": "imported",
                "datamodels": "datamodels", "report": "report"}  # fmt: skip
"""The conda environment (``envs/<name>.yaml``) of each rule group, and of ``evaluate_imported``'s."""


def drop_keys(config: dict) -> None:
    """Remove, in place, the keys named by dotted paths under ``drop:`` (then ``drop`` itself).

    Snakemake merges config files key by key, so an overlay can add and change entries but not remove
    them; ``drop: [sizes.71m, attribution.vision.sizes.k8]`` lets an overlay keep fewer sizes."""
    for path in config.pop("drop", None) or []:
        *parents, last = path.split(".")
        node = config
        for key in parents:
            node = node.get(key) if isinstance(node, dict) else None
        if not isinstance(node, dict) or last not in node:
            raise ConfigError(f"drop: '{path}' is not a key of the config")
        del node[last]


def default_configfile(workflow_dir: str | Path) -> str:
    """The config the workflow starts from: ``config.yaml`` in the working directory where there is one
    (a run's own copy, as Snakemake workflows are deployed), else the embedded default beside the
    Snakefile, so that ``snakemake -s .../Snakefile -d elsewhere`` runs with no copy."""
    return "config.yaml" if Path("config.yaml").is_file() else str(Path(workflow_dir) / "config.yaml")


DATA_KEYS = ("path", "images", "labels", "root")
"""The config keys whose values are local files or folders (sources, test sets, tokenizers, vision data,
imported checkpoints)."""


def resolve_data_paths(node, workflow_dir: str | Path, working_dir: str | Path = "."):
    """``node`` (the config, or part of it) with each relative data path (:data:`DATA_KEYS`) that is not
    under the working directory but is under the workflow's own directory made absolute there: the
    embedded data of the default config resolve wherever Snakemake runs (``-d elsewhere``), while a
    path under the working directory (a user's own data) keeps its meaning, and results still go to the
    working directory. A path found in neither is left for the config checks to name."""
    if isinstance(node, dict):
        return {
            k: _resolved(v, Path(workflow_dir), Path(working_dir))
            if k in DATA_KEYS and isinstance(v, str)
            else resolve_data_paths(v, workflow_dir, working_dir)
            for k, v in node.items()
        }
    if isinstance(node, list):
        return [resolve_data_paths(v, workflow_dir, working_dir) for v in node]
    return node


def _resolved(path: str, workflow_dir: Path, working_dir: Path) -> str:
    if Path(path).is_absolute() or (working_dir / path).exists() or not (workflow_dir / path).exists():
        return path
    return str((workflow_dir / path).resolve())


def tokenizer_spec(config: dict, bpe_path: str) -> dict:
    """The tokenizer entry rules pass to jobs: a ``bpe`` entry gains the ``path`` its training rule writes."""
    spec = dict(config.get("tokenizer", {"kind": "byte"}))
    if spec.get("kind") == "bpe":
        spec["path"] = bpe_path
    return spec


def _check_tokenizer(spec: dict, base: Path, sources: dict) -> None:
    kind = spec.get("kind", "byte")
    if kind == "bpe" and "vocab_size" not in spec:
        raise ConfigError("tokenizer.vocab_size: required when tokenizer.kind is 'bpe'")
    if kind == "bpe" and not sources:
        raise ConfigError("tokenizer.kind: 'bpe' is trained on the sources, and there are none (use kind byte or hf)")
    if kind == "hf" and not (spec.get("path") or spec.get("name")):
        raise ConfigError("tokenizer: kind 'hf' needs path (a saved tokenizer.json) or name (on the hub)")
    if kind == "hf" and spec.get("path") and not (base / spec["path"]).is_file():
        raise ConfigError(f"tokenizer.path: file '{spec['path']}' does not exist")


def check_config(config: dict, base_dir: str | Path = ".") -> None:
    """Raise :class:`ConfigError` naming the first inconsistent key."""
    base = Path(base_dir)
    sizes, sources = config["sizes"], config.get("sources", {})
    _check_models(config, base)
    if config["reference"] not in correlation_sizes(config):
        raise ConfigError(
            f"reference: size '{config['reference']}' is not defined under sizes or models "
            f"(defined: {', '.join(correlation_sizes(config))})"
        )
    _check_architectures(sizes, "sizes")
    _check_seeds(config)
    for name, files in sources.items():
        for i, entry in enumerate(files):
            needed = "dataset" if entry["format"] == "hf" else "path"
            if needed not in entry:
                raise ConfigError(f"sources.{name}[{i}].{needed}: required for format '{entry['format']}'")
            if needed == "path" and not (base / entry["path"]).is_file():
                raise ConfigError(f"sources.{name}[{i}].path: file '{entry['path']}' does not exist")
    for dist, weights in config["distributions"].items():
        for shard in weights:
            if shard not in sources:
                raise ConfigError(f"distributions.{dist}: '{shard}' is not a source (sources: {', '.join(sources)})")
    for test, spec in config["test_sets"].items():
        if spec["format"] == "pile" and not sources:
            raise ConfigError(
                f"test_sets.{test}: format 'pile' draws from the sources' held-out documents, and there are none"
            )
        if spec["format"] == "pile" or "hf" in spec:
            continue
        if "path" not in spec:
            raise ConfigError(f"test_sets.{test}.path: required for format '{spec['format']}'")
        if not (base / spec["path"]).is_file():
            raise ConfigError(f"test_sets.{test}.path: file '{spec['path']}' does not exist")
    _check_tokenizer(config.get("tokenizer", {"kind": "byte"}), base, sources)
    if "attribution" in config:
        _check_attribution(config, base)
    if "selection" in config:
        _check_selection(config)
    for experiment in datamodel_experiments(config):
        settings = datamodel_settings(config, experiment)
        trak = settings["trak"]
        check_projection(
            trak["proj_dim"],
            lookup(config, settings["pool_key"]),
            trak.get("lambda_reg", 0.0),
            f"{experiment}.trak.proj_dim",
            settings["pool_key"],
        )
    for group in config.get("resources", {}):
        if group in RENAMED_GROUPS:
            raise ConfigError(f"resources.{group}: this group is now called {RENAMED_GROUPS[group]}")
        if group not in RULE_GROUPS:
            raise ConfigError(f"resources.{group}: not a rule group (one of: {', '.join(RULE_GROUPS)})")
        res = resources(config, group)
        if res["processes"] > 1 and group not in TRAINING_GROUPS:
            raise ConfigError(
                f"resources.{group}.processes: only {' and '.join(TRAINING_GROUPS)} rules train data-parallel"
            )
        if res["gpu"] and res["processes"] > res["gpu"]:
            raise ConfigError(
                f"resources.{group}.processes: {res['processes']} processes need as many GPUs (gpu: {res['gpu']})"
            )


def datamodel_experiments(config: dict) -> list[str]:
    """The experiments of :data:`DATAMODEL_EXPERIMENTS` the config has a block for: the scale correlation
    needs neither, so a config without ``attribution`` or ``selection`` runs the others."""
    return [e for e in DATAMODEL_EXPERIMENTS if e in config]


def lookup(config: dict, key: str):
    """The value at a dotted config key (``selection.pool.size``)."""
    value = config
    for part in key.split("."):
        value = value[part]
    return value


def correlation_sizes(config: dict) -> list[str]:
    """The correlation experiment's sizes: those it trains (``sizes``), then those it imports (``models``)."""
    return [*config["sizes"], *config.get("models", {})]


def trainable_distributions(config: dict) -> list[str]:
    """The distributions the workflow can train on: the weightings of sources, then the selection-induced."""
    return [*config["distributions"], *selection_distributions(config)]


def correlation_distributions(config: dict) -> list[str]:
    """The correlation experiment's training distributions: the weightings of sources, the selection-induced
    ones, then any that only imported models name (their data is not here; nothing trains on them)."""
    names = trainable_distributions(config)
    for spec in config.get("models", {}).values():
        names += [d for d in spec["checkpoints"] if d not in names]
    return names


def imported_checkpoint(config: dict, size: str, dist: str) -> dict:
    """One imported model's entry: its size's settings (all but ``checkpoints``) under the checkpoint's own
    keys, with ``where``, the config key it came from (for messages)."""
    spec = config["models"][size]
    shared = {k: v for k, v in spec.items() if k != "checkpoints"}
    return {**shared, **spec["checkpoints"][dist], "where": f"models.{size}.checkpoints.{dist}"}


def size_seeds(config: dict) -> dict[str, int]:
    """Seeds (replicates) of every correlation size (``seeds``): an integer applies to each size trained
    here, a mapping to the sizes it names (others 1); an imported size has one."""
    seeds = config.get("seeds", 1)
    named = seeds if isinstance(seeds, dict) else dict.fromkeys(config["sizes"], seeds)
    return {s: named.get(s, 1) for s in correlation_sizes(config)}


def _check_seeds(config: dict) -> None:
    """A ``seeds`` mapping names correlation sizes, and an imported one once (one checkpoint per distribution)."""
    seeds = config.get("seeds", 1)
    for name, n in seeds.items() if isinstance(seeds, dict) else ():
        if name not in correlation_sizes(config):
            raise ConfigError(f"seeds.{name}: '{name}' is not a size (sizes: {', '.join(correlation_sizes(config))})")
        if name in config.get("models", {}) and n > 1:
            raise ConfigError(
                f"seeds.{name}: {n} seeds, but '{name}' is imported (models:), one checkpoint per distribution"
            )


def proxies(config: dict) -> list[str]:
    """Proxy size names (every size but the reference, trained or imported), in config order."""
    return [s for s in correlation_sizes(config) if s != config["reference"]]


def resources(config: dict, group: str) -> dict:
    """Cluster resources of a rule group, defaults filled in."""
    return {**_DEFAULT_RESOURCES, **config.get("resources", {}).get(group, {})}


PLACEMENT = ("slurm_partition", "slurm_account", "gpu_model", "gres", "constraint", "slurm_extra")
"""Where a group's jobs run on a cluster, as snakemake-executor-plugin-slurm names it, passed only where set."""


def rule_resources(config: dict, group: str, training: bool = False) -> dict:
    """A rule's ``resources:`` from its group's (mem_mb, runtime in minutes, gpu, and the :data:`PLACEMENT`
    it sets), and for a rule that trains (``training``) the data-parallel process count its job starts
    under torchrun. A rule that does not train runs one process on one device: it asks for one GPU at
    most, whatever training asks for."""
    res = resources(config, group)
    out = {k: res[k] for k in ("mem_mb", "runtime", "gpu", *(("processes",) if training else ()))}
    out |= {k: res[k] for k in PLACEMENT if k in res}
    if "gres" in out:  # the plugin refuses gpu and gres together: gres then says how many GPUs
        del out["gpu"]
    return out if training or "gpu" not in out else {**out, "gpu": min(out["gpu"], 1)}


def uses_gpus(config: dict) -> bool:
    """Whether any rule group asks for a GPU (the plan's hours are GPU-hours)."""
    return any(group.get("gpu", 0) > 0 for group in config.get("resources", {}).values())


def rule_retries(config: dict, group: str) -> int | None:
    """A rule's ``retries:`` (its group's ``retries``); None leaves it to Snakemake's ``--retries``."""
    return config.get("resources", {}).get(group, {}).get("retries")


def rule_threads(config: dict, group: str) -> int:
    return resources(config, group)["threads"]


def conda_env(group: str) -> str:
    """A rule's ``conda:`` environment file, relative to the rule files (for ``--sdm conda``)."""
    return f"../envs/{ENVIRONMENTS[group]}.yaml"


def attribution_setting(config: dict) -> dict:
    """The active attribution setting's block (``attribution.vision`` or ``attribution.lm``)."""
    att = config["attribution"]
    setting = att["setting"]
    if setting not in att:
        raise ConfigError(f"attribution.{setting}: the setting '{setting}' is chosen but has no block")
    return att[setting]


def datamodel_settings(config: dict, experiment: str) -> dict:
    """The settings of an experiment that builds TRAK datamodels (``attribution`` or ``selection``), in
    one shape for the shared rules: a dict with ``sizes`` (name -> size spec), ``reference`` (a size
    name), ``budget`` (:mod:`proxyscale.datamodels.budget`: ``{"epochs": e}`` for vision,
    ``{"tokens_per_param": t}`` for language models), ``pool_key`` (the config key of the number of
    training examples, for errors), ``seed`` (of the checkpoints' random subsets), ``checkpoints``
    (M), ``training`` (the recipe's keys) and ``trak`` (projection size, regularisation, Q term, batch
    size, projector seed)."""
    if experiment == "attribution":
        att, block = config["attribution"], attribution_setting(config)
        pool_key = "attribution.n_train"
    elif experiment == "selection":
        att = block = config["selection"]
        pool_key = "selection.pool.size"
    else:
        raise ConfigError(f"'{experiment}' is not an experiment (one of: {', '.join(DATAMODEL_EXPERIMENTS)})")
    vision = experiment == "attribution" and att["setting"] == "vision"
    return {
        "sizes": block["sizes"],
        "reference": block["reference"],
        "budget": {"epochs": block["epochs"]} if vision else {"tokens_per_param": config["model"]["tokens_per_param"]},
        "pool_key": pool_key,
        "seed": att["seed"],
        "checkpoints": att["checkpoints"],
        "training": att["training"],
        "trak": att["trak"],
    }


def needs_q(config: dict, experiment: str) -> bool:
    """Whether TRAK computes the out-to-loss term Q (one more forward pass per example): when the
    datamodel uses it (``trak.q_term``), and always for the attribution experiment, whose LDS report
    sets the datamodel with Q beside the one without."""
    return experiment == "attribution" or bool(datamodel_settings(config, experiment)["trak"]["q_term"])


def trak_shards(config: dict, experiment: str) -> dict[str, int]:
    """How many jobs featurize each size's checkpoint (``trak.shards``): the number given, or with
    ``auto`` the plan's choice (:func:`proxyscale.plan.auto_shards`)."""
    dm = datamodel_settings(config, experiment)
    shards = dm["trak"].get("shards", 1)
    if shards != "auto":
        return dict.fromkeys(dm["sizes"], int(shards))
    from proxyscale.plan import auto_shards  # the cost model, only when asked for

    return auto_shards(config, experiment)


def selection_methods(config: dict) -> list[str]:
    """Names of the selections each target gets (:func:`proxyscale.selection.registry.selection_names`)."""
    sel = config["selection"]
    return selection_names(sel["methods"], list(sel["sizes"]), sel["reference"])


def dataset_sources(config: dict, experiment: str) -> list[str]:
    """The sources whose token shards a datamodel experiment's dataset cuts its training windows from, in
    name order: the selection pool's distributions' sources, or the language attribution setting's
    distribution's (none for images)."""
    if experiment == "selection":
        return sorted({s for d in config["selection"]["pool"]["distributions"] for s in config["distributions"][d]})
    if config["attribution"]["setting"] == "vision":
        return []
    return sorted(config["distributions"][attribution_setting(config)["distribution"]])


def selection_distributions(config: dict) -> dict[str, tuple[str, str]]:
    """Selections listed in ``selection.distributions``, as correlation-experiment distribution name
    (``<target>-<method>``) -> (target, method)."""
    entries = config.get("selection", {}).get("distributions", [])
    return {entry.replace("/", "-"): tuple(entry.split("/")) for entry in entries}


def _check_selection(config: dict) -> None:
    sel = config["selection"]
    if sel["reference"] not in sel["sizes"]:
        raise ConfigError(
            f"selection.reference: size '{sel['reference']}' is not defined under selection.sizes "
            f"(defined: {', '.join(sel['sizes'])})"
        )
    _check_architectures(sel["sizes"], "selection.sizes")
    for dist in sel["pool"]["distributions"]:
        if dist not in config["distributions"]:
            raise ConfigError(
                f"selection.pool.distributions: '{dist}' is not a distribution "
                f"(distributions: {', '.join(config['distributions'])})"
            )
    for target in sel["targets"]:
        if target not in config["test_sets"]:
            raise ConfigError(
                f"selection.targets: '{target}' is not a test set (test sets: {', '.join(config['test_sets'])})"
            )
    if sel.get("fraction") is not None and round(sel["fraction"] * sel["pool"]["size"]) < 1:
        raise ConfigError(f"selection.fraction: {sel['fraction']} of {sel['pool']['size']} pool examples keeps none")
    methods = selection_methods(config)
    for name, (target, method) in selection_distributions(config).items():
        if target not in sel["targets"]:
            raise ConfigError(
                f"selection.distributions: '{target}/{method}': '{target}' is not one of selection.targets"
            )
        if method not in methods:
            raise ConfigError(
                f"selection.distributions: '{target}/{method}': '{method}' is not a selection "
                f"(selections: {', '.join(methods)})"
            )
        if name in config["distributions"]:
            raise ConfigError(
                f"selection.distributions: '{target}/{method}' would be named '{name}', which is already a distribution"
            )


def _check_models(config: dict, base: Path) -> None:
    """Imported sizes: no name shared with a trained size, one model per distribution, each a local
    directory or a hub name at a revision, and what the compute ratios need (training tokens)."""
    models = config.get("models", {})
    dists, sizes = correlation_distributions(config), correlation_sizes(config)
    for name in models:
        if name in config["sizes"]:
            raise ConfigError(f"models.{name}: '{name}' is also under sizes; a size is either trained or imported")
    if len(sizes) < 2:
        raise ConfigError(f"sizes, models: {len(sizes)} size(s) in all; the experiment needs a reference and a proxy")
    if len(dists) < 2:
        raise ConfigError(f"distributions: {len(dists)} in all; correlations across distributions need at least 2")
    trainable = trainable_distributions(config)
    for dist in dists:
        if dist not in trainable and config["sizes"]:
            raise ConfigError(
                f"models: distribution '{dist}' exists only as imported models, so the trained sizes "
                f"({', '.join(config['sizes'])}) cannot be trained on it; import them too or add it under distributions"
            )
    for size, spec in models.items():
        missing = [d for d in dists if d not in spec["checkpoints"]]
        if missing:
            raise ConfigError(
                f"models.{size}.checkpoints: no model for {', '.join(missing)} (every size needs one per distribution)"
            )
        for dist in spec["checkpoints"]:
            entry = imported_checkpoint(config, size, dist)
            where = entry["where"]
            if ("path" in entry) == ("hub" in entry):
                raise ConfigError(
                    f"{where}: give path (a local directory) or hub (a Hugging Face model name), one of them"
                )
            if "hub" in entry and "revision" not in entry:
                raise ConfigError(f"{where}.revision: required with hub (a branch, tag or commit, e.g. main)")
            if "path" in entry and not (base / entry["path"]).is_dir():
                raise ConfigError(f"{where}.path: directory '{entry['path']}' does not exist")
            if ("tokens" in entry) == ("tokens_per_param" in entry):
                raise ConfigError(
                    f"{where}: give tokens or tokens_per_param, one of them (a transformers checkpoint does not "
                    "record how many tokens it was trained on; the compute ratios need it)"
                )


def _check_architectures(sizes: dict, where: str) -> None:
    """Each language-model size builds a GPT (:meth:`GPTConfig.from_size` says what it refuses)."""
    for name, spec in sizes.items():
        try:
            GPTConfig.from_size(spec, vocab_size=1, context_length=1)
        except ValueError as exc:
            raise ConfigError(f"{where}.{name}: {exc}") from None


def _check_attribution(config: dict, base: Path) -> None:
    setting = config["attribution"]["setting"]
    block = attribution_setting(config)
    where = f"attribution.{setting}"
    if block["reference"] not in block["sizes"]:
        raise ConfigError(
            f"{where}.reference: size '{block['reference']}' is not defined under {where}.sizes "
            f"(defined: {', '.join(block['sizes'])})"
        )
    if setting == "vision":
        dataset = block["dataset"]
        needed = {"mnist": ("images", "labels"), "cifar10": ("root",)}[dataset["kind"]]
        for key in needed:
            if key not in dataset:
                raise ConfigError(f"{where}.dataset.{key}: required for dataset kind '{dataset['kind']}'")
            path = base / dataset[key]
            if not (path.is_dir() if key == "root" else path.is_file()):
                raise ConfigError(f"{where}.dataset.{key}: '{dataset[key]}' does not exist")
    else:
        if block["distribution"] not in config["distributions"]:
            raise ConfigError(
                f"{where}.distribution: '{block['distribution']}' is not a distribution "
                f"(distributions: {', '.join(config['distributions'])})"
            )
        if block["targets"] not in config["test_sets"]:
            raise ConfigError(
                f"{where}.targets: '{block['targets']}' is not a test set (test sets: {', '.join(config['test_sets'])})"
            )
        _check_architectures(block["sizes"], f"{where}.sizes")
