"""One theorem's proof states on whichever pool process is alive (``LeanPool.theorem(name)``).

The session talks to the pool only through its slot API: ``assign``/``release`` a binding, ``call`` a
function on the bound process (``StaleBinding`` when the process changed underneath), and the
``note_*`` counters.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import Any, Awaitable, Callable, Iterator, TypeVar

from workbench.lean.errors import LeanBackendError, LeanProcessDied, LeanReplayError, LeanStartError
from workbench.lean.pool import FATAL, LeanPool, Slot, StaleBinding
from workbench.lean.process import LeanProcess
from workbench.lean.protocol import GoalTacticReply, Message, TacticOutcome
from workbench.lean.results import (
    Advanced,
    LeanError,
    LeanLimit,
    Node,
    ParseError,
    ProofComplete,
    Rejected,
    Step,
    TacticResult,
    TacticTimedOut,
)
from workbench.states import Goal, render_state

__all__ = ["TheoremSession"]

logger = logging.getLogger(__name__)

T = TypeVar("T")
MAX_REBINDS = 4  # re-pin + replay attempts after a failure during a replay
MAX_STALE = 32  # rebinds because another request killed the process (each is someone else's failure)


class _Hold:
    """What a ``pause_budget`` context yields when the caller's hook yields nothing: ``charged`` is ignored."""

    charged = False


