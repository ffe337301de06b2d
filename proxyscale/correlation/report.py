"""Markdown report of the scale-correlation experiment: tables of the analysis and its figures.

The report is a list of sections, each built by one function from the analysis tables
(:mod:`proxyscale.correlation.analysis`); ``figures`` maps figure keys to paths relative to the report.
"""

from __future__ import annotations

import pandas as pd

from proxyscale.correlation.analysis import BITS_PER_BYTE, STATISTICS, CorrelationResults
from proxyscale.correlation.decisions import BOOTSTRAP_MODEL, safe_decisions
from proxyscale.markdown import md_table, with_ci


def _by_test(summary: pd.DataFrame, proxies: list[str], fmt) -> pd.DataFrame:
    """One row per test set, one column per proxy: ``fmt`` of that (test, proxy) row of ``summary``."""
    table = {}
    for test, block in summary.groupby("test"):
        block = block.set_index("size")
        table[test] = {p: fmt(block.loc[p]) for p in proxies}
    return pd.DataFrame(table).T.rename_axis("test").reset_index()


def _proxy_labels(compute: pd.DataFrame, reference: str) -> dict[str, str]:
    """Column label of every proxy: its name and compute ratio, e.g. 'xs (300x)'."""
    ratio = compute.set_index("size")["compute_ratio"]
    return {p: f"{p} ({ratio[p]:.0f}x)" for p in compute["size"] if p != reference}


def _distributions(dists: list[str], induced: list[str]) -> str:
    """The training distributions as the report names them: those of the sources, then the
    selection-induced ones (the dataset-selection experiment's selections) apart."""
    natural = [d for d in dists if d not in induced]
    selected = [d for d in dists if d in induced]
    if not selected:
        return f"{len(dists)} training distributions ({', '.join(dists)})"
    return (
        f"{len(dists)} training distributions: {len(natural)} drawn from the sources ({', '.join(natural)}) and "
        f"{len(selected)} selection-induced ({', '.join(selected)}: selections of the dataset-selection "
        "experiment's pool, triangles in the figures)"
    )


def _training(imported: list[str], trained_here: bool, dists: str, tests: str) -> str:
    """What each size's models were trained on and evaluated on, as far as the run knows: what a checkpoint
    trained elsewhere saw is unknown (imported)."""
    names = ", ".join(imported)
    if not imported:
        return f"Each size was trained on each of {dists} and evaluated on {tests}."
    if trained_here:
        return (
            f"Each size trained here was trained on each of {dists}; the imported sizes ({names}) have one "
            f"checkpoint per distribution, trained elsewhere on data unknown (imported). All were evaluated on {tests}."
        )
    return (
        f"Every size is imported ({names}): one checkpoint per distribution of {dists}, trained elsewhere on data "
        f"unknown (imported), evaluated on {tests}."
    )


def _introduction(
    means: pd.DataFrame,
    reference: str,
    proxies: list[str],
    reserved: dict,
    pct: str,
    induced: list[str],
    tokenizer: str | None,
    unit: str,
    imported: list[str],
    n_sizes: int,
) -> list[str]:
    dists = sorted(means["dist"].unique())
    tests = sorted(means["test"].unique())
    left_out = ", ".join(f"{n} of {t}" for t, n in reserved.items())
    return [
        "# Scale correlation: do proxy models see the training data the way the reference does?",
        "",
        f"Reference size **{reference}**; proxies {', '.join(proxies)}. "
        + _training(
            imported,
            len(imported) < n_sizes,
            _distributions(dists, induced),
            f"{len(tests)} test sets ({', '.join(tests)})",
        )
        + " For each test set and proxy, the points are the training distributions: "
        "the proxy's mean loss against the reference's. R^2 is that of the least-squares line; intervals are "
        f"{pct} percentile bootstraps over distributions."
        + (
            f" Left out of every evaluation: the examples the dataset-selection experiment selects with, and "
            f"any that share their passage ({left_out})."
            if reserved
            else ""
        )
        + (f" Text is tokenised with {tokenizer}." if tokenizer else "")
        + f" Losses are in {unit} in every table and figure"
        + (
            ": the models do not share one tokenizer, so a test example's loss is its continuation's summed "
            "loss over its UTF-8 bytes, in bits (a continuation longer than a model's context is scored on its "
            "first tokens, over their bytes)."
            if unit == BITS_PER_BYTE
            else "."
        ),
        "",
    ]


