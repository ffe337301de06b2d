"""The scale-correlation analysis: do proxy losses across training distributions predict the reference's?

Inputs are the per-sample loss tables of every (distribution, size, seed, test set) and the training
summary of every checkpoint (trained here, or the record of an imported one); outputs are tidy tables the
report and figures are drawn from. Every table but the seed noise's (:mod:`proxyscale.correlation.noise`)
and the decision probabilities' (:mod:`proxyscale.correlation.decisions`), which resample seeds, is drawn
from the seed-mean per-sample losses (:func:`seed_mean`).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from proxyscale import stats
from proxyscale.artifacts import load_json, load_parquet
from proxyscale.correlation.decisions import decision_probabilities, reliability_table, safe_decisions
from proxyscale.correlation.noise import noise_table, with_ceilings
from proxyscale.errors import DataError
from proxyscale.training.checkpoints import checkpoint_meta

NATS_PER_TOKEN = "nats per token"
BITS_PER_BYTE = "bits per byte"


def read_tables(keys: list[tuple], paths: list[str], columns: tuple[str, ...]) -> pd.DataFrame:
    """Parquet tables concatenated, each tagged with its key (for example (dist, size, test)) in ``columns``."""
    frames = [load_parquet(path).assign(**dict(zip(columns, key))) for key, path in zip(keys, paths)]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=list(columns))


def drop_reserved(losses: pd.DataFrame, testsets: dict[str, pd.DataFrame], splits: dict[str, pd.DataFrame]):
    """Losses without the examples the dataset-selection experiment selects with: per test set with a
    split (``example_id``, ``passage``, ``part``), every example whose passage lies in the split's
    target part. Returns the kept losses and {test set: examples left out}."""
    dropped = {}
    for test, split in splits.items():
        frame = testsets[test]
        reserved = set(split.loc[split["part"] == "target", "passage"])
        ids = set(frame.loc[frame["passage"].isin(reserved), "example_id"])
        losses = losses[~((losses["test"] == test) & losses["example_id"].isin(ids))]
        dropped[test] = len(ids)
    return losses.reset_index(drop=True), dropped


def read_runs(checkpoints: list[str], imported: list[str] = ()) -> pd.DataFrame:
    """One row per model: the training summary of each checkpoint trained here (params, tokens, FLOPs,
    wall time, final loss), then the record of each imported one (params, tokens, FLOPs, its source;
    what was measured in training is NaN)."""
    runs = pd.DataFrame([*(checkpoint_meta(path) for path in checkpoints), *(load_json(path) for path in imported)])
    measured = ("wall_seconds", "final_loss", "unique_tokens", "repetition", "max_shard_repetition",
                "most_repeated_shard", "mfu", "source")  # fmt: skip
    return runs.reindex(columns=[*runs.columns, *(c for c in measured if c not in runs)])


def comparable_losses(losses: pd.DataFrame) -> tuple[pd.DataFrame, str]:
    """The losses in one unit for every size, and the unit: nats per token where every model tokenises
    alike (one tokenizer fingerprint), else bits per byte of the scored text (a continuation's mean loss
    x its tokens / its UTF-8 bytes / ln 2), since a token of one tokenizer is not a token of another."""
    if "tokenizer" not in losses or losses["tokenizer"].nunique(dropna=False) <= 1:
        return losses, NATS_PER_TOKEN
    if "n_bytes" not in losses or losses["n_bytes"].isna().any():
        raise DataError(
            "the models use different tokenizers, so losses must be compared per byte, but some loss tables "
            "lack the scored text's byte counts (written by an older proxyscale): rerun them with "
            "snakemake --forcerun build_testset"
        )
    per_byte = losses["loss"] * losses["n_tokens"] / losses["n_bytes"] / math.log(2)
    return losses.assign(loss=per_byte), BITS_PER_BYTE


SAMPLE_KEYS = ["dist", "size", "test", "example_id"]
AVERAGED = ("loss", "correct")  # what differs between seeds of one (distribution, size); the rest is the test's


def seed_mean(losses: pd.DataFrame) -> pd.DataFrame:
    """Per-sample losses with loss and correctness averaged over each (distribution, size)'s seeds, without
    the ``seed`` column, rows in their first seed's order: a single-seed table comes back as it was."""
    columns = [c for c in losses.columns if c != "seed"]
    how = {c: "mean" if c in AVERAGED else "first" for c in columns if c not in SAMPLE_KEYS}
    return losses.groupby(SAMPLE_KEYS, sort=False, as_index=False).agg(how)[columns]


