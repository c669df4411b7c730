"""Environment failures as a few lines a person reads: what failed, what the server or process said last,
what to do (pure, plus one context manager for notebooks).

An environment failure is a missing or broken outside dependency (SGLang unreachable or dead, the
Lean REPL binary missing, Pantograph unable to import Mathlib, the encoding sidecar down), as
opposed to a bug, which keeps its traceback. The advice names settings as ``{setting}``; the CLI
renders them as flags and notebooks as their parameters, so each reader sees the knob they have.
"""

from __future__ import annotations

import contextlib
import re
from dataclasses import dataclass
from typing import Iterator

__all__ = ["Problem", "describe", "format_problem", "spell_settings", "EnvironmentFailure", "notebook_errors", "EXIT_OK",
           "EXIT_BUG", "EXIT_BAD_INPUT", "EXIT_ENVIRONMENT", "EXIT_INTERRUPTED"]

# `workbench <command>` exit statuses, the same for every command (docs/ARCHITECTURE.md, "Exit status").
EXIT_OK = 0
EXIT_BUG = 1  # an unexpected exception: Python's own status, with the whole traceback
EXIT_BAD_INPUT = 2  # a file, flag or field is wrong, missing or in the way (one line names it)
EXIT_ENVIRONMENT = 3  # an outside dependency failed or went away (Lean, SGLang, the encoder, Ray); a few lines
EXIT_INTERRUPTED = 130  # Ctrl-C / SIGTERM: every finished result is on disk
STDERR_LINES = 8

# setting -> (CLI spelling, notebook spelling)
_SETTINGS = {
    "server_url": ("--server-url", "server_url"),
    "server_wait": ("--server-wait", "server_wait"),
    "prompt_format": ("--prompt-format", "prompt_format"),
    "pantograph_cmd": ("--pantograph-cmd (or env PANTOGRAPH_REPL)", "pantograph_cmd (or env PANTOGRAPH_REPL)"),
    "imports": ("--imports", "imports"),
    "simulated": ("--lean simulated", 'lean = "simulated"'),
    "resume": ("--resume", "resume = True"),
    "encode_url": ("--encode-url", "encode_url"),
    "ray": ("--ray", "ray_address"),
}


@dataclass(frozen=True, slots=True)
class Problem:
    what: str         # one line: what failed
    said: str         # the tail of what the server / process answered ("" if nothing)
    todo: str         # what to do, with {setting} references


class EnvironmentFailure(RuntimeError):
    """Raised in notebooks instead of the chained traceback; the message is the formatted problem."""


def _tail(text: str, lines: int = STDERR_LINES) -> str:
    kept = [line for line in text.strip().splitlines() if line.strip()]
    return "\n".join(kept[-lines:])


def _chain(exc: BaseException) -> Iterator[BaseException]:
    """The exception, its causes/contexts and the members of exception groups, outermost first."""
    seen: set[int] = set()
    todo = [exc]
    while todo:
        e = todo.pop(0)
        if id(e) in seen:
            continue
        seen.add(id(e))
        yield e
        todo.extend(getattr(e, "exceptions", ()) or ())
        for nxt in (e.__cause__, e.__context__):
            if nxt is not None:
                todo.append(nxt)