def _ceiling_sentence(test: str, proxy, summary: pd.DataFrame) -> str:
    """Whether the verdict's ``proxy`` of ``test`` is at the noise ceiling, else which proxies are (cheapest
    first), in a sentence; '' where the reference has one seed (no ceiling measured)."""
    block = summary[summary["test"] == test].sort_values("compute_ratio", ascending=False)
    if block["at_ceiling"].isna().all():
        return ""
    at = block[block["at_ceiling"].fillna(False).astype(bool)]
    if isinstance(proxy, str) and proxy in set(at["size"]):
        bound = at.set_index("size").loc[proxy, "r2_bound"]
        return f" It is at the noise ceiling: its R^2 interval reaches {bound:.2f}, as much as seed noise allows."
    if len(at):
        return f" At the noise ceiling: {', '.join(at['size'])}."
    return " No proxy is at the noise ceiling."


def _no_ceiling(reference: str) -> str:
    """What the report says where the reference has one seed, naming the key that measures the ceiling."""
    return (
        f"No noise ceiling can be measured: the reference ({reference}) was trained with one seed, so how far seed "
        f"noise alone moves its losses is unknown; set `seeds` in the config (e.g. `seeds: {{{reference}: 2}}`) "
        "to measure it."
    )


def _verdict(verdict: pd.DataFrame, summary: pd.DataFrame, reference: str, thresholds: dict, pct: str) -> list[str]:
    """The answer a data team acts on: per test set, the cheapest proxy that agrees with the reference, and
    which proxies are at the noise ceiling (or that none can be measured)."""
    lines = []
    for row in verdict.itertuples():
        ceiling = _ceiling_sentence(row.test, row.proxy, summary)
        if pd.isna(row.proxy):
            lines.append(f"- **{row.test}**: none of the proxies clears the thresholds.{ceiling}")
        else:
            lines.append(
                f"- **{row.test}**: **{row.proxy}** ({row.compute_ratio:.0f}x less compute): R^2 {row.r2:.2f} "
                f"(lower bound {row.r2_lo:.2f}), decision accuracy {row.decision_accuracy:.2f} "
                f"(lower bound {row.decision_accuracy_lo:.2f}).{ceiling}"
            )
    measured = summary["at_ceiling"].notna().any()
    about_ceiling = (
        " A proxy is at the noise ceiling when it agrees with the reference as well as the reference's own seed "
        "noise lets one tell (see Seed noise)."
        if measured
        else ""
    )
    if not measured:
        lines += ["", _no_ceiling(reference)]
    return [
        "## Verdict: the cheapest proxy you can trust, per test set",
        "",
        f"A proxy qualifies when its losses rise with the reference's (positive correlation), the lower end of "
        f"its {pct} interval of R^2 is at least {thresholds['min_r2']:.2f} and that of its decision accuracy "
        f"(the share of pairs of training distributions it orders as the reference does) at least "
        f"{thresholds['min_decision_accuracy']:.2f} (`report.verdict` in the config).{about_ceiling}",
        "",
        *lines,
        "",
    ]


def _snr_cell(row) -> str:
    """A size's signal-to-noise ratio in words where it is not a number."""
    if row.seeds < 2:
        return "one seed"
    return "no seed noise" if row.snr == float("inf") else f"{row.snr:.1f}"