def mean_losses(losses: pd.DataFrame, induced=()) -> pd.DataFrame:
    """Mean loss and accuracy per (dist, size, test); ``selection_induced`` marks the distributions in
    ``induced`` (selections of the dataset-selection experiment)."""
    means = losses.groupby(["dist", "size", "test"], as_index=False).agg(
        loss=("loss", "mean"), accuracy=("correct", "mean")
    )
    return means.assign(selection_induced=means["dist"].isin(list(induced)))


def accuracy_table(
    losses: pd.DataFrame, chance: dict[str, float | None], n_boot: int, ci: float, seed: int = 0
) -> pd.DataFrame:
    """Per (test, size) with an accuracy: the accuracy averaged over training distributions, its
    bootstrap interval over test examples (each example's correctness averaged over the distributions,
    then resampled), and the test set's chance accuracy, so "above chance" can be read with its
    uncertainty."""
    scored = losses.dropna(subset=["correct"])
    per_example = scored.groupby(["test", "size", "example_id"])["correct"].mean()
    rows = []
    for (test, size), values in per_example.groupby(level=["test", "size"], sort=True):
        acc, lo, hi = stats.mean_ci(values.to_numpy(), n_boot, ci, seed)
        rows.append({"test": test, "size": size, "accuracy": acc, "accuracy_lo": lo, "accuracy_hi": hi,
                     "chance": chance.get(test), "examples": len(values)})  # fmt: skip
    columns = ["test", "size", "accuracy", "accuracy_lo", "accuracy_hi", "chance", "examples"]
    return pd.DataFrame(rows, columns=columns)


def compute_table(runs: pd.DataFrame, reference: str) -> pd.DataFrame:
    """Per size: trained here or imported, params, tokens and FLOPs of one run, compute ratio to the
    reference, mean wall time, throughput (tokens per second per device) and model FLOPs utilisation
    (NaN where the device's peak is unknown, and for imported models, which were not trained here)."""
    runs = runs.assign(
        mfu=pd.to_numeric(runs["mfu"], errors="coerce") if "mfu" in runs else float("nan"),
        origin=runs["source"].isna().map({True: "trained", False: "imported"}) if "source" in runs else "trained",
    )
    if "tokens_per_second" not in runs:  # checkpoints trained before throughput was recorded
        runs = runs.assign(tokens_per_second=runs["tokens"] / runs["wall_seconds"])
    table = runs.groupby("size", sort=False).agg(
        origin=("origin", "first"),
        params=("params", "first"),
        tokens=("tokens", "first"),
        flops=("flops", "first"),
        wall_seconds=("wall_seconds", "mean"),
        tokens_per_second=("tokens_per_second", "mean"),
        mfu=("mfu", "mean"),
        final_train_loss=("final_loss", "mean"),
        max_repetition=("max_shard_repetition", "max"),
    )
    table["compute_ratio"] = table.loc[reference, "flops"] / table["flops"]
    return table.sort_values("flops", ascending=False).reset_index()


def repeated_runs(runs: pd.DataFrame) -> pd.DataFrame:
    """The runs that see some of their data more than once: distribution, size, tokens trained, unique
    tokens, overall repetition and the most repeated shard, most repeated first."""
    columns = ["distribution", "size", "tokens", "unique_tokens", "repetition", "most_repeated_shard"]
    repeated = runs[runs["max_shard_repetition"] > 1].sort_values("max_shard_repetition", ascending=False)
    return repeated[[*columns, "max_shard_repetition"]].reset_index(drop=True)


def largest_proxy(compute: pd.DataFrame, reference: str) -> str:
    """The proxy with the most training compute (``compute`` is sorted by FLOPs, largest first)."""
    return compute["size"][compute["size"] != reference].iloc[0]


@dataclass(frozen=True)
class Statistic:
    """One statistic of proxy against reference mean losses across training distributions: a column of
    the summary (with ``_lo`` and ``_hi`` columns when bootstrapped) and, with a ``headline`` label, of
    the report's headline table (its mean over test sets)."""

    name: str
    function: Callable[[np.ndarray, np.ndarray], float]
    interval: bool
    headline: str | None


def _loo_r2(x, y) -> float:
    return stats.leave_one_out(x, y)["r2"]


def _loo_mae(x, y) -> float:
    return stats.leave_one_out(x, y)["mae"]


