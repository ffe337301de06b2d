"""Seeds of the scale-correlation experiment: the config, where replicates live, the seed-noise table and
what the report says of it, each on constructed losses whose answer is worked out by hand."""

from __future__ import annotations

import math
import re
import shutil
from collections import Counter

import numpy as np
import pandas as pd
import pytest

from conftest import REPO, job_counts, run_snakemake, tiny_config, write_config
from proxyscale import stats
from proxyscale.config import check_config, size_seeds
from proxyscale.correlation.analysis import analyse, seed_mean, verdict
from proxyscale.correlation.noise import noise_table, signal_to_noise, spearman_brown, with_ceilings
from proxyscale.correlation.report import correlation_report
from proxyscale.errors import ConfigError
from proxyscale.layout import artifact_path, maker_of, replicate_path, replicate_runs
from proxyscale.schema import validate_config

SCHEMA = REPO / "schemas/config.schema.yaml"

# An orthogonal basis of the mean-zero vectors over 5 distributions: the true spread t of the mean losses and
# three directions of seed noise or disagreement (|t|^2 = 10, |u|^2 = 14, |v|^2 = 10, |w|^2 = 70).
T = np.array([-2.0, -1.0, 0.0, 1.0, 2.0])
U = np.array([2.0, -1.0, -2.0, -1.0, 2.0])
V = np.array([1.0, -2.0, 0.0, 2.0, -1.0])
W = np.array([1.0, -4.0, 6.0, -4.0, 1.0])


def _losses(means: dict[str, np.ndarray], test: str = "t") -> pd.DataFrame:
    """Per-sample losses whose mean per (distribution, seed) is ``means[size][:, seed]``: two examples each,
    at the mean -+ 0.1, with no accuracy (as c4's)."""
    rows = [
        {"dist": f"d{d}", "size": size, "seed": k, "test": test, "example_id": e,
         "loss": m[d, k] + (0.1 if e else -0.1), "correct": np.nan}
        for size, m in means.items()
        for d in range(m.shape[0])
        for k in range(m.shape[1])
        for e in (0, 1)
    ]  # fmt: skip
    return pd.DataFrame(rows)


def _constructed() -> dict[str, np.ndarray]:
    """The reference's 2 seeds are 4 + t -+ v/2 (mean 4 + t; seed-to-seed r = (10 - 2.5) / (10 + 2.5) = 0.6);
    the proxy's are 3 + t + u/2 -+ 0.3 w (mean 3 + t + u/2: R^2 against the reference 10 / (10 + 3.5); seed r =
    (13.5 - 6.3) / (13.5 + 6.3) = 8 / 22)."""
    ref = np.stack([4 + T + V / 2, 4 + T - V / 2], axis=1)
    proxy = np.stack([3 + T + U / 2 + 0.3 * W, 3 + T + U / 2 - 0.3 * W], axis=1)
    return {"ref": ref, "p": proxy}


def _summary(losses: pd.DataFrame) -> pd.DataFrame:
    """The analysis' summary of ``losses`` (reference 'ref'), ceilings included."""
    runs = pd.DataFrame({"size": ["ref", "p"], "distribution": "d0", "params": [10, 1], "tokens": [1, 1],
                         "flops": [10.0, 1.0], "wall_seconds": 1.0, "final_loss": 1.0, "unique_tokens": 1,
                         "repetition": 1.0, "most_repeated_shard": "d0", "max_shard_repetition": 1.0, "mfu": np.nan,
                         "source": None})  # fmt: skip
    loose = {"min_r2": 0.0, "min_decision_accuracy": 0.0}  # every rising proxy qualifies
    return analyse(losses, runs, {"t": None}, "ref", 200, 0.9, 2, 0, loose, decision_probability=0.6)


# config


def test_seeds_default_to_one_an_integer_is_every_trained_size_and_a_mapping_names_sizes():
    config = {"sizes": {"s": {}, "ref": {}}, "models": {"big": {}}}
    assert size_seeds(config) == {"s": 1, "ref": 1, "big": 1}
    assert size_seeds({**config, "seeds": 3}) == {"s": 3, "ref": 3, "big": 1}  # an imported size has one
    assert size_seeds({**config, "seeds": {"ref": 2}}) == {"s": 1, "ref": 2, "big": 1}