def _seed_noise(noise: pd.DataFrame, summary: pd.DataFrame, reference: str, labels: dict[str, str]) -> list[str]:
    """Seeds per size; per test set the noise ceiling, the reference's reliability and each proxy's R^2
    corrected for attenuation; every size's signal-to-noise ratio (:mod:`proxyscale.correlation.noise`)."""
    seeds = noise.groupby("size")["seeds"].first().reindex([reference, *labels])
    counts = ", ".join(f"{s} {n}" for s, n in seeds.items())
    head = [
        "## Seed noise",
        "",
        f"Seeds per size: {counts} (`seeds` in the config; replicate k trains with the config's seed + k). Every "
        "other table and figure compares seed means: per test example, its loss averaged over the size's seeds.",
        "",
    ]
    if (seeds < 2).all():
        return head + [
            "Every size was trained with one seed, so seed noise cannot be measured: no noise ceiling, reliability "
            f"or signal-to-noise ratio. Set `seeds` in the config (e.g. `seeds: {{{reference}: 2}}`, the reference "
            "trained twice) to measure them.",
            "",
        ]
    if seeds[reference] < 2:
        ceiling = [_no_ceiling(reference), ""]
    else:
        ceiling = _ceiling_table(noise, summary, reference, labels, seeds[reference])
    snr = noise.assign(cell=[_snr_cell(r) for r in noise.itertuples()])
    snr = snr.pivot(index="test", columns="size", values="cell").reindex(columns=list(seeds.index))
    return (
        head
        + ceiling
        + [
            "Signal-to-noise ratio, as Signal and Noise (Heineman et al. 2025, arXiv 2508.13144) defines it: signal is "
            "the spread of the distributions' mean losses, max |m_i - m_j| / mean m; noise their standard deviation "
            "over seeds over mean m (pooled over distributions, with the n - 1 denominator). Their ratio is the gap "
            "between the best and the worst distribution in units of one seed's standard deviation: near 1 or "
            "below, seed noise alone can reorder them.",
            "",
            md_table(snr.reset_index()),
            "",
        ]
    )


def _ceiling_table(
    noise: pd.DataFrame, summary: pd.DataFrame, reference: str, labels: dict[str, str], n: int
) -> list[str]:
    """Per test set: the reference's seed-to-seed R^2 and decision accuracy (the noise ceiling), the
    reliability of its n-seed mean, and each proxy's R^2 -> corrected R^2 (* at the ceiling)."""
    ref = noise[noise["size"] == reference].set_index("test")
    proxies = list(labels)
    cells = {}
    for test, block in summary.groupby("test"):
        block = block.set_index("size")
        cells[test] = {
            "seed-to-seed R^2": f"{ref.loc[test, 'seed_r2']:.2f}",
            "seed-to-seed decision accuracy": f"{ref.loc[test, 'seed_decision_accuracy']:.2f}",
            f"reliability of {n} seeds": f"{ref.loc[test, 'reliability']:.2f}",
            **{labels[p]: _corrected_cell(block.loc[p]) for p in proxies},
        }
    table = pd.DataFrame(cells).T.rename_axis("test").reset_index()
    one_seed = [p for p in proxies if pd.isna(summary.loc[summary["size"] == p, "proxy_reliability"]).all()]
    note = (
        f" Proxies with one seed ({', '.join(one_seed)}) count as noise-free: uncorrected on their side and held "
        "to the reference's reliability."
        if one_seed
        else ""
    )
    return [
        f"The noise ceiling is the reference's agreement with itself across distributions, one seed against "
        f"another (mean over its pairs of {n} seeds): a proxy cannot be expected to agree with one reference seed "
        "better. Against the seed-mean reference, R^2 is bounded by the product of both sides' reliabilities "
        "(Spearman-Brown, n r / (1 + (n - 1) r) from the seeds' correlation r). Each proxy's cell: its R^2 -> "
        "the R^2 corrected for attenuation (divided by that product; sampling error can take it above 1), * where "
        "the proxy is at the noise ceiling: its losses rise with the reference's and the upper end of its R^2 "
        "interval reaches the bound; - where a reliability is 0 (the seeds share no ordering of the "
        "distributions: nothing to correct or reach)." + note,
        "",
        md_table(table),
        "",
    ]


def _corrected_cell(row) -> str:
    """A proxy's R^2 and its corrected R^2, starred at the noise ceiling."""
    corrected = "-" if pd.isna(row["r2_corrected"]) else f"{row['r2_corrected']:.2f}"
    star = " *" if pd.notna(row["at_ceiling"]) and row["at_ceiling"] else ""
    return f"{row['r2']:.2f} -> {corrected}{star}"


def _share(x) -> str:
    """A share to two decimals, or - where there is none (nothing to take it of)."""
    return "-" if pd.isna(x) else f"{x:.2f}"