STATISTICS = (
    Statistic("r2", stats.r2, True, "mean R^2"),
    Statistic("pearson", stats.pearson, False, "mean signed r"),
    Statistic("spearman", stats.spearman, True, "mean Spearman"),
    Statistic("decision_accuracy", stats.decision_accuracy, True, "mean decision accuracy"),
    Statistic("loo_r2", _loo_r2, False, "mean LOO R^2"),
    Statistic("loo_mae", _loo_mae, False, None),
)
"""The summary's statistics, in its column order (:func:`scale_correlation`)."""


def scale_correlation(
    means: pd.DataFrame,
    compute: pd.DataFrame,
    chance: dict[str, float | None],
    reference: str,
    n_boot: int,
    ci: float,
) -> pd.DataFrame:
    """One row per (test, proxy): every statistic of :data:`STATISTICS` (with its bootstrap interval
    where it has one), the proxy's accuracy (mean over distributions) and its compute ratio."""
    wide = means.pivot_table(index=["test", "dist"], columns="size", values="loss")
    acc = means.pivot_table(index=["test", "size"], values="accuracy", dropna=False)["accuracy"]
    ratio = compute.set_index("size")["compute_ratio"]
    rows = []
    for test, block in wide.groupby(level="test"):
        y = block[reference].to_numpy()
        for size in wide.columns:
            if size == reference:
                continue
            x = block[size].to_numpy()
            row = {"test": test, "size": size, "compute_ratio": float(ratio[size])}
            for statistic in STATISTICS:
                row[statistic.name] = statistic.function(x, y)
                if statistic.interval:
                    lo, hi = stats.bootstrap_ci(x, y, statistic.function, n_boot, ci)
                    row |= {f"{statistic.name}_lo": lo, f"{statistic.name}_hi": hi}
            row["proxy_accuracy"] = float(acc.get((test, size), np.nan))
            row["chance"] = np.nan if chance.get(test) is None else chance[test]
            rows.append(row)
    return pd.DataFrame(rows)


def loo_predictions(means: pd.DataFrame, reference: str) -> pd.DataFrame:
    """Leave-one-distribution-out predictions of the reference loss from each proxy."""
    wide = means.pivot_table(index=["test", "dist"], columns="size", values="loss")
    rows = []
    for test, block in wide.groupby(level="test"):
        y = block[reference].to_numpy()
        dists = block.index.get_level_values("dist")
        for size in wide.columns.drop(reference):
            preds = stats.leave_one_out(block[size].to_numpy(), y)["predictions"]
            rows.extend(
                {"test": test, "size": size, "dist": d, "reference_loss": t, "predicted_loss": p}
                for d, t, p in zip(dists, y, preds)
            )
    return pd.DataFrame(rows)


def _per_sample_losses(losses: pd.DataFrame, reference: str):
    """(test, proxy, proxy losses, reference losses, example ids) per test set and proxy; the loss
    matrices are (n_distributions, n_examples) with the same rows and columns."""
    for test, block in losses.groupby("test"):
        wide = block.pivot_table(index="dist", columns=["size", "example_id"], values="loss")
        ref = wide[reference]
        for size in wide.columns.get_level_values("size").unique().drop(reference):
            yield test, size, wide[size].to_numpy(), ref.to_numpy(), ref.columns


def per_sample_table(losses: pd.DataFrame, reference: str) -> pd.DataFrame:
    """Per (test, proxy, example): R^2 across distributions of proxy vs reference per-sample loss."""
    rows = [
        pd.DataFrame({"test": test, "size": size, "example_id": ids, "r2": stats.per_sample_r2(proxy, ref)})
        for test, size, proxy, ref, ids in _per_sample_losses(losses, reference)
    ]
    return pd.concat(rows, ignore_index=True)


def per_sample_null(losses: pd.DataFrame, reference: str, n_perm: int, seed: int = 0) -> pd.DataFrame:
    """Per (test, proxy): per-sample R^2 values when distributions are shuffled (:func:`stats.per_sample_r2_null`).

    With few distributions, unrelated losses still give per-sample R^2 of about 1/(n - 1); this is the
    baseline Figure 5 and its table compare the observed values with.
    """
    rows = [
        pd.DataFrame({"test": test, "size": size, "r2": stats.per_sample_r2_null(proxy, ref, n_perm, seed)})
        for test, size, proxy, ref, _ in _per_sample_losses(losses, reference)
    ]
    return pd.concat(rows, ignore_index=True)


