"""Mining throughput: the shared-process pool vs one theorem per Lean process, at equal Lean processes.

Both designs mine the same theorems with the Lean simulator at its default latency model (p50 22 ms,
p95 300 ms, p99 2 s, mean ~0.12 s per tactic) and a stand-in SGLang server (separate process) answering
every 8-sample generation after a fixed 1.5 s, all latencies multiplied by ``--scale`` to keep the run
short. Reported per design: theorems/h (measured, and at scale 1 = measured x scale), tactics/s, Lean busy
fraction (time with a request in flight / processes x wall), and generation wait (share of walk time
spent waiting for the policy).

* ``one-per-process``: the reference design — at most one theorem per Lean process (concurrency =
  processes) and a sequential walk (generate, try candidates, then the ground-truth step).
* ``shared-pool``: many theorems share the processes (concurrency = ``--per-process`` x processes) and
  generation overlaps the ground-truth step.

Each design mines for ``--duration`` seconds from a pool of theorems larger than it can finish, so the
numbers are steady-state (no ramp-down tail); walks still in flight at the end are dropped, not counted.

    python bench/mine.py [--workers 2] [--duration 40] [--scale 0.15] [--generation-s 1.5] [--json out.json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from workbench.mining.run import MineSettings, mine_async  # noqa: E402
from workbench.traces import bundled_sample_path  # noqa: E402

SHARED_VAL = REPO.parent / "shared" / "data" / "leandojo_mathlib4" / "random" / "val.json"


def start_standin(latency_s: float, traces: Path) -> tuple[subprocess.Popen, str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "workbench.policy.standin_server", "--port", "0", "--latency-s", str(latency_s),
         "--traces", str(traces)], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, cwd=REPO)
    assert proc.stdout is not None
    line = proc.stdout.readline()  # "stand-in SGLang serving on http://127.0.0.1:PORT"
    if "http://" not in line:
        proc.kill()
        raise RuntimeError(f"stand-in SGLang did not start: {line!r}")
    return proc, line.strip().split()[-1]


async def one_design(name: str, args: argparse.Namespace, url: str, traces: Path, out: Path) -> dict:
    sequential = name == "one-per-process"
    settings = MineSettings(
        traces=str(traces), output=str(out / name), num_theorems=args.theorems, min_steps=args.min_steps, seed=0,
        candidates_per_step=8, target_negatives=15, lean="simulated", mode="overwrite",
        lean_workers=args.workers, concurrency=args.workers if sequential else args.per_process * args.workers,
        overlap_generation=not sequential, server_url=url, tactic_timeout_s=30.0, theorem_timeout_s=600.0,
        simulator_args=("--latency-scale", str(args.scale), "--namespace-mismatch-rate", "0.2"), progress=False,
        time_budget_s=args.duration)
    t0 = time.monotonic()
    result = await mine_async(settings)
    run = result.this_run
    return {
        "design": name,
        "lean_processes": args.workers,
        "theorems_in_flight": settings.theorems_in_flight,
        "theorems": run["theorems"],
        "stopped_by_time_budget": run.get("stopped_by_time_budget"),
        "wall_s": round(time.monotonic() - t0, 2),
        "theorems_per_hour": run["theorems_per_hour"],
        "theorems_per_hour_at_scale_1": round(run["theorems_per_hour"] * args.scale, 1),
        "tactics": run["tactics"],
        "tactics_per_s": run["tactics_per_s"],
        "tactics_per_s_at_scale_1": round(run["tactics_per_s"] * args.scale, 2),
        "lean_busy_fraction": run["lean_busy_fraction"],
        "generation_wait_fraction": run["generation_wait_fraction"],
        "generation_wait_per_step_s": round(run["generation_wait_s"] / max(1, run["steps"]), 3),
        "records": result.summary["records"],
    }


async def main_async(args: argparse.Namespace) -> list[dict]:
    traces = Path(args.traces) if args.traces else (SHARED_VAL if SHARED_VAL.exists() else bundled_sample_path())
    proc, url = start_standin(args.generation_s * args.scale, traces)
    try:
        with tempfile.TemporaryDirectory(prefix="bench-mine-") as tmp:
            rows = [await one_design(name, args, url, traces, Path(tmp)) for name in ("one-per-process", "shared-pool")]
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    for row in rows:
        row["traces"] = str(traces)
        row["scale"] = args.scale
        row["generation_latency_s_at_scale_1"] = args.generation_s
    return rows


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--workers", type=int, default=2, help="Lean processes (both designs)")
    p.add_argument("--per-process", type=int, default=12, help="shared pool: theorems in flight per process")
    p.add_argument("--theorems", type=int, default=400, help="theorems available (more than a run finishes)")
    p.add_argument("--duration", type=float, default=40.0, help="seconds each design mines (steady state, no tail)")
    p.add_argument("--min-steps", type=int, default=3)
    p.add_argument("--scale", type=float, default=0.15, help="multiplies every latency (Lean and generation)")
    p.add_argument("--generation-s", type=float, default=1.5, help="stand-in SGLang latency per call at scale 1")
    p.add_argument("--traces", default=None, help="default: ../shared LeanDojo val split, else the bundled sample")
    p.add_argument("--json", default=None, help="also write the rows here")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    rows = asyncio.run(main_async(args))
    cols = ["design", "theorems_in_flight", "theorems", "wall_s", "theorems_per_hour", "theorems_per_hour_at_scale_1",
            "tactics_per_s", "lean_busy_fraction", "generation_wait_fraction", "generation_wait_per_step_s"]
    print(" | ".join(cols))
    for r in rows:
        print(" | ".join(str(r[c]) for c in cols))
    base, pool = rows
    speedup = pool["theorems_per_hour"] / base["theorems_per_hour"] if base["theorems_per_hour"] else float("nan")
    print(f"shared pool vs one theorem per process at {args.workers} Lean processes: {speedup:.2f}x theorems/h; "
          f"Lean busy {pool['lean_busy_fraction']:.0%} vs {base['lean_busy_fraction']:.0%} "
          f"(scale {args.scale}: generation {args.generation_s * args.scale:.3f} s per call, traces {rows[0]['traces']})")
    if args.json:
        Path(args.json).write_text(json.dumps({"rows": rows, "speedup": speedup}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