def _probability_method(decisions: pd.DataFrame) -> str:
    """How the probabilities were made, in words: a probit fit on the other test sets, or, where there are
    none with a known outcome (one test set), the bootstrap share, which the reader must not take at its word."""
    fallback = decisions[decisions["model"] == BOOTSTRAP_MODEL]
    if len(fallback) == len(decisions):
        return (
            "With a single test set there is no other one to learn from how the proxies' decisions carry over to "
            "the reference, so each probability is only the bootstrap share: the share of resamples of the test "
            "examples (and seeds) that keep the proxy's order. It says how sure the proxy is of its own order, not "
            "that the reference agrees, and is overconfident wherever the two disagree beyond sampling noise."
        )
    sentence = (
        "For each pair of training distributions, test set and proxy, the probability that the reference orders "
        "the pair as the proxy does: the proxy's gap in mean loss over its bootstrap standard error (resampling the "
        "test examples, and the seeds of a proxy with several), through a probit fit per proxy on the outcomes of "
        "the other test sets, so that no probability uses the reference's result on its own test set."
    )
    if len(fallback):
        pairs = fallback[["size", "test"]].drop_duplicates().itertuples(index=False)
        sentence += (
            " Where no other test set has a known outcome ("
            + ", ".join(f"{size} on {test}" for size, test in pairs)
            + ") it is the bootstrap share alone, which is overconfident about the reference."
        )
    return sentence


def _decision_probabilities(
    decisions: pd.DataFrame, safe: pd.DataFrame, threshold: float, labels: dict[str, str], figures: dict[str, str]
) -> list[str]:
    """How likely each proxy decision is to hold for the reference (:mod:`proxyscale.correlation.decisions`):
    the method, the reliability figure, per proxy its decisions, those safe at ``threshold`` and the share of
    them that held, and per test set the proxies with no safe decision."""
    proxies = list(labels)
    pooled = safe_decisions(decisions, threshold, by=["size"]).set_index("size").reindex(proxies)
    table = pd.DataFrame(
        {
            "proxy": [labels[p] for p in proxies],
            "decisions": pooled["decisions"].fillna(0).astype(int),
            f"safe (probability >= {threshold:.2f})": pooled["safe"].fillna(0).astype(int),
            "share of the safe that held": pooled["safe_share_held"].map(_share),
            "decision accuracy": pooled["accuracy"].map(_share),
        }
    )
    counts = safe.set_index(["test", "size"])["safe"]
    lines = []
    for test in sorted(decisions["test"].unique()):
        unsafe = [p for p in proxies if counts.get((test, p), 0) == 0]
        lines.append(
            f"- **{test}**: no safe decision from {', '.join(unsafe)}."
            if unsafe
            else f"- **{test}**: every proxy has a safe decision."
        )
    return [
        "## How likely each decision is to hold",
        "",
        _probability_method(decisions)
        + f" A decision is safe when its probability is at least {threshold:.2f} (`report.decision_probability`). "
        "The figure checks the probabilities against what happened, over every pair, test set and proxy; the table "
        "counts each proxy's decisions over all test sets (a pair the proxy ties is no decision; one the reference "
        "ties counts in neither share).",
        "",
        f"![Reliability of the decision probabilities]({figures['reliability_fig']})",
        "",
        md_table(table),
        "",
        *lines,
        "",
    ]


def _headline(summary: pd.DataFrame, compute: pd.DataFrame, proxies: list[str]) -> list[str]:
    """Each statistic with a headline label (:data:`STATISTICS`), averaged over test sets."""
    ratio = compute.set_index("size")["compute_ratio"]
    names = {s.name: s.headline for s in STATISTICS if s.headline}
    headline = summary.groupby("size")[list(names)].mean().reindex(proxies)
    headline.insert(0, "compute_ratio", [ratio[p] for p in proxies])
    return [
        "## Headline: mean over test sets",
        "",
        md_table(headline.rename(columns=names).rename_axis("proxy").reset_index()),
        "",
    ]


def _imported_sizes(compute: pd.DataFrame) -> list[str]:
    """The sizes imported from checkpoints trained elsewhere (the config's models:)."""
    if "origin" not in compute:
        return []
    return compute.loc[compute["origin"] == "imported", "size"].tolist()


