"""A fixed pool of REPL processes shared by many theorem sessions (sessions: ``session.py``).

Policy (the whole of it):

* ``workers`` processes; a session is pinned to the live, non-retiring process with the fewest
  sessions. Many sessions share a process — a Pantograph process holds the states of many proofs,
  and while one theorem waits seconds for the LLM the process serves the others. Requests to one
  process are serialised by its slot lock (FIFO), so a process is busy whenever Lean work is pending.
* A timeout, EOF, broken pipe, garbage line or cancelled request kills the process; the request
  that hit it gets the typed error, and the process is restarted in the background. Every session
  pinned to it re-pins to a live process on its next call and replays the tactic path of the node it
  needs (state ids do not survive a restart). Nothing a session already returned is lost.
* A process that served ``max_requests_per_process`` requests or lived ``max_process_age_s`` is
  recycled as soon as no session is pinned to it, or else at the next session's own tactic request
  (that session and the others replay; a replay itself never triggers a recycle, so it always
  finishes). New sessions avoid a process that is due.
* A session deletes the states it created (``goal.delete``) when it exits.
* ``Slot.disturbances`` counts infrastructure work on a slot (a process killed or retired, a restart, a
  replay request), bumped when it starts and when it ends: a session whose request overlapped a change
  of it was delayed by someone's failure, not by its own work (its theorem's clock is not charged).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter, deque
from dataclasses import dataclass, field
from typing import Awaitable, Callable, Sequence, TypeVar

from workbench.lean.config import LeanConfig
from workbench.lean.errors import LeanBackendError, LeanGarbage, LeanProcessDied, LeanStartError, LeanTimeout
from workbench.lean.process import LeanProcess, repl_version
from workbench.lean.protocol import check_version

__all__ = ["LeanPool", "PoolStats", "ProcessStats", "Slot", "StaleBinding", "FATAL"]

logger = logging.getLogger(__name__)

T = TypeVar("T")
FATAL = (LeanTimeout, LeanProcessDied, LeanGarbage)  # the process was killed
LATENCY_WINDOW = 200_000


class StaleBinding(Exception):
    """The slot's process changed under a session binding (the session rebinds and replays)."""


@dataclass(eq=False)
class Slot:
    index: int
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    process: LeanProcess | None = None
    generation: int = 0  # bumped whenever the process is retired: state ids of older generations are void
    sessions: int = 0
    waiting: int = 0  # requests queued for the slot's lock right now
    requests: int = 0  # over all generations
    busy_s: float = 0.0  # of retired generations
    restarts: int = 0
    start_failures: int = 0
    disturbances: int = 0  # infrastructure work on this slot, bumped at its start and end (see the module doc)


@dataclass(frozen=True, slots=True)
class ProcessStats:
    index: int
    pid: int | None
    alive: bool
    requests: int  # over every process this slot has run
    requests_current: int
    restarts: int
    sessions: int
    busy_s: float


@dataclass(frozen=True, slots=True)
class PoolStats:
    processes: tuple[ProcessStats, ...]
    restarts_by_cause: dict[str, int]
    tactic_requests: int
    tactic_p50_s: float | None
    tactic_p95_s: float | None
    tactic_p99_s: float | None
    busy_fraction: float  # time with a request in flight / (workers × wall time)
    wall_s: float
    replayed_steps: int
    deleted_states: int
    scope_switches: int = 0  # frontend.process requests that changed a live process's scope (file scopes)

    def as_dict(self) -> dict:
        from dataclasses import asdict

        return asdict(self)


def _quantile(sorted_values: Sequence[float], q: float) -> float | None:
    if not sorted_values:
        return None
    i = min(len(sorted_values) - 1, max(0, round(q * (len(sorted_values) - 1))))
    return sorted_values[i]


