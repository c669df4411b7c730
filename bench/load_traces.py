"""Benchmark: load + group a ~100K-theorem LeanDojo file, next to a bare ``json.load`` of it.

    .venv/bin/python bench/load_traces.py [--copies 25] [--repeats 3]

Builds the file by renaming copies of the real sample (../shared/data/leandojo_mathlib4; the bundled
sample when that is absent), then times each reader in its own subprocess, ``--repeats`` times in
alternating order (bare, ours, ours, bare, ...), and reports medians of wall time, CPU time and peak RSS
and the median of the paired ratios (the floor: a bare parse that builds the whole document in memory);
then once, the RSS a process keeps after sampling 400 theorems from the file (as mining does).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared" / "data" / "leandojo_mathlib4" / "random"

MEASURE = """
import json, resource, sys, time
t, c = time.perf_counter(), time.process_time()
if sys.argv[1] == "bare":
    n = len(json.load(open(sys.argv[2], "rb")))
elif sys.argv[1] == "sample":  # what a mining run keeps: 400 theorems of >= 3 steps
    from workbench.traces import load_traces
    kept = load_traces(sys.argv[2], min_steps=3, num_theorems=400).theorems
    n = len(kept)
else:
    from workbench.traces import load_traces
    n = len(load_traces(sys.argv[2]).theorems)
dt, dc = time.perf_counter() - t, time.process_time() - c
rss = next(int(l.split()[1]) / 1024 for l in open("/proc/self/status") if l.startswith("VmRSS:"))
print(json.dumps({"seconds": dt, "cpu_s": dc, "rss_after_mb": rss, "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, "theorems": n}))
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
    ap.add_argument("--repeats", type=int, default=3, help="paired measurements, order alternating")
    args = ap.parse_args()
    runs: dict[str, list[dict]] = {"bare": [], "workbench": []}
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "big.json"
        t = time.perf_counter()
        entries, origin = build(path, args.copies)
        size_mb = path.stat().st_size / 2**20
        print(f"built {entries:,} entries from the {origin} in {time.perf_counter() - t:.1f}s: {size_mb:.0f} MB")
        for rep in range(args.repeats):
            for mode in (("bare", "workbench") if rep % 2 == 0 else ("workbench", "bare")):
                runs[mode].append(measure(mode, path))
        sample = measure("sample", path)
    med = {mode: {k: statistics.median(r[k] for r in rs) for k in ("seconds", "cpu_s", "peak_rss_mb")}
           for mode, rs in runs.items()}
    print(f"medians of {args.repeats} runs each (alternating order; the machine was shared):")
    print(f"{'reader':<28}{'seconds':>9}{'CPU s':>8}{'peak RSS MB':>13}{'RSS/file':>10}")
    for name, mode in (("json.load (floor)", "bare"), ("load_traces (stream+group)", "workbench")):
        r = med[mode]
        print(f"{name:<28}{r['seconds']:>9.1f}{r['cpu_s']:>8.1f}{r['peak_rss_mb']:>13.0f}{r['peak_rss_mb'] / size_mb:>10.2f}")
    print(f"{'400-theorem sample':<28}{sample['seconds']:>9.1f}{sample['cpu_s']:>8.1f}{sample['peak_rss_mb']:>13.0f}"
          f"{sample['peak_rss_mb'] / size_mb:>10.2f}   RSS kept afterwards {sample['rss_after_mb']:.0f} MB")
    ratios = {k: sorted(o[k] / b[k] for o, b in zip(runs["workbench"], runs["bare"])) for k in ("seconds", "cpu_s")}
    print(f"kept {runs['workbench'][0]['theorems']:,} theorems; load_traces / json.load, median of pairs: "
          f"wall {statistics.median(ratios['seconds']):.2f} (range {ratios['seconds'][0]:.2f}-{ratios['seconds'][-1]:.2f}), "
          f"CPU {statistics.median(ratios['cpu_s']):.2f} (range {ratios['cpu_s'][0]:.2f}-{ratios['cpu_s'][-1]:.2f})")


if __name__ == "__main__":
    main()