def _compute(compute: pd.DataFrame, repeated: pd.DataFrame, figures: dict[str, str], imported: list[str]) -> list[str]:
    formats = {"params": "{:,.0f}", "tokens": "{:,.0f}", "flops": "{:.3g}", "wall_seconds": "{:.2f}",
               "tokens_per_second": "{:,.0f}", "mfu": "{:.1%}", "final_train_loss": "{:.2f}",
               "max_repetition": "{:.2f}"}  # fmt: skip
    shown = compute.assign(
        **{
            c: compute[c].map(lambda x, f=f: "n/a" if pd.isna(x) else f.format(x))
            for c, f in formats.items()
            if c in compute
        }
    )
    imported_note = (
        " Imported sizes (origin imported, the config's models:) were trained elsewhere: their parameters are "
        "counted from the checkpoints (or given), their training tokens are the config's, and what training "
        "measures is n/a."
        if imported
        else ""
    )
    if len(repeated):
        runs = ", ".join(
            f"{r.size} on {r.distribution} ({r.max_shard_repetition:.1f}x {r.most_repeated_shard})"
            for r in repeated.itertuples()
        )
        repeats = f"Runs that see some data more than once (times the most repeated shard is seen): {runs}."
    elif not imported:
        repeats = "No run sees any of its data more than once."
    elif len(imported) == len(compute):
        repeats = "Whether a run sees any of its data more than once: unknown (imported)."
    else:
        repeats = (
            f"No run trained here sees any of its data more than once; for the imported sizes ({', '.join(imported)}): "
            "unknown (imported)."
        )
    return [
        "## Compute",
        "",
        "Training tokens = tokens_per_param x params; FLOPs = 6 x params x tokens for one run. "
        "tokens_per_second: per device, mean over the size's runs; mfu: model FLOPs utilisation, those FLOPs "
        "over the run's wall time over the devices' peak bf16 FLOP/s (n/a where the peak is unknown, as on a "
        "CPU: set `peak_tflops`). max_repetition: the most any of the size's runs repeats one of its shards "
        "(tokens drawn from the shard over its unique tokens); `model.max_repetition` refuses runs above it."
        + imported_note,
        "",
        md_table(shown, floatfmt=".2f"),
        "",
        repeats,
        "",
        f"![training curves]({figures['curves']})",
        "",
    ]


def _interval(row, name: str) -> str:
    """A statistic of a summary row with its interval."""
    return with_ci(row[name], row[f"{name}_lo"], row[f"{name}_hi"])


def _agreement(
    summary: pd.DataFrame, labels: dict[str, str], pct: str, figures: dict[str, str], unit: str
) -> list[str]:
    """R^2 (with the sign of the correlation), Spearman and decision accuracy with intervals,
    leave-one-out, and Figures 1 and 2."""
    proxies = list(labels)

    def by_test(fmt):
        return md_table(_by_test(summary, proxies, fmt).rename(columns=labels))

    opposite = summary[summary["pearson"] < 0]
    warning = (
        "Proxies whose losses move **opposite** to the reference's (negative correlation; a high R^2 there "
        "predicts the reference only by flipping the ranking): "
        + ", ".join(f"{r.size} on {r.test} (r = {r.pearson:.2f})" for r in opposite.itertuples())
        + "."
        if len(opposite)
        else "Every proxy's losses move in the same direction as the reference's (positive correlation)."
    )
    return [
        f"## R^2 of reference on proxy mean loss ({pct} CI)",
        "",
        "In brackets after each R^2: the signed correlation r, whose sign is that of the fitted slope.",
        "",
        by_test(lambda r: f"{_interval(r, 'r2')} (r {r['pearson']:+.2f})"),
        "",
        warning,
        "",
        f"![Figure 1: scatter grid]({figures['scatter']})",
        "",
        f"![Figure 2: R^2 against compute ratio]({figures['r2_compute']})",
        "",
        f"## Spearman correlation ({pct} CI)",
        "",
        by_test(lambda r: _interval(r, "spearman")),
        "",
        f"## Decision accuracy ({pct} CI)",
        "",
        "Share of pairs of training distributions that the proxy orders the same way as the reference "
        "(DataDecide's decision accuracy; 0.5 is chance): would the proxy pick the same dataset?",
        "",
        by_test(lambda r: _interval(r, "decision_accuracy")),
        "",
        "## Leave one distribution out",
        "",
        "A line fit on all other distributions predicts the held-out distribution's reference loss from the "
        f"proxy's; out-of-sample R^2 = 1 - PRESS / total sum of squares, MAE in {unit}.",
        "",
        by_test(lambda r: f"{r['loo_r2']:.2f} (MAE {r['loo_mae']:.3f})"),
        "",
    ]


