"""Benchmark: the Lean client and the shared pool, against the simulator.

    .venv/bin/python bench/lean_pool.py [--requests 3000] [--workers 2] [--theorems 16] [--duration 25]
                                        [--gen-s 1.5] [--gen-jitter 0.5] [--candidates 8] [--json out.json]

About 70 s with the defaults; scale up with --workers/--theorems/--duration.

Part 1 (zero latency): goal.tactic requests/s and CPU µs per request of this process through
LeanPool → TheoremSession, next to two floors writing and reading the same JSON lines to the same
simulator: a synchronous loop, and the same loop on asyncio pipes (no typing, no pool).

Part 2 (default latency model, p50 22 ms / p95 300 ms / p99 2 s): N processes, each theorem step
waits on a simulated generation call (1.5 s ± 50 %, uniform: a constant time makes every theorem
wake at once and the pool convoy) and then tries the candidates and the ground truth in Lean.
The shared design runs M theorems over the N processes; the one-theorem-per-process design runs N
theorems (one per process) on the same pool code. Reported: Lean busy fraction of the N
processes, theorem steps/s and tactic latency quantiles, over the same wall-clock window.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import logging
import random
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from workbench.lean import LeanConfig, LeanPool, ProofComplete, TheoremSession, simulator_command  # noqa: E402
from workbench.lean.results import Advanced  # noqa: E402
from workbench.traces import Theorem, bundled_sample_path, load_traces  # noqa: E402

SHARED_VAL = REPO.parent / "shared" / "data" / "leandojo_mathlib4" / "random" / "val.json"


def tactic_lines(n: int) -> list[str]:
    return [f"simp [aux_{i}]" for i in range(n)]


def bare_loop(cmd: list[str], n: int, theorem: str) -> dict:
    """A synchronous write-line/read-line loop with ``json.loads``: the floor for any client."""
    proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    assert proc.stdin and proc.stdout
    while proc.stdout.readline().strip() != b"ready.":
        pass
    proc.stdin.write(_line("goal.start", {"copyFrom": theorem}))
    proc.stdin.flush()
    state_id = json.loads(proc.stdout.readline())["stateId"]
    lines = [_line("goal.tactic", {"stateId": state_id, "tactic": t}) for t in tactic_lines(n)]
    t0, c0 = time.perf_counter(), time.process_time()
    for line in lines:
        proc.stdin.write(line)
        proc.stdin.flush()
        json.loads(proc.stdout.readline())
    result = _rates(n, t0, c0)
    proc.stdin.close()
    proc.wait(10)
    return result


async def bare_async_loop(cmd: list[str], n: int, theorem: str) -> dict:
    """The same loop on asyncio pipes (write, drain, readline): the floor for an asyncio client."""
    proc = await asyncio.create_subprocess_exec(*cmd, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
                                                stderr=asyncio.subprocess.DEVNULL)
    assert proc.stdin and proc.stdout
    while (await proc.stdout.readline()).strip() != b"ready.":
        pass
    proc.stdin.write(_line("goal.start", {"copyFrom": theorem}))
    state_id = json.loads(await proc.stdout.readline())["stateId"]
    lines = [_line("goal.tactic", {"stateId": state_id, "tactic": t}) for t in tactic_lines(n)]
    t0, c0 = time.perf_counter(), time.process_time()
    for line in lines:
        proc.stdin.write(line)
        await proc.stdin.drain()
        json.loads(await proc.stdout.readline())
    result = _rates(n, t0, c0)
    proc.stdin.close()
    await proc.wait()
    return result


def _line(cmd: str, payload: dict) -> bytes:
    return json.dumps({"cmd": cmd, "payload": payload}, ensure_ascii=False, separators=(",", ":")).encode() + b"\n"


def _rates(n: int, t0: float, c0: float) -> dict:
    """Requests/s (wall) and this process's CPU per request (the simulator is another process)."""
    return {"req_per_s": n / (time.perf_counter() - t0), "cpu_us_per_req": 1e6 * (time.process_time() - c0) / n}


