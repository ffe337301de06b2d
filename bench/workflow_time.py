"""Wall time of `snakemake --cores N <target>` on the default config, from scratch, and where it goes.

Runs in a fresh temporary directory (data linked, config copied) so the repository's results/ is
untouched, then prints the wall time, the ratio to the target's goal (the issues' time goals), and per
rule, from the per-job logs: the job count, the summed seconds of the jobs' own work (their ``main``),
the summed start-up seconds (interpreter, imports, Snakemake's preamble: logged by jobs since the
runner records it), and the share of the wall time the cores spent outside the jobs' own work. Then
it times a no-op rerun of the same target (nothing to do: the DAG and the up-to-date checks only).

    python bench/workflow_time.py [--cores 2] [--target correlation_report] [--keep DIR]

``--keep DIR`` runs in DIR (which must not exist) and leaves the results there for inspection.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import re
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
GOAL_SECONDS = {"correlation_report": 360, "lds_report": 600, "dsdm_report": 600, "all": 480}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cores", type=int, default=2)
    parser.add_argument("--target", default="correlation_report", choices=sorted(GOAL_SECONDS))
    parser.add_argument("--keep", type=Path, help="run in this new directory and keep its results")
    args = parser.parse_args()
    with contextlib.ExitStack() as stack:
        if args.keep:
            args.keep.mkdir(parents=True)
            work = args.keep.resolve()
        else:
            work = Path(stack.enter_context(tempfile.TemporaryDirectory()))
        (work / "data").symlink_to(REPO / "data")
        shutil.copy(REPO / "config.yaml", work / "config.yaml")
        command = ["snakemake", "--snakefile", str(REPO / "Snakefile"), "--directory", str(work)]
        command += ["--cores", str(args.cores), args.target, "--quiet", "all"]
        start = time.perf_counter()
        subprocess.run(command, check=True)
        wall = time.perf_counter() - start
        jobs = collections.Counter()
        own, startup = collections.defaultdict(float), collections.defaultdict(float)
        for log in (work / "results/logs").rglob("*.log"):
            for m in re.finditer(r"rule (\w+) done in ([\d.]+)s(?: \(start-up ([\d.]+)s\))?", log.read_text()):
                jobs[m[1]] += 1
                own[m[1]] += float(m[2])
                startup[m[1]] += float(m[3] or 0)
        start = time.perf_counter()
        subprocess.run(command, check=True)
        noop = time.perf_counter() - start
    goal = GOAL_SECONDS[args.target]
    print(f"{args.target} with --cores {args.cores}: {wall:.1f} s wall ({wall / goal:.2f} x the {goal} s goal)")
    total = sum(own.values())
    outside = 1 - total / (args.cores * wall)
    print(f"jobs' own work {total:.1f} s in {sum(jobs.values())} jobs: {outside:.0%} of cores x wall is outside it")
    print(f"  {'rule':<18} {'jobs':>5} {'own work s':>10} {'start-up s':>10} {'own/wall':>8}")
    for rule, seconds in sorted(own.items(), key=lambda kv: -kv[1]):
        print(f"  {rule:<18} {jobs[rule]:>5} {seconds:>10.1f} {startup[rule]:>10.1f} {seconds / wall:>8.2f}")
    print(f"no-op rerun: {noop:.2f} s")


if __name__ == "__main__":
    main()
