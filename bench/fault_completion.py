"""Theorem completion under Lean crashes and hangs, and what ``--resume`` recovers.

Mines the same theorems with the simulator crashing (exit mid-request) or hanging (never answering, the
backstop path: the request deadline kills the process) on a fraction of ``goal.tactic`` requests, then
resumes the output (which retries theorems ended by infrastructure). A theorem counts as complete when
it has a sealed status line that ended by Lean's verdict (not timed out, and
``workbench.mining.run.retry_reason`` is None); completion is over the selected theorems. Every
latency, the REPL's import time (``--import-s``), the tactic deadline (30 s) and the theorem budget
(120 s) are multiplied by ``--scale``; wall times are as measured (not rescaled).

    python bench/fault_completion.py [--faults none:0,crash:0.05,crash:0.1,hang:0.05,hang:0.1] [--theorems 40]
        [--scale 0.1] [--resumes 1] [--json out.json]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from workbench.mining.output import read_status_lines  # noqa: E402
from workbench.mining.run import MineSettings, mine, retry_reason  # noqa: E402
from workbench.traces import bundled_sample_path  # noqa: E402

SHARED_VAL = REPO.parent / "shared" / "data" / "leandojo_mathlib4" / "random" / "val.json"
FAULT_FLAGS = {"none": None, "crash": "--crash-rate", "hang": "--hang-rate"}


def completion(out: Path, selected: int) -> dict[str, float | int]:
    lines = read_status_lines(out)
    infra = [line for line in lines if retry_reason(line, retry_incomplete=False)]
    timed_out = sum(line["status"] == "timed_out" for line in lines)
    done = [line for line in lines if line["status"] != "timed_out" and not retry_reason(line, retry_incomplete=False)]
    return {"selected": selected, "sealed": len(lines), "complete": round(len(done) / max(1, selected), 4),
            "infra_ended": len(infra), "timed_out": timed_out}


def run_quietly(settings: MineSettings) -> tuple[object | None, float, str | None]:
    """One ``mine``; (result or None, wall seconds, how it stopped if it raised)."""
    t0 = time.monotonic()
    try:
        return mine(settings), time.monotonic() - t0, None
    except Exception as e:  # noqa: BLE001 - a run that stops (exit 3) is a data point here
        return getattr(e, "result", None), time.monotonic() - t0, type(e).__name__


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--faults", default="none:0,crash:0.05,crash:0.1,hang:0.05,hang:0.1",
                   help="comma-separated KIND:RATE, KIND one of none, crash, hang (per goal.tactic request)")
    p.add_argument("--theorems", type=int, default=40)
    p.add_argument("--scale", type=float, default=0.1)
    p.add_argument("--import-s", type=float, default=30.0, help="REPL start-up time at scale 1 (Mathlib import)")
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--per-process", type=int, default=8)
    p.add_argument("--resumes", type=int, default=1)
    p.add_argument("--seed", type=int, default=1, help="the simulator's seed (faults are drawn per process)")
    p.add_argument("--traces", type=Path, default=SHARED_VAL if SHARED_VAL.exists() else bundled_sample_path(),
                   help="LeanDojo traces (default: the shared real sample's val.json, else the bundled sample)")
    p.add_argument("--json", type=Path)
    args = p.parse_args()
    logging.basicConfig(level=logging.ERROR)
    traces = args.traces
    rows = []
    for spec in args.faults.split(","):
        kind, _, rate = spec.partition(":")
        flag = FAULT_FLAGS[kind]
        faults = (flag, rate) if flag else ()
        with tempfile.TemporaryDirectory() as tmp:
            settings = MineSettings(
                traces=str(traces), output=str(Path(tmp) / "out"), num_theorems=args.theorems, min_steps=2,
                lean="simulated", mode="overwrite", lean_workers=args.workers,
                concurrency=args.workers * args.per_process, tactic_timeout_s=30 * args.scale,
                theorem_timeout_s=120 * args.scale, progress=False,
                simulator_args=("--latency-scale", str(args.scale), *faults,
                                "--start-delay", str(args.import_s * args.scale), "--seed", str(args.seed)))
            first, wall, stopped = run_quietly(settings)
            selected = first.this_run["selected"] if first is not None else args.theorems
            row = {"fault": kind, "rate": float(rate or 0), "first_run": completion(Path(settings.output), selected),
                   "wall_s": [round(wall, 1)], "stopped": [stopped],
                   "restarts": first.this_run.get("lean_restarts") if first is not None else None}
            for i in range(args.resumes):
                _, wall, stopped = run_quietly(dataclasses.replace(settings, mode="resume"))
                row[f"after_resume_{i + 1}"] = completion(Path(settings.output), selected)
                row["wall_s"].append(round(wall, 1))
                row["stopped"].append(stopped)
            rows.append(row)
            print(json.dumps(row), flush=True)
    if args.json:
        args.json.write_text(json.dumps({"traces": str(traces), "args": vars(args), "rows": rows}, indent=1,
                                        default=str))


if __name__ == "__main__":
    main()