@pytest.mark.parametrize(
    "seeds, message",
    [
        (0, "seeds: "),
        ({"ref": 0}, "seeds.ref: "),
        ({"ref": 1.5}, "seeds.ref: "),
        ({"ref": 2, "nope": 2}, "seeds.nope: 'nope' is not a size (sizes: tiny, ref, big)"),
        ({"big": 2}, "seeds.big: 2 seeds, but 'big' is imported (models:), one checkpoint per distribution"),
    ],
)
def test_bad_seeds_fail_in_one_line_naming_the_key(seeds, message):
    config = tiny_config()
    hub = {"hub": "org/big", "revision": "main"}
    config["models"] = {"big": {"tokens": 1, "checkpoints": dict.fromkeys(config["distributions"], hub)}}
    config["seeds"] = seeds
    del config["selection"]["distributions"]  # their distributions would need imported checkpoints too
    with pytest.raises(ConfigError) as err:
        validate_config(config, SCHEMA)
        check_config(config, REPO)
    assert str(err.value).startswith(message) and "\n" not in str(err.value)
    config["seeds"] = {"big": 1, "ref": 3}  # one seed of an imported size is what it has
    validate_config(config, SCHEMA)
    check_config(config, REPO)


# layout


def test_replicate_zero_keeps_the_single_seed_paths_and_the_others_live_under_their_seed():
    fields = {"dist": "web", "size": "ref"}
    for kind in ("checkpoint", "curve"):
        assert replicate_path(kind, 0, **fields) == artifact_path(kind, **fields)
    assert replicate_path("losses", 0, test="c4", **fields) == "results/losses/web/ref/c4.parquet"
    assert replicate_path("losses", 2, test="c4", **fields) == "results/losses/seed2/web/ref/c4.parquet"
    assert replicate_path("checkpoint", 1, **fields) == "results/checkpoints/seed1/web/ref.pt"
    assert replicate_path("checkpoint", "{seed}", **fields) == "results/checkpoints/seed{seed}/web/ref.pt"
    assert maker_of("results/checkpoints/seed1/web/ref.pt") == "train_replicate"
    assert maker_of("results/losses/seed1/web/ref/c4.parquet") == "evaluate_replicate"
    assert maker_of("results/checkpoints/web/ref.pt") == "train"
    assert replicate_runs(["a", "b"], ["s", "ref"], {"s": 1, "ref": 2}) == [
        ("a", "s", 0), ("a", "ref", 0), ("a", "ref", 1), ("b", "s", 0), ("b", "ref", 0), ("b", "ref", 1)
    ]  # fmt: skip


# the seed-mean losses every existing table is drawn from


def test_one_seed_comes_back_as_it_was_and_seeds_are_averaged_in_the_first_seeds_order():
    one = _losses({"ref": np.array([[3.0], [2.0]]), "p": np.array([[1.0], [5.0]])}).sample(frac=1, random_state=0)
    one = one.reset_index(drop=True).assign(correct=lambda t: t["example_id"].astype(float))
    pd.testing.assert_frame_equal(seed_mean(one), one.drop(columns="seed"), check_exact=True)
    two = pd.concat([one, one.assign(seed=1, loss=one["loss"] + 1.0, correct=0.0)], ignore_index=True)
    mean = seed_mean(two)
    keys = ["dist", "size", "test", "example_id"]
    pd.testing.assert_frame_equal(mean[keys], one[keys])
    assert np.allclose(mean["loss"], one["loss"] + 0.5) and np.allclose(mean["correct"], one["correct"] / 2)


# the noise table and the ceilings


def test_spearman_brown_by_hand():
    assert spearman_brown(0.6, 2) == pytest.approx(0.75)  # 1.2 / 1.6
    assert spearman_brown(0.5, 3) == pytest.approx(0.75)  # 1.5 / 2
    assert spearman_brown(0.6, 1) == pytest.approx(0.6)
    assert spearman_brown(-0.2, 2) == 0.0 and spearman_brown(0.0, 4) == 0.0
    assert math.isnan(spearman_brown(float("nan"), 2))


def test_signal_to_noise_ratio_by_hand():
    means = np.array([[2.0, 2.2], [3.0, 3.0], [4.6, 4.4]])  # distributions x seeds
    signal, noise, snr = signal_to_noise(means)
    # seed means 2.1, 3.0, 4.5: spread 2.4 over their mean 3.2; seed variances (n - 1) 0.02, 0, 0.02
    assert signal == pytest.approx(2.4 / 3.2)
    assert noise == pytest.approx(math.sqrt(0.04 / 3) / 3.2)
    assert snr == pytest.approx(2.4 / math.sqrt(0.04 / 3))
    assert signal_to_noise(means[:, :1])[1:] == pytest.approx((float("nan"),) * 2, nan_ok=True)
    assert signal_to_noise(np.repeat(means[:, :1], 3, axis=1))[2] == float("inf")  # identical seeds


