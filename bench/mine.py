"""Mining throughput against a generation server of finite capacity, on a fixed theorem set run to completion.

Every run mines the same ``--theorems`` theorems (``--min-steps`` or more steps, sampled with seed 0) to
completion with the Lean simulator at its default latency model (p50 22 ms, p95 300 ms, p99 2 s) and a
stand-in SGLang in its own process whose capacity is finite, as a real SGLang server's is: at most
``--cap`` sequences run at once (a call for 8 candidates takes 8, as SGLang expands ``n``), each for
``--generation-s``; the rest wait in a FIFO queue (workbench/policy/capacity.py). Every latency is
multiplied by ``--scale`` to keep runs short; theorems/h "at scale 1" is the measured rate x scale.

Default mode, three designs at equal Lean processes, each ``--repeats`` times in alternating order
(paired runs; medians reported, ratios taken within each repeat):

* ``one-per-process``: the reference design, one theorem per Lean process, sequential walk;
* ``in-flight``: ``--per-process`` theorems per process, sequential walk (theorems-in-flight effect alone);
* ``shared-pool``: the same theorems in flight with generation overlapping the ground-truth step
  (adds the generation-overlap effect).

``--curve``: the shared pool only, theorems/h against the server cap at 1.5 s and 3.3 s per generation,
next to the model min(Lean limit, 3600 x (cap / 8) / (L x generations per theorem)), and the cap (and Lean
processes) needed for 5,000 theorems in 2 h.

    python bench/mine.py [--workers 2] [--theorems 32] [--cap 32] [--repeats 2] [--scale 0.15] [--json out.json]
    python bench/mine.py --curve [--caps 8,16,32,64,none] [--curve-generation-s 1.5,3.3]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import math
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from workbench.mining.run import MineSettings, mine_async  # noqa: E402
from workbench.traces import bundled_sample_path  # noqa: E402

SHARED_VAL = REPO.parent / "shared" / "data" / "leandojo_mathlib4" / "random" / "val.json"
CANDIDATES = 8
DESIGNS = {  # name -> (theorems in flight per Lean process, or None for one per process; overlap generation)
    "one-per-process": (None, False),
    "in-flight": ("per_process", False),
    "shared-pool": ("per_process", True),
}
TARGET_THEOREMS, TARGET_HOURS = 5000, 2.0


class Standin:
    """The stand-in SGLang in its own process (so its threads do not share the miner's GIL)."""

    def __init__(self, latency_s: float, cap: int | None, traces: Path) -> None:
        cmd = [sys.executable, "-m", "workbench.policy.standin_server", "--port", "0", "--latency-s", str(latency_s),
               "--traces", str(traces)]
        # An unbounded server still gets the capacity model (with no cap) so its queue stats are reported.
        cmd += ["--max-running-requests", str(cap)] if cap else ["--max-queued-requests", str(1 << 30)]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, cwd=REPO)
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()  # "stand-in SGLang serving on http://127.0.0.1:PORT"
        if "http://" not in line:
            self.proc.kill()
            raise RuntimeError(f"stand-in SGLang did not start: {line!r}")
        self.url = line.strip().split()[-1]

    def stats(self) -> dict:
        with urllib.request.urlopen(self.url + "/standin_capacity", timeout=10) as r:
            return json.loads(r.read())

    def close(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=10)


async def one_run(design: str, args: argparse.Namespace, server: Standin, generation_s: float, cap: int | None,
                  traces: Path, out: Path) -> dict:
    per, overlap = DESIGNS[design]
    in_flight = args.workers if per is None else args.per_process * args.workers
    settings = MineSettings(
        traces=str(traces), output=str(out / f"{design}-{time.monotonic_ns()}"), num_theorems=args.theorems,
        min_steps=args.min_steps, seed=0, candidates_per_step=CANDIDATES, target_negatives=15, lean="simulated",
        mode="overwrite", lean_workers=args.workers, concurrency=in_flight, overlap_generation=overlap,
        server_url=server.url, tactic_timeout_s=30.0, theorem_timeout_s=600.0,
        simulator_args=("--latency-scale", str(args.scale), "--namespace-mismatch-rate", "0.2"), progress=False)
    before = server.stats()
    result = await mine_async(settings)
    after = server.stats()
    run = result.this_run
    calls = after["calls"] - before["calls"]
    return {
        "design": design, "cap": cap, "generation_s": generation_s, "scale": args.scale,
        "theorems_in_flight": in_flight, "theorems": run["theorems"], "wall_s": run["wall_s"],
        "theorems_per_hour_at_scale_1": round(run["theorems_per_hour"] * args.scale, 1),
        "tactics_per_s_at_scale_1": round(run["tactics_per_s"] * args.scale, 2),
        "lean_busy_fraction": run["lean_busy_fraction"],
        "generation_wait_fraction": run["generation_wait_fraction"],
        "generation_calls": calls,
        "generations_per_theorem": round(calls / max(1, run["theorems"]), 2),
        "queue_wait_per_call_s_at_scale_1": round((after["queue_wait_s"] - before["queue_wait_s"])
                                                  / max(1, calls) / args.scale, 3),
        "max_running_sequences": after["max_running"],
    }