def _describe_one(e: BaseException) -> Problem | None:
    from workbench.encode.identity import EncodeError, EncoderUnavailable
    from workbench.lean.errors import LeanBackendError
    from workbench.mining.ray_backend import NoLeanActors, RayNotInstalled
    from workbench.policy.errors import CircuitBreakerOpen, PolicyProtocolError, PolicyUnavailable

    if isinstance(e, CircuitBreakerOpen):
        return Problem("SGLang stopped answering during the run (circuit breaker open).", str(e),
                       "Every finished theorem is saved. Restart the SGLang server, then run again with {resume}.")
    if isinstance(e, PolicyUnavailable):
        return Problem("SGLang is not ready.", str(e),
                       "Start it (python -m sglang.launch_server --model-path MODEL --port 30000) and point "
                       "{server_url} at it; if it is still loading a large model, raise {server_wait}.")
    if isinstance(e, PolicyProtocolError):
        return Problem("The server at the SGLang URL does not answer SGLang's /generate JSON.", str(e),
                       "Check that {server_url} is an SGLang server's native address (not /v1).")
    if isinstance(e, EncoderUnavailable):
        return Problem("The encoding sidecar is not reachable.", str(e), "Start it or fix {encode_url}.")
    if isinstance(e, EncodeError):
        return Problem("The encoder failed.", str(e), "Check the encoder ({encode_url} or the model); states "
                       "already in the cache are kept, and a re-run encodes only the missing ones.")
    if isinstance(e, RayNotInstalled):
        return Problem("Ray is not installed.", str(e), "pip install 'workbench[ray]', or mine without {ray}.")
    if isinstance(e, NoLeanActors):
        return Problem("No Ray node can mine.", str(e), "Start the Lean nodes (ray start ... --resources='{{\"lean\": 1}}'), "
                       "then run again with {resume}.")
    if isinstance(e, LeanBackendError):
        message = str(e).split("\n--- REPL stderr", 1)[0]
        stderr = _tail(getattr(e, "stderr", "") or "")
        if isinstance(e.__cause__, FileNotFoundError):
            return Problem(f"The Lean REPL could not be started: {message}", "",
                           "Install Lean (elan) and build Pantograph (`lake build repl`), then set {pantograph_cmd} "
                           "to a command that exists, e.g. \"lake env /path/to/Pantograph/.lake/build/bin/repl\"; "
                           "or run a dry run with {simulated}.")
        if "Mathlib" in stderr or "unknown package" in stderr or "object file" in stderr:
            return Problem(f"Pantograph could not import the modules: {message}", stderr,
                           "Run the REPL from your Mathlib project folder through `lake env` (so LEAN_PATH finds "
                           "the built .olean files), `lake build` the project first, and check {imports}.")
        return Problem(f"The Lean REPL failed: {message}", stderr,
                       "Check that {pantograph_cmd} starts Pantograph (it should print `ready.`) and that "
                       "{imports} exist in its project.")
    return None


def describe(exc: BaseException) -> Problem | None:
    """The environment failure behind ``exc`` (searching its causes), or None for anything else (a bug)."""
    for e in _chain(exc):
        problem = _describe_one(e)
        if problem is not None:
            return problem
    return None


def spell_settings(text: str, style: str = "cli") -> str:
    """``{setting}`` references in advice spelled for the reader: CLI flags or notebook parameters (others kept)."""
    if style not in ("cli", "notebook"):
        raise ValueError(f"style must be cli or notebook, got {style!r}")
    column = 0 if style == "cli" else 1
    return re.sub(r"\{(\w+)\}", lambda m: _SETTINGS[m.group(1)][column] if m.group(1) in _SETTINGS else m.group(0), text)


def format_problem(problem: Problem, *, style: str = "cli") -> str:
    """``error: what`` / the indented tail of what was said / ``what to do``, settings spelled for ``style``."""
    if style not in ("cli", "notebook"):
        raise ValueError(f"style must be cli or notebook, got {style!r}")
    column = 0 if style == "cli" else 1
    todo = problem.todo.format(**{k: v[column] for k, v in _SETTINGS.items()})
    lines = [f"error: {problem.what}"]
    if problem.said.strip():
        lines += ["  " + line for line in _tail(problem.said).splitlines()]
    lines.append(f"what to do: {todo}")
    return "\n".join(lines)


@contextlib.contextmanager
def notebook_errors() -> Iterator[None]:
    """In a notebook cell: an environment failure becomes one short ``EnvironmentFailure`` naming the
    notebook's parameters; the original exception stays available as ``.original``."""
    try:
        yield
    except Exception as e:
        problem = describe(e)
        if problem is None:
            raise
        failure = EnvironmentFailure(format_problem(problem, style="notebook"))
        failure.original = e
        raise failure from None  # not the 100-line chain: the message says what failed and what to do
