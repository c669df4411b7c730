"""Embedding-cache throughput against a stand-in sidecar, and the dedup ratio of a trajectory file.

1. Throughput: ``encode_states`` (dedup, batches, checkpointed Parquet parts) through a
   ``SidecarEncoder`` against the stand-in sidecar, which spends a fixed ``--batch-cost-s`` per batch
   and serves one batch at a time (one GPU). Its ceiling is ``batch_size / batch_cost_s`` states/s
   (batches back to back); we report what the whole path achieves, at several client concurrencies,
   and the sidecar's busy fraction.
2. Dedup ratio: rows / distinct ``state_pp`` of a mined trajectory (``--mined``), or, without one, of
   a trajectory built from the traces (every ground-truth state of every theorem).

    .venv/bin/python bench/encode.py [--states 1024] [--batch-size 64] [--batch-cost-s 0.5] [--mined PATH]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Iterator

import httpx

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared" / "data" / "leandojo_mathlib4"
sys.path.insert(0, str(REPO))

from workbench.encode import SidecarEncoder, encode_states, read_embeddings  # noqa: E402
from workbench.states import canonical_state  # noqa: E402
from workbench.traces import bundled_sample_path, load_traces  # noqa: E402

log = logging.getLogger("bench.encode")


def trace_states(source: Path) -> list[str]:
    """Every ground-truth state (before each step, and the final one) of every theorem, canonical text."""
    out: list[str] = []
    for t in load_traces(source).theorems:
        out.extend(canonical_state(s.state_before) for s in t.steps)
        out.append(canonical_state(t.steps[-1].state_after or "no goals"))
    return out


@contextlib.contextmanager
def sidecar_process(args: argparse.Namespace) -> Iterator[str]:
    """The stand-in sidecar in its own process (in-process, it would share our GIL); yields its URL."""
    cmd = [sys.executable, "-m", "workbench.encode.standin_sidecar", "--port", "0",
           "--hidden-size", str(args.hidden_size), "--batch-cost-s", str(args.batch_cost_s)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, cwd=REPO)
    try:
        line = proc.stdout.readline() if proc.stdout else ""
        if "serving on " not in line:
            raise RuntimeError(f"stand-in sidecar did not start: {line!r}")
        yield line.strip().rsplit(" ", 1)[-1]
    finally:
        proc.terminate()
        proc.wait(timeout=10)


async def throughput(states: list[str], args: argparse.Namespace, concurrency: int) -> dict:
    with sidecar_process(args) as url:
        async with SidecarEncoder(url, hidden_size=args.hidden_size, model="standin",
                                  batch_size=args.batch_size, concurrency=concurrency) as encoder:
            with tempfile.TemporaryDirectory() as tmp:
                t0 = time.perf_counter()
                report = await encode_states(states, encoder, Path(tmp) / "cache", batch_size=args.batch_size,
                                             concurrency=concurrency, checkpoint_every=args.checkpoint_every,
                                             progress=False)
                wall = time.perf_counter() - t0
                assert len(read_embeddings(Path(tmp) / "cache")) == report.encoded
                t1 = time.perf_counter()
                again = await encode_states(states, encoder, Path(tmp) / "cache", progress=False)
                rerun = time.perf_counter() - t1
        async with httpx.AsyncClient() as client:
            busy = (await client.get(f"{url}/stats")).json()["busy_s"]
    return {"concurrency": concurrency, "encoded": report.encoded, "parts": report.parts_written,
            "wall_s": round(wall, 3), "states_per_s": round(report.encoded / wall, 1),
            "sidecar_busy_fraction": round(busy / wall, 3), "rerun_hits": again.hits, "rerun_s": round(rerun, 3)}


async def main_async(args: argparse.Namespace) -> dict:
    source = Path(args.traces) if args.traces else (SHARED if (SHARED / "random").is_dir() else bundled_sample_path())
    all_states = trace_states(source)
    unique = list(dict.fromkeys(all_states))[: args.states]
    ceiling = args.batch_size / args.batch_cost_s if args.batch_cost_s > 0 else float("inf")
    result: dict = {"source": str(source), "states": len(unique), "hidden_size": args.hidden_size,
                    "batch_size": args.batch_size, "batch_cost_s": args.batch_cost_s,
                    "ceiling_states_per_s": round(ceiling, 1), "runs": []}
    for c in args.concurrency:
        run = await throughput(unique, args, c)
        run["fraction_of_ceiling"] = round(run["states_per_s"] / ceiling, 3)
        result["runs"].append(run)
        log.info("%s", run)

    if args.mined:
        from workbench.trajectory import read_trajectories

        rows = read_trajectories(args.mined)["state_pp"].astype(str).tolist()
        result["dedup"] = {"file": args.mined, "kind": "mined"}
    else:
        rows = all_states
        result["dedup"] = {"file": str(source), "kind": "ground-truth states of the traces (no mined file given)"}
    distinct = len(set(rows))
    result["dedup"].update({"rows": len(rows), "distinct": distinct,
                            "ratio": round(len(rows) / distinct, 3) if distinct else None})
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--traces", default=None)
    parser.add_argument("--mined", default=None, help="trajectory Parquet file/folder for the dedup ratio")
    parser.add_argument("--states", type=int, default=1024, help="distinct states to encode")
    parser.add_argument("--hidden-size", type=int, default=4096)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--batch-cost-s", type=float, default=0.5,
                        help="stand-in sidecar time per batch (0.5 s for 64: SPEC §2 measured ~86 states/s batched)")
    parser.add_argument("--checkpoint-every", type=int, default=1024)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    result = asyncio.run(main_async(args))
    print(json.dumps(result, indent=2))
    if args.out:
        Path(args.out).write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