class LeanPool:
    """``async with LeanPool(config) as pool``: processes in slots, handed to whoever binds to them
    (``workbench.lean.session.TheoremSession``; the pool never imports its users).

    The pool does not bound how many sessions run at once; callers do (a semaphore at the call site).
    """

    def __init__(self, config: LeanConfig) -> None:
        self.config = config
        self.version: str = ""
        self._slots = [Slot(i) for i in range(config.workers)]
        self._tasks: set[asyncio.Task] = set()
        self._restarts: Counter[str] = Counter()
        self._latencies: deque[float] = deque(maxlen=LATENCY_WINDOW)
        self._tactic_requests = 0
        self._replayed = 0
        self._deleted = 0
        self._started_at = 0.0
        self._closed = False

    # -- lifecycle ----------------------------------------------------------------------------------

    async def __aenter__(self) -> "LeanPool":
        try:
            self.version = await repl_version(self.config, timeout_s=min(self.config.start_timeout_s, 30.0))
        except LeanStartError as e:
            # Provenance only: a REPL that cannot report its version may still serve requests, and
            # a REPL that cannot start fails below with its own error.
            self.version = "unknown (repl --version failed)"
            logger.warning("could not read the REPL version: %s", e)
        try:
            parsed = check_version(self.version)
        except ValueError as e:
            raise LeanStartError(str(e)) from None
        if parsed is None:
            logger.warning("REPL version %r is not a Pantograph version; allowed, recorded as is", self.version)
        self._started_at = time.monotonic()
        results = await asyncio.gather(*(self._start(s) for s in self._slots), return_exceptions=True)
        errors = [r for r in results if isinstance(r, BaseException)]
        if errors:
            await self.aclose()
            raise errors[0]
        logger.info("Lean pool ready: %d processes, %s", len(self._slots), self.version)
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        self._closed = True
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        for slot in self._slots:
            if slot.process is not None:
                slot.busy_s += slot.process.busy_s
                await slot.process.close()
                slot.process = None

    # -- slots --------------------------------------------------------------------------------------

    def _due(self, proc: LeanProcess) -> bool:
        cfg = self.config
        return (cfg.max_requests_per_process is not None and proc.requests >= cfg.max_requests_per_process) or (
            cfg.max_process_age_s is not None and proc.age_s >= cfg.max_process_age_s
        )

    async def _start(self, slot: Slot) -> LeanProcess:
        restart = slot.generation > 0
        slot.disturbances += restart  # a restart holds the slot: whoever waits meanwhile waits on infrastructure
        try:
            proc = await LeanProcess.start(self.config, label=f"lean-{slot.index}.{slot.generation}")
        except LeanStartError:
            slot.start_failures += 1
            raise
        finally:
            slot.disturbances += restart
        slot.process = proc
        return proc

    async def _retire(self, slot: Slot, cause: str) -> None:
        """Kill the slot's process (caller holds the lock); its state ids become void."""
        proc = slot.process
        if proc is None:
            return
        slot.process = None
        slot.generation += 1
        slot.restarts += 1
        slot.disturbances += 1
        slot.busy_s += proc.busy_s
        self._restarts[cause] += 1
        logger.warning("%s: retired (%s) after %d requests", proc.label, cause, proc.requests)
        await proc.close()

    async def _live(self, slot: Slot, *, recycle: bool = False) -> LeanProcess:
        """The slot's process, recycled (if ``recycle`` and due) or (re)started (caller holds the lock)."""
        proc = slot.process
        if proc is not None and not proc.alive:
            await self._retire(slot, proc.death_cause or "died")
        elif proc is not None and recycle and self._due(proc):
            await self._retire(slot, "recycle")
        if slot.process is None:
            if self._closed:
                raise LeanBackendError("the Lean pool is closed")
            return await self._start(slot)
        return slot.process

    def _restart_soon(self, slot: Slot, *, recycle: bool = False) -> None:
        async def restart() -> None:
            async with slot.lock:
                try:
                    await self._live(slot, recycle=recycle)
                except LeanBackendError as e:  # the next request on this slot retries and reports it
                    logger.error("lean-%d: restart failed: %s", slot.index, e)

        if not self._closed:
            task = asyncio.create_task(restart())
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    # -- the slot API sessions use (session.py) -----------------------------------------------------

    def assign(self, avoid: Slot | None = None) -> Slot:
        """Pin a new binding to the live, non-retiring slot with the fewest sessions."""
        def rank(s: Slot) -> tuple:
            live = s.process is not None and s.process.alive and not self._due(s.process)
            return (s is avoid, not live, s.sessions, s.index)

        slot = min(self._slots, key=rank)
        slot.sessions += 1
        return slot

    def release(self, slot: Slot) -> None:
        """A binding ends (the session closed or re-pins)."""
        slot.sessions -= 1
        if slot.sessions == 0 and slot.process is not None and self._due(slot.process):
            self._restart_soon(slot, recycle=True)  # nobody to replay: the cheapest moment to recycle

    async def call(
        self,
        slot: Slot,
        generation: int,
        fn: Callable[[LeanProcess], Awaitable[T]],
        *,
        tactic: bool = False,
        recycle: bool = False,
        infra: bool = False,
    ) -> T:
        """Run ``fn`` on the slot's process if it is still the ``generation`` the caller bound to.

        ``recycle``: this is a request boundary where a due process may be recycled (the caller then
        gets ``StaleBinding`` and replays). Only a session's own first attempt passes it, so a replay can
        never be recycled away again (no livelock even with tiny limits).
        ``infra``: the request repairs after a failure (a replay), which counts as a disturbance.
        """
        slot.waiting += 1
        try:
            await slot.lock.acquire()
        finally:
            slot.waiting -= 1
        try:
            if slot.generation != generation:
                raise StaleBinding
            proc = await self._live(slot, recycle=recycle)
            if slot.generation != generation:
                raise StaleBinding
            t0 = time.monotonic()
            slot.disturbances += infra
            try:
                result = await fn(proc)
            except FATAL as e:
                await self._retire(slot, proc.death_cause or type(e).__name__)
                self._restart_soon(slot)
                raise
            except asyncio.CancelledError:
                if not proc.alive:
                    # Not awaited here (we are being cancelled): mark the slot, restart in background.
                    slot.process, slot.generation = None, slot.generation + 1
                    slot.restarts += 1
                    slot.disturbances += 1
                    slot.busy_s += proc.busy_s
                    self._restarts[proc.death_cause or "cancelled"] += 1
                    self._restart_soon(slot)
                    task = asyncio.create_task(proc.close())
                    self._tasks.add(task)
                    task.add_done_callback(self._tasks.discard)
                raise
            finally:
                slot.requests += 1
                slot.disturbances += infra
            if tactic:
                self._tactic_requests += 1
                self._latencies.append(time.monotonic() - t0)
            return result
        finally:
            slot.lock.release()

    async def run(self, fn: Callable[[LeanProcess], Awaitable[T]]) -> T:
        """Run one self-contained request (it leaves no state a later request needs, e.g. ``frontend.process``
        without ``inheritEnv``) on the least busy slot; a process recycled under it is simply asked again."""
        slot = self.assign()
        try:
            while True:
                try:
                    return await self.call(slot, slot.generation, fn)
                except StaleBinding:
                    continue
        finally:
            self.release(slot)

    def note_replayed(self) -> None:
        self._replayed += 1

    def note_deleted(self, n: int) -> None:
        self._deleted += n

    # -- statistics ---------------------------------------------------------------------------------

    def stats(self) -> PoolStats:
        wall = max(1e-9, time.monotonic() - self._started_at) if self._started_at else 0.0
        procs = []
        busy_total = 0.0
        for s in self._slots:
            p = s.process
            busy = s.busy_s + (p.busy_s if p is not None else 0.0)
            busy_total += busy
            procs.append(
                ProcessStats(
                    index=s.index,
                    pid=p.pid if p is not None else None,
                    alive=bool(p is not None and p.alive),
                    requests=s.requests,
                    requests_current=p.requests if p is not None else 0,
                    restarts=s.restarts,
                    sessions=s.sessions,
                    busy_s=busy,
                )
            )
        lat = sorted(self._latencies)
        return PoolStats(
            processes=tuple(procs),
            restarts_by_cause=dict(self._restarts),
            tactic_requests=self._tactic_requests,
            tactic_p50_s=_quantile(lat, 0.50),
            tactic_p95_s=_quantile(lat, 0.95),
            tactic_p99_s=_quantile(lat, 0.99),
            busy_fraction=busy_total / (len(self._slots) * wall) if wall else 0.0,
            wall_s=wall,
            replayed_steps=self._replayed,
            deleted_states=self._deleted,
            scope_switches=sum(s.process.scope_switches for s in self._slots if s.process is not None),
        )