async def client_loop(config: LeanConfig, n: int, theorem: str) -> dict:
    async with LeanPool(config) as pool:
        async with TheoremSession(pool, theorem) as s:
            root = await s.start()
            tactics = tactic_lines(n)
            t0, c0 = time.perf_counter(), time.process_time()
            for t in tactics:
                await s.tactic(root, t)
            return _rates(n, t0, c0)


async def mining_like(
    config: LeanConfig,
    theorems: list[Theorem],
    concurrency: int,
    gen_s: float,
    candidates: int,
    duration: float,
    warmup: float,
    gen_jitter: float = 0.0,
    seed: int = 0,
) -> dict:
    """Theorems walk their ground truth; each step = generation wait + candidates + ground truth.

    Measured over [warmup, warmup + duration] (the start, where every theorem waits on its first
    generation at once, is excluded); then the theorems stop at their next Lean call.
    """
    steps = 0
    stopped = False
    source = itertools.cycle(theorems)
    rng = random.Random(seed)

    async def one(thm: Theorem) -> None:
        nonlocal steps
        async with TheoremSession(pool, thm.full_name) as s:
            node = await s.start()
            for step in thm.steps:
                # The LLM call (Lean is idle for this theorem meanwhile); uniform in gen_s × (1 ± jitter).
                await asyncio.sleep(gen_s * (1 + gen_jitter * (2 * rng.random() - 1)))
                for i in range(candidates):
                    if stopped:
                        return
                    await s.tactic(node, f"{step.tactic} <;> aux_{i}" if i % 2 else f"simp [cand_{i}]")
                if stopped:
                    return
                result = await s.tactic(node, step.tactic)
                if not isinstance(result, (Advanced, ProofComplete)):
                    return  # namespace mismatch etc.: the miner would retry with open ... in
                steps += 1
                node = result.node

    async def worker() -> None:
        while not stopped:
            await one(next(source))

    async with LeanPool(config) as pool:
        # concurrency is the explicit bound: this many theorems in flight at once
        workers = [asyncio.create_task(worker()) for _ in range(concurrency)]
        await asyncio.sleep(warmup)
        before, steps0, t0 = pool.stats(), steps, time.monotonic()
        await asyncio.sleep(duration)
        after, steps1, wall = pool.stats(), steps, time.monotonic() - t0
        stopped = True
        await asyncio.gather(*workers)
    busy = sum(p.busy_s for p in after.processes) - sum(p.busy_s for p in before.processes)
    return {
        "theorems_in_flight": concurrency,
        "busy_fraction": busy / (config.workers * wall),
        "steps_per_s": (steps1 - steps0) / wall,
        "tactics_per_s": (after.tactic_requests - before.tactic_requests) / wall,
        "tactic_p50_ms": 1000 * (after.tactic_p50_s or 0),
        "tactic_p95_ms": 1000 * (after.tactic_p95_s or 0),
        "tactic_p99_ms": 1000 * (after.tactic_p99_s or 0),
        "wall_s": wall,
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--traces", default=None,
                    help="LeanDojo traces (default: shared val.json, else the bundled sample)")
    ap.add_argument("--requests", type=int, default=3000, help="requests per throughput measurement")
    ap.add_argument("--workers", type=int, default=2, help="N processes")
    ap.add_argument("--theorems", type=int, default=16, help="M concurrent theorems in the shared design")
    ap.add_argument("--gen-s", type=float, default=1.5, help="simulated generation time per step")
    ap.add_argument("--gen-jitter", type=float, default=0.5,
                    help="generation time is uniform in gen-s × (1 ± jitter); 0 = constant (convoys form)")
    ap.add_argument("--candidates", type=int, default=8, help="candidate tactics tried per step")
    ap.add_argument("--duration", type=float, default=25.0, help="measured seconds per design in part 2")
    ap.add_argument("--warmup", type=float, default=5.0, help="seconds before measuring in part 2")
    ap.add_argument("--repeats", type=int, default=3, help="part 1: median of this many alternating runs")
    ap.add_argument("--part1-only", action="store_true", help="only the zero-latency client measurement")
    ap.add_argument("--latency-scale", type=float, default=1.0)
    ap.add_argument("--json", type=Path, default=None, help="also write the results here")
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)

    traces = Path(args.traces) if args.traces else (SHARED_VAL if SHARED_VAL.exists() else bundled_sample_path())
    theorems = load_traces(traces, min_steps=2).theorems
    bench_theorem = theorems[0].full_name
    results: dict = {"traces": str(traces), "args": {k: str(v) for k, v in vars(args).items()}}

    # Part 1: zero-latency throughput and client CPU per request.
    fast = list(simulator_command(traces, "--latency-scale", "0", "--no-namespace-references"))
    config = LeanConfig(command=tuple(fast), workers=1, memory_limit_bytes=None)
    # Alternate and take medians: the machine is shared, a single run measures the neighbours.
    loops = {
        "bare write/read loop": lambda: bare_loop(fast, args.requests, bench_theorem),
        "bare asyncio loop": lambda: asyncio.run(bare_async_loop(fast, args.requests, bench_theorem)),
        "LeanPool client": lambda: asyncio.run(client_loop(config, args.requests, bench_theorem)),
    }
    runs: dict[str, list[dict]] = {name: [] for name in loops}
    for rep in range(args.repeats):
        for name in (list(loops) if rep % 2 == 0 else list(reversed(loops))):
            runs[name].append(loops[name]())
    part1 = {name: {k: statistics.median(r[k] for r in rs) for k in ("req_per_s", "cpu_us_per_req")}
             for name, rs in runs.items()}
    bare_cpu = [r["cpu_us_per_req"] for r in runs["bare write/read loop"]]
    ratios = sorted(b / c["cpu_us_per_req"] for b, c in zip(bare_cpu, runs["LeanPool client"]))
    results["part1"] = part1 | {"client_cpu_share_of_bare": statistics.median(ratios)}
    print(f"zero latency, {args.requests} goal.tactic requests, 1 process, medians of {args.repeats} alternating runs "
          "(the machine was shared):")
    for name, r in part1.items():
        print(f"  {name:<22}: {r['req_per_s']:8.0f} req/s, {r['cpu_us_per_req']:6.1f} us CPU/request "
              f"(bare loop CPU / this: {part1['bare write/read loop']['cpu_us_per_req'] / r['cpu_us_per_req']:.2f})")
    print(f"  client at {statistics.median(ratios):.2f} of the bare loop's CPU per request "
          f"(paired range {ratios[0]:.2f}-{ratios[-1]:.2f})")
    if args.part1_only:
        if args.json:
            args.json.write_text(json.dumps(results, indent=1))
        return 0

    # Part 2: busy fraction under generation waits.
    slow = simulator_command(traces, "--latency-scale", str(args.latency_scale), "--no-namespace-references")
    config = LeanConfig(command=slow, workers=args.workers, memory_limit_bytes=None, request_timeout_s=60)
    shared = asyncio.run(mining_like(config, theorems, args.theorems, args.gen_s, args.candidates, args.duration,
                                     args.warmup, args.gen_jitter))
    single = asyncio.run(mining_like(config, theorems, args.workers, args.gen_s, args.candidates, args.duration,
                                     args.warmup, args.gen_jitter))
    results["shared"], results["one_per_process"] = shared, single
    print(f"\nN={args.workers} processes, {args.candidates} candidates + ground truth per step, "
          f"{args.gen_s:g}s ± {args.gen_jitter:.0%} generation per step, {args.duration:g}s measured each:")
    print("| design | theorems in flight | Lean busy fraction | steps/s | tactics/s | tactic p50/p95/p99 ms |")
    print("|---|---|---|---|---|---|")
    for name, r in (("shared (M theorems over N processes)", shared), ("one theorem per process", single)):
        print(f"| {name} | {r['theorems_in_flight']} | {r['busy_fraction']:.0%} | {r['steps_per_s']:.2f} | "
              f"{r['tactics_per_s']:.1f} | "
              f"{r['tactic_p50_ms']:.0f} / {r['tactic_p95_ms']:.0f} / {r['tactic_p99_ms']:.0f} |")
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