def test_attenuation_correction_on_constructed_losses_with_known_reliabilities():
    losses = _losses(_constructed())
    noise = noise_table(losses).set_index("size")
    assert noise.loc["ref", "seeds"] == 2 and noise.loc["ref", "seed_r"] == pytest.approx(0.6)
    assert noise.loc["ref", "seed_r2"] == pytest.approx(0.36)
    assert noise.loc["ref", "reliability"] == pytest.approx(0.75)
    assert noise.loc["p", "seed_r"] == pytest.approx(8 / 22)
    assert noise.loc["p", "reliability"] == pytest.approx(2 * (8 / 22) / (1 + 8 / 22))  # = 16 / 30
    ref = _constructed()["ref"]
    assert noise.loc["ref", "seed_decision_accuracy"] == stats.decision_accuracy(ref[:, 0], ref[:, 1])
    row = _summary(losses).summary.iloc[0]
    assert row["size"] == "p" and row["r2"] == pytest.approx(10 / 13.5)  # against the seed-mean reference
    assert row["ceiling_r2"] == pytest.approx(0.36) and row["ref_reliability"] == pytest.approx(0.75)
    assert row["r2_bound"] == pytest.approx(0.75 * 16 / 30)  # = 0.4
    assert row["r2_corrected"] == pytest.approx((10 / 13.5) / 0.4)
    assert row["at_ceiling"]  # R^2 0.74 reaches the bound 0.4


def test_at_ceiling_needs_a_rising_proxy_whose_interval_reaches_a_bound_above_zero():
    noise = pd.DataFrame({"test": ["t"] * 4 + ["u"] * 4, "size": ["ref", "a", "b", "c"] * 2, "seeds": [2, 1, 1, 1] * 2,
                          "seed_r2": 0.81, "seed_decision_accuracy": 0.9,
                          "reliability": [0.9, np.nan, np.nan, np.nan, 0.0, np.nan, np.nan, np.nan]})  # fmt: skip
    summary = pd.DataFrame({"test": ["t"] * 3 + ["u"], "size": ["a", "b", "c", "a"], "r2": [0.85, 0.85, 0.95, 0.3],
                            "r2_hi": [0.9, 0.89, 0.99, 0.5], "pearson": [0.9, 0.9, -0.97, 0.5]})  # fmt: skip
    out = with_ceilings(summary, noise, "ref")
    # inclusive; c moves opposite to the reference; on u the reference's seeds share no ordering (reliability 0)
    assert out["at_ceiling"].tolist() == [True, False, False, False]
    assert out["r2_bound"].tolist() == [0.9, 0.9, 0.9, 0.0]  # one-seed proxies: held to the reference's reliability
    assert out["r2_corrected"].to_numpy() == pytest.approx([0.85 / 0.9, 0.85 / 0.9, 0.95 / 0.9, np.nan], nan_ok=True)
    picked = verdict(out.assign(compute_ratio=[2.0, 4.0, 8.0, 2.0], r2_lo=0.6, decision_accuracy=0.9,
                                decision_accuracy_lo=0.8), 0.5, 0.7)  # fmt: skip
    assert picked.loc[0, "proxy"] == "b" and not picked.loc[0, "at_ceiling"]


def test_one_seed_measures_no_ceiling_and_the_report_says_so_in_words():
    one = {s: m[:, :1] for s, m in _constructed().items()}
    results = _summary(_losses(one))
    noise = results.noise.set_index("size")
    assert (noise["seeds"] == 1).all() and noise["signal"].notna().all()
    assert noise[["seed_r2", "seed_decision_accuracy", "seed_r", "reliability", "noise", "snr"]].isna().all().all()
    row = results.summary.iloc[0]
    assert row["r2_corrected"] == row["r2"] and row["r2_bound"] == 1.0 and pd.isna(row["at_ceiling"])
    assert pd.isna(results.verdict.loc[0, "at_ceiling"])
    text = correlation_report(results, _figures())
    assert "No noise ceiling can be measured: the reference (ref) was trained with one seed" in text
    assert "Every size was trained with one seed, so seed noise cannot be measured" in text
    assert "`seeds: {ref: 2}`" in text and "nan" not in text.lower()


def test_identical_seeds_have_no_noise_full_reliability_and_an_infinite_snr():
    same = {s: np.repeat(m[:, :1], 2, axis=1) for s, m in _constructed().items()}
    results = _summary(_losses(same))
    noise = results.noise.set_index("size")
    assert noise["seed_r2"].to_numpy() == pytest.approx([1.0, 1.0])
    assert noise["reliability"].to_numpy() == pytest.approx([1.0, 1.0])
    assert (noise["seed_decision_accuracy"] == 1.0).all() and (noise["noise"] == 0).all()
    assert (noise["snr"] == float("inf")).all()
    row = results.summary.iloc[0]
    assert row["r2_corrected"] == pytest.approx(row["r2"])
    text = correlation_report(results, _figures())
    assert "| t | no seed noise | no seed noise |" in text and "| inf" not in text


