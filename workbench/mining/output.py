"""The mining output folder: trajectory parts, attempts log, per-theorem status log, resume scan.

Layout of ``--output DIR``::

    DIR/part-00000.parquet ...     trajectory records (workbench.trajectory), manifest.json
    DIR/attempts/part-00000.parquet  every tactic sent to Lean (ATTEMPTS_SCHEMA)
    DIR/theorems.jsonl             one status line per finished theorem (completed / skipped / timed out)
    DIR/run_config.json            settings + provenance of the latest run (runs-NNN.json keeps earlier ones)
    DIR/summary.json               the run summary, aggregated over every status line

Durability order on each flush: trajectory part, attempts part, then the status lines. A crash
between them leaves records of a theorem without its status line; resume treats a theorem with
records on disk as finished too, so nothing is mined twice.
"""

from __future__ import annotations

import json
import logging
import os
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any, Iterable

import pyarrow as pa
import pyarrow.parquet as pq

from workbench.mining.records import Attempt, TheoremResult
from workbench.trajectory import MANIFEST, TrajectoryWriter

__all__ = ["ATTEMPTS_SCHEMA", "STATUS_LOG", "ResultSink", "finished_theorems", "read_status_lines",
           "read_attempts", "existing_output"]

log = logging.getLogger(__name__)

STATUS_LOG = "theorems.jsonl"
ATTEMPTS_DIR = "attempts"
SUMMARY = "summary.json"
RUN_CONFIG = "run_config.json"

ATTEMPTS_SCHEMA = pa.schema([
    pa.field("theorem", pa.string(), nullable=False),
    pa.field("state_id", pa.uint64(), nullable=False),
    pa.field("step", pa.uint32(), nullable=False),
    pa.field("role", pa.string(), nullable=False),
    pa.field("tactic", pa.string(), nullable=False),
    pa.field("sent", pa.string(), nullable=False),
    pa.field("outcome", pa.string(), nullable=False),
    pa.field("error_kind", pa.string(), nullable=True),
    pa.field("messages", pa.string(), nullable=False),
    pa.field("latency_s", pa.float64(), nullable=False),
    pa.field("open_prefix", pa.string(), nullable=True),
    pa.field("new_state_id", pa.uint64(), nullable=True),
    pa.field("timestamp_ms", pa.uint64(), nullable=False),
    pa.field("simulated", pa.bool_(), nullable=False),
])


def existing_output(path: Path) -> bool:
    """True when ``path`` already holds mining results (parts or status lines)."""
    return path.is_dir() and (any(path.glob("part-*.parquet")) or (path / STATUS_LOG).exists())


def read_status_lines(path: str | Path) -> list[dict[str, Any]]:
    """Status lines of an output folder; a torn last line (killed mid-write) is ignored."""
    file = Path(path) / STATUS_LOG
    if not file.exists():
        return []
    out = []
    for lineno, line in enumerate(file.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            out.append(json.loads(line))
        except json.JSONDecodeError:
            log.warning("%s: line %d is torn (interrupted write); ignored", file, lineno)
    return out


def finished_theorems(path: str | Path) -> set[str]:
    """Theorems a resumed run must not mine again: status lines plus names found in record parts."""
    path = Path(path)
    done = {line["theorem"] for line in read_status_lines(path)}
    for part in sorted(path.glob("part-*.parquet")):
        done.update(pq.read_table(part, columns=["theorem_name"]).column(0).unique().to_pylist())
    return done


def read_attempts(path: str | Path) -> "pa.Table":
    parts = sorted((Path(path) / ATTEMPTS_DIR).glob("part-*.parquet"))
    if not parts:
        return ATTEMPTS_SCHEMA.empty_table()
    return pa.concat_tables([pq.read_table(p) for p in parts])


def _atomic_write(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


class ResultSink:
    """Receives finished theorems in any order; seals them to disk in batches.

    ``flush_every_theorems`` / ``flush_every_s`` bound what a SIGKILL can lose (finished theorems not
    yet sealed are simply mined again on resume). Ctrl-C and normal exits call :meth:`close`.
    """

    def __init__(self, path: Path, metadata: dict[str, Any], *, mode: str, simulated: bool,
                 flush_every_theorems: int = 20, flush_every_s: float = 30.0, rows_per_part: int = 20_000) -> None:
        self.path = path
        self.simulated = simulated
        self.writer = TrajectoryWriter(path, metadata, mode=mode, rows_per_part=rows_per_part)
        (path / ATTEMPTS_DIR).mkdir(exist_ok=True)
        for stale in (path / ATTEMPTS_DIR).glob("*.tmp"):
            stale.unlink()
        self._next_attempts_part = 1 + max(
            (int(p.stem.split("-")[1]) for p in (path / ATTEMPTS_DIR).glob("part-*.parquet")), default=-1)
        self.flush_every_theorems = flush_every_theorems
        self.flush_every_s = flush_every_s
        self._status: list[dict[str, Any]] = []
        self._attempts: list[Attempt] = []
        self._last_flush = time.monotonic()
        self.sealed_theorems = 0

    def add(self, result: TheoremResult) -> None:
        before = self.writer.rows_written
        self.writer.write_many(result.records)  # one theorem's records always land in one part
        self._attempts.extend(result.attempts)
        self._status.append(result.status_line())
        auto_flushed = self.writer.rows_written != before
        if (auto_flushed or len(self._status) >= self.flush_every_theorems
                or time.monotonic() - self._last_flush >= self.flush_every_s):
            self.flush()

    def flush(self) -> None:
        self.writer.flush()
        if self._attempts:
            self._write_attempts(self._attempts)
            self._attempts = []
        if self._status:
            with (self.path / STATUS_LOG).open("a", encoding="utf-8") as f:
                for line in self._status:
                    f.write(json.dumps(line, ensure_ascii=False) + "\n")
                f.flush()
                os.fsync(f.fileno())
            self.sealed_theorems += len(self._status)
            self._status = []
        self._last_flush = time.monotonic()

    def _write_attempts(self, attempts: Iterable[Attempt]) -> None:
        rows = [asdict(a) | {"simulated": self.simulated} for a in attempts]
        columns = {f.name: [r[f.name] for r in rows] for f in ATTEMPTS_SCHEMA}
        table = pa.Table.from_pydict(columns, schema=ATTEMPTS_SCHEMA)
        name = f"part-{self._next_attempts_part:05d}.parquet"
        final = self.path / ATTEMPTS_DIR / name
        tmp = final.with_name(name + ".tmp")
        pq.write_table(table, tmp)
        os.replace(tmp, final)
        self._next_attempts_part += 1

    def write_json(self, name: str, obj: dict[str, Any]) -> Path:
        target = self.path / name
        _atomic_write(target, json.dumps(obj, indent=1, default=str, ensure_ascii=False))
        return target

    def close(self) -> None:
        self.flush()
        self.writer.close()


def manifest_metadata(path: str | Path) -> dict[str, Any]:
    file = Path(path) / MANIFEST
    return json.loads(file.read_text())["metadata"] if file.exists() else {}