class TheoremSession:
    """The proof states of one theorem, on whichever pool process is alive.

    Use as ``async with pool.theorem(name) as session``:

    * ``await session.start(copy_from=None, expr=None) -> Node`` — the root node (``goal.start`` then
      ``goal.print`` to read the root goals). With neither argument it starts from ``copyFrom`` = the
      session's theorem name.
    * ``await session.root_ast() -> str | None`` — the root's target as an s-expression (Lean's binders).
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
        self._slot: Slot | None = None
        self._gen = -1
        self._root: tuple[str | None, str | None, tuple[str, ...]] | None = None  # (copy_from, expr, levels)
        self._goals: dict[tuple[Step, ...], tuple[Goal, ...]] = {}  # every path ever reached
        self._bound: dict[tuple[Step, ...], int] = {}  # path -> state id on (slot, generation)
        self._created: list[int] = []  # state ids to delete on the current binding
        self.replays = 0  # rebinds that replayed a path
        # Infrastructure is not this theorem's work: re-pinning after a process died (waiting for a restart,
        # replaying the path), or waiting behind a request that hung or crashed. The caller may pause its
        # budget meanwhile: a context manager factory whose context yields a handle with a writable
        # ``charged`` (default False). Re-pins run inside it; so does every tactic request, which the
        # session marks ``charged = True`` unless infrastructure on its process delayed it (see
        # ``Slot.disturbances``), so the deadline never fires while someone else's failure holds the process.
        self.infra_wait_s = 0.0
        self.rebinds = 0  # re-pins that replayed (root or path) after the first start
        self.pause_budget: Callable[[], contextlib.AbstractContextManager[Any]] | None = None
        self._scope = ""  # the prelude every request of this session runs under (set_scope)

    async def __aenter__(self) -> "TheoremSession":
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # -- public API ---------------------------------------------------------------------------------

    async def start(self, *, copy_from: str | None = None, expr: str | None = None,
                    levels: tuple[str, ...] = ()) -> Node:
        """``levels``: universe names ``expr`` mentions (``Sort u``); ``copyFrom`` needs none (protocol.goal_start)."""
        if copy_from is not None and expr is not None:
            raise ValueError("start() takes copy_from or expr, not both")
        if copy_from is None and expr is None:
            copy_from = self.name
        if self._root is not None and self._root != (copy_from, expr, tuple(levels)):
            raise ValueError(f"session {self.name!r} was already started from {self._root}")
        self._root = (copy_from, expr, tuple(levels))
        await self._request((), None)
        return Node(self.name, (), self._goals[()])

    async def set_scope(self, prelude: str) -> tuple[Message, ...]:
        """Run this theorem's requests in a source file's scope (``prelude``: its scope-forming commands,
        :func:`workbench.scope.file_scope`), before :meth:`start`. Every request re-enters it if another
        session on the process changed the REPL's one scope. Returns Lean's errors for the prelude; then
        the session keeps the default scope (the caller starts as without a file)."""
        if () in self._goals:
            raise ValueError(f"session {self.name!r}: set_scope() before start()")
        with self._held() as hold:  # the theorem's own work, unless someone's hang or crash delayed it
            disturbed = False
            try:
                for _ in range(MAX_STALE):
                    slot, gen = self._ensure_slot()
                    seen = slot.disturbances
                    try:
                        errors = await self._call_bound(slot, gen, lambda p: p.enter_scope(prelude), scoped=False)
                        if errors:
                            await self._call_bound(slot, gen, lambda p: p.enter_scope(""), scoped=False)
                    except StaleBinding:
                        disturbed = True
                        continue
                    finally:
                        disturbed |= slot.disturbances != seen
                    self._scope = "" if errors else prelude
                    return errors
                raise self._unstable()
            finally:
                hold.charged = not disturbed

    def _scoped(self, fn: Callable[[LeanProcess], Awaitable[T]]) -> Callable[[LeanProcess], Awaitable[T]]:
        scope = self._scope

        async def run(p: LeanProcess) -> T:
            if p.scope != scope:  # another session's file, or a restarted process: re-enter ours
                await p.enter_scope(scope)
            return await fn(p)

        return run

    async def root_ast(self) -> str | None:
        """The root goal's target as Pantograph's s-expression (``printExprAST``), to read Lean's own
        binders from (``workbench.lean.binders.telescope``); None when the server printed none.
        After :meth:`start`."""
        if () not in self._goals:
            raise ValueError(f"session {self.name!r}: start() first")
        reply, _, _ = await self._request((), lambda p, sid: p.goal_print_ast(sid))
        return reply.target_sexps[0] if reply.target_sexps else None

    async def tactic(self, node: Node, tactic: str, goal_id: int | None = None) -> TacticResult:
        if node.theorem != self.name or node.path not in self._goals:
            raise ValueError(f"node does not belong to session {self.name!r}")
        reply, slot, gen = await self._request(
            node.path, lambda p, sid: p.goal_tactic(sid, tactic, goal_id), tactic=True)
        return self._result(node, (tactic, goal_id), reply, slot, gen)

    async def _request(self, path: tuple[Step, ...], fn: Callable[[LeanProcess, int], Awaitable[T]] | None,
                       *, tactic: bool = False) -> tuple[T, Slot, int]:
        """Bind ``path`` (replaying after a restart), then run ``fn(process, state id)`` on its process:
        inside the caller's clock hook, charged to the theorem unless infrastructure work (someone's hang
        or crash on this process, a re-pin or replay) delayed it. ``fn=None`` only binds."""
        with self._held() as hold:
            rebinds, disturbed = self.rebinds, False
            try:
                for attempt in range(MAX_STALE):
                    slot, _ = self._ensure_slot()
                    seen = slot.disturbances
                    try:  # a wait behind someone's hang, or a restart, while binding is not ours either
                        state_id, slot, gen = await self._bind_replaying(path)
                    except StaleBinding:
                        disturbed = True
                        continue
                    finally:
                        disturbed |= self._slot is not slot or slot.disturbances != seen
                    if fn is None:
                        return None, slot, gen  # type: ignore[return-value]
                    seen = slot.disturbances
                    try:
                        reply = await self._pool.call(slot, gen, self._scoped(lambda p, sid=state_id: fn(p, sid)),
                                                      tactic=tactic, recycle=tactic and attempt == 0)
                    except StaleBinding:
                        disturbed = True
                        self._unbind_if(slot, gen)
                        continue
                    except (*FATAL, asyncio.CancelledError):
                        if slot.generation != gen:  # a cancel while queued leaves the process (and our states) alive
                            self._unbind_if(slot, gen)
                        raise
                    finally:
                        disturbed |= slot.disturbances != seen
                    return reply, slot, gen
                raise self._unstable()
            finally:
                # The theorem's own work unless someone's failure (or a replay) delayed this request.
                hold.charged = not (disturbed or self.rebinds != rebinds)

    async def close(self) -> None:
        """Delete this session's states (``goal.delete``) and release its process slot (clean-up: never
        charged to the theorem's clock)."""
        slot, gen, created = self._slot, self._gen, list(self._created)
        try:
            if slot is not None and created and slot.generation == gen:
                with self._held():
                    await self._pool.call(slot, gen, lambda p: p.goal_delete(created))
                self._pool.note_deleted(len(created))
        except (StaleBinding, LeanBackendError) as e:  # a dead process freed them anyway
            logger.debug("%s: goal.delete skipped: %r", self.name, e)
        finally:
            self._unbind()

    # -- binding and replay -------------------------------------------------------------------------
    #
    # A binding is (slot, generation): the process whose state ids ``_bound`` and ``_created`` hold.
    # Every await may let another task of this session (or the pool) change it, so each step checks
    # that the binding it started with is still current before recording anything.

    @contextlib.contextmanager
    def _held(self) -> Iterator[Any]:
        """The caller's budget pause (see ``pause_budget``), with a handle whose ``charged`` can be set."""
        if self.pause_budget is None:
            yield _Hold()
            return
        with self.pause_budget() as handle:
            yield handle if handle is not None else _Hold()

    def _unstable(self) -> LeanProcessDied:
        return LeanProcessDied(f"{self.name}: processes kept dying under this session ({MAX_STALE} rebinds)")

    def _current(self, slot: Slot, gen: int) -> bool:
        return self._slot is slot and self._gen == gen

    def _unbind_if(self, slot: Slot, gen: int) -> None:
        if self._current(slot, gen):
            self._unbind()

    def _unbind(self) -> None:
        if self._slot is not None:
            self._pool.release(self._slot)
        self._slot, self._gen = None, -1
        self._bound.clear()
        self._created.clear()

    def _ensure_slot(self) -> tuple[Slot, int]:
        if self._slot is None:
            self._slot = self._pool.assign()
            self._gen = self._slot.generation
        return self._slot, self._gen

    async def _bind_replaying(self, path: tuple[Step, ...]) -> tuple[int, Slot, int]:
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

    async def _call_bound(self, slot: Slot, gen: int, fn: Callable[[LeanProcess], Awaitable[T]], *,
                          scoped: bool = True) -> T:
        try:
            result = await self._pool.call(slot, gen, self._scoped(fn) if scoped else fn,
                                           infra=() in self._goals)  # a replay after a failure
        except StaleBinding:
            self._unbind_if(slot, gen)
            raise
        if not self._current(slot, gen):
            raise StaleBinding  # rebound meanwhile: the state id belongs to a binding we no longer hold
        return result

    async def _bind(self, path: tuple[Step, ...], slot: Slot, gen: int) -> int:
        if path in self._bound:
            return self._bound[path]
        if () not in self._goals:
            return await self._bind_path(path, slot, gen)  # the first start: the theorem's own work
        t0 = time.monotonic()
        self.rebinds += 1
        try:
            with self._held():
                return await self._bind_path(path, slot, gen)
        finally:
            self.infra_wait_s += time.monotonic() - t0

    async def _bind_path(self, path: tuple[Step, ...], slot: Slot, gen: int) -> int:
        """Bind the root if needed, then replay each missing step from the deepest bound prefix: all in one
        call on the process, so no other session's request (which could kill the process and void the
        replay) runs in between (under frequent crashes, interleaved replays of many sessions never finish)."""
        k = len(path)
        while k > 0 and path[:k] not in self._bound:
            k -= 1
        root_needed = () not in self._bound
        if k < len(path):
            self.replays += 1
        copy_from, expr, levels = self._root if self._root is not None else (None, None, ())

        def record(state_id: int | None) -> None:
            if state_id is not None and self._current(slot, gen):
                self._created.append(state_id)

        async def replay(p: LeanProcess) -> tuple[tuple[int, tuple[Goal, ...]] | None, list[GoalTacticReply]]:
            root = None
            if root_needed:
                assert self._root is not None, "start() first"
                started = await p.goal_start(copy_from=copy_from, expr=expr, levels=levels)
                record(started.state_id)
                root = (started.state_id, (await p.goal_print(started.state_id)).goals)
                state_id = started.state_id
            else:
                state_id = self._bound[path[:k]]
            replies: list[GoalTacticReply] = []
            for i in range(k, len(path)):
                tactic, goal_id = path[i]
                reply = await p.goal_tactic(state_id, tactic, goal_id)
                record(reply.next_state_id)
                replies.append(reply)
                if not self._reached(reply, path[: i + 1]):
                    break  # the mismatch is raised below, outside the process's lock
                state_id = reply.next_state_id  # type: ignore[assignment]
            return root, replies

        root, replies = await self._call_bound(slot, gen, replay)
        if root is not None:
            known = self._goals.get(())
            if known is not None and render_state(known) != render_state(root[1]):
                raise LeanReplayError(f"{self.name}: root state differs after restart: {render_state(root[1])[:200]!r}")
            self._goals[()] = root[1]
            self._bound[()] = root[0]
        for i, reply in enumerate(replies, start=k):
            self._pool.note_replayed()
            if not self._reached(reply, path[: i + 1]):
                expected = self._goals[path[: i + 1]]
                raise LeanReplayError(
                    f"{self.name}: replaying step {i} ({path[i][0]!r}) gave {reply.outcome} "
                    f"{render_state(reply.goals)[:200]!r}, expected {render_state(expected)[:200]!r}"
                )
            self._bound[path[: i + 1]] = reply.next_state_id  # type: ignore[assignment]
        return self._bound[path]

    def _reached(self, reply: GoalTacticReply, path: tuple[Step, ...]) -> bool:
        """A replayed step reached the state the path recorded (same goals, as Lean renders them)."""
        return reply.outcome in (TacticOutcome.ADVANCED, TacticOutcome.COMPLETE) and render_state(
            reply.goals) == render_state(self._goals[path])

    def _result(self, node: Node, step: Step, reply: GoalTacticReply, slot: Slot, gen: int) -> TacticResult:
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
