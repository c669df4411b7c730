"""Where theorems are walked: the executor seam, the Lean backends, the policy.

The driver (``run.mine_async``) selects theorems and writes every file; an *executor* walks them and
hands each finished :class:`TheoremResult` to the driver's ``on_result``. :class:`LocalExecutor` walks
on this machine; ``ray_backend.RayExecutor`` on a Ray cluster. Both build Lean and the policy from the
settings with :func:`open_lean` / :func:`open_policy` and walk with :func:`walk_one`.

Lean backends are registered in :data:`LEAN_BACKENDS` (name → factory from the settings); the factory
returns an unopened :class:`~workbench.lean.backend.LeanBackend`. Adding one is a module implementing that
protocol plus one entry here (docs/ARCHITECTURE.md, "Adding a Lean backend").
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import shlex
from typing import TYPE_CHECKING, Any, AsyncIterator, Callable, Iterator, Protocol, Sequence

from workbench.lean.backend import LeanBackend, PantographBackend
from workbench.lean.config import LeanConfig, simulator_command
from workbench.mining.records import EndReason, Status, TheoremResult
from workbench.mining.settings import MineSettings
from workbench.mining.walk import WalkParams, walk_theorem
from workbench.policy.base import Policy
from workbench.policy.errors import PolicyUnavailable
from workbench.traces import Theorem

if TYPE_CHECKING:  # httpx loads only when a run uses SGLang
    from workbench.policy.sglang import SGLangConfig

__all__ = ["Executor", "LocalExecutor", "LEAN_BACKENDS", "LeanNotConfigured", "PANTOGRAPH_HELP", "lean_config",
           "open_lean", "open_policy", "sglang_config", "walk_one"]

log = logging.getLogger(__name__)

PANTOGRAPH_HELP = """\
No Lean backend configured. Mining needs Pantograph (the Lean 4 REPL) or, for a dry run, the simulator.

  * Install Pantograph: git clone https://github.com/lenianiva/Pantograph, check out the release matching
    your project's Lean toolchain (e.g. Pantograph 0.3.x for Lean v4.21.0), run `lake build repl`.
  * Point the workbench at it, e.g. from your Mathlib project folder:
        --pantograph-cmd "lake env /path/to/Pantograph/.lake/build/bin/repl"
    or set PANTOGRAPH_REPL to the same command (the binary also works with LEAN_PATH set to
    `lake env printenv LEAN_PATH`). Imports are added from --imports (default Init,Mathlib).
  * Or run a dry run with the simulator: --lean simulated (labels are SIMULATED, never train on them)."""


class LeanNotConfigured(ValueError):
    """Neither a Pantograph command nor the simulator was chosen."""


# --- Lean backends -----------------------------------------------------------------------------------


def lean_config(settings: MineSettings) -> LeanConfig:
    """The REPL processes a Pantograph-protocol backend starts: the simulator or the configured command."""
    if settings.simulated:
        return LeanConfig(
            command=simulator_command(settings.simulator_traces or settings.traces_path, "--lean-version", settings.simulator_lean_version,
                                      *settings.simulator_args),
            imports=(), workers=settings.lean_workers, request_timeout_s=settings.tactic_timeout_s,
            start_timeout_s=60.0, memory_limit_bytes=None)
    if not settings.pantograph_cmd:
        raise LeanNotConfigured(PANTOGRAPH_HELP)
    # Pantograph's own interrupt fires first and keeps the process; the request deadline is the backstop.
    return LeanConfig(
        command=tuple(shlex.split(settings.pantograph_cmd)), imports=settings.imports, workers=settings.lean_workers,
        request_timeout_s=settings.tactic_timeout_s + 15.0, tactic_timeout_ms=int(settings.tactic_timeout_s * 1000))


# MineSettings.backend -> an unopened backend. The simulator speaks Pantograph's protocol, so both
# are PantographBackend; a backend with another protocol registers its own class here.
LEAN_BACKENDS: dict[str, Callable[[MineSettings], LeanBackend]] = {
    "pantograph": lambda settings: PantographBackend(lean_config(settings)),
    "simulated": lambda settings: PantographBackend(lean_config(settings)),
}


def open_lean(settings: MineSettings) -> LeanBackend:
    """The settings' Lean backend, not yet started (``async with`` starts it). Raises before anything is
    loaded: ValueError for an unknown backend, LeanNotConfigured for real Lean without a command."""
    factory = LEAN_BACKENDS.get(settings.backend)
    if factory is None:
        raise ValueError(f"unknown Lean backend {settings.lean!r}: choose one of {', '.join(LEAN_BACKENDS)} or auto")
    return factory(settings)


# --- the policy --------------------------------------------------------------------------------------


def sglang_config(settings: MineSettings) -> "SGLangConfig":
    """The SGLang client's settings for a run with ``settings.server_url``."""
    from workbench.policy.prompt import prompt_format
    from workbench.policy.sglang import SGLangConfig

    if not settings.server_url:
        raise ValueError("no SGLang server configured (--server-url or SGLANG_URL)")
    return SGLangConfig(url=settings.server_url, temperature=settings.temperature,
                        max_concurrency=max(4, settings.theorems_in_flight),
                        prompt=prompt_format(settings.prompt_format), startup_wait_s=settings.server_wait_s)