def test_report_gives_the_ceilings_corrected_r2_and_snr_and_the_verdict_names_the_proxy_at_the_ceiling():
    results = _summary(_losses(_constructed()))
    text = correlation_report(results, _figures())
    verdict_part = text.split("## Verdict")[1].split("##")[0]
    assert "A proxy is at the noise ceiling when" in verdict_part
    assert "It is at the noise ceiling: its R^2 interval reaches 0.40, as much as seed noise allows." in verdict_part
    section = text.split("## Seed noise")[1].split("\n## ")[0]
    assert "Seeds per size: ref 2, p 2 (`seeds` in the config" in section
    assert "| t | 0.36 | " in section and " | 0.75 | 0.74 -> 1.85 * |" in section
    snr = signal_to_noise(_constructed()["p"])[2]
    assert f"| t | {signal_to_noise(_constructed()['ref'])[2]:.1f} | {snr:.1f} |" in section
    assert "Proxies with one seed" not in section


def test_decision_probabilities_resample_the_seeds_and_reach_the_saved_tables():
    """The proxy's 2 seeds differ by 0.6 w, so a pair's seed-mean gap g moves by -+0.3 (w_a - w_b) when both
    resampled seeds are the same one (half the draws): where that exceeds |g| a quarter of the draws flip the
    order (bootstrap share 0.75: d0-d1, d0-d3, whose extreme ties, d1-d2, d2-d3), elsewhere none (share 1). The
    seed-mean means (2, 1.5, 2, 3.5, 6 against the reference's 2, 3, 4, 5, 6) tie d0-d2 and fail d0-d1 only."""
    losses = _losses(_constructed())
    results = _summary(losses)
    table = results.decisions.set_index(["dist_a", "dist_b"])
    unsure = [("d0", "d1"), ("d0", "d3"), ("d1", "d2"), ("d2", "d3")]
    assert table.loc[unsure, "probability"].to_numpy() == pytest.approx([0.75] * 4, abs=0.1)
    assert (table.drop(index=[*unsure, ("d0", "d2")])["probability"] == 1.0).all()
    assert np.isnan(table.loc[("d0", "d2"), "probability"]) and not table.loc[("d0", "d1"), "held"]
    safe = results.safe.iloc[0]  # at a probability of 0.6 (_summary), the unsure pairs are safe too
    assert (safe["decisions"], safe["safe"]) == (9, 9) and safe["safe_share_held"] == pytest.approx(8 / 9)
    assert safe["accuracy"] == pytest.approx(8 / 9)
    assert results.reliability["count"].tolist() == [4, 5] and results.reliability["observed"].tolist() == [0.75, 1.0]
    assert all(results.tables()[k] is getattr(results, k) for k in ("decisions", "reliability", "safe"))


def _figures() -> dict[str, str]:
    keys = ("curves", "scatter", "r2_compute", "r2_accuracy", "per_sample_fig", "per_sample_hist", "reliability_fig")
    return {k: f"{k}.png" for k in keys}


# the workflow


def test_raising_seeds_after_a_finished_run_plans_only_the_new_replicates_and_the_report(tiny_run, tmp_path):
    """Also from a run finished before the noise table existed (neither it nor Snakemake's record of it),
    whose report Snakemake would otherwise not know to remake."""
    work = tmp_path / "run"
    shutil.copytree(tiny_run, work, symlinks=True)
    config = tiny_config() | {"seeds": {"ref": 2}}
    write_config(config, work)
    n = len(config["distributions"]) + len(config["selection"]["distributions"])
    expected = Counter(train_replicate=n, evaluate_replicate=n, correlation=1, all=1)
    for before_noise_table in (False, True):
        if before_noise_table:
            (work / "results/correlation/noise.parquet").unlink()
            forget = run_snakemake(work, "--cleanup-metadata", "results/correlation/noise.parquet")
            assert forget.returncode == 0, forget.stderr
        result = run_snakemake(work, "-n")
        assert result.returncode == 0, result.stderr
        assert job_counts(result.stdout) == expected, before_noise_table
        planned = set(re.findall(r"wildcards: seed=(\d+), dist=\S+, size=(\w+)", result.stdout))
        assert planned == {("1", "ref")}, planned  # the new replicate of the reference, nothing else
