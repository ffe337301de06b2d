#!/usr/bin/env python3
"""Write the local samples the smoke overlays (configs/smoke/) read, made from the embedded data:
training sources and test sets in the Hugging Face schemas of the paper's datasets, and a CIFAR-10-format
sample. See proxyscale/data/samples.py.

    python scripts/make_smoke_data.py            # -> data/smoke (git-ignored)
"""

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from proxyscale.data.samples import write_samples  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", nargs="?", default=str(ROOT / "data/smoke"), help="output folder (default data/smoke)")
    args = parser.parse_args()
    write_samples(ROOT / "data", Path(args.out))
    print(f"samples written under {args.out}")


if __name__ == "__main__":
    main()
