"""Memory a mining run keeps: RSS of the mining process while it mines a few theorems of a big trace file.

    .venv/bin/python bench/mine_memory.py [--copies 25] [--theorems 4]

Builds the 100K-entry file of ``bench/load_traces.py`` (copies of the real sample), then mines
``--theorems`` theorems of it with SIMULATED Lean (zero latency) and SGLang as the policy (an in-process
scripted stand-in), recording this process's RSS at every generation request: what the run holds
while it mines, next to its peak (the load itself).
"""

from __future__ import annotations

import argparse
import asyncio
import resource
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

from load_traces import build  # noqa: E402

from workbench.mining.run import MineSettings, mine_async  # noqa: E402
from workbench.policy.standin_server import ScriptedCompleter, StandinSGLang  # noqa: E402


def rss_mb() -> float:
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) / 1024 for line in f if line.startswith("VmRSS:"))


class RecordingCompleter(ScriptedCompleter):
    """Scripted completions that note the process RSS at each request."""

    def __init__(self) -> None:
        super().__init__(["simp"])
        self.rss: list[float] = []

    def __call__(self, state: str | None, prompt: str, n: int) -> list[str]:
        self.rss.append(rss_mb())
        return super().__call__(state, prompt, n)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--copies", type=int, default=25, help="copies of the source entries (25 × 4,000 = 100K)")
    ap.add_argument("--theorems", type=int, default=4)
    args = ap.parse_args()
    completer = RecordingCompleter()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "big.json"
        entries, origin = build(path, args.copies)
        size_mb = path.stat().st_size / 2**20
        with StandinSGLang(completer) as server:
            settings = MineSettings(traces=str(path), output=f"{tmp}/out", num_theorems=args.theorems, min_steps=3,
                                    lean="simulated", mode="overwrite", server_url=server.url,
                                    simulator_args=("--latency-scale", "0"), progress=False)
            asyncio.run(mine_async(settings))
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"{entries:,} entries ({size_mb:.0f} MB, from the {origin}), {args.theorems} theorems mined (SIMULATED Lean): "
          f"RSS while mining up to {max(completer.rss):.0f} MB over {len(completer.rss)} generation requests; "
          f"peak {peak:.0f} MB")


if __name__ == "__main__":
    main()
