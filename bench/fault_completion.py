"""Theorem completion under Lean crashes, and what ``--resume`` recovers.

Mines the same theorems with the simulator crashing on a fraction of ``goal.tactic`` requests, then resumes
the output (which retries theorems ended by infrastructure: crashed ground truth, or timed out while their
process restarted). A theorem counts as complete when it ended by Lean's verdict (not timed out, and
``workbench.mining.run.retry_reason`` is None). Every latency, the REPL's import
time (``--import-s``) and the theorem budget (120 s) are multiplied by ``--scale``.

    python bench/fault_completion.py [--rates 0,0.05,0.1] [--theorems 60] [--scale 0.1] [--resumes 2] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from workbench.mining.output import read_status_lines  # noqa: E402
from workbench.mining.run import MineSettings, mine, retry_reason  # noqa: E402
from workbench.traces import bundled_sample_path  # noqa: E402

SHARED_VAL = REPO.parent / "shared" / "data" / "leandojo_mathlib4" / "random" / "val.json"


def completion(out: Path) -> dict[str, float | int]:
    lines = read_status_lines(out)
    infra = [line for line in lines if retry_reason(line, retry_incomplete=False)]
    timed_out = sum(line["status"] == "timed_out" for line in lines)
    done = [line for line in lines if line["status"] != "timed_out" and not retry_reason(line, retry_incomplete=False)]
    return {"theorems": len(lines), "complete": round(len(done) / max(1, len(lines)), 4),
            "infra_ended": len(infra), "timed_out": timed_out}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rates", default="0,0.05,0.1")
    p.add_argument("--theorems", type=int, default=60)
    p.add_argument("--scale", type=float, default=0.1)
    p.add_argument("--import-s", type=float, default=30.0, help="REPL start-up time at scale 1 (Mathlib import)")
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--per-process", type=int, default=8)
    p.add_argument("--resumes", type=int, default=2)
    p.add_argument("--json", type=Path)
    args = p.parse_args()
    logging.basicConfig(level=logging.ERROR)
    traces = SHARED_VAL if SHARED_VAL.exists() else bundled_sample_path()
    rows = []
    for rate in (float(r) for r in args.rates.split(",")):
        with tempfile.TemporaryDirectory() as tmp:
            settings = MineSettings(
                traces=str(traces), output=str(Path(tmp) / "out"), num_theorems=args.theorems, min_steps=2, lean="simulated",
                mode="overwrite", lean_workers=args.workers, concurrency=args.workers * args.per_process,
                tactic_timeout_s=30 * args.scale, theorem_timeout_s=120 * args.scale, progress=False,
                simulator_args=("--latency-scale", str(args.scale), "--crash-rate", str(rate),
                                "--start-delay", str(args.import_s * args.scale), "--seed", "1"))
            first = mine(settings)
            row = {"crash_rate": rate, "first_run": completion(Path(settings.output)),
                   "restarts": first.this_run["lean_restarts"], "wall_s": first.this_run["wall_s"]}
            for i in range(args.resumes):
                import dataclasses

                mine(dataclasses.replace(settings, mode="resume"))
                row[f"after_resume_{i + 1}"] = completion(Path(settings.output))
            rows.append(row)
            print(json.dumps(row), flush=True)
    if args.json:
        args.json.write_text(json.dumps({"traces": str(traces), "args": vars(args) | {"json": str(args.json)}, "rows": rows},
                                        indent=1))


if __name__ == "__main__":
    main()
