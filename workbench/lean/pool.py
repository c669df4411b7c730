"""A fixed pool of REPL processes shared by many theorem sessions.

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
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter, deque
from dataclasses import dataclass, field
from typing import Awaitable, Callable, Sequence, TypeVar

from workbench.lean.config import LeanConfig
from workbench.lean.errors import (
    LeanBackendError,
    LeanGarbage,
    LeanProcessDied,
    LeanReplayError,
    LeanStartError,
    LeanTimeout,
)
from workbench.lean.process import LeanProcess, repl_version
from workbench.lean.protocol import GoalTacticReply, TacticOutcome, check_version
from workbench.lean.results import (
    Advanced,
    LeanError,
    LeanLimit,
    Node,
    ParseError,
    ProofComplete,
    Rejected,
    Step,
    TacticTimedOut,
    TacticResult,
)
from workbench.states import Goal, render_state

__all__ = ["LeanPool", "TheoremSession", "PoolStats", "ProcessStats"]

logger = logging.getLogger(__name__)

T = TypeVar("T")
FATAL = (LeanTimeout, LeanProcessDied, LeanGarbage)  # the process was killed
MAX_REBINDS = 4  # re-pin + replay attempts after a failure during a replay
MAX_STALE = 32  # rebinds because another request killed the process (each is someone else's failure)
LATENCY_WINDOW = 200_000


class _Stale(Exception):
    """The slot's process changed under a session binding (internal; triggers a rebind)."""


@dataclass(eq=False)
class _Slot:
    index: int
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    process: LeanProcess | None = None
    generation: int = 0  # bumped whenever the process is retired: state ids of older generations are void
    sessions: int = 0
    requests: int = 0  # over all generations
    busy_s: float = 0.0  # of retired generations
    restarts: int = 0
    start_failures: int = 0


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

    def as_dict(self) -> dict:
        from dataclasses import asdict

        return asdict(self)


def _quantile(sorted_values: Sequence[float], q: float) -> float | None:
    if not sorted_values:
        return None
    i = min(len(sorted_values) - 1, max(0, round(q * (len(sorted_values) - 1))))
    return sorted_values[i]


class LeanPool:
    """``async with LeanPool(config) as pool: async with pool.theorem(name) as s: ...``

    The pool does not bound how many sessions run at once; callers do (a semaphore at the call site).
    """

    def __init__(self, config: LeanConfig) -> None:
        self.config = config
        self.version: str = ""
        self._slots = [_Slot(i) for i in range(config.workers)]
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

    def theorem(self, name: str) -> "TheoremSession":
        """A session for one theorem (async context manager; its states are deleted on exit)."""
        return TheoremSession(self, name)

    # -- slots --------------------------------------------------------------------------------------

    def _due(self, proc: LeanProcess) -> bool:
        cfg = self.config
        return (cfg.max_requests_per_process is not None and proc.requests >= cfg.max_requests_per_process) or (
            cfg.max_process_age_s is not None and proc.age_s >= cfg.max_process_age_s
        )

    async def _start(self, slot: _Slot) -> LeanProcess:
        try:
            proc = await LeanProcess.start(self.config, label=f"lean-{slot.index}.{slot.generation}")
        except LeanStartError:
            slot.start_failures += 1
            raise
        slot.process = proc
        return proc

    async def _retire(self, slot: _Slot, cause: str) -> None:
        """Kill the slot's process (caller holds the lock); its state ids become void."""
        proc = slot.process
        if proc is None:
            return
        slot.process = None
        slot.generation += 1
        slot.restarts += 1
        slot.busy_s += proc.busy_s
        self._restarts[cause] += 1
        logger.warning("%s: retired (%s) after %d requests", proc.label, cause, proc.requests)
        await proc.close()

    async def _live(self, slot: _Slot, *, recycle: bool = False) -> LeanProcess:
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

    def _restart_soon(self, slot: _Slot, *, recycle: bool = False) -> None:
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

    def _assign(self, avoid: _Slot | None = None) -> _Slot:
        def rank(s: _Slot) -> tuple:
            live = s.process is not None and s.process.alive and not self._due(s.process)
            return (s is avoid, not live, s.sessions, s.index)

        slot = min(self._slots, key=rank)
        slot.sessions += 1
        return slot

    def _release(self, slot: _Slot) -> None:
        slot.sessions -= 1
        if slot.sessions == 0 and slot.process is not None and self._due(slot.process):
            self._restart_soon(slot, recycle=True)  # nobody to replay: the cheapest moment to recycle

    async def _call(
        self,
        slot: _Slot,
        generation: int,
        fn: Callable[[LeanProcess], Awaitable[T]],
        *,
        tactic: bool = False,
        recycle: bool = False,
    ) -> T:
        """Run ``fn`` on the slot's process if it is still the ``generation`` the caller bound to.

        ``recycle``: this is a request boundary where a due process may be recycled (the caller then
        gets ``_Stale`` and replays). Only a session's own first attempt passes it, so a replay can
        never be recycled away again (no livelock even with tiny limits).
        """
        async with slot.lock:
            if slot.generation != generation:
                raise _Stale
            proc = await self._live(slot, recycle=recycle)
            if slot.generation != generation:
                raise _Stale
            t0 = time.monotonic()
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
                    slot.busy_s += proc.busy_s
                    self._restarts[proc.death_cause or "cancelled"] += 1
                    self._restart_soon(slot)
                    task = asyncio.create_task(proc.close())
                    self._tasks.add(task)
                    task.add_done_callback(self._tasks.discard)
                raise
            finally:
                slot.requests += 1
            if tactic:
                self._tactic_requests += 1
                self._latencies.append(time.monotonic() - t0)
            return result

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
        )


