"""Where every artifact lives under ``results/`` and which rule makes it: one table, read both by the
rules (``rules/common.smk`` builds its paths from it) and by the jobs, which name the maker of an
input found damaged (:mod:`proxyscale.artifacts`).
"""

from __future__ import annotations

import re
from pathlib import Path

RESULTS = "results"

# artifact -> (path template under RESULTS, the rule that makes it; both may use the path's fields)
ARTIFACTS = {
    "bpe": ("tokenizer/bpe.json", "train_tokenizer"),
    "shard": ("shards/{source}.npy", "prepare_source"),
    "holdout": ("holdout/{source}.parquet", "prepare_source"),
    "testset": ("testsets/{test}.parquet", "build_testset"),
    "checkpoint": ("checkpoints/{dist}/{size}.pt", "train"),
    "curve": ("train_logs/{dist}/{size}.parquet", "train"),
    "losses": ("losses/{dist}/{size}/{test}.parquet", "evaluate"),
    # replicate k >= 1 of a (dist, size) (config seeds:): replicate 0's tree under seed{k}/
    "checkpoint_replicate": ("checkpoints/seed{seed}/{dist}/{size}.pt", "train_replicate"),
    "curve_replicate": ("train_logs/seed{seed}/{dist}/{size}.parquet", "train_replicate"),
    "losses_replicate": ("losses/seed{seed}/{dist}/{size}/{test}.parquet", "evaluate_replicate"),
    "imported": ("imported/{dist}/{size}.json", "evaluate_imported"),
    "converted": ("imported/converted/{dist}/{size}", "convert_imported"),
    "hf_export": ("export/hf/{dist}/{size}", "export_hf_model"),
    "dataset": ("{exp}/dataset", "{exp}_data"),
    "model": ("{exp}/models/{size}/{model_id}.pt", "datamodel_train"),
    "trak_shard": ("{exp}/trak_shards/{size}/{model_id}/{shard}", "trak_featurize"),  # _kept: trak.keep_gradients
    "trak_store": ("{exp}/trak/{size}/{model_id}", "trak"),
    "trak_scores": ("{exp}/scores/{size}/{model_id}.npy", "trak"),
    "datamodel": ("{exp}/datamodels/{size}.npy", "datamodel"),
    "traker_export": ("{exp}/traker/{size}", "export_traker_size"),
    "lds_subset": ("attribution/lds_subsets/{subset}.npz", "lds_subset"),
    "split": ("selection/splits/{target}.parquet", "selection_split"),
    "subset": ("selection/subsets/{target}/{method}.parquet", "select"),
    "retrain": ("selection/retrain/{target}/{method}.parquet", "selection_retrain"),
    "retrain_noise": ("selection/retrain_noise/{target}/{method}.parquet", "selection_retrain_noise"),
    "selected_shard": ("selection/shards/{target}/{method}.npy", "selection_shard"),
    "correlation_report": ("correlation/{file}", "correlation"),
    "lds_report": ("attribution/report/{file}", "lds"),
    "dsdm_report": ("selection/report/{file}", "dsdm"),
}


def artifact_path(kind: str, **fields) -> str:
    """The path of one artifact (a field given as ``"{name}"`` stays a Snakemake wildcard)."""
    return f"{RESULTS}/{ARTIFACTS[kind][0].format(**fields)}"


def replicate_path(kind: str, seed, **fields) -> str:
    """The path of replicate ``seed`` of a checkpoint, curve or losses artifact: replicate 0 at the
    artifact's own path (what a single-seed run has), replicate k >= 1 under ``seed{k}/`` (``"{seed}"``
    stays a wildcard)."""
    return artifact_path(kind if seed == 0 else f"{kind}_replicate", seed=seed, **fields)


def replicate_runs(dists: list[str], sizes: list[str], seeds: dict[str, int]) -> list[tuple[str, str, int]]:
    """Every (distribution, size, replicate) of the correlation experiment, in the order its report rule
    lists their artifacts; ``seeds`` maps each size to its replicate count."""
    return [(d, s, k) for d in dists for s in sizes for k in range(seeds[s])]


REPORTS = {
    "correlation": artifact_path("correlation_report", file="report.md"),
    "attribution": artifact_path("lds_report", file="report.md"),
    "selection": artifact_path("dsdm_report", file="report.md"),
}
"""Each experiment's markdown report (the workflow's named targets build these)."""


def shard_name(shard: int, shards: int) -> str:
    """The ``{shard}`` field of a TRAK shard's paths: ``i-of-N``, shard i of a checkpoint cut into N."""
    return f"{shard}-of-{shards}"


def parse_shard(name: str) -> tuple[int, int]:
    """``(i, N)`` of a :func:`shard_name`."""
    shard, shards = (int(x) for x in name.split("-of-"))
    return shard, shards


def one_of(names) -> str:
    """A wildcard constraint matching exactly these names (none: a pattern that matches nothing)."""
    return "|".join(re.escape(n) for n in names) or "(?!)"


def _pattern(template: str) -> re.Pattern:
    parts = re.split(r"\{(\w+)\}", template)  # literal, field, literal, field, ...
    body = "".join(re.escape(p) if i % 2 == 0 else f"(?P<{p}>[^/]+)" for i, p in enumerate(parts))
    return re.compile(rf"(?:^|/){re.escape(RESULTS)}/{body}(?:/.*)?$")


_PATTERNS = [(_pattern(template), maker) for template, maker in ARTIFACTS.values()]


def maker_of(path: str | Path) -> str | None:
    """The rule that makes the artifact at ``path`` (or a file inside it); None for a path outside the layout."""
    text = Path(path).as_posix()
    for pattern, maker in _PATTERNS:
        if m := pattern.search(text):
            return maker.format(**m.groupdict())
    return None
