"""Trace a Lean project's source files with the REPL that mines them (``workbench trace``).

Each file goes through Pantograph's ``frontend.process`` (``readHeader`` true, no ``inheritEnv``, invocations
and new constants on) on a free process of the Lean pool, files in parallel, one per process at a time. Its
theorems (:mod:`workbench.tracing.convert`) are written to ``OUTPUT/files/<path>.json`` — a LeanDojo JSON
list, so ``group``/``mine`` read the folder like LeanDojo's — atomically (temp file + rename): a finished file
is never redone, a torn one (a leftover temp file) is. ``OUTPUT/metadata.json`` records the REPL's version
(mining then knows the traces and the REPL are the same Lean); ``OUTPUT/trace_summary.json`` the counts.
A file that fails (timeout, crash, IO error) is counted and named, never fatal; ``--resume`` retries it.
"""

from __future__ import annotations

import asyncio
import fnmatch
import json
import logging
import os
import subprocess
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Mapping, Sequence

from workbench import __version__
from workbench.aio import run_sync
from workbench.lean.errors import LeanBackendError
from workbench.lean.protocol import lean_toolchain
from workbench.mining.executor import open_lean
from workbench.mining.flags import settings_from_flags
from workbench.mining.settings import MineSettings
from workbench.progress import progress_bar
from workbench.traces import METADATA, TRACED_FILES
from workbench.tracing.convert import file_trace

__all__ = ["TraceSettings", "TraceResult", "source_files", "trace", "trace_settings", "SUMMARY"]

log = logging.getLogger(__name__)

SUMMARY = "trace_summary.json"
_TMP = ".tmp"


@dataclass(frozen=True)
class TraceSettings:
    source_root: str
    output: str
    lean: MineSettings  # the Lean flags `mine` takes (command, imports, workers, simulator): one translation
    modules: tuple[str, ...] = ()  # module-name globs (Mathlib.Algebra.*); none and no files: every file
    files: tuple[str, ...] = ()  # paths relative to source_root
    file_timeout_s: float = 600.0
    progress: bool = False


@dataclass
class TraceResult:
    output: Path
    version: str
    files_total: int = 0
    files_done: int = 0  # traced in this run
    files_skipped: int = 0  # finished by an earlier run: not redone
    files_failed: dict[str, str] = field(default_factory=dict)  # path -> why
    theorems: int = 0
    steps: int = 0
    theorems_skipped: Counter = field(default_factory=Counter)  # reason -> theorems left out (this run)
    theorems_named: list[str] = field(default_factory=list)
    seconds_per_file: list[float] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        per = sorted(self.seconds_per_file)
        return {"output": str(self.output), "repl_version": self.version, "files_total": self.files_total,
                "files_done": self.files_done, "files_skipped": self.files_skipped,
                "files_failed": dict(self.files_failed), "theorems": self.theorems, "steps": self.steps,
                "theorems_skipped": dict(self.theorems_skipped), "theorems_skipped_named": self.theorems_named,
                "seconds_per_file_median": per[len(per) // 2] if per else None,
                "seconds_per_file_max": per[-1] if per else None}

    @property
    def text(self) -> str:
        lines = [f"traced {self.files_done} files ({self.files_skipped} finished before, {len(self.files_failed)} "
                 f"failed) of {self.files_total}: {self.theorems} theorems, {self.steps} steps; REPL {self.version}"]
        if self.theorems_skipped:
            lines.append("theorems left out: " + ", ".join(f"{k} {v}" for k, v in self.theorems_skipped.most_common()))
        lines += [f"  FAILED {path}: {why}" for path, why in list(self.files_failed.items())[:20]]
        return "\n".join(lines)


def _names(value: Any) -> tuple[str, ...]:
    """A list flag: a sequence, ``"a,b"``, or ``"@FILE"`` with one entry per line."""
    if not value:
        return ()
    if not isinstance(value, str):
        return tuple(str(v) for v in value)
    if value.startswith("@"):
        return tuple(x.strip() for x in Path(value[1:]).read_text(encoding="utf-8").splitlines() if x.strip())
    return tuple(x.strip() for x in value.split(",") if x.strip())


def trace_settings(flags: Mapping[str, Any], env: Mapping[str, str] | None = None) -> TraceSettings:
    """``workbench trace`` options / notebook 01 parameters → settings: ``source_root``, ``trace_output``,
    ``modules``, ``files``, ``file_timeout``, plus ``mine``'s Lean flags (one translation,
    :func:`workbench.mining.flags.settings_from_flags`; ``simulator_traces`` is the simulator's knowledge)."""
    file_timeout = float(flags.get("file_timeout") or 600.0)
    # Pantograph caps a whole frontend.process with its options.set timeout (Repl.lean v0.3.4 L227-230), which
    # the pool sets from the tactic timeout: for tracing, the file timeout is that timeout.
    lean = settings_from_flags(dict(flags) | {"traces": flags.get("simulator_traces"), "output": str(flags["trace_output"]),
                                              "tactic_timeout": file_timeout}, env=env)
    return TraceSettings(source_root=str(flags["source_root"]), output=str(flags["trace_output"]), lean=lean,
                         modules=_names(flags.get("modules")), files=_names(flags.get("files")),
                         file_timeout_s=file_timeout, progress=bool(flags.get("progress")))


def module_name(rel: str) -> str:
    return rel.removesuffix(".lean").replace("/", ".")


def source_files(root: str | Path, modules: Sequence[str] = (), files: Sequence[str] = ()) -> list[str]:
    """Paths (relative, ``/``-separated) of the files to trace: ``files`` as given, else every ``.lean`` file
    under ``root`` whose module name matches one of ``modules`` (all when none); ``.lake``/hidden folders skipped."""
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"--source-root {root}: not a folder")
    if files:
        missing = [f for f in files if not (root / f).is_file()]
        if missing:
            raise FileNotFoundError(f"--files: not under {root}: {', '.join(missing[:5])}")
        return sorted(dict.fromkeys(Path(f).as_posix() for f in files))
    found = []
    for path in root.rglob("*.lean"):
        rel = path.relative_to(root)
        if any(part.startswith(".") for part in rel.parts):
            continue
        if not modules or any(fnmatch.fnmatchcase(module_name(rel.as_posix()), m) for m in modules):
            found.append(rel.as_posix())
    if not found:
        raise FileNotFoundError(f"no .lean files under {root}" + (f" match {', '.join(modules)}" if modules else ""))
    return sorted(found)