def _median(rows: list[dict], key: str) -> float:
    return round(statistics.median(r[key] for r in rows), 3)


def _print_table(rows: list[dict], cols: list[str]) -> None:
    print(" | ".join(cols))
    for r in rows:
        print(" | ".join(str(r[c]) for c in cols))


async def compare(args: argparse.Namespace, traces: Path, tmp: Path) -> dict:
    server = Standin(args.generation_s * args.scale, args.cap, traces)
    runs: list[dict] = []
    try:
        for rep in range(args.repeats):
            order = list(DESIGNS) if rep % 2 == 0 else list(reversed(DESIGNS))  # alternate: drift hits both ends
            for design in order:
                row = await one_run(design, args, server, args.generation_s, args.cap, traces, tmp)
                row["repeat"] = rep
                runs.append(row)
                print(f"  repeat {rep} {design}: {row['theorems_per_hour_at_scale_1']} theorems/h at scale 1, "
                      f"{row['wall_s']} s", flush=True)
    finally:
        server.close()
    summary = []
    for design in DESIGNS:
        rows = [r for r in runs if r["design"] == design]
        med = {k: _median(rows, k) for k in ("theorems_per_hour_at_scale_1", "lean_busy_fraction",
                                             "generation_wait_fraction", "queue_wait_per_call_s_at_scale_1",
                                             "generations_per_theorem", "wall_s")}
        ratios = []
        for rep in range(args.repeats):
            base = next(r for r in runs if r["repeat"] == rep and r["design"] == "one-per-process")
            this = next(r for r in runs if r["repeat"] == rep and r["design"] == design)
            ratios.append(this["theorems_per_hour_at_scale_1"] / base["theorems_per_hour_at_scale_1"])
        summary.append({"design": design, "theorems_in_flight": rows[0]["theorems_in_flight"], **med,
                        "vs_one_per_process": round(statistics.median(ratios), 2),
                        "ratio_range": f"{min(ratios):.2f}-{max(ratios):.2f}"})
    print(f"\nSIMULATED Lean, stand-in SGLang; medians of {args.repeats} paired runs: {args.theorems} theorems "
          f"(>= {args.min_steps} steps) to completion each, {args.workers} Lean processes, server cap {args.cap or 'none'} sequences "
          f"({(args.cap or 0) / CANDIDATES:g} calls of {CANDIDATES}), generation {args.generation_s} s at scale 1, "
          f"scale {args.scale}, traces {traces}")
    _print_table(summary, ["design", "theorems_in_flight", "theorems_per_hour_at_scale_1", "vs_one_per_process",
                           "ratio_range", "lean_busy_fraction", "generation_wait_fraction",
                           "queue_wait_per_call_s_at_scale_1", "generations_per_theorem", "wall_s"])
    by = {s["design"]: s for s in summary}
    print(f"theorems-in-flight effect: {by['in-flight']['vs_one_per_process']:.2f}x; generation overlap on top: "
          f"{by['shared-pool']['theorems_per_hour_at_scale_1'] / by['in-flight']['theorems_per_hour_at_scale_1']:.2f}x")
    return {"runs": runs, "summary": summary}


def _parse_caps(text: str) -> list[int | None]:
    return [None if c.strip().lower() in ("none", "0") else int(c) for c in text.split(",")]


def cap_needed(generation_s: float, generations_per_theorem: float, per_hour: float) -> int:
    """Sequences the server must run at once for ``per_hour`` theorems/h: calls in flight x candidates."""
    calls = per_hour * generation_s * generations_per_theorem / 3600
    return math.ceil(calls) * CANDIDATES


