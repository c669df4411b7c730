"""Infrastructure failures of the Lean backend.

A tactic that fails in Lean is an *outcome* (a value, see ``results.py``); these exceptions are for
broken infrastructure: a REPL that did not start, died, hung, or answered something that is not the
protocol. Every exception that ends a process says which process and carries the tail of its stderr.
"""

from __future__ import annotations

__all__ = [
    "LeanBackendError",
    "LeanStartError",
    "LeanProcessDied",
    "LeanTimeout",
    "LeanProtocolError",
    "LeanGarbage",
    "LeanReplayError",
]


class LeanBackendError(Exception):
    """Base class of every Lean infrastructure error."""


class _ProcessFailure(LeanBackendError):
    """A failure of the REPL process itself; the message carries its exit code and stderr tail."""

    def __init__(self, message: str, *, stderr: str = "", returncode: int | None = None) -> None:
        detail = f"{message} (exit code {returncode})" if returncode is not None else message
        if stderr.strip():
            detail += f"\n--- REPL stderr (tail) ---\n{stderr.rstrip()}"
        super().__init__(detail)
        self.stderr = stderr
        self.returncode = returncode


class LeanStartError(_ProcessFailure):
    """The REPL exited, printed an error or timed out before ``ready.``."""


class LeanProcessDied(_ProcessFailure):
    """EOF or a broken pipe on the REPL's stdio: the process is gone (it was killed and reaped)."""


class LeanTimeout(LeanBackendError):
    """No reply within the request deadline; the process was killed (it cannot be resynchronised)."""


class LeanProtocolError(LeanBackendError):
    """The REPL answered ``{"error": kind, "desc": desc}``. The process stays usable."""

    def __init__(self, kind: str, desc: str, *, command: str | None = None) -> None:
        where = f" to {command}" if command else ""
        super().__init__(f"Pantograph error{where}: {kind}: {desc}")
        self.kind = kind
        self.desc = desc
        self.command = command

    @property
    def is_interrupt(self) -> bool:
        """Pantograph's own tactic timeout (``options.set {"timeout": ms}``) fired."""
        return self.kind == "internal" and self.desc == "interrupt"


class LeanGarbage(LeanProtocolError):
    """A reply that is not a JSON object: the stream cannot be trusted, the process was killed."""

    def __init__(self, line: str, *, command: str | None = None) -> None:
        super().__init__("garbage", f"reply is not a JSON object: {line[:300]!r}", command=command)
        self.line = line


class LeanReplayError(LeanBackendError):
    """Replaying a node's tactic path on a fresh process did not reach the recorded state."""
