"""What a mining run shows while it runs: a live bar on a terminal, progress lines elsewhere, and the same
lines in ``progress.log`` in the run folder.

Where no bar draws on a terminal (stderr is a pipe, a log file, or a Jupyter kernel's stream, which is
what papermill ``--log-output`` forwards) a progress line goes to the ``workbench.mining.run`` logger
every ``log_every_s`` and once at the end, so a long run is never silent. Notebook 02 shows that logger
on the kernel's stderr (:func:`workbench.progress.show_logs`).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import logging
import sys
import time
from pathlib import Path
from typing import Callable, Sequence, TextIO

from workbench.mining.records import Status, TheoremResult
from workbench.progress import progress_bar

__all__ = ["MiningProgress", "PROGRESS_LOG", "progress_line", "latency_scale", "resume_line", "first_started"]

log = logging.getLogger("workbench.mining.run")  # the run's logger: what users filter on

PROGRESS_LOG = "progress.log"  # in the run folder: every progress line, with its time


class MiningProgress:
    """Live bar: theorems done/skipped, positives, negatives, rate (updated as walks finish, any order),
    and progress lines (see the module docstring) to the log and to ``log_path``."""

    def __init__(self, total: int, enabled: bool, simulated: bool, log_every_s: float = 30.0,
                 busy: Callable[[], float] | None = None, log_path: Path | None = None,
                 latency: float | None = None) -> None:
        desc = "mining (SIMULATED)" if simulated else "mining"
        self.bar = progress_bar(total=total, unit="thm", desc=desc, disable=not enabled, dynamic_ncols=True)
        self.total, self.enabled, self.log_every_s, self.busy = total, enabled, log_every_s, busy
        self.latency = latency if simulated else None
        # a bar only replaces the lines where it draws on a terminal (not in a kernel, not in a pipe)
        self.to_log = not enabled or not sys.stderr.isatty()
        self.file: TextIO | None = open(log_path, "a", encoding="utf-8") if log_path is not None else None
        self.t0 = time.monotonic()
        self.done = self.skipped = self.timed_out = self.pos = self.neg = 0

    def line(self) -> str:
        return progress_line(self.done + self.skipped + self.timed_out, self.total, time.monotonic() - self.t0,
                             self.pos + self.neg, self.busy() if self.busy else None, simulator_latency=self.latency)

    def say(self, text: str) -> None:
        """One line to the run's log (where no bar draws) and to ``progress.log``."""
        if self.to_log:
            log.info("%s", text)
        self.write(text)

    def write(self, text: str) -> None:
        """One line to ``progress.log`` only."""
        if self.file is not None:
            stamp = dt.datetime.now().astimezone().isoformat(timespec="seconds")
            self.file.write(f"{stamp} {text}\n")
            self.file.flush()

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
        """Keep the bar's elapsed time and rate moving while long walks run; a progress line every ``log_every_s``."""
        next_line = time.monotonic() + self.log_every_s if self.log_every_s > 0 else float("inf")
        while True:
            await asyncio.sleep(min(every_s, max(0.01, next_line - time.monotonic())))
            if self.enabled:
                self.bar.refresh()
            if time.monotonic() >= next_line:
                self.say(self.line())
                next_line += self.log_every_s

    def close(self) -> None:
        self.bar.close()
        self.say(self.line())  # the last line: what this run did, also when it ran shorter than one interval
        if self.file is not None:
            self.file.close()
            self.file = None


def progress_line(finished: int, total: int, elapsed_s: float, records: int, lean_busy: float | None,
                  simulator_latency: float | None = None) -> str:
    """``done/total, rate, ETA, records, Lean busy`` as one log line (pure, for tests).

    ``simulator_latency``: the simulator's latency scale when Lean is simulated; the rate is then labelled
    as measured at that scale, since it says nothing about real Lean.
    """
    rate = finished / elapsed_s * 3600 if elapsed_s > 0 else 0.0
    eta = (total - finished) / rate * 3600 if rate > 0 else None
    eta_text = "?" if eta is None else str(dt.timedelta(seconds=round(eta)))
    busy = "?" if lean_busy is None else f"{lean_busy:.0%}"
    sim = "" if simulator_latency is None else f" (rate with SIMULATED Lean, latencies x {simulator_latency:g})"
    return (f"progress: {finished}/{total} theorems, {rate:.0f}/h, ETA {eta_text}, {records} records, "
            f"Lean busy {busy}, elapsed {dt.timedelta(seconds=round(elapsed_s))}{sim}")


def latency_scale(simulator_args: Sequence[str]) -> float:
    """The simulator's ``--latency-scale`` among its arguments (its default: 1.0, real-Lean latencies)."""
    args = list(simulator_args)
    for i, arg in enumerate(args[:-1]):
        if arg == "--latency-scale":
            return float(args[i + 1])
    return 1.0


def first_started(output: Path) -> str | None:
    """When the first run into ``output`` started (its ``runs-NNN.json``), or None."""
    starts = []
    for path in output.glob("runs-*.json"):
        try:
            started = json.loads(path.read_text()).get("started_at")
        except (OSError, ValueError, AttributeError):
            continue
        if isinstance(started, str):
            starts.append(started)
    return min(starts) if starts else None


def resume_line(output: Path, already_done: int, since: str | None) -> str:
    """The first line of a run that continues an earlier one (pure)."""
    when = f" since {since}" if since else ""
    return (f"RESUMING {output}: {already_done} theorems already done{when}; this run mines only the rest and "
            f"the totals include the earlier runs (a fresh run: another output, or overwrite)")
