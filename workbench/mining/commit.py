"""The mining output's commit record: which parts and status lines are sealed, crash recovery, compaction.

A flush writes, in order: the trajectory part, the attempts part, the status lines (appended to
``theorems.jsonl``), then ``manifest.json`` (temporary file renamed into place). The manifest is the
commit: it lists every sealed part and the sealed length of the status log. Whatever a kill leaves
behind that the manifest does not list (a renamed part, status lines, a torn last line) is removed by
:func:`recover` before a resumed run appends anything, so records, attempts and status lines of the
same theorems become visible together or not at all. Readers follow the manifest too.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import pyarrow as pa
import pyarrow.parquet as pq

from workbench.trajectory import FORMAT, MANIFEST

__all__ = ["Commit", "PartEntry", "recover", "read_commit", "write_part", "write_commit", "crash_point",
           "STATUS_LOG", "ATTEMPTS_DIR", "EMBEDDINGS_DIR", "COMMIT_VERSION", "is_run_folder", "own_files",
           "check_overwritable", "clear_run_folder"]

log = logging.getLogger(__name__)

STATUS_LOG = "theorems.jsonl"
ATTEMPTS_DIR = "attempts"
EMBEDDINGS_DIR = "embeddings"  # --encode-url: the embedding cache of the mined states (workbench.encode.cache)
COMMIT_VERSION = 1

# Every name `workbench mine` writes in a run folder, with the temporary name each is written under first:
# only these are ever deleted (--overwrite, recover), never a file someone else put there.
_OWN_TOP = re.compile(r"(part-\d{5,}\.parquet|theorems\.jsonl|manifest\.json|summary\.json|run_config\.json"
                      r"|identity\.json|runs-\d{3,}\.json|progress\.log)(\.tmp)?")
_OWN_ATTEMPTS = re.compile(r"part-\d{5,}\.parquet(\.tmp)?")
_PART_NUMBER = re.compile(r"part-(\d+)\.parquet")
_OWN_EMBEDDINGS = re.compile(r"part-\d{5,}\.parquet|\.part-\d{5,}\.parquet\.tmp")

# Test hook: called with the name of each step of a flush (see tests/mining/test_output_commit.py).
CRASH_HOOK: Callable[[str], None] | None = None


def crash_point(name: str) -> None:
    if CRASH_HOOK is not None:
        CRASH_HOOK(name)


@dataclass(frozen=True, slots=True)
class PartEntry:
    file: str  # relative to the output folder (attempts parts live under attempts/)
    rows: int
    level: int = 0  # compaction level: 0 = one flush; n = n rounds of merging

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass
class Commit:
    """What is sealed: the parts and the first ``status_bytes`` bytes (``status_lines`` lines) of the log."""

    parts: list[PartEntry] = field(default_factory=list)
    attempts_parts: list[PartEntry] = field(default_factory=list)
    status_bytes: int = 0
    status_lines: int = 0
    seq: int = 0

    @property
    def rows(self) -> int:
        return sum(p.rows for p in self.parts)

    def next_number(self, path: Path) -> int:
        """A part number never used in this folder (sealed or not)."""
        names = [Path(p.file).name for p in (*self.parts, *self.attempts_parts)]
        names += [p.name for p in path.glob("part-*.parquet")]
        names += [p.name for p in (path / ATTEMPTS_DIR).glob("part-*.parquet")]
        numbers = [int(m.group(1)) for n in names if (m := _PART_NUMBER.fullmatch(n))]  # ours only
        return 1 + max(numbers, default=-1)


def _entries(raw: Sequence[dict[str, Any]]) -> list[PartEntry]:
    return [PartEntry(p["file"], int(p["rows"]), int(p.get("level", 0))) for p in raw]


def read_commit(path: Path) -> Commit | None:
    """The sealed state of an output folder; None for a folder without a commit (new or legacy)."""
    file = path / MANIFEST
    if not file.exists():
        return None
    try:
        raw = json.loads(file.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ValueError(f"{file}: not a readable manifest ({e}); the folder's commit record is damaged") from e
    if "status_log" not in raw:
        return None  # written by an older workbench: every file on disk was final
    status = raw["status_log"]
    return Commit(_entries(raw.get("parts", [])), _entries(raw.get("attempts_parts", [])),
                  int(status["bytes"]), int(status["lines"]), int(raw.get("commit", 0)))


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_part(path: Path, name: str, table: pa.Table, *, step: str) -> None:
    """Write a Parquet part to a temporary name and rename it (a kill never leaves a half file)."""
    tmp = path / (name + ".tmp")
    pq.write_table(table, tmp)
    with open(tmp, "rb+") as f:
        os.fsync(f.fileno())
    crash_point(f"{step}_tmp_written")
    os.replace(tmp, path / name)
    crash_point(f"{step}_renamed")


def write_commit(path: Path, commit: Commit, metadata: dict[str, Any]) -> None:
    """Seal: rename the manifest listing ``commit`` into place (the one atomic step of a flush)."""
    commit.seq += 1
    manifest = {
        "format": FORMAT, "commit_version": COMMIT_VERSION, "commit": commit.seq, "metadata": metadata,
        "parts": [p.as_dict() for p in commit.parts], "rows": commit.rows,
        "attempts_parts": [p.as_dict() for p in commit.attempts_parts],
        "status_log": {"file": STATUS_LOG, "bytes": commit.status_bytes, "lines": commit.status_lines},
    }
    tmp = path / (MANIFEST + ".tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(json.dumps(manifest, indent=1, default=str))
        f.flush()
        os.fsync(f.fileno())
    crash_point("manifest_tmp_written")
    os.replace(tmp, path / MANIFEST)
    _fsync_dir(path)
    crash_point("committed")


def _legacy_commit(path: Path) -> Commit:
    """Adopt an output written before commits existed: every part on disk, the log up to its last newline."""
    parts = [PartEntry(p.name, pq.ParquetFile(p).metadata.num_rows) for p in sorted(path.glob("part-*.parquet"))]
    attempts = [PartEntry(f"{ATTEMPTS_DIR}/{p.name}", pq.ParquetFile(p).metadata.num_rows)
                for p in sorted((path / ATTEMPTS_DIR).glob("part-*.parquet"))]
    log_file = path / STATUS_LOG
    data = log_file.read_bytes() if log_file.exists() else b""
    sealed = data[: data.rfind(b"\n") + 1]
    return Commit(parts, attempts, len(sealed), sealed.count(b"\n"))


def is_run_folder(path: Path) -> bool:
    """True when ``path`` carries a mining run's own marker: a ``manifest.json`` in the trajectory format."""
    try:
        raw = json.loads((path / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(raw, dict) and raw.get("format") == FORMAT


def own_files(path: Path) -> list[Path]:
    """The files of ``path`` that ``workbench mine`` wrote (by name, see ``_OWN_TOP``), deepest first."""
    out = []
    for sub, pattern in ((path / ATTEMPTS_DIR, _OWN_ATTEMPTS), (path / EMBEDDINGS_DIR, _OWN_EMBEDDINGS),
                         (path, _OWN_TOP)):
        if sub.is_dir():
            out += sorted(f for f in sub.iterdir() if f.is_file() and not f.is_symlink() and pattern.fullmatch(f.name))
    return out


def check_overwritable(path: Path) -> None:
    """Refuse (``FileExistsError``) to ``--overwrite`` a non-empty folder without the run's marker: whatever
    it is, it is not ours to delete. A missing or empty folder, or a run folder, is fine."""
    if not path.exists():
        return
    if not path.is_dir():
        raise FileExistsError(f"{path} exists and is not a folder; mining output is a folder")
    if any(path.iterdir()) and not is_run_folder(path):
        raise FileExistsError(f"{path} is not a mining run folder (no manifest.json written by `workbench mine`): "
                              "--overwrite deletes only a run's own files. Choose another --output, or empty it "
                              "yourself")


def clear_run_folder(path: Path) -> list[str]:
    """``--overwrite``: delete what an earlier run wrote in ``path`` and nothing else; returns what is left
    (after :func:`check_overwritable`)."""
    check_overwritable(path)
    if not path.exists():
        return []
    for f in own_files(path):
        f.unlink()
    for sub in (path / ATTEMPTS_DIR, path / EMBEDDINGS_DIR):
        if sub.is_dir() and not sub.is_symlink() and not any(sub.iterdir()):
            sub.rmdir()
    left = sorted(f.relative_to(path).as_posix() for f in path.rglob("*"))
    if left:
        log.warning("%s: --overwrite kept what `workbench mine` did not write: %s", path, left[:10])
    return left


def recover(path: Path) -> tuple[Commit, bool]:
    """Remove everything a kill left unsealed; return the sealed state and whether it was a legacy folder.

    Unlisted parts and temporary files are deleted, and ``theorems.jsonl`` is cut back to its sealed
    length (this also drops a torn last line), so the next flush appends onto a clean line.
    """
    commit = read_commit(path)
    legacy = commit is None
    if commit is None:
        commit = _legacy_commit(path)
    sealed = {p.file for p in (*commit.parts, *commit.attempts_parts)}
    removed = []
    for f in own_files(path):  # parts of ours the commit does not list (never a file we did not write)
        if f.suffix == ".parquet" and f.parent != path / EMBEDDINGS_DIR and f.relative_to(path).as_posix() not in sealed:
            f.unlink()
            removed.append(f.relative_to(path).as_posix())
    for f in own_files(path):  # temporary files of ours only: a foreign *.tmp is not ours to delete
        if f.name.endswith(".tmp") and f.parent != path / EMBEDDINGS_DIR:
            f.unlink()
    missing = [name for name in sealed if not (path / name).exists()]
    if missing:
        raise ValueError(f"{path / MANIFEST}: lists parts that are gone: {missing[:5]}; the output folder was "
                         "edited by hand or copied incompletely")
    log_file = path / STATUS_LOG
    size = log_file.stat().st_size if log_file.exists() else 0
    if size < commit.status_bytes:
        raise ValueError(f"{log_file}: {size} bytes but {commit.status_bytes} are sealed in {path / MANIFEST}; "
                         "the status log was truncated outside the workbench")
    if size > commit.status_bytes:
        with open(log_file, "rb+") as f:
            f.truncate(commit.status_bytes)
        removed.append(f"{STATUS_LOG}: {size - commit.status_bytes} unsealed bytes")
    if removed:
        log.warning("%s: removed what an interrupted flush left unsealed: %s", path, removed)
    return commit, legacy
