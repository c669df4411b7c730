"""Benchmark: load + group a ~100K-theorem LeanDojo file, next to a bare ``json.load`` of it.

    .venv/bin/python bench/load_traces.py [--copies 25] [--keep]

Builds the file by renaming copies of the real sample (../shared/data/leandojo_mathlib4; the bundled
sample when that is absent), then times each reader in its own subprocess and reports wall time and
peak RSS (the floor: a bare parse that builds the whole document in memory).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared" / "data" / "leandojo_mathlib4" / "random"

MEASURE = """
import json, resource, sys, time
t = time.perf_counter()
if sys.argv[1] == "bare":
    n = len(json.load(open(sys.argv[2], "rb")))
else:
    from workbench.traces import load_traces
    n = len(load_traces(sys.argv[2]).theorems)
dt = time.perf_counter() - t
print(json.dumps({"seconds": dt, "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, "theorems": n}))
"""


def source_entries() -> tuple[list, str]:
    files = [SHARED / "val.json", SHARED / "test.json"]
    if all(f.exists() for f in files):
        return [e for f in files for e in json.loads(f.read_text())], "shared sample (4,000 entries)"
    from workbench.traces import bundled_sample_path

    return json.loads(bundled_sample_path().read_text()), "bundled sample"


def build(path: Path, copies: int) -> tuple[int, str]:
    entries, origin = source_entries()
    with path.open("w", encoding="utf-8") as f:
        f.write("[")
        first = True
        for c in range(copies):
            for e in entries:
                f.write(("" if first else ",") + json.dumps({**e, "full_name": f"{e['full_name']}_copy{c}"}, ensure_ascii=False))
                first = False
        f.write("]")
    return copies * len(entries), origin


def measure(mode: str, path: Path) -> dict:
    out = subprocess.run([sys.executable, "-c", MEASURE, mode, str(path)], check=True, capture_output=True, text=True, cwd=REPO)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--copies", type=int, default=25, help="copies of the source entries (25 × 4,000 = 100K)")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "big.json"
        t = time.perf_counter()
        entries, origin = build(path, args.copies)
        size_mb = path.stat().st_size / 2**20
        print(f"built {entries:,} entries from the {origin} in {time.perf_counter() - t:.1f}s: {size_mb:.0f} MB")
        bare = measure("bare", path)
        ours = measure("workbench", path)
    print(f"{'reader':<28}{'seconds':>9}{'peak RSS MB':>13}{'RSS/file':>10}")
    for name, r in (("json.load (floor)", bare), ("load_traces (stream+group)", ours)):
        print(f"{name:<28}{r['seconds']:>9.1f}{r['peak_rss_mb']:>13.0f}{r['peak_rss_mb'] / size_mb:>10.2f}")
    print(f"kept {ours['theorems']:,} theorems; time ratio {ours['seconds'] / bare['seconds']:.2f}× the bare parse")


if __name__ == "__main__":
    main()
