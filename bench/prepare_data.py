"""Data preparation at volume: tokens per second and peak memory of preparing a synthetic corpus.

Writes synthetic JSON-lines corpora of the given sizes (English-like documents of random words), then
prepares each as a training source (:func:`proxyscale.data.prepare.prepare_source`: streamed reading,
hash split, batch tokenisation, incremental shard) with the byte tokenizer and with a byte-level BPE
trained on its first megabytes, each in a fresh process so that its peak resident memory is its own.
It also times the tokenizer alone on in-memory documents, so the last column says how close
preparation comes to the tokenizer's own speed.

    python bench/prepare_data.py [--sizes-mb 250 1000] [--threads 2] [--workdir DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

BPE_VOCAB = 8192
BPE_TRAIN_MB = 20


def write_corpus(path: Path, megabytes: int, seed: int = 0) -> None:
    """JSON lines of documents of 50-1500 random words from a Zipf-like 20,000-word vocabulary."""
    rng = np.random.default_rng(seed)
    letters = np.array(list("etaoinshrdlcumwfgypbvkjxqz"))
    words = ["".join(rng.choice(letters, size=rng.integers(1, 10))) for _ in range(20_000)]
    probs = 1.0 / np.arange(1, len(words) + 1)
    probs /= probs.sum()
    target = megabytes * 2**20
    with open(path, "w") as f:
        written = 0
        while written < target:
            ids = rng.choice(len(words), size=(256, 800), p=probs)
            lengths = rng.integers(50, 1500, size=256)
            for row, n in zip(ids, lengths):
                line = json.dumps({"text": " ".join(words[i] for i in row[: min(n, 800)]) + "."}) + "\n"
                f.write(line)
                written += len(line)


def run_one(corpus: str, tokenizer: str, bpe_path: str) -> dict:
    """Prepare ``corpus`` in this process; report time, tokens and peak RSS."""
    from proxyscale.data.prepare import iter_source, prepare_source
    from proxyscale.data.tokenizer import make_tokenizer

    spec = {"kind": "byte"} if tokenizer == "byte" else {"kind": "hf", "path": bpe_path}
    tok = make_tokenizer(spec)
    out = Path(corpus).parent
    start = time.perf_counter()
    stats = prepare_source(
        iter_source([{"path": corpus, "format": "jsonl"}]), tok, 0.01, out / "shard.npy", out / "holdout.parquet"
    )
    seconds = time.perf_counter() - start
    # the tokenizer alone, on the first 2,048 documents held in memory
    docs = []
    with open(corpus) as f:
        for line, _ in zip(f, range(2048)):
            docs.append(json.loads(line)["text"])
    t0 = time.perf_counter()
    ids = tok.encode_batch(docs)
    alone = sum(len(x) for x in ids) / (time.perf_counter() - t0)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    return {
        "seconds": seconds,
        "tokens": stats["tokens"],
        "characters": stats["characters"],
        "peak_mb": peak,
        "tokenizer_tokens_per_s": alone,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes-mb", type=int, nargs="+", default=[250, 1000])
    parser.add_argument("--threads", type=int, default=2, help="tokenizer threads (RAYON_NUM_THREADS)")
    parser.add_argument("--workdir", help="where corpora are written (default: a temporary folder)")
    parser.add_argument("--one", nargs=3, metavar=("CORPUS", "TOKENIZER", "BPE"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(run_one(*args.one)))
        return
    work = Path(args.workdir or tempfile.mkdtemp(prefix="prepare_bench_"))
    work.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "RAYON_NUM_THREADS": str(args.threads)}
    bpe = work / "bpe.json"
    rows = []
    for mb in args.sizes_mb:
        folder = work / f"{mb}mb"
        folder.mkdir(exist_ok=True)
        corpus = folder / "corpus.jsonl"
        if not corpus.exists():
            write_corpus(corpus, mb)
        if not bpe.exists():
            from proxyscale.data.tokenizer import train_bpe

            with open(corpus) as f:
                docs, size = [], 0
                for line in f:
                    docs.append(json.loads(line)["text"])
                    size += len(line)
                    if size > BPE_TRAIN_MB * 2**20:
                        break
            train_bpe(docs, BPE_VOCAB).save(str(bpe))
        for tokenizer in ("byte", "bpe"):
            cmd = [sys.executable, __file__, "--one", str(corpus), tokenizer, str(bpe)]
            result = json.loads(subprocess.run(cmd, capture_output=True, text=True, env=env, check=True).stdout)
            rows.append({"corpus_mb": mb, "tokenizer": tokenizer, **result})
    print(
        f"{'corpus':>8} {'tokenizer':>9} {'tokens':>13} {'seconds':>8} {'Mtok/s':>7} {'MB/s':>6} "
        f"{'peak MB':>8} {'vs tokenizer alone':>18}"
    )
    for r in rows:
        rate = r["tokens"] / r["seconds"]
        print(
            f"{r['corpus_mb']:>6}MB {r['tokenizer']:>9} {r['tokens']:>13,} {r['seconds']:>8.1f} {rate / 1e6:>7.2f} "
            f"{r['characters'] / r['seconds'] / 2**20:>6.1f} {r['peak_mb']:>8.0f} "
            f"{rate / r['tokenizer_tokens_per_s']:>18.2f}"
        )
    for tokenizer in ("byte", "bpe"):
        peaks = [r["peak_mb"] for r in rows if r["tokenizer"] == tokenizer]
        print(f"{tokenizer}: peak memory ratio, largest over smallest corpus: {max(peaks) / min(peaks):.2f}")


if __name__ == "__main__":
    main()