@contextlib.asynccontextmanager
async def open_policy(settings: MineSettings, theorems: Sequence[Theorem]) -> AsyncIterator[Policy]:
    """SGLang when a server URL is set, else the offline retrieval policy indexed on ``theorems``."""
    if settings.server_url:
        from workbench.policy.sglang import SGLangPolicy

        async with SGLangPolicy(sglang_config(settings)) as policy:
            yield policy
    else:
        from workbench.policy.retrieval import RetrievalPolicy

        policy = await RetrievalPolicy.build(theorems)
        try:
            yield policy
        finally:
            await policy.aclose()


# --- walking -----------------------------------------------------------------------------------------


async def walk_one(theorem: Theorem, lean: LeanBackend, policy: Policy, params: WalkParams,
                   simulated: bool) -> TheoremResult:
    """One theorem's walk; an unexpected error skips that theorem (here and on Ray actors alike)."""
    try:
        return await walk_theorem(theorem, lean, policy, params, simulated=simulated)
    except PolicyUnavailable:
        raise  # the server is gone: the run stops (this theorem stays unfinished for --resume)
    except Exception as e:  # noqa: BLE001 - a bug on one theorem must not end a 5000-theorem run
        log.exception("%s: walk failed", theorem.full_name)
        return TheoremResult(theorem.full_name, Status.SKIPPED, EndReason.INTERNAL_ERROR, f"{type(e).__name__}: {e}",
                             num_steps=len(theorem.steps))


class Executor(Protocol):
    """What the driver needs from an executor (``LocalExecutor`` here, ``ray_backend.RayExecutor``)."""

    lean_version: str

    @property
    def policy_provenance(self) -> dict[str, Any]: ...  # the policy's provenance now (its counters move)

    def describe(self) -> dict[str, Any]: ...

    def start(self, todo: Sequence[Theorem], on_result: Callable[[TheoremResult], None]) -> list[asyncio.Task]: ...

    def stats(self) -> Any: ...  # .busy_fraction, .restarts_by_cause, .as_dict()


class LocalExecutor:
    """Walks theorems on this machine: one Lean backend, one policy, ``theorems_in_flight`` workers."""

    def __init__(self, lean: LeanBackend, policy: Policy, settings: MineSettings) -> None:
        self.lean, self.policy, self.settings = lean, policy, settings
        self.lean_version = lean.version

    @property
    def policy_provenance(self) -> dict[str, Any]:
        return {"policy": type(self.policy).__name__} | self.policy.provenance()

    def describe(self) -> dict[str, Any]:
        return {"kind": "local", "lean_workers": self.settings.lean_workers,
                "theorems_in_flight": self.settings.theorems_in_flight}

    def start(self, todo: Sequence[Theorem], on_result: Callable[[TheoremResult], None]) -> list[asyncio.Task]:
        queue, params = iter(todo), self.settings.walk_params()
        return [asyncio.create_task(self._worker(queue, params, on_result))
                for _ in range(min(self.settings.theorems_in_flight, max(1, len(todo))))]  # the concurrency bound

    async def _worker(self, queue: Iterator[Theorem], params: WalkParams,
                      on_result: Callable[[TheoremResult], None]) -> None:
        for theorem in queue:  # a shared iterator: every worker takes the next theorem when it is free
            on_result(await walk_one(theorem, self.lean, self.policy, params, self.settings.simulated))

    def stats(self) -> Any:
        return self.lean.stats()
