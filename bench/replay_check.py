"""How theorems start and how far their ground truth replays, on a simulator newer than its traces (default).

    .venv/bin/python bench/replay_check.py [--traces DIR] [--workers 2] [--json out.json] [--modes newer,same]

Runs the ground-truth-only walk (workbench.mining.replay_check) over the same traces, for each simulator
mode: ``newer`` (a newer Lean than the traces, as every accepted Pantograph is: unused section variables
dropped, current printing, gone lemmas) and ``same`` (the traces' own Lean), and for the newer one also the
reference's walk (no `intro`, no alignment: ground truth straight on copyFrom's ∀-root). The simulator's
namespace rule (LeanDojo's annotated references) stays on, so failures by namespace show beside the rest.
Reported per run: share started with Lean's binders, share walked to its end or to a ground-truth step
Lean refused without an unaligned step, match quality by step, dropped variables, how walks ended.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
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
    p.add_argument("--modes", default="newer,same", help="simulator --lean-version values, comma-separated")
    p.add_argument("--no-reference", action="store_true", help="skip the reference walk (no intro, no alignment)")
    args = p.parse_args()
    theorems = load_traces(args.traces, skip_bad=True).theorems
    runs = [(mode, True) for mode in args.modes.split(",")]
    if not args.no_reference:
        runs.append((runs[0][0], False))
    out = {}
    for mode, introduce in runs:
        config = LeanConfig(simulator_command(args.traces, "--latency-scale", "0", "--lean-version", mode),
                            workers=args.workers, memory_limit_bytes=None)
        t0 = time.monotonic()
        tally = asyncio.run(replay_ground_truth(theorems, config, introduce_binders=introduce))
        key = f"{mode}" if introduce else f"{mode}_reference_no_intro"
        out[key] = tally.as_dict() | {"wall_s": round(time.monotonic() - t0, 1)}
        print(key, json.dumps(out[key], ensure_ascii=False), flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=2, ensure_ascii=False))


if __name__ == "__main__":
    main()
