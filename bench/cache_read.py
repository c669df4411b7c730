"""Benchmark: reading an embedding cache again while its files are unchanged.

A `train-ebm` run with `--eval-traces` asks for its cache in five places (training, then each evaluation's
scorer). This builds a cache of random vectors (default 20,000 states x 4096 float32 in 10 parts, about the
shared sample's hashed cache), then times, taking turns each round:
  full read   the read read_embeddings does when the files changed (what every call cost before)
  kept        read_embeddings again on the unchanged files (stat each part, compare, return the kept table)

    .venv/bin/python bench/cache_read.py [--states 20000] [--dim 4096] [--parts 10] [--rounds 3]
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from workbench.encode import EncoderIdentity, read_embeddings
from workbench.encode import cache


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--states", type=int, default=20_000)
    ap.add_argument("--dim", type=int, default=4096)
    ap.add_argument("--parts", type=int, default=10)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    identity = EncoderIdentity(model="bench-random", dim=args.dim, pooling="none", dtype="float32", template="{state}")
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "cache"
        for part in np.array_split(np.arange(args.states), args.parts):
            cache.write_part(folder, [f"⊢ state {i}" for i in part],
                             rng.standard_normal((len(part), args.dim), dtype=np.float32), identity)

        def full() -> None:
            cache._read_embeddings(folder, allow_unknown_identity=False)  # what read_embeddings does on a change

        def kept() -> None:
            read_embeddings(folder)

        times: dict[str, list[float]] = {"full read": [], "kept": []}
        full()  # warm the page cache
        kept()
        for _ in range(args.rounds):
            for name, fn in (("full read", full), ("kept", kept)):
                t0 = time.perf_counter()
                fn()
                times[name].append(time.perf_counter() - t0)
        size = sum(p.stat().st_size for p in folder.glob("part-*.parquet"))
    med = {name: statistics.median(v) for name, v in times.items()}
    print(json.dumps({"states": args.states, "dim": args.dim, "parts": args.parts, "cache_mb": round(size / 2**20),
                      "median_s": {k: round(v, 4) for k, v in med.items()},
                      "full_over_kept": round(med["full read"] / med["kept"])}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
