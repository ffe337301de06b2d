"""What a finished run says on the console: the answer of every report it made, or which jobs failed.

The Snakefile's ``onsuccess:`` handler prints :func:`run_summary` (the headline of each report made
in this run, read from the reports' tables) and ``onerror:`` prints :func:`failure_summary` (the
failed jobs and their log files, read from Snakemake's log of the run).

The table reader is imported inside the functions that use it: every Snakemake start imports this
module, and the reader brings numpy.
"""

from __future__ import annotations

import re
from pathlib import Path

from proxyscale.errors import ProxyscaleError
from proxyscale.layout import REPORTS, RESULTS

HTML_REPORT = f"{RESULTS}/report.html"


def correlation_headline(folder: Path) -> list[str]:
    """The largest proxy's R^2 (mean over test sets) and, per test set, the cheapest proxy that passes."""
    from proxyscale.artifacts import load_parquet

    summary = load_parquet(folder / "summary.parquet")
    verdict = load_parquet(folder / "verdict.parquet")
    largest = summary.loc[summary["compute_ratio"].idxmin(), "size"]
    mine = summary[summary["size"] == largest]
    lines = [
        f"largest proxy {largest} ({mine['compute_ratio'].iloc[0]:.1f}x less compute than the reference): "
        f"R^2 {mine['r2'].mean():.2f} across distributions, mean over {len(mine)} test sets"
    ]
    passes = [
        f"{r.test}: {r.proxy} ({r.compute_ratio:.0f}x)" if isinstance(r.proxy, str) else f"{r.test}: none"
        for r in verdict.itertuples()
    ]
    return lines + ["cheapest proxy that predicts the reference, per test set: " + ", ".join(passes)]


def lds_headline(folder: Path) -> list[str]:
    """Every size's LDS, the configured variant first and the other (Q term on or off) beside it."""
    from proxyscale.artifacts import load_parquet

    lds = load_parquet(folder / "lds.parquet")
    mine, other = lds[lds["configured"]].set_index("size"), lds[~lds["configured"]].set_index("size")
    q = bool(mine["q_term"].iloc[0])
    flip = "without" if q else "with"
    parts = [
        f"{size} {r.lds:.3f} [{r.lds_lo:.3f}, {r.lds_hi:.3f}] ({other.loc[size, 'lds']:.3f} {flip} Q)"
        for size, r in mine.sort_values("compute_ratio").iterrows()
    ]
    return [f"LDS {'with' if q else 'without'} Q, reference first: " + ", ".join(parts)]


def dsdm_headline(folder: Path) -> list[str]:
    """Per target, DsDm with each size against random: holdout loss change and whether it beats random."""
    from proxyscale.artifacts import load_parquet

    results = load_parquet(folder / "results.parquet")
    lines = []
    for target, block in results.groupby("target", sort=False):
        dsdm = block[block["kind"] == "dsdm"].sort_values("compute_ratio")
        parts = [
            f"{r.method} {r.loss_delta:+.3f} [{r.loss_delta_lo:+.3f}, {r.loss_delta_hi:+.3f}]"
            for r in dsdm.itertuples()
        ]
        lines.append(f"{target}: DsDm holdout loss minus random's (below 0: DsDm helps): " + ", ".join(parts))
    return lines


HEADLINES = {"correlation": correlation_headline, "attribution": lds_headline, "selection": dsdm_headline}


def run_summary(workdir: str | Path = ".", since: float = 0.0) -> str:
    """The headline of every report written at or after ``since`` (a time stamp), with its path; empty
    when the run made none."""
    workdir = Path(workdir)
    blocks = []
    for name, report in REPORTS.items():
        path = workdir / report
        if not path.is_file() or path.stat().st_mtime < since:
            continue
        try:
            lines = HEADLINES[name](path.parent)
        except (ProxyscaleError, KeyError) as exc:  # a damaged table, or one from an older version
            lines = [f"(no headline: {type(exc).__name__}: {exc})"]
        blocks.append("\n".join([f"{name}: {report}", *(f"  {line}" for line in lines)]))
    if not blocks:
        return ""
    return "\n".join(
        [
            "",
            "What this run found:",
            *blocks,
            f"The run in one HTML page (its reports, every figure captioned): snakemake --report {HTML_REPORT}",
        ]
    )


_ERROR = re.compile(r"^Error in rule (\w+):$")
_START = re.compile(r"^(?:local)?(?:rule|checkpoint) (\w+):$")
_JOB_LINE = re.compile(r"^error in rule \w+: ")  # the one line a failed job's runner writes (proxyscale.runner)


def _blocks(lines: list[str], header: re.Pattern) -> list[dict]:
    """Snakemake's job blocks that start with ``header`` (the rule name its group), each with its indented
    ``key: value`` details."""
    blocks = []
    for i, line in enumerate(lines):
        if m := header.match(line.strip()):
            block = {"rule": m[1]}
            for detail in lines[i + 1 :]:
                if not detail.startswith((" ", "\t")):
                    break
                key, _, value = detail.strip().partition(": ")
                block.setdefault(key, value.replace(" (check log file(s) for error details)", ""))
            blocks.append(block)
    return blocks


def _job_error(log: str) -> str:
    """What a failed job said: the one line its runner wrote (without the rule, which the summary names),
    else its log's last line (an error from outside the runner), or nothing when the log is missing."""
    try:
        lines = [line for line in Path(log).read_text(errors="replace").splitlines() if line.strip()]
    except OSError:
        return ""
    said = [line for line in lines if _JOB_LINE.match(line)]
    return _JOB_LINE.sub("", said[-1]) if said else (lines[-1].strip() if lines else "")


def failure_summary(snakemake_logs: str | Path | list) -> str:
    """The failed jobs of a run, from Snakemake's log of it (the ``log`` an ``onerror:`` handler gets: one
    path or, in Snakemake 9, a list of them): each job's rule and wildcards, the one line it failed with
    (from its log file) and that log's path."""
    paths = [snakemake_logs] if isinstance(snakemake_logs, str | Path) else list(snakemake_logs)
    lines = []
    for path in paths:
        try:
            lines += Path(path).read_text().splitlines()
        except OSError:
            continue
    wildcards = {b.get("jobid"): b["wildcards"] for b in _blocks(lines, _START) if "wildcards" in b}
    failed = _blocks(lines, _ERROR)
    if not failed:
        return ""
    out = ["", f"{len(failed)} job(s) failed:"]
    for job in failed:
        what = job.get("wildcards") or wildcards.get(job.get("jobid")) or job.get("output", "").split(", ")[0]
        said = _job_error(job["log"].split(", ")[0]) if "log" in job else ""
        out.append(f"  {job['rule']}" + (f" ({what})" if what else "") + (f": {said}" if said else ""))
        out.append(f"    log: {job['log']}" if "log" in job else "    no log file")
    out.append(f"Snakemake's own log: {', '.join(str(p) for p in paths)}")
    return "\n".join(out)
