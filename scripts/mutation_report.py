"""The mutation score per module from mutmut's results (``scripts/mutation`` runs it after ``mutmut run``).

Reads ``mutmut results --all true`` (one ``<module>.x_<function>__mutmut_<n>: <status>`` line per
mutant) and prints, per module, the mutants killed (a test failed; a timeout counts as killed), those
that survived, those without a covering test, and the killed share of the mutants that were run, then
the names of the survivors (``mutmut show <name>`` prints one's diff).
"""

from __future__ import annotations

import collections
import re
import subprocess

LINE = re.compile(r"^\s*(?P<module>[\w.]+)\.x_\w+__mutmut_\d+: (?P<status>.+)$")
KILLED = {"killed", "timeout"}


def main() -> None:
    out = subprocess.run(["mutmut", "results", "--all", "true"], capture_output=True, text=True, check=True).stdout
    counts: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
    survivors = []
    for line in out.splitlines():
        match = LINE.match(line)
        if not match:
            continue
        status = match["status"].strip()
        counts[match["module"]][status] += 1
        if status == "survived":
            survivors.append(line.strip().split(":")[0])
    print(f"{'module':<42} {'killed':>7} {'survived':>8} {'no tests':>8} {'score':>6}")
    for module, c in sorted(counts.items()):
        killed = sum(c[s] for s in KILLED)
        run = killed + c["survived"]
        if not run:
            continue
        print(f"{module:<42} {killed:>7} {c['survived']:>8} {c['no tests']:>8} {killed / run:>6.0%}")
    if survivors:
        print("\nsurvivors:\n  " + "\n  ".join(survivors))


if __name__ == "__main__":
    main()
