"""What mining needs from a Lean backend, and the Pantograph backend (real REPL or the simulator).

A backend opens one session per theorem; a session starts the theorem and applies tactics, answering
typed :mod:`workbench.lean.results`. Mining sees only :class:`LeanBackend` / :class:`LeanSession`, so
another backend (say, a Kimina Lean server) is one module implementing them plus one registration in
``workbench.mining.executor.LEAN_BACKENDS`` (see docs/ARCHITECTURE.md).
"""

from __future__ import annotations

import contextlib
from typing import Any, Callable, Protocol

from workbench.lean.config import LeanConfig
from workbench.lean.pool import LeanPool, PoolStats
from workbench.lean.protocol import FrontendProcessReply, Message
from workbench.lean.results import Node, TacticResult
from workbench.lean.session import TheoremSession

__all__ = ["LeanSession", "LeanBackend", "SourceBackend", "PantographBackend"]


class LeanSession(Protocol):
    """One theorem's proof states (an async context manager; its states are freed on exit)."""

    # Set by the caller: a context manager factory the session enters while it may wait on infrastructure
    # (a restart, a replay, a request that hung or crashed ahead of it), so the theorem's clock can pause.
    # Its context yields a handle with a writable ``charged``: the session sets it True when the time was
    # the theorem's own work after all (see workbench.lean.session and workbench.mining.walk.theorem).
    pause_budget: Callable[[], contextlib.AbstractContextManager[Any]] | None

    async def __aenter__(self) -> "LeanSession": ...

    async def __aexit__(self, *exc: object) -> None: ...

    async def start(self, *, copy_from: str | None = None, expr: str | None = None,
                    levels: tuple[str, ...] = ()) -> Node: ...

    async def root_ast(self) -> str | None: ...  # the root's target as Pantograph's s-expression, if printed

    # Before start(): run every request in a source file's scope (its prelude); returns Lean's errors for it
    async def set_scope(self, prelude: str) -> tuple[Message, ...]: ...

    async def tactic(self, node: Node, tactic: str, goal_id: int | None = None) -> TacticResult: ...


class LeanBackend(Protocol):
    """An open backend (``async with``): its version (provenance), sessions, and counters."""

    version: str

    def theorem(self, name: str) -> LeanSession: ...

    def stats(self) -> Any: ...  # .busy_fraction, .restarts_by_cause, .as_dict()

    def describe(self) -> dict[str, Any]: ...  # provenance: what runs Lean ("command", "workers", ...)


class SourceBackend(Protocol):
    """A backend that can elaborate source files (``workbench trace``)."""

    version: str

    async def frontend_process(self, file_name: str, *, timeout_s: float | None = None) -> FrontendProcessReply: ...


class PantographBackend:
    """Pantograph's protocol over a pool of local REPL processes: the real ``repl`` or the simulator.

    ``async with PantographBackend(config) as lean: async with lean.theorem(name) as s: ...``
    """

    def __init__(self, config: LeanConfig) -> None:
        self.config = config
        self.pool = LeanPool(config)

    @property
    def version(self) -> str:
        return self.pool.version

    async def __aenter__(self) -> "PantographBackend":
        await self.pool.__aenter__()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.pool.aclose()

    def theorem(self, name: str) -> TheoremSession:
        return TheoremSession(self.pool, name)

    def stats(self) -> PoolStats:
        return self.pool.stats()

    async def frontend_process(self, file_name: str, *, timeout_s: float | None = None) -> FrontendProcessReply:
        """One file's compilation units with their tactic invocations and new constants, on any free process."""
        return await self.pool.run(lambda p: p.frontend_process(file_name, timeout_s=timeout_s))

    def describe(self) -> dict[str, Any]:
        return {"command": list(self.config.argv()), "workers": self.config.workers}
