#!/usr/bin/env python3
"""Rewrite the README's "What a run gives" section from a finished default run: each report's headline
(copied from the report files, not typed), Figure 1 as a picture, and the machine and wall time of the run.

    snakemake --cores 2 && scripts/readme_results.py            # the run in this checkout
    scripts/readme_results.py --workdir /path/to/another/run    # or one made elsewhere on this machine

The wall time and job count come from the Snakemake log of the newest complete run in the working
directory; the machine is the one this script runs on, so run it where the workflow ran.
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import shutil
import sys
from pathlib import Path

from proxyscale.io import atomic_path, save_text
from proxyscale.layout import REPORTS, artifact_path

REPO = Path(__file__).resolve().parents[1]
START, END = "<!-- results:start -->", "<!-- results:end -->"
FIGURE = "results/readme/fig1_scatter.png"  # committed (see .gitignore), so the README can show it

# (report, the sections of it the README shows)
SECTIONS = [
    (
        REPORTS["correlation"],
        ["Verdict: the cheapest proxy you can trust, per test set", "Headline: mean over test sets", "Accuracy"],
    ),
    (REPORTS["attribution"], ["LDS against compute (Figure 6)"]),
    (REPORTS["selection"], ["Findings"]),
]


def section(markdown: str, title: str) -> list[str]:
    """The lines of one ``## title`` section, without its figures (their links are relative to the report)."""
    lines = markdown.splitlines()
    start = lines.index(f"## {title}")
    end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith("## ")), len(lines))
    body = "\n".join(line for line in lines[start + 1 : end] if not line.startswith("!["))
    return [f"#### {title}", "", re.sub(r"\n{3,}", "\n\n", body).strip()]


def complete_run(workdir: Path) -> tuple[int, str]:
    """Job count and elapsed time of the newest Snakemake log in ``workdir`` that finished every step."""
    for log in sorted((workdir / ".snakemake/log").glob("*.snakemake.log"), reverse=True):
        text = log.read_text()
        done = re.search(r"^(\d+) of \1 steps \(100%\) done$", text, re.M)
        elapsed = re.search(r"^Elapsed time: (\d+):(\d+):(\d+)", text, re.M)
        if done and elapsed:
            h, m, s = (int(x) for x in elapsed.groups())
            return int(done[1]), f"{60 * h + m} min {s} s"
    raise SystemExit(f"{workdir}: no complete Snakemake run logged under .snakemake/log")


def machine() -> str:
    """CPU model, cores, memory and GPU of this machine, in words."""
    cpu = platform.processor() or platform.machine()
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file() and (m := re.search(r"^model name\s*:\s*(.+)$", cpuinfo.read_text(), re.M)):
        cpu = m[1].strip()
    memory = ""
    meminfo = Path("/proc/meminfo")
    if meminfo.is_file() and (m := re.search(r"^MemTotal:\s*(\d+) kB", meminfo.read_text(), re.M)):
        memory = f", {int(m[1]) / 2**20:.0f} GiB memory"
    gpu = "a GPU" if shutil.which("nvidia-smi") else "no GPU"
    return f"{cpu}, {os.cpu_count()} cores{memory}, {gpu}"


def results_block(workdir: Path) -> str:
    jobs, elapsed = complete_run(workdir)
    parts = [
        START,
        "<!-- written by scripts/readme_results.py from a finished run; edit the script, not this block -->",
        f"The default `snakemake --cores 2` run ({jobs} jobs) took {elapsed} on {machine()}. "
        "Its reports open with these sections:",
        "",
    ]
    for report, titles in SECTIONS:
        text = (workdir / report).read_text()
        parts += [f"**{report}**", ""]
        for title in titles:
            parts += [*section(text, title), ""]
    parts += [
        f"![Figure 1: reference loss against each proxy's, one point per training distribution]({FIGURE})",
        "",
        END,
    ]
    return "\n".join(parts)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", type=Path, default=REPO, help="where the run was made (default: this checkout)")
    parser.add_argument("--readme", type=Path, default=REPO / "README.md", help="the README to rewrite")
    args = parser.parse_args()
    text = args.readme.read_text()
    if START not in text or END not in text:
        sys.exit(f"{args.readme}: no {START} ... {END} block to rewrite")
    block = results_block(args.workdir)
    with atomic_path(args.readme.parent / FIGURE) as tmp:
        shutil.copyfile(args.workdir / artifact_path("correlation_report", file="fig1_scatter.png"), tmp)
    head, rest = text.split(START, 1)
    save_text(head + block + rest.split(END, 1)[1], args.readme)
    print(f"{args.readme}: results section rewritten from {args.workdir}")


if __name__ == "__main__":
    main()