def _write_atomic(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + _TMP)
    with tmp.open("w", encoding="utf-8") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def _git_commit(root: Path) -> str:
    try:
        out = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return ""
    return out.stdout.strip() if out.returncode == 0 else ""


def _metadata(settings: TraceSettings, version: str, commit: str) -> dict[str, Any]:
    """LeanDojo's keys (``dataset_name``, ``creation_time``, ``from_repo``; its ``export_metadata``) plus the REPL
    that traced: ``pantograph_version`` (``repl --version``) and its ``lean_version`` when the version says it."""
    return {"dataset_name": "workbench trace", "creation_time": datetime.now(timezone.utc).isoformat(),
            "from_repo": {"url": str(Path(settings.source_root).resolve()), "commit": commit},
            "tracer": f"workbench {__version__} trace (Pantograph frontend.process)",
            "pantograph_version": version, "lean_version": lean_toolchain(version),
            "simulated": settings.lean.simulated, "imports": [] if settings.lean.simulated else list(settings.lean.imports)}


def _check_metadata(path: Path, version: str) -> None:
    if not path.is_file():
        return
    try:
        old = json.loads(path.read_text(encoding="utf-8")).get("pantograph_version")
    except (OSError, ValueError, AttributeError) as e:
        raise ValueError(f"{path}: not readable ({e}); trace into a new folder") from None
    if old != version:
        raise ValueError(f"{path.parent} was traced by REPL {old!r}, this REPL is {version!r}: one folder holds one "
                         "Lean's traces; trace into a new --output")


async def trace_async(settings: TraceSettings) -> TraceResult:
    root, out = Path(settings.source_root), Path(settings.output)
    rels = source_files(root, settings.modules, settings.files)
    files_dir = out / TRACED_FILES
    for torn in files_dir.rglob("*" + _TMP) if files_dir.is_dir() else ():
        torn.unlink()  # a write cut short: its file is redone
    commit = _git_commit(root)
    backend = open_lean(settings.lean)
    if not hasattr(backend, "frontend_process"):
        raise ValueError(f"Lean backend {settings.lean.backend!r} cannot process source files")
    async with backend as lean:  # type: ignore[attr-defined]
        version = lean.version
        _check_metadata(out / METADATA, version)
        out.mkdir(parents=True, exist_ok=True)
        _write_atomic(out / METADATA, json.dumps(_metadata(settings, version, commit), indent=1))
        result = TraceResult(out, version, files_total=len(rels))
        todo = [r for r in rels if not (files_dir / (r + ".json")).is_file()]
        result.files_skipped = len(rels) - len(todo)
        bound = asyncio.Semaphore(settings.lean.lean_workers)  # one file per process at a time
        bar = progress_bar(total=len(rels), initial=result.files_skipped, unit="file", desc="trace",
                           disable=not settings.progress)

        async def one(rel: str) -> None:
            async with bound:
                t0 = time.monotonic()
                try:
                    # Pantograph's own interrupt (options.set timeout) fires first and keeps the process; ours is the backstop
                    reply = await lean.frontend_process(str((root / rel).resolve()),
                                                        timeout_s=settings.file_timeout_s + 15.0)
                    data = (root / rel).read_bytes()
                except (LeanBackendError, OSError) as e:
                    result.files_failed[rel] = f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"[:300]
                    log.warning("trace %s failed: %s", rel, result.files_failed[rel])
                    bar.update(1)
                    return
                traced = file_trace(rel, data, reply.units, url=str(root.resolve()), commit=commit)
                _write_atomic(files_dir / (rel + ".json"), json.dumps(traced.theorems, ensure_ascii=False))
                result.seconds_per_file.append(time.monotonic() - t0)
                result.files_done += 1
                result.theorems += len(traced.theorems)
                result.steps += traced.steps
                result.theorems_skipped.update(traced.skipped)
                result.theorems_named.extend(traced.named[: max(0, 50 - len(result.theorems_named))])
                log.info("traced %s: %d theorems", rel, len(traced.theorems))
                bar.update(1)

        try:
            await asyncio.gather(*(one(r) for r in todo))
        finally:
            bar.close()
    _write_atomic(out / SUMMARY, json.dumps(result.as_dict(), indent=1))
    return result


def trace(settings: TraceSettings) -> TraceResult:
    return run_sync(trace_async(settings))