async def curve(args: argparse.Namespace, traces: Path, tmp: Path) -> dict:
    rows = []
    for gen_s in [float(g) for g in args.curve_generation_s.split(",")]:
        for cap in _parse_caps(args.caps):
            server = Standin(gen_s * args.scale, cap, traces)
            try:
                row = await one_run("shared-pool", args, server, gen_s, cap, traces, tmp)
            finally:
                server.close()
            rows.append(row)
            print(f"  generation {gen_s} s, cap {cap or 'none'}: {row['theorems_per_hour_at_scale_1']} theorems/h "
                  f"at scale 1, {row['wall_s']} s", flush=True)
    target = TARGET_THEOREMS / TARGET_HOURS
    out = []
    for gen_s in sorted({r["generation_s"] for r in rows}):
        mine = [r for r in rows if r["generation_s"] == gen_s]
        g = statistics.median(r["generations_per_theorem"] for r in mine)
        unbounded = [r for r in mine if r["cap"] is None]
        lean_limit = unbounded[0]["theorems_per_hour_at_scale_1"] if unbounded else None
        for r in mine:
            model = 3600 * (r["cap"] / CANDIDATES) / (gen_s * g) if r["cap"] else math.inf
            r["model_theorems_per_hour"] = round(min(model, lean_limit or math.inf), 1)
            out.append(r)
        need = cap_needed(gen_s, g, target)
        per_process = (lean_limit / args.workers) if lean_limit else None
        note = (f"; Lean limit {lean_limit} theorems/h at {args.workers} processes -> "
                f"{math.ceil(target / per_process)} processes needed" if per_process else "")
        print(f"generation {gen_s} s ({g:g} generations per theorem): {TARGET_THEOREMS} theorems in "
              f"{TARGET_HOURS:g} h ({target:.0f}/h) need a cap of {need} sequences ({need // CANDIDATES} calls of "
              f"{CANDIDATES}){note}")
    print(f"\ncapacity curve (SIMULATED Lean, stand-in SGLang), shared pool, {args.theorems} theorems to completion, "
          f"{args.workers} Lean processes, {args.per_process * args.workers} in flight, scale {args.scale}, traces {traces}")
    _print_table(out, ["generation_s", "cap", "theorems_per_hour_at_scale_1", "model_theorems_per_hour",
                       "lean_busy_fraction", "queue_wait_per_call_s_at_scale_1", "generations_per_theorem",
                       "max_running_sequences", "wall_s"])
    return {"curve": out}


async def main_async(args: argparse.Namespace) -> dict:
    traces = Path(args.traces) if args.traces else (SHARED_VAL if SHARED_VAL.exists() else bundled_sample_path())
    with tempfile.TemporaryDirectory(prefix="bench-mine-") as tmp:
        return await (curve if args.curve else compare)(args, traces, Path(tmp))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--workers", type=int, default=2, help="Lean processes (every design)")
    p.add_argument("--per-process", type=int, default=12, help="theorems in flight per process (in-flight, shared-pool)")
    p.add_argument("--theorems", type=int, default=32, help="fixed theorem set, each run mines all of it")
    p.add_argument("--min-steps", type=int, default=3)
    p.add_argument("--scale", type=float, default=0.15, help="multiplies every latency (Lean and generation)")
    p.add_argument("--generation-s", type=float, default=1.5, help="server time per sequence at scale 1")
    p.add_argument("--cap", type=int, default=32, help="server's max running sequences (0: unbounded)")
    p.add_argument("--repeats", type=int, default=2, help="paired repeats of the three designs")
    p.add_argument("--curve", action="store_true", help="capacity curve instead of the design comparison")
    p.add_argument("--caps", default="8,16,32,64,none", help="--curve: server caps in sequences (none: unbounded)")
    p.add_argument("--curve-generation-s", default="1.5,3.3", help="--curve: generation times at scale 1")
    p.add_argument("--traces", default=None, help="default: ../shared LeanDojo val split, else the bundled sample")
    p.add_argument("--json", default=None, help="also write the rows here")
    args = p.parse_args(argv)
    args.cap = args.cap or None
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("workbench.mining.run").setLevel(logging.ERROR)  # the per-run SIMULATED warning: said above
    t0 = time.monotonic()
    result = asyncio.run(main_async(args))
    print(f"(benchmark wall time {time.monotonic() - t0:.0f} s; the machine was shared, so compare ratios within a run)")
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
