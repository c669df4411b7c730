"""The one settings object of the Lean backend."""

from __future__ import annotations

import shlex
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping

__all__ = ["LeanConfig", "DEFAULT_MEMORY_LIMIT_BYTES", "simulator_command"]

DEFAULT_MEMORY_LIMIT_BYTES = 12 * 1024**3  # Mathlib needs 6-8 GB resident; headroom for tactics


@dataclass(frozen=True)
class LeanConfig:
    """How to start and manage Pantograph REPL processes.

    ``command`` is the argv prefix (``["lake", "env", "repl"]`` run in a Lean project, a path to the
    ``repl`` binary, or :func:`simulator_command`); the client appends ``imports`` and one
    ``--key=value`` argument per Lean option, exactly as ``repl MODULE... --opt=val`` expects.
    """

    command: tuple[str, ...]
    imports: tuple[str, ...] = ("Init",)
    options: Mapping[str, str] = field(default_factory=dict)  # Lean options, e.g. {"maxHeartbeats": "400000"}
    env: Mapping[str, str] | None = None  # extra environment (LEAN_PATH=...), merged over os.environ
    cwd: str | None = None
    workers: int = 1
    request_timeout_s: float = 60.0
    start_timeout_s: float = 300.0  # importing Mathlib takes 15-120 s
    max_requests_per_process: int | None = 20_000
    max_process_age_s: float | None = 4 * 3600.0
    memory_limit_bytes: int | None = DEFAULT_MEMORY_LIMIT_BYTES  # RLIMIT_AS per process; None = unlimited
    tactic_timeout_ms: int | None = None  # Pantograph's own per-tactic interrupt (options.set timeout)
    stderr_tail_bytes: int = 8192

    def __post_init__(self) -> None:
        if isinstance(self.command, str):
            object.__setattr__(self, "command", tuple(shlex.split(self.command)))
        else:
            object.__setattr__(self, "command", tuple(self.command))
        object.__setattr__(self, "imports", tuple(self.imports))
        if not self.command:
            raise ValueError("LeanConfig.command is empty")
        if self.workers < 1:
            raise ValueError(f"LeanConfig.workers must be >= 1, got {self.workers}")
        if self.request_timeout_s <= 0 or self.start_timeout_s <= 0:
            raise ValueError("LeanConfig timeouts must be positive")

    def argv(self) -> list[str]:
        return [*self.command, *self.imports, *(f"--{k}={v}" for k, v in self.options.items())]

    def version_argv(self) -> list[str]:
        return [*self.command, "--version"]


def simulator_command(traces: str | Path, *extra: str, python: str = sys.executable) -> tuple[str, ...]:
    """argv prefix that starts ``python -m workbench.lean.simulator --traces PATH [extra...]``."""
    return (python, "-m", "workbench.lean.simulator", "--traces", str(traces), *extra)

