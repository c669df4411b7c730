"""What a mining run shows while it runs: a live bar on a terminal, progress lines elsewhere."""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import time
from typing import Callable

from workbench.mining.records import Status, TheoremResult
from workbench.progress import progress_bar

__all__ = ["MiningProgress", "progress_line"]

log = logging.getLogger("workbench.mining.run")  # the run's logger: what users filter on


class MiningProgress:
    """Live bar: theorems done/skipped, positives, negatives, rate (updated as walks finish, any order).

    Without the bar (stderr not a terminal: logs, nohup, CI) a progress line is logged every
    ``log_every_s`` instead, so a long run is never silent.
    """

    def __init__(self, total: int, enabled: bool, simulated: bool, log_every_s: float = 30.0,
                 busy: Callable[[], float] | None = None) -> None:
        desc = "mining (SIMULATED)" if simulated else "mining"
        self.bar = progress_bar(total=total, unit="thm", desc=desc, disable=not enabled, dynamic_ncols=True)
        self.total, self.enabled, self.log_every_s, self.busy = total, enabled, log_every_s, busy
        self.t0 = time.monotonic()
        self.done = self.skipped = self.timed_out = self.pos = self.neg = 0

    def line(self) -> str:
        return progress_line(self.done + self.skipped + self.timed_out, self.total, time.monotonic() - self.t0,
                             self.pos + self.neg, self.busy() if self.busy else None)

    def update(self, result: TheoremResult) -> None:
        self.done += result.status == Status.COMPLETED
        self.skipped += result.status == Status.SKIPPED
        self.timed_out += result.status == Status.TIMED_OUT
        for r in result.records:
            if r.label == "positive":
                self.pos += 1
            else:
                self.neg += 1
        rate = (self.done + self.skipped + self.timed_out) / max(1e-9, time.monotonic() - self.t0) * 3600
        self.bar.set_postfix(done=self.done, skipped=self.skipped, timeout=self.timed_out, pos=self.pos,
                             neg=self.neg, rate=f"{rate:.0f}/h", refresh=False)
        self.bar.update(1)

    async def tick(self, every_s: float = 1.0) -> None:
        """Keep elapsed time and rate moving while long walks are still running (or log a line)."""
        if not self.enabled:
            if self.log_every_s <= 0:
                return
            while True:
                await asyncio.sleep(self.log_every_s)
                log.info("%s", self.line())
        while True:
            await asyncio.sleep(every_s)
            self.bar.refresh()

    def close(self) -> None:
        self.bar.close()


def progress_line(finished: int, total: int, elapsed_s: float, records: int, lean_busy: float | None) -> str:
    """``done/total, rate, ETA, records, Lean busy`` as one log line (pure, for tests)."""
    rate = finished / elapsed_s * 3600 if elapsed_s > 0 else 0.0
    eta = (total - finished) / rate * 3600 if rate > 0 else None
    eta_text = "?" if eta is None else str(dt.timedelta(seconds=round(eta)))
    busy = "?" if lean_busy is None else f"{lean_busy:.0%}"
    return (f"progress: {finished}/{total} theorems, {rate:.0f}/h, ETA {eta_text}, {records} records, "
            f"Lean busy {busy}, elapsed {dt.timedelta(seconds=round(elapsed_s))}")
