"""Wall time of `snakemake --cores N <target>` on the default config, from scratch.

Runs in a fresh temporary directory (data linked, config copied) so the repository's results/ is
untouched, then prints the wall time, the ratio to the target's goal (the issues' time goals), and the
summed time per rule from the per-job logs.

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
GOAL_SECONDS = {"correlation_report": 360, "lds_report": 600, "dsdm_report": 600, "all": 1200}


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
        start = time.perf_counter()
        subprocess.run(
            [
                "snakemake",
                "--snakefile",
                str(REPO / "Snakefile"),
                "--directory",
                str(work),
                "--cores",
                str(args.cores),
                args.target,
                "--quiet",
                "all",
            ],
            check=True,
        )
        wall = time.perf_counter() - start
        per_rule = collections.defaultdict(float)
        for log in (work / "results/logs").rglob("*.log"):
            for m in re.finditer(r"rule (\w+) done in ([\d.]+)s", log.read_text()):
                per_rule[m[1]] += float(m[2])
    goal = GOAL_SECONDS[args.target]
    print(f"{args.target} with --cores {args.cores}: {wall:.1f} s wall ({wall / goal:.2f} x the {goal} s goal)")
    for rule, seconds in sorted(per_rule.items(), key=lambda kv: -kv[1]):
        print(f"  {rule:<16} {seconds:7.1f} s of job time ({seconds / wall:.2f} x wall)")


if __name__ == "__main__":
    main()