def _accuracy(accuracy: pd.DataFrame, sizes: list[str], pct: str, figures: dict[str, str]) -> list[str]:
    """Accuracy per test set and size (columns in ``sizes`` order) with its interval, next to chance."""
    if accuracy.empty:
        table = "(no test set with an accuracy)"
    else:
        bounds = accuracy[["accuracy", "accuracy_lo", "accuracy_hi"]].to_numpy()
        cells = accuracy.assign(cell=[with_ci(*row) for row in bounds])
        wide = cells.pivot(index="test", columns="size", values="cell").reindex(columns=sizes)
        chance = accuracy.groupby("test")["chance"].first()
        table = md_table(wide.assign(chance=chance.map(lambda c: f"{c:.2f}")).reset_index())
    return [
        "## Accuracy",
        "",
        "HellaSwag: the gold ending has the lowest length-normalised loss of the 4; LAMBADA: greedy decoding "
        f"reproduces the last word. Mean over training distributions, with its {pct} interval (bootstrap over "
        "test examples, each example's correctness averaged over the distributions); chance is guessing.",
        "",
        table,
        "",
        f"![Figure 3: R^2 against accuracy above chance]({figures['r2_accuracy']})",
        "",
    ]


def _per_sample(
    per_sample: pd.DataFrame, null: pd.DataFrame, labels: dict[str, str], figures: dict[str, str]
) -> list[str]:
    median = per_sample.groupby(["test", "size"])["r2"].median().unstack().reindex(columns=list(labels))
    chance = null.groupby(["test", "size"])["r2"].median().unstack().reindex(columns=list(labels))
    cells = pd.DataFrame(
        {p: [f"{m:.2f} (null {c:.2f})" for m, c in zip(median[p], chance[p])] for p in median.columns},
        index=median.index,
    )
    return [
        "## Per-sample agreement",
        "",
        "Median over test samples of the R^2 across distributions of one sample's proxy loss and reference "
        "loss; in brackets the same median when the proxy's distributions are shuffled against the "
        "reference's (a permutation null: with n distributions, unrelated losses still average about 1/(n - 1)).",
        "",
        md_table(cells.rename(columns=labels).reset_index()),
        "",
        f"![Figure 4: per-sample losses]({figures['per_sample_fig']})",
        "",
        f"![Figure 5: per-sample R^2]({figures['per_sample_hist']})",
        "",
    ]


def correlation_report(results: CorrelationResults, figures: dict[str, str]) -> str:
    """The report's markdown; ``figures`` maps figure keys to paths relative to the report."""
    r = results
    labels = _proxy_labels(r.compute, r.reference)
    proxies = list(labels)
    imported = _imported_sizes(r.compute)
    pct = f"{100 * r.ci:.0f}%"
    parts = [
        *_introduction(
            r.means,
            r.reference,
            proxies,
            r.reserved,
            pct,
            list(r.induced),
            r.tokenizer,
            r.unit,
            imported,
            len(r.compute),
        ),  # fmt: skip
        *_verdict(r.verdict, r.summary, r.reference, r.thresholds, pct),
        *_headline(r.summary, r.compute, proxies),
        *_seed_noise(r.noise, r.summary, r.reference, labels),
        *_decision_probabilities(r.decisions, r.safe, r.decision_probability, labels, figures),
        *_compute(r.compute, r.repeated, figures, imported),
        *_agreement(r.summary, labels, pct, figures, r.unit),
        *_accuracy(r.accuracy, list(r.compute["size"]), pct, figures),
        *_per_sample(r.per_sample, r.null, labels, figures),
    ]
    return "\n".join(parts)
