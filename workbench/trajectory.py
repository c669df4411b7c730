"""Trajectory records: the SPEC §3 Parquet schema, a crash-safe streaming writer, and a reader.

Output layout (a folder)::

    out/
      part-00000.parquet   complete parts, each written to a temporary name and renamed when done
      part-00001.parquet
      manifest.json        provenance + list of parts, rewritten atomically after each part

A crash or Ctrl-C loses at most the records buffered since the last flush; every part on disk stays
readable, and nothing already written is ever rewritten. Each part is an ordinary Parquet file whose
first 14 columns are exactly the reference implementation's schema, so it reads them unchanged.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Sequence

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from workbench import __version__

log = logging.getLogger(__name__)

MANIFEST = "manifest.json"
FORMAT = "workbench-trajectory/1"
METADATA_KEY = b"workbench"

# The 14 columns of SPEC §3, in order, with the exact Arrow types the reference reader expects.
CORE_FIELDS = [
    pa.field("theorem_name", pa.string(), nullable=False),
    pa.field("state_id", pa.uint64(), nullable=False),
    pa.field("state_pp", pa.string(), nullable=False),
    pa.field("tactic_applied", pa.string(), nullable=False),
    pa.field("parent_state_id", pa.uint64(), nullable=True),
    pa.field("label", pa.string(), nullable=False),
    pa.field("depth_from_root", pa.uint32(), nullable=False),
    pa.field("remaining_depth", pa.int32(), nullable=False),
    pa.field("llm_log_prob", pa.float64(), nullable=False),
    pa.field("ebm_score", pa.float64(), nullable=False),
    pa.field("is_proof_complete", pa.bool_(), nullable=False),
    pa.field("timestamp_ms", pa.uint64(), nullable=False),
    pa.field("q_value", pa.float64(), nullable=False),
    pa.field("visits", pa.uint32(), nullable=False),
]
# The project's own columns, after the 14.
EXTRA_FIELDS = [
    pa.field("record_kind", pa.string(), nullable=False),
    pa.field("state_source", pa.string(), nullable=False),
    pa.field("open_prefix", pa.string(), nullable=True),
    pa.field("num_goals", pa.uint32(), nullable=False),
    pa.field("score_kind", pa.string(), nullable=False),
    pa.field("simulated", pa.bool_(), nullable=False),
]
TRAJECTORY_SCHEMA = pa.schema(CORE_FIELDS + EXTRA_FIELDS)

LABELS = ("positive", "negative", "unknown")
RECORD_KINDS = ("ground_truth", "alternative_proof", "same_state", "divergent", "chain")
STATE_SOURCES = ("pantograph", "leandojo", "simulator")


@dataclass(frozen=True, slots=True)
class TrajectoryRecord:
    theorem_name: str
    state_id: int
    state_pp: str
    tactic_applied: str
    parent_state_id: int | None
    label: str
    depth_from_root: int
    remaining_depth: int
    llm_log_prob: float = 0.0
    ebm_score: float = 0.0
    is_proof_complete: bool = False
    timestamp_ms: int = 0
    q_value: float = 0.0
    visits: int = 0
    record_kind: str = "ground_truth"
    state_source: str = "pantograph"
    open_prefix: str | None = None
    num_goals: int = 0
    score_kind: str = "logprob"  # what llm_log_prob holds: "logprob", "similarity" or "none"
    simulated: bool = False

    def __post_init__(self) -> None:
        if self.label not in LABELS:
            raise ValueError(f"label must be one of {LABELS}, got {self.label!r}")
        if self.record_kind not in RECORD_KINDS:
            raise ValueError(f"record_kind must be one of {RECORD_KINDS}, got {self.record_kind!r}")
        if self.state_id < 0 or (self.parent_state_id is not None and self.parent_state_id < 0):
            raise ValueError("state ids are unsigned")


_COLUMN_NAMES = [f.name for f in TRAJECTORY_SCHEMA]


def records_to_table(records: Sequence[TrajectoryRecord], metadata: dict[str, Any] | None = None) -> pa.Table:
    columns = {name: [getattr(r, name) for r in records] for name in _COLUMN_NAMES}
    table = pa.Table.from_pydict(columns, schema=TRAJECTORY_SCHEMA)
    if metadata is not None:
        table = table.replace_schema_metadata({METADATA_KEY: json.dumps(metadata, default=str).encode()})
    return table


def _now_ms() -> int:
    return int(time.time() * 1000)


class TrajectoryWriter:
    """Append-only writer of trajectory parts.

    ``mode``: ``"new"`` refuses a non-empty folder, ``"resume"`` appends after the existing parts,
    ``"overwrite"`` deletes them first. Call :meth:`write` per record or :meth:`write_many` per
    theorem; :meth:`flush` seals the buffer into a part (done automatically every ``rows_per_part``
    rows, only between ``write_many`` calls, so a theorem's records land in one part).
    """

    def __init__(self, path: str | Path, metadata: dict[str, Any] | None = None, *, mode: str = "new", rows_per_part: int = 5000):
        if mode not in ("new", "resume", "overwrite"):
            raise ValueError(f"mode must be new, resume or overwrite, got {mode!r}")
        self.path = Path(path)
        if self.path.exists() and not self.path.is_dir():
            raise FileExistsError(f"{self.path} exists and is not a folder; trajectory output is a folder of parts")
        existing = sorted(self.path.glob("part-*.parquet")) if self.path.is_dir() else []
        if existing and mode == "new":
            raise FileExistsError(f"{self.path} already holds {len(existing)} trajectory parts: pass resume or overwrite")
        if mode == "overwrite" and self.path.is_dir():
            shutil.rmtree(self.path)
            existing = []
        self.path.mkdir(parents=True, exist_ok=True)
        for stale in self.path.glob("*.tmp"):
            stale.unlink()  # an interrupted part write: its records were never acknowledged
        self.metadata = {"format": FORMAT, "workbench_version": __version__, **(metadata or {})}
        self.rows_per_part = rows_per_part
        self._buffer: list[TrajectoryRecord] = []
        self._parts: list[dict[str, Any]] = self._read_manifest_parts(existing)
        self._next_part = 1 + max((int(p.stem.split("-")[1]) for p in existing), default=-1)
        self.rows_written = sum(p["rows"] for p in self._parts)

    def _read_manifest_parts(self, existing: list[Path]) -> list[dict[str, Any]]:
        manifest = self.path / MANIFEST
        if manifest.exists():
            listed = json.loads(manifest.read_text())["parts"]
            names = {p["file"] for p in listed}
            for p in existing:
                if p.name not in names:  # renamed by a flush killed before its manifest: never acknowledged
                    p.unlink()
            on_disk = {p.name for p in existing}
            return [p for p in listed if p["file"] in on_disk]
        return [{"file": p.name, "rows": pq.ParquetFile(p).metadata.num_rows} for p in existing]

    def write(self, record: TrajectoryRecord) -> None:
        self._buffer.append(record)

    def write_many(self, records: Iterable[TrajectoryRecord]) -> None:
        self._buffer.extend(records)
        if len(self._buffer) >= self.rows_per_part:
            self.flush()

    def flush(self) -> Path | None:
        if not self._buffer:
            return None
        name = f"part-{self._next_part:05d}.parquet"
        final = self.path / name
        tmp = self.path / (name + ".tmp")
        table = records_to_table(self._buffer, {**self.metadata, "part": name})
        pq.write_table(table, tmp)
        os.replace(tmp, final)
        self._parts.append({"file": name, "rows": len(self._buffer), "written_ms": _now_ms()})
        self.rows_written += len(self._buffer)
        self._buffer.clear()
        self._next_part += 1
        self._write_manifest()
        return final

    def _write_manifest(self) -> None:
        manifest = {"format": FORMAT, "metadata": self.metadata, "parts": self._parts, "rows": self.rows_written}
        tmp = self.path / (MANIFEST + ".tmp")
        tmp.write_text(json.dumps(manifest, indent=1, default=str))
        os.replace(tmp, self.path / MANIFEST)

    def close(self) -> None:
        self.flush()
        self._write_manifest()

    def __enter__(self) -> "TrajectoryWriter":
        return self

    def __exit__(self, *exc: object) -> None:
        # Flush on errors too: every buffered record is a finished result.
        self.close()


def _part_files(path: Path) -> list[Path]:
    if path.is_dir():
        manifest = path / MANIFEST
        if manifest.exists():
            # The manifest is the commit: a part renamed into place by a flush that was killed before
            # its manifest was written is not a result yet (workbench.mining.commit removes it on resume).
            return [path / p["file"] for p in json.loads(manifest.read_text())["parts"]]
        parts = sorted(path.glob("part-*.parquet"))
        if not parts:
            parts = sorted(p for p in path.glob("*.parquet"))
        return parts
    if path.exists():
        return [path]
    raise FileNotFoundError(f"trajectory input not found: {path}")


def read_metadata(path: str | Path) -> dict[str, Any]:
    """Provenance of a trajectory file or folder (manifest, else the first part's key-value metadata)."""
    path = Path(path)
    if path.is_dir() and (path / MANIFEST).exists():
        return json.loads((path / MANIFEST).read_text())["metadata"]
    files = _part_files(path)
    if not files:
        return {}
    try:
        raw = pq.read_schema(files[0]).metadata or {}
    except Exception as e:  # noqa: BLE001 - name the file in whatever pyarrow raised
        raise ValueError(f"{files[0]}: not a readable trajectory Parquet file ({e})") from e
    return json.loads(raw[METADATA_KEY]) if METADATA_KEY in raw else {}


def read_trajectories(paths: str | Path | Sequence[str | Path]) -> pd.DataFrame:
    """Read one file, a folder of parts, or several of either into one DataFrame.

    Files from other producers with only the 14 core columns get the extra columns as ``None``
    (nothing is guessed). ``df.attrs["provenance"]`` lists each input's metadata.
    """
    if isinstance(paths, (str, Path)):
        paths = [paths]
    frames, provenance = [], []
    for p in map(Path, paths):
        files = _part_files(p)
        provenance.append({"path": str(p), **read_metadata(p)} if files else {"path": str(p)})
        for f in files:
            try:
                frames.append(pq.read_table(f).to_pandas())
            except Exception as e:  # noqa: BLE001 - name the file in whatever pyarrow raised
                raise ValueError(f"{f}: not a readable trajectory Parquet file ({e})") from e
    if not frames:
        df = TRAJECTORY_SCHEMA.empty_table().to_pandas()
    else:
        df = pd.concat(frames, ignore_index=True)
    missing = [f.name for f in CORE_FIELDS if f.name not in df.columns]
    if missing:
        raise ValueError(f"trajectory input {list(map(str, paths))} lacks columns {missing}")
    for f in EXTRA_FIELDS:
        if f.name not in df.columns:
            df[f.name] = None
    df.attrs["provenance"] = provenance
    return df