class TheoremSession:
    """The proof states of one theorem, on whichever pool process is alive.

    Use as ``async with pool.theorem(name) as session``:

    * ``await session.start(copy_from=None, expr=None) -> Node`` — the root node (``goal.start`` then
      ``goal.print`` to read the root goals). With neither argument it starts from ``copyFrom`` = the
      session's theorem name.
    * ``await session.tactic(node, tactic, goal_id=None) -> TacticResult`` — ``Advanced``,
      ``ProofComplete``, ``LeanError``, ``ParseError`` or ``Rejected`` (``sorry``/unsafe). Any node
      this session returned may be used, in any order, at any time (siblings, backtracking).

    Infrastructure failures raise ``LeanTimeout``/``LeanProcessDied``/``LeanProtocolError``: only the
    request that hit them fails. The session then re-pins to a live process; the next call replays the
    node's tactic path transparently (``LeanReplayError`` if the replay does not reach the recorded
    state). On exit the session sends ``goal.delete`` for every state it created on its process.
    Several tasks may call one session at once (e.g. candidates tried concurrently); their requests
    still run one at a time on the process, interleaved with other sessions'.
    """

    def __init__(self, pool: LeanPool, name: str) -> None:
        self._pool = pool
        self.name = name
        self._slot: _Slot | None = None
        self._gen = -1
        self._root: tuple[str | None, str | None] | None = None  # (copy_from, expr)
        self._goals: dict[tuple[Step, ...], tuple[Goal, ...]] = {}  # every path ever reached
        self._bound: dict[tuple[Step, ...], int] = {}  # path -> state id on (slot, generation)
        self._created: list[int] = []  # state ids to delete on the current binding
        self.replays = 0  # rebinds that replayed a path

    async def __aenter__(self) -> "TheoremSession":
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # -- public API ---------------------------------------------------------------------------------

    async def start(self, *, copy_from: str | None = None, expr: str | None = None) -> Node:
        if copy_from is not None and expr is not None:
            raise ValueError("start() takes copy_from or expr, not both")
        if copy_from is None and expr is None:
            copy_from = self.name
        if self._root is not None and self._root != (copy_from, expr):
            raise ValueError(f"session {self.name!r} was already started from {self._root}")
        self._root = (copy_from, expr)
        for _ in range(MAX_STALE):
            try:
                await self._bind_replaying(())
                return Node(self.name, (), self._goals[()])
            except _Stale:
                continue
        raise self._unstable()

    async def tactic(self, node: Node, tactic: str, goal_id: int | None = None) -> TacticResult:
        if node.theorem != self.name or node.path not in self._goals:
            raise ValueError(f"node does not belong to session {self.name!r}")
        for attempt in range(MAX_STALE):
            try:
                state_id, slot, gen = await self._bind_replaying(node.path)
            except _Stale:
                continue
            try:
                reply = await self._pool._call(
                    slot,
                    gen,
                    lambda p, sid=state_id: p.goal_tactic(sid, tactic, goal_id),
                    tactic=True,
                    recycle=attempt == 0,
                )
            except _Stale:
                self._unbind_if(slot, gen)
                continue
            except (*FATAL, asyncio.CancelledError):
                if slot.generation != gen:  # a cancel while queued leaves the process (and our states) alive
                    self._unbind_if(slot, gen)
                raise
            return self._result(node, (tactic, goal_id), reply, slot, gen)
        raise self._unstable()

    async def close(self) -> None:
        """Delete this session's states (``goal.delete``) and release its process slot."""
        slot, gen, created = self._slot, self._gen, list(self._created)
        try:
            if slot is not None and created and slot.generation == gen:
                await self._pool._call(slot, gen, lambda p: p.goal_delete(created))
                self._pool._deleted += len(created)
        except (_Stale, LeanBackendError) as e:  # a dead process freed them anyway
            logger.debug("%s: goal.delete skipped: %r", self.name, e)
        finally:
            self._unbind()

    # -- binding and replay -------------------------------------------------------------------------
    #
    # A binding is (slot, generation): the process whose state ids ``_bound`` and ``_created`` hold.
    # Every await may let another task of this session (or the pool) change it, so each step checks
    # that the binding it started with is still current before recording anything.

    def _unstable(self) -> LeanProcessDied:
        return LeanProcessDied(f"{self.name}: processes kept dying under this session ({MAX_STALE} rebinds)")

    def _current(self, slot: _Slot, gen: int) -> bool:
        return self._slot is slot and self._gen == gen

    def _unbind_if(self, slot: _Slot, gen: int) -> None:
        if self._current(slot, gen):
            self._unbind()

    def _unbind(self) -> None:
        if self._slot is not None:
            self._pool._release(self._slot)
        self._slot, self._gen = None, -1
        self._bound.clear()
        self._created.clear()

    def _ensure_slot(self) -> tuple[_Slot, int]:
        if self._slot is None:
            self._slot = self._pool._assign()
            self._gen = self._slot.generation
        return self._slot, self._gen

    async def _bind_replaying(self, path: tuple[Step, ...]) -> tuple[int, _Slot, int]:
        """(state id of ``path``, slot, generation) on a live binding; replays after a restart.

        A process dying (or failing to restart) during a replay is not the caller's request: the
        session re-pins to another process and tries again, a bounded number of times.
        """
        for attempt in range(MAX_REBINDS):
            slot, gen = self._ensure_slot()
            try:
                return await self._bind(path, slot, gen), slot, gen
            except (*FATAL, LeanStartError) as e:
                self._unbind_if(slot, gen)
                logger.warning("%s: process failed while replaying (%s); re-pinning", self.name, type(e).__name__)
                if attempt == MAX_REBINDS - 1:
                    raise
        raise AssertionError("unreachable")

    async def _call_bound(self, slot: _Slot, gen: int, fn: Callable[[LeanProcess], Awaitable[T]]) -> T:
        try:
            result = await self._pool._call(slot, gen, fn)
        except _Stale:
            self._unbind_if(slot, gen)
            raise
        if not self._current(slot, gen):
            raise _Stale  # rebound meanwhile: the state id belongs to a binding we no longer hold
        return result

    async def _bind(self, path: tuple[Step, ...], slot: _Slot, gen: int) -> int:
        if path in self._bound:
            return self._bound[path]
        if () not in self._bound:
            await self._bind_root(slot, gen)
        # Deepest already-bound prefix, then one goal.tactic per missing step.
        k = len(path)
        while path[:k] not in self._bound:
            k -= 1
        if k < len(path):
            self.replays += 1
        for i in range(k, len(path)):
            parent = self._bound[path[:i]]
            tactic, goal_id = path[i]
            reply = await self._call_bound(
                slot, gen, lambda p, s=parent, t=tactic, g=goal_id: p.goal_tactic(s, t, g)
            )
            if reply.next_state_id is not None:
                self._created.append(reply.next_state_id)
            self._pool._replayed += 1
            expected = self._goals[path[: i + 1]]
            if reply.outcome not in (TacticOutcome.ADVANCED, TacticOutcome.COMPLETE) or render_state(
                reply.goals
            ) != render_state(expected):
                raise LeanReplayError(
                    f"{self.name}: replaying step {i} ({tactic!r}) gave {reply.outcome} "
                    f"{render_state(reply.goals)[:200]!r}, expected {render_state(expected)[:200]!r}"
                )
            self._bound[path[: i + 1]] = reply.next_state_id  # type: ignore[assignment]
        return self._bound[path]

    async def _bind_root(self, slot: _Slot, gen: int) -> None:
        assert self._root is not None, "start() first"
        copy_from, expr = self._root

        async def start(p: LeanProcess) -> tuple[int, tuple[Goal, ...]]:
            reply = await p.goal_start(copy_from=copy_from, expr=expr)
            if self._current(slot, gen):
                self._created.append(reply.state_id)
            printed = await p.goal_print(reply.state_id)
            return reply.state_id, printed.goals

        state_id, goals = await self._call_bound(slot, gen, start)
        known = self._goals.get(())
        if known is not None and render_state(known) != render_state(goals):
            raise LeanReplayError(f"{self.name}: root state differs after restart: {render_state(goals)[:200]!r}")
        self._goals[()] = goals
        self._bound[()] = state_id

    def _result(self, node: Node, step: Step, reply: GoalTacticReply, slot: _Slot, gen: int) -> TacticResult:
        bound = self._current(slot, gen)  # else the state died with its process: the path still names it
        if reply.next_state_id is not None and bound:
            self._created.append(reply.next_state_id)
        outcome = reply.outcome
        if outcome is TacticOutcome.LEAN_ERROR:
            return LeanError(reply.messages)
        if outcome is TacticOutcome.PARSE_ERROR:
            return ParseError(reply.parse_error or "")
        if outcome is TacticOutcome.REJECTED:
            return Rejected(reply.has_sorry, reply.has_unsafe, reply.messages)
        if outcome is TacticOutcome.LIMIT:
            return LeanLimit(str(reply.limit), "\n".join(m.data for m in reply.messages))
        if outcome is TacticOutcome.TIMED_OUT:
            return TacticTimedOut()
        path = (*node.path, step)
        self._goals.setdefault(path, reply.goals)
        if bound:
            self._bound[path] = reply.next_state_id  # type: ignore[assignment]
        child = Node(self.name, path, self._goals[path])
        if outcome is TacticOutcome.COMPLETE:
            return ProofComplete(child, reply.messages)
        return Advanced(child, reply.goals, reply.messages)
