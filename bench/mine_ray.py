"""Mining on Ray: theorems/h with 1, 2 and 4 simulated nodes next to the single-machine run.

Every configuration mines the same real theorems with the Lean simulator (default latency model
scaled by ``--scale``) and one stand-in SGLang server (separate process, fixed ``--generation-s``
per call at scale 1, the same server for every configuration), at ``--workers`` Lean processes and
``--per-process`` x workers theorems in flight **per node**:

* ``single-machine``: the local executor (no Ray), the baseline;
* ``ray-N``: a ``ray.cluster_utils.Cluster`` on this machine whose N nodes declare ``lean: 1`` (a
  head without it hosts the driver); nodes are added between runs (1, then 2, then 4).

Each configuration mines for ``--duration`` seconds from a pool larger than it can finish (steady
state; walks in flight at the end are dropped), timed from the first theorem sent, so Ray and
actor start-up are excluded (reported separately). Reported: theorems/h (and at scale 1),
speed-up over single-machine, scaling efficiency = theorems/h / (N x single-machine theorems/h),
and the driver's CPU share = CPU seconds of the driver process (all its threads, Ray's included)
per wall second while mining, with its CPU milliseconds per theorem (what bounds a single writer).

All simulated nodes share this machine's cores: efficiency here is bounded by the machine, and the
driver numbers are the ones that carry over to a real cluster.

    python bench/mine_ray.py [--nodes 1,2,4] [--workers 2] [--duration 40] [--scale 0.15] [--json out.json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import socket
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

from mine import SHARED_VAL, Standin  # noqa: E402  (bench/mine.py: the same stand-in SGLang set-up)

from workbench.mining import ray_backend, run  # noqa: E402
from workbench.mining.run import MineSettings, mine_async  # noqa: E402
from workbench.traces import bundled_sample_path  # noqa: E402


class _MiningClock:
    """CPU and wall time of this process from the moment an executor sends its first theorem."""

    def __init__(self) -> None:
        self.cpu0 = self.wall0 = 0.0
        for cls in (run.LocalExecutor, ray_backend.RayExecutor):
            original = cls.start

            def start(ex: Any, todo: Any, on_result: Any, _original: Any = original) -> Any:
                self.cpu0, self.wall0 = time.process_time(), time.monotonic()
                return _original(ex, todo, on_result)

            cls.start = start  # type: ignore[method-assign]

    def read(self) -> tuple[float, float]:
        return time.process_time() - self.cpu0, time.monotonic() - self.wall0


def _free_port() -> int:
    """A port for a node's metrics agent: given one, the raylet does not wait for the agent to report
    a random port (which on a loaded machine can take longer than ray 2.60.0's raylet waits)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def one_config(name: str, nodes: int, args: argparse.Namespace, url: str, traces: Path, out: Path,
                     clock: _MiningClock, address: str | None) -> dict[str, Any]:
    settings = MineSettings(
        traces=str(traces), output=str(out / name), num_theorems=args.theorems, min_steps=args.min_steps, seed=0,
        candidates_per_step=8, target_negatives=15, lean="simulated", mode="overwrite", lean_workers=args.workers,
        concurrency=args.per_process * args.workers, server_url=url, tactic_timeout_s=30.0, theorem_timeout_s=600.0,
        simulator_args=("--latency-scale", str(args.scale)), progress=False, time_budget_s=args.duration,
        ray_address=address)
    t0 = time.monotonic()
    result = await mine_async(settings)
    cpu_s, _ = clock.read()
    r = result.this_run
    wall = r["wall_s"]
    return {
        "config": name,
        "nodes": nodes,
        "lean_processes": nodes * args.workers,
        "theorems": r["theorems"],
        "wall_s": wall,
        "start_up_s": round(time.monotonic() - t0 - wall, 1),
        "theorems_per_hour": r["theorems_per_hour"],
        "theorems_per_hour_at_scale_1": round(r["theorems_per_hour"] * args.scale, 1),
        "tactics_per_s": r["tactics_per_s"],
        "steps_per_theorem": round(r["steps"] / max(1, r["theorems"]), 2),  # one generation call each
        "tactics_per_theorem": round(r["tactics"] / max(1, r["theorems"]), 1),
        "lean_busy_fraction": r["lean_busy_fraction"],
        "driver_cpu_share": round(cpu_s / wall, 3),
        "driver_cpu_ms_per_theorem": round(cpu_s / max(1, r["theorems"]) * 1000, 1),
        "records": result.summary["records"],
    }


