"""How many theorems replay their first ground-truth step, and why the others fail (simulated Lean).

    .venv/bin/python bench/replay_check.py [--traces DIR] [--workers 2] [--json out.json]

Runs the ground-truth-only walk (workbench.mining.replay_check) twice over the same traces and
simulator: with the `intro` setup (this walk) and without it (the reference's walk from copyFrom's
∀-root). The simulator's namespace rule (LeanDojo's annotated references) stays on, so
the split shows binder-context failures next to namespace ones.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from workbench.lean import LeanConfig, simulator_command  # noqa: E402
from workbench.mining.replay_check import replay_ground_truth  # noqa: E402
from workbench.traces import load_traces  # noqa: E402

SHARED = REPO.parent / "shared" / "data" / "leandojo_mathlib4" / "random"


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--traces", default=str(SHARED))
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--json", default=None)
    args = p.parse_args()
    theorems = load_traces(args.traces, skip_bad=True).theorems
    config = LeanConfig(simulator_command(args.traces, "--latency-scale", "0"), workers=args.workers)
    out = {}
    for introduce in (True, False):
        tally = asyncio.run(replay_ground_truth(theorems, config, introduce_binders=introduce))
        out["with_intro" if introduce else "reference_no_intro"] = tally.as_dict()
        print(("with intro" if introduce else "without intro (reference)"), json.dumps(tally.as_dict()))
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
