"""The mining output folder: trajectory parts, attempts log, per-theorem status log, resume scan.

Layout of ``--output DIR``::

    DIR/part-00000.parquet ...     trajectory records (workbench.trajectory)
    DIR/attempts/part-00000.parquet  every tactic sent to Lean (ATTEMPTS_SCHEMA)
    DIR/theorems.jsonl             one status line per finished theorem (completed / skipped / timed out)
    DIR/manifest.json              the commit: sealed parts + sealed length of theorems.jsonl (mining/commit.py)
    DIR/run_config.json            settings + provenance of the latest run
    DIR/runs-000.json ...          one per run: its settings, what it did, final policy stats
    DIR/summary.json               the run summary, aggregated over every status line

A finished theorem is sealed within ``seal_every_s`` seconds (records, attempts and status line in one
commit, see :mod:`workbench.mining.commit`); small parts are merged as the run goes and when it ends.
A theorem retried by ``--resume`` first gets a ``retired`` line and its old records are removed, in one
commit, so readers see at most one result per theorem.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections import Counter
from dataclasses import asdict
from pathlib import Path
from typing import Any, Iterable

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from workbench.mining.commit import (
    ATTEMPTS_DIR,
    STATUS_LOG,
    Commit,
    PartEntry,
    clear_run_folder,
    crash_point,
    read_commit,
    recover,
    write_commit,
    write_part,
)
from workbench.mining.records import Attempt, TheoremResult
from workbench.trajectory import FORMAT, MANIFEST, records_to_table
from workbench import __version__

__all__ = ["ATTEMPTS_SCHEMA", "STATUS_LOG", "ResultSink", "finished_theorems", "read_status_lines",
           "read_attempts", "existing_output", "retry_counts", "RUN_CONFIG", "SUMMARY"]

log = logging.getLogger(__name__)

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
    """True when ``path`` already holds mining results (parts, status lines or a commit)."""
    return path.is_dir() and (any(path.glob("part-*.parquet")) or (path / STATUS_LOG).exists()
                              or (path / MANIFEST).exists())


def _sealed_log(path: Path) -> tuple[bytes, Path]:
    """The sealed bytes of the status log (unsealed lines a kill left behind are not results)."""
    file = path / STATUS_LOG
    if not file.exists():
        return b"", file
    commit = read_commit(path)
    with open(file, "rb") as f:
        data = f.read(commit.status_bytes) if commit is not None else f.read()
    return data, file


def _raw_status_lines(path: Path) -> list[dict[str, Any]]:
    data, file = _sealed_log(path)
    out = []
    for lineno, line in enumerate(data.split(b"\n"), start=1):
        if not line.strip():
            continue
        try:
            out.append(json.loads(line.decode("utf-8")))
        except (json.JSONDecodeError, UnicodeDecodeError):
            # Only possible in a folder without a commit (an older workbench): a torn last line.
            log.warning("%s: line %d is torn (interrupted write); ignored", file, lineno)
    return out


def read_status_lines(path: str | Path) -> list[dict[str, Any]]:
    """One status line per finished theorem, in order; a theorem retired for a retry is left out."""
    current: dict[str, dict[str, Any]] = {}
    for line in _raw_status_lines(Path(path)):
        current.pop(line["theorem"], None)
        if not line.get("retired"):
            current[line["theorem"]] = line
    return list(current.values())


def retry_counts(path: str | Path) -> Counter:
    """How many times each theorem was retired for a retry."""
    return Counter(line["theorem"] for line in _raw_status_lines(Path(path)) if line.get("retired"))


def finished_theorems(path: str | Path) -> set[str]:
    """Theorems a resumed run must not mine again: those with a sealed status line."""
    return {line["theorem"] for line in read_status_lines(path)}


def read_attempts(path: str | Path) -> "pa.Table":
    path = Path(path)
    commit = read_commit(path)
    if commit is not None:
        parts = [path / p.file for p in commit.attempts_parts]
    else:
        parts = sorted((path / ATTEMPTS_DIR).glob("part-*.parquet"))
    if not parts:
        return ATTEMPTS_SCHEMA.empty_table()
    return pa.concat_tables([pq.read_table(p) for p in parts])


def _atomic_write(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def _status_bytes(lines: Iterable[dict[str, Any]]) -> bytes:
    return "".join(json.dumps(line, ensure_ascii=False) + "\n" for line in lines).encode("utf-8")


class ResultSink:
    """Receives finished theorems in any order; seals them to disk within ``seal_every_s`` seconds.

    Each flush is one commit (see :mod:`workbench.mining.commit`). ``mode="resume"`` first removes
    what an interrupted flush left unsealed. Call :meth:`tick` now and then (the run does, every
    half second) so a lone finished theorem is sealed without waiting for the next one; Ctrl-C,
    SIGTERM and normal exits call :meth:`close`, which seals and merges small parts.
    """

    def __init__(self, path: Path, metadata: dict[str, Any], *, mode: str, simulated: bool,
                 flush_every_theorems: int = 20, seal_every_s: float = 2.0, rows_per_part: int = 20_000,
                 merge_fan_in: int = 16) -> None:
        if path.exists() and not path.is_dir():
            raise FileExistsError(f"{path} exists and is not a folder; mining output is a folder")
        if mode == "overwrite":
            clear_run_folder(path)  # only what a run wrote; a folder that is not a run is refused
        path.mkdir(parents=True, exist_ok=True)
        (path / ATTEMPTS_DIR).mkdir(exist_ok=True)
        self.path = path
        self.simulated = simulated
        self.metadata = {"format": FORMAT, "workbench_version": __version__, **metadata}
        self.commit, legacy = recover(path) if mode == "resume" else (Commit(), False)
        self._next_part = self.commit.next_number(path)
        self.flush_every_theorems = flush_every_theorems
        self.seal_every_s = seal_every_s
        self.rows_per_part = rows_per_part
        self.merge_fan_in = merge_fan_in
        self._results: list[TheoremResult] = []
        self._oldest: float | None = None
        self.sealed_theorems = 0
        if legacy:
            self._adopt_legacy()
        elif mode != "resume":
            write_commit(path, self.commit, self.metadata)  # readers follow the commit from the start

    # -- adding and sealing -------------------------------------------------------------------------

    def add(self, result: TheoremResult) -> None:
        self._results.append(result)
        if self._oldest is None:
            self._oldest = time.monotonic()
        rows = sum(len(r.records) for r in self._results)
        if len(self._results) >= self.flush_every_theorems or rows >= self.rows_per_part:
            self.flush()
        else:
            self.tick()

    def tick(self) -> None:
        """Seal pending theorems once the oldest has waited ``seal_every_s``."""
        if self._oldest is not None and time.monotonic() - self._oldest >= self.seal_every_s:
            self.flush()

    def seal_due_in(self) -> float | None:
        """Seconds until :meth:`tick` seals the pending theorems (None: nothing pending)."""
        if self._oldest is None:
            return None
        return max(0.0, self._oldest + self.seal_every_s - time.monotonic())

    def flush(self) -> None:
        if not self._results:
            return
        results, self._results, self._oldest = self._results, [], None
        records = [r for res in results for r in res.records]
        attempts = [a for res in results for a in res.attempts]
        self._commit(records_table=records_to_table(records, self.metadata) if records else None,
                     attempts_table=self._attempts_table(attempts) if attempts else None,
                     status=[res.status_line() for res in results])
        self.sealed_theorems += len(results)
        self._merge_small_parts(final=False)

    def _commit(self, *, records_table: pa.Table | None, attempts_table: pa.Table | None,
                status: list[dict[str, Any]], replace: set[str] = frozenset(),  # type: ignore[assignment]
                level: int = 0) -> None:
        """Write the pieces, then the manifest: the one atomic step. ``replace``: parts it supersedes."""
        commit = self.commit
        parts = [p for p in commit.parts if p.file not in replace]
        attempts_parts = [p for p in commit.attempts_parts if p.file not in replace]
        if records_table is not None:
            name = self._part_name()
            write_part(self.path, name, records_table.replace_schema_metadata(
                {b"workbench": json.dumps({**self.metadata, "part": name}, default=str).encode()}), step="part")
            parts.append(PartEntry(name, records_table.num_rows, level))
        if attempts_table is not None:
            name = f"{ATTEMPTS_DIR}/{self._part_name()}"
            write_part(self.path, name, attempts_table, step="attempts")
            attempts_parts.append(PartEntry(name, attempts_table.num_rows, level))
        data = _status_bytes(status)
        if data:
            with open(self.path / STATUS_LOG, "ab") as f:
                half = len(data) // 2  # two writes, so the crash test can stop between them (a torn line)
                f.write(data[:half])
                f.flush()
                crash_point("status_half_written")
                f.write(data[half:])
                f.flush()
                os.fsync(f.fileno())
            crash_point("status_appended")
        commit.parts, commit.attempts_parts = parts, attempts_parts
        commit.status_bytes += len(data)
        commit.status_lines += len(status)
        write_commit(self.path, commit, self.metadata)
        for name in replace:  # superseded by the commit just written; a kill here leaves only unlisted files
            (self.path / name).unlink(missing_ok=True)

    def _part_name(self) -> str:
        name = f"part-{self._next_part:05d}.parquet"
        self._next_part += 1
        return name

    def _attempts_table(self, attempts: Iterable[Attempt]) -> pa.Table:
        rows = [asdict(a) | {"simulated": self.simulated} for a in attempts]
        columns = {f.name: [r[f.name] for r in rows] for f in ATTEMPTS_SCHEMA}
        return pa.Table.from_pydict(columns, schema=ATTEMPTS_SCHEMA)

    # -- merging small parts --------------------------------------------------------------------------

    def _merge_small_parts(self, *, final: bool) -> None:
        """Merge ``merge_fan_in`` parts of one level into one of the next (at the end: all small ones)."""
        for kind in ("parts", "attempts_parts"):
            entries: list[PartEntry] = getattr(self.commit, kind)
            small = [p for p in entries if p.rows < self.rows_per_part]
            if final:
                groups = [small] if len(small) > 1 else []
            else:
                by_level: dict[int, list[PartEntry]] = {}
                for p in small:
                    by_level.setdefault(p.level, []).append(p)
                groups = [g for g in by_level.values() if len(g) >= self.merge_fan_in]
            for group in groups:
                table = pa.concat_tables([pq.read_table(self.path / p.file) for p in group])
                level = 1 + max(p.level for p in group)
                replace = {p.file for p in group}
                if kind == "parts":
                    self._commit(records_table=table, attempts_table=None, status=[], replace=replace, level=level)
                else:
                    self._commit(records_table=None, attempts_table=table, status=[], replace=replace, level=level)

    # -- retries ------------------------------------------------------------------------------------

    def retire(self, theorems: dict[str, str]) -> None:
        """Remove these theorems' results so a resumed run can mine them again (``{name: why}``), one commit."""
        if not theorems:
            return
        names = pa.array(sorted(theorems))
        replace: set[str] = set()
        kept_records, kept_attempts = [], []
        for kind, column, kept in (("parts", "theorem_name", kept_records), ("attempts_parts", "theorem", kept_attempts)):
            for p in getattr(self.commit, kind):
                table = pq.read_table(self.path / p.file)
                mask = pc.is_in(table.column(column), value_set=names)
                if pc.any(mask).as_py():
                    replace.add(p.file)
                    kept.append(table.filter(pc.invert(mask)))
        records = pa.concat_tables(kept_records) if kept_records else None
        attempts = pa.concat_tables(kept_attempts) if kept_attempts else None
        status = [{"theorem": name, "retired": True, "why": why} for name, why in sorted(theorems.items())]
        self._commit(records_table=records if records is not None and records.num_rows else None,
                     attempts_table=attempts if attempts is not None and attempts.num_rows else None,
                     status=status, replace=replace, level=1)

    def _adopt_legacy(self) -> None:
        """A folder from before commits: records of theorems without a status line are dropped, then sealed."""
        done = finished_theorems(self.path)
        orphans = set()
        for p in self.commit.parts:
            names = pq.read_table(self.path / p.file, columns=["theorem_name"]).column(0).unique().to_pylist()
            orphans.update(n for n in names if n not in done)
        if orphans:
            log.warning("%s: %d theorems have records but no status line (killed mid-flush); they are mined again",
                        self.path, len(orphans))
        self.retire({n: "legacy_unsealed" for n in orphans}) if orphans else write_commit(self.path, self.commit, self.metadata)

    # -- the rest ----------------------------------------------------------------------------------

    def write_json(self, name: str, obj: dict[str, Any]) -> Path:
        target = self.path / name
        _atomic_write(target, json.dumps(obj, indent=1, default=str, ensure_ascii=False))
        return target

    def close(self) -> None:
        self.flush()
        self._merge_small_parts(final=True)


def manifest_metadata(path: str | Path) -> dict[str, Any]:
    file = Path(path) / MANIFEST
    if not file.exists():
        return {}
    try:
        return json.loads(file.read_text(encoding="utf-8"))["metadata"]
    except (ValueError, KeyError, TypeError) as e:
        raise ValueError(f"{file}: not a readable manifest ({type(e).__name__}: {e}); the folder's commit record is "
                         "damaged: mine into a new --output, or --overwrite this one") from e
