"""The mutation score per module from mutmut's results (``scripts/mutation`` runs it after ``mutmut run``).

Reads ``mutmut results --all true`` (one line per mutant with its status) and prints, per module, the
mutants killed (a test failed; a timeout counts as killed), those that survived, those no selected
test reaches, those listed as equivalent in ``scripts/mutation_equivalent.txt`` (a change that cannot
alter any result, each with its reason), those not run yet, and the score: killed over every mutant
that was run and is not equivalent (a mutant no test reaches counts as not killed). Then the
survivors that are not listed as equivalent (``mutmut show <name>`` prints one's diff).
"""

from __future__ import annotations

import collections
import re
import subprocess
from pathlib import Path

# mutmut names a function's mutant <module>.x_<function>__mutmut_<n>, a method's <module>.xǁ<Class>ǁ<method>__mutmut_<n>
LINE = re.compile(r"^\s*(?P<name>(?P<module>[\w.]+?)\.x[_ǁ]\S+__mutmut_\d+): (?P<status>.+)$")
KILLED = {"killed", "timeout"}
NOT_KILLED = {"survived", "no tests"}
EQUIVALENT = Path(__file__).with_name("mutation_equivalent.txt")


def equivalent_mutants() -> set[str]:
    """Names listed in the equivalence file (first word of each line; ``#`` starts a comment)."""
    lines = (line.split("#")[0].split() for line in EQUIVALENT.read_text().splitlines())
    return {words[0] for words in lines if words}


def main() -> None:
    out = subprocess.run(["mutmut", "results", "--all", "true"], capture_output=True, text=True, check=True).stdout
    equivalent = equivalent_mutants()
    counts: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
    survivors = []
    for line in out.splitlines():
        if not (match := LINE.match(line)):
            continue
        status = match["status"].strip()
        if status in NOT_KILLED and match["name"] in equivalent:
            status = "equivalent"
        elif status in NOT_KILLED:
            survivors.append(f"{match['name']} ({status})")
        counts[match["module"]][status] += 1
    header = ("killed", "survived", "no tests", "equivalent", "not run", "score")
    print(f"{'module':<36}" + "".join(f"{h:>11}" for h in header))
    for module, c in sorted(counts.items()):
        killed = sum(c[s] for s in KILLED)
        scored = killed + c["survived"] + c["no tests"]
        score = f"{killed / scored:.0%}" if scored else "-"
        values = (killed, c["survived"], c["no tests"], c["equivalent"], c["not checked"], score)
        print(f"{module:<36}" + "".join(f"{v:>11}" for v in values))
    if survivors:
        print("\nnot killed, not equivalent:\n  " + "\n  ".join(survivors))


if __name__ == "__main__":
    main()