async def main_async(args: argparse.Namespace) -> list[dict[str, Any]]:
    import ray
    from ray.cluster_utils import Cluster

    traces = Path(args.traces) if args.traces else (SHARED_VAL if SHARED_VAL.exists() else bundled_sample_path())
    clock = _MiningClock()
    server = Standin(args.generation_s * args.scale, None, traces)  # no capacity cap: nodes are what is measured
    url = server.url
    cluster = None
    try:
        with tempfile.TemporaryDirectory(prefix="bench-mine-ray-") as tmp:
            rows = [await one_config("single-machine", 1, args, url, traces, Path(tmp), clock, None)]
            cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 0, "include_dashboard": False,
                                                                    "metrics_agent_port": _free_port()})
            ray.init(address=cluster.address, logging_level="WARNING", log_to_driver=False)
            for n in args.nodes:
                while len(cluster.worker_nodes) < n:
                    cluster.add_node(num_cpus=1, resources={ray_backend.RESOURCE: 1}, metrics_agent_port=_free_port())
                cluster.wait_for_nodes()
                rows.append(await one_config(f"ray-{n}", n, args, url, traces, Path(tmp), clock, cluster.address))
    finally:
        server.close()
        if cluster is not None:
            ray.shutdown()
            cluster.shutdown()
    base = rows[0]["theorems_per_hour"] or float("nan")
    for row in rows:
        row["speedup"] = round(row["theorems_per_hour"] / base, 2)
        row["scaling_efficiency"] = round(row["theorems_per_hour"] / (row["nodes"] * base), 2)
        row.update(traces=str(traces), scale=args.scale, generation_latency_s_at_scale_1=args.generation_s)
    return rows


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--nodes", default="1,2,4", help="simulated node counts, comma-separated, ascending")
    p.add_argument("--workers", type=int, default=2, help="Lean processes per node")
    p.add_argument("--per-process", type=int, default=12, help="theorems in flight per Lean process")
    p.add_argument("--theorems", type=int, default=900, help="theorems available (more than a run finishes)")
    p.add_argument("--duration", type=float, default=40.0, help="seconds each configuration mines")
    p.add_argument("--min-steps", type=int, default=3)
    p.add_argument("--scale", type=float, default=0.15, help="multiplies every latency (Lean and generation)")
    p.add_argument("--generation-s", type=float, default=1.5, help="stand-in SGLang latency per call at scale 1")
    p.add_argument("--traces", default=None, help="default: ../shared LeanDojo val split, else the bundled sample")
    p.add_argument("--json", default=None, help="also write the rows here")
    args = p.parse_args(argv)
    args.nodes = sorted(int(n) for n in args.nodes.split(","))
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    rows = asyncio.run(main_async(args))
    cols = ["config", "lean_processes", "theorems", "wall_s", "start_up_s", "theorems_per_hour",
            "theorems_per_hour_at_scale_1", "speedup", "scaling_efficiency", "lean_busy_fraction", "driver_cpu_share",
            "driver_cpu_ms_per_theorem"]
    print(" | ".join(cols))
    for r in rows:
        print(" | ".join(str(r[c]) for c in cols))
    print(f"{args.workers} Lean processes and {args.per_process * args.workers} theorems in flight per node; "
          f"scale {args.scale} (generation {args.generation_s * args.scale:.3f} s per call); traces {rows[0]['traces']}")
    if args.json:
        Path(args.json).write_text(json.dumps({"rows": rows}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