def verdict(summary: pd.DataFrame, min_r2: float, min_decision_accuracy: float) -> pd.DataFrame:
    """Per test set, the cheapest proxy (largest compute ratio) that agrees with the reference: positive
    correlation, R^2 interval above ``min_r2`` and decision-accuracy interval above
    ``min_decision_accuracy``; ``proxy`` is missing (None or NaN) where no proxy does. The figures
    behind it come along, and whether it is at the noise ceiling (missing where none was measured or no
    proxy qualifies; :func:`proxyscale.correlation.noise.with_ceilings`)."""
    rows = []
    for test, block in summary.groupby("test"):
        ok = block[
            (block["pearson"] > 0)
            & (block["r2_lo"] >= min_r2)
            & (block["decision_accuracy_lo"] >= min_decision_accuracy)
        ]
        best = ok.sort_values("compute_ratio", ascending=False).head(1)
        row = best.iloc[0] if len(best) else None
        rows.append(
            {
                "test": test,
                "proxy": None if row is None else row["size"],
                **{
                    k: np.nan if row is None else float(row[k])
                    for k in ("compute_ratio", "r2", "r2_lo", "decision_accuracy", "decision_accuracy_lo")
                },
                "at_ceiling": None if row is None else row["at_ceiling"],
            }
        )
    return pd.DataFrame(rows).astype({"at_ceiling": "boolean"})


@dataclass(frozen=True)
class CorrelationResults:
    """The analysis of one run: its tables (:meth:`tables`) and what the report says of the run."""

    means: pd.DataFrame
    accuracy: pd.DataFrame
    compute: pd.DataFrame
    summary: pd.DataFrame
    per_sample: pd.DataFrame
    loo: pd.DataFrame
    null: pd.DataFrame
    verdict: pd.DataFrame
    noise: pd.DataFrame  # per (test, size): seed-to-seed agreement, reliability, SNR (proxyscale.correlation.noise)
    repeated: pd.DataFrame  # the runs that see some data more than once (:func:`repeated_runs`)
    decisions: pd.DataFrame  # per (test, proxy, pair of distributions): P(reference agrees) (decisions.py)
    reliability: pd.DataFrame  # calibration of those probabilities, per bin of probability
    safe: pd.DataFrame  # per (test, proxy): decisions, those safe at decision_probability, the share that held
    reference: str
    thresholds: dict  # report.verdict: min_r2, min_decision_accuracy
    ci: float
    decision_probability: float  # report.decision_probability: the probability at which a decision is safe
    unit: str = NATS_PER_TOKEN
    reserved: dict = field(default_factory=dict)  # test set -> examples left out for the selection experiment
    induced: tuple = ()  # the selection-induced training distributions
    tokenizer: str | None = None  # the tokenizers, in words

    def tables(self) -> dict[str, pd.DataFrame]:
        """The tables the workflow saves, by output key; those of losses carry their unit."""
        keys = ("means", "accuracy", "compute", "summary", "per_sample", "loo", "null", "verdict", "noise",
                "decisions", "reliability", "safe")  # fmt: skip
        return {k: getattr(self, k).assign(loss_unit=self.unit) if k in ("means", "loo") else getattr(self, k)
                for k in keys}  # fmt: skip


def analyse(
    losses: pd.DataFrame,
    runs: pd.DataFrame,
    chance: dict[str, float | None],
    reference: str,
    n_boot: int,
    ci: float,
    null_permutations: int,
    seed: int,
    thresholds: dict,
    decision_probability: float,
    **described,
) -> CorrelationResults:
    """Every table of the analysis from the comparable per-sample ``losses`` of every seed
    (:func:`comparable_losses`; column ``seed``) and the ``runs`` (:func:`read_runs`); a decision is safe
    at ``decision_probability``; ``described`` holds what the report says of the run (the fields of
    :class:`CorrelationResults` after ``decision_probability``)."""
    noise = noise_table(losses)
    decisions = decision_probabilities(losses, reference, n_boot, seed)
    losses = seed_mean(losses)
    means = mean_losses(losses, described.get("induced", ()))
    compute = compute_table(runs, reference)
    summary = with_ceilings(scale_correlation(means, compute, chance, reference, n_boot, ci), noise, reference)
    return CorrelationResults(
        means=means,
        accuracy=accuracy_table(losses, chance, n_boot, ci, seed),
        compute=compute,
        summary=summary,
        per_sample=per_sample_table(losses, reference),
        loo=loo_predictions(means, reference),
        null=per_sample_null(losses, reference, null_permutations, seed),
        verdict=verdict(summary, **thresholds),
        noise=noise,
        repeated=repeated_runs(runs),
        decisions=decisions,
        reliability=reliability_table(decisions, ci=ci),
        safe=safe_decisions(decisions, decision_probability),
        reference=reference,
        thresholds=dict(thresholds),
        ci=ci,
        decision_probability=decision_probability,
        **described,
    )
