"""Embedding cache: Parquet parts (``state_pp`` string, ``embedding`` list<float32>) + provenance.

Layout: a folder of ``part-00000.parquet``, ``part-00001.parquet``, ... each written under a
temporary name and renamed when complete, so an interrupted run leaves every finished part readable
and a rerun encodes only what is missing. Every part carries the encoder identity (with its state
template) in its key-value metadata; a cache never mixes identities. ``read_embeddings`` also reads a
single Parquet file in the SPEC §3 layout (e.g. one exported with ``export_embeddings``).

A concatenated encoder (``workbench.encode.concat``) caches each part in a sub-folder of its own
(``encoder-0/``, ``encoder-1/``, ...: ordinary caches) beside ``composite.json`` (the composite identity);
reading joins the parts row by row. Each part encodes only the states its own sub-cache lacks.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from workbench.progress import progress_bar
from workbench.encode.identity import (
    EncodeError,
    Encoder,
    EncoderIdentity,
    EncoderProtocolError,
    InvalidEmbeddingError,
    validate_embeddings,
)
from workbench.encode.text import state_text

logger = logging.getLogger(__name__)

IDENTITY_KEY = b"workbench.encoder_identity"
TEMPLATE_KEY = b"workbench.state_template"
EMBEDDING_SCHEMA = pa.schema([pa.field("state_pp", pa.string(), nullable=False),
                              pa.field("embedding", pa.list_(pa.float32()), nullable=False)])
PART_GLOB = "part-*.parquet"
COMPOSITE = "composite.json"


class CacheIdentityError(ValueError):
    """Embeddings from different encoders or templates would be mixed."""


@dataclass(frozen=True)
class EmbeddingTable:
    """All cached embeddings: ``states[i]`` has embedding ``matrix[i]``."""

    states: list[str]
    matrix: np.ndarray                      # [n, d] float32
    identity: EncoderIdentity | None        # None only for foreign files read with allow_unknown_identity
    index: dict[str, int] = field(repr=False, default_factory=dict)

    def __post_init__(self) -> None:
        if not self.index:
            self.index.update((s, i) for i, s in enumerate(self.states))

    def __len__(self) -> int:
        return len(self.states)

    def __contains__(self, state: object) -> bool:
        return state in self.index

    @property
    def dim(self) -> int:
        return int(self.matrix.shape[1])

    def get(self, state: str) -> np.ndarray | None:
        i = self.index.get(state)
        return None if i is None else self.matrix[i]

    def lookup(self, states: Sequence[str]) -> tuple[np.ndarray, list[str]]:
        """(rows of the states found, in input order; the states not in the cache).

        The matrix has one row per *found* state, i.e. for ``[s for s in states if s in table]``.
        """
        rows = [self.index[s] for s in states if s in self.index]
        missing = [s for s in states if s not in self.index]
        return self.matrix[np.asarray(rows, dtype=np.int64)], missing


@dataclass(frozen=True, slots=True)
class EncodeReport:
    requested: int        # states given, duplicates included
    unique: int           # distinct states
    hits: int             # distinct states already in the cache
    misses: int           # distinct states not in the cache (= encoded + failures)
    encoded: int          # newly encoded and written
    failures: int         # could not be encoded (encoder errors, invalid vectors)
    parts_written: int
    seconds: float

    @property
    def dedup_ratio(self) -> float:
        """requested / unique (1.0 = no duplicates)."""
        return self.requested / self.unique if self.unique else 1.0


# ---------------------------------------------------------------- reading

def _parts(path: Path) -> list[Path]:
    if path.is_file():
        return [path]
    if path.is_dir():
        return sorted(path.glob(PART_GLOB))
    return []


def _corrupt(path: Path, e: Exception) -> ValueError:
    return ValueError(f"{path}: not a readable cache part ({type(e).__name__}: {e}); delete this file and re-run "
                      "encode: only the states it held are encoded again")


def _part_identity(path: Path, *, allow_unknown: bool) -> EncoderIdentity | None:
    try:
        meta = pq.read_schema(path).metadata or {}
    except (pa.ArrowException, OSError) as e:
        raise _corrupt(path, e) from e
    raw = meta.get(IDENTITY_KEY)
    if raw is None:
        if allow_unknown:
            return None
        raise CacheIdentityError(f"{path}: no encoder identity in the Parquet metadata ({IDENTITY_KEY.decode()}); "
                                 "pass allow_unknown_identity=True to read a foreign embedding file")
    try:
        return EncoderIdentity.from_json(raw.decode())
    except ValueError as e:
        raise CacheIdentityError(f"{path}: unreadable encoder identity metadata: {e}") from e


def _composite_identity(path: Path) -> EncoderIdentity | None:
    marker = path / COMPOSITE
    if not marker.is_file():
        return None
    try:
        return EncoderIdentity.from_dict(json.loads(marker.read_text())["identity"])
    except (ValueError, KeyError, TypeError) as e:
        raise CacheIdentityError(f"{marker}: unreadable composite identity ({e}); delete it and re-run encode") from e


def _part_dir(path: Path, i: int) -> Path:
    return path / f"encoder-{i}"


def cache_identity(path: str | os.PathLike[str]) -> EncoderIdentity | None:
    """Identity of an existing cache (None if it has no parts yet); refuses a cache that mixes identities."""
    composite = _composite_identity(Path(path)) if Path(path).is_dir() else None
    parts = _parts(Path(path))
    if composite is not None:
        if parts:
            raise CacheIdentityError(f"{path}: holds both a composite cache ({COMPOSITE}) and parts of a single "
                                     f"encoder ({parts[0].name}); use separate folders")
        return composite
    identity: EncoderIdentity | None = None
    for p in parts:
        ident = _part_identity(p, allow_unknown=False)
        if identity is None:
            identity = ident
        elif ident != identity:
            assert ident is not None
            raise CacheIdentityError(f"{p}: encoder identity differs from {parts[0].name}: "
                                     + "; ".join(identity.differences(ident)))
    return identity


def _read_part(path: Path) -> tuple[list[str], np.ndarray]:
    try:
        table = pq.read_table(path)
    except (pa.ArrowException, OSError) as e:
        raise _corrupt(path, e) from e
    names = table.column_names
    if names[:2] != ["state_pp", "embedding"]:
        raise ValueError(f"{path}: expected columns ['state_pp', 'embedding', ...], found {names}")
    states = table.column(0).to_pylist()
    emb = table.column(1).combine_chunks()
    if len(states) == 0:
        return [], np.zeros((0, 0), dtype=np.float32)
    lengths = pa.compute.list_value_length(emb).to_numpy(zero_copy_only=False)
    if (lengths != lengths[0]).any():
        row = int(np.flatnonzero(lengths != lengths[0])[0])
        raise ValueError(f"{path}: row {row} (state {states[row][:60]!r}) has embedding length {lengths[row]}, "
                         f"row 0 has {lengths[0]}")
    flat = emb.flatten().to_numpy(zero_copy_only=False).astype(np.float32, copy=False)
    return states, flat.reshape(len(states), int(lengths[0]))


def read_embeddings(path: str | os.PathLike[str], *, allow_unknown_identity: bool = False) -> EmbeddingTable:
    """Load a cache folder (all parts) or a single embedding Parquet file. Duplicate states keep the first row.

    The last table read is kept and returned again while the files it came from are unchanged (each part's
    name, inode, size and mtime): one training run reads its cache in five places (training, then the evaluations'
    scorers), and each read of 37,000 hashed vectors took 2-4 s. Parts are written once and renamed into
    place, never changed, so a new part changes the key. The table is shared, so its matrix is read-only."""
    global _last_read
    path = Path(path)
    key = (path.resolve(), allow_unknown_identity, _fingerprint(path))
    last = _last_read  # one read of the global: another thread may replace it meanwhile
    if last is not None and last[0] == key:
        return last[1]
    table = _read_embeddings(path, allow_unknown_identity=allow_unknown_identity)
    table.matrix.setflags(write=False)  # shared by every caller until the files change
    _last_read = (key, table)
    return table


_last_read: tuple[Any, EmbeddingTable] | None = None  # (key, table) of the last read_embeddings


def _fingerprint(path: Path) -> tuple[tuple[str, int, int, int], ...]:
    """(file, inode, size, mtime_ns) of every file a read of ``path`` would open."""
    files = list(_parts(path))
    if path.is_dir() and (path / COMPOSITE).is_file():
        files.append(path / COMPOSITE)
        files.extend(p for sub in sorted(path.glob("encoder-*")) for p in _parts(sub))
    return tuple((str(p), st.st_ino, st.st_size, st.st_mtime_ns) for p in files for st in (p.stat(),))


def _read_embeddings(path: Path, *, allow_unknown_identity: bool) -> EmbeddingTable:
    composite = cache_identity(path) if path.is_dir() and (path / COMPOSITE).is_file() else None
    if composite is not None:
        return _read_composite(path, composite)
    parts = _parts(path)
    if not parts:
        raise FileNotFoundError(f"no embedding cache at {path} (expected a Parquet file or a folder of {PART_GLOB})")
    identity = None if allow_unknown_identity and path.is_file() else cache_identity(path)
    if identity is None and not allow_unknown_identity:
        raise CacheIdentityError(f"{path}: no encoder identity")
    all_states: list[str] = []
    mats: list[np.ndarray] = []
    for p in parts:
        states, mat = _read_part(p)
        if not states:
            continue
        if identity is not None and mat.shape[1] != identity.dim:
            raise ValueError(f"{p}: embeddings have dimension {mat.shape[1]}, identity says {identity.dim}")
        all_states.extend(states)
        mats.append(mat)
    dim = identity.dim if identity is not None else (mats[0].shape[1] if mats else 0)
    matrix = np.concatenate(mats, axis=0) if mats else np.zeros((0, dim), dtype=np.float32)
    index: dict[str, int] = {}
    for i, s in enumerate(all_states):
        index.setdefault(s, i)
    if len(index) != len(all_states):
        keep = np.fromiter(sorted(index.values()), dtype=np.int64)
        logger.warning("%s: %d duplicate states ignored", path, len(all_states) - len(keep))
        all_states = [all_states[i] for i in keep]
        matrix = matrix[keep]
        index = {s: i for i, s in enumerate(all_states)}
    return EmbeddingTable(states=all_states, matrix=np.ascontiguousarray(matrix, dtype=np.float32),
                          identity=identity, index=index)


def _read_composite(path: Path, identity: EncoderIdentity) -> EmbeddingTable:
    """The parts' sub-caches joined row by row: states every part has, vectors side by side."""
    assert identity.parts is not None
    tables = []
    for i, want in enumerate(identity.parts):
        sub = _part_dir(path, i)
        table = _read_embeddings(sub, allow_unknown_identity=False) if _parts(sub) else EmbeddingTable([], np.zeros((0, want.dim), np.float32), want)
        if table.identity is not None and table.identity != want:
            raise CacheIdentityError(f"{sub}: holds another encoder than {COMPOSITE} names: "
                                     + "; ".join(want.differences(table.identity)))
        tables.append(table)
    states = [s for s in tables[0].states if all(s in t for t in tables[1:])]
    if not states:
        return EmbeddingTable([], np.zeros((0, identity.dim), np.float32), identity)
    matrix = np.concatenate([t.lookup(states)[0] for t in tables], axis=1)
    return EmbeddingTable(states=states, matrix=np.ascontiguousarray(matrix, np.float32), identity=identity)


def _cached_states(path: Path) -> set[str]:
    out: set[str] = set()
    for p in _parts(path):
        try:
            out.update(pq.read_table(p, columns=["state_pp"]).column(0).to_pylist())
        except (pa.ArrowException, OSError) as e:
            raise _corrupt(p, e) from e
    return out


# ---------------------------------------------------------------- writing

def _embedding_table(states: Sequence[str], matrix: np.ndarray, identity: EncoderIdentity) -> pa.Table:
    n, d = matrix.shape
    offsets = pa.array(np.arange(0, (n + 1) * d, d, dtype=np.int32))
    values = pa.array(np.ascontiguousarray(matrix, dtype=np.float32).reshape(-1))
    emb = pa.ListArray.from_arrays(offsets, values, type=pa.list_(pa.float32()))
    schema = EMBEDDING_SCHEMA.with_metadata({IDENTITY_KEY: identity.to_json().encode(),
                                             TEMPLATE_KEY: identity.template.encode()})
    return pa.Table.from_arrays([pa.array(list(states), pa.string()), emb], schema=schema)


def write_part(cache_dir: Path, states: Sequence[str], matrix: np.ndarray, identity: EncoderIdentity) -> Path:
    """Write one new part (temporary name, then rename); never overwrites an existing part."""
    cache_dir.mkdir(parents=True, exist_ok=True)
    existing = [int(p.stem.split("-")[1]) for p in cache_dir.glob(PART_GLOB) if p.stem.split("-")[1].isdigit()]
    number = max(existing, default=-1) + 1
    final = cache_dir / f"part-{number:05d}.parquet"
    tmp = cache_dir / f".part-{number:05d}.parquet.tmp"
    pq.write_table(_embedding_table(states, matrix, identity), tmp)
    if final.exists():  # another writer got there first: refuse rather than clobber
        tmp.unlink()
        raise FileExistsError(f"{final} appeared while writing; is another encode run using {cache_dir}?")
    os.replace(tmp, final)
    return final


def export_embeddings(cache: str | os.PathLike[str], out_file: str | os.PathLike[str]) -> Path:
    """Write the whole cache as one Parquet file (SPEC §3 layout, identity metadata kept)."""
    table = read_embeddings(cache)
    if table.identity is None:
        raise CacheIdentityError(f"{cache}: no encoder identity to export")
    out = Path(out_file)
    tmp = out.with_name(out.name + ".tmp")
    pq.write_table(_embedding_table(table.states, table.matrix, table.identity), tmp)
    os.replace(tmp, out)
    return out


def dedup(states: Iterable[str]) -> tuple[list[str], int]:
    """(distinct states in first-seen order, number of states seen)."""
    seen: dict[str, None] = {}
    total = 0
    for s in states:
        total += 1
        seen.setdefault(s, None)
    return list(seen), total


async def encode_states(states: Iterable[str], encoder: Encoder, cache_path: str | os.PathLike[str], *,
                        batch_size: int = 64, concurrency: int = 2, checkpoint_every: int = 2048,
                        max_consecutive_failures: int = 3, progress: bool = True) -> EncodeReport:
    """Encode the distinct states not yet in the cache folder ``cache_path`` and append them as new parts.

    ``batch_size`` states go to ``encoder.encode`` at a time, at most ``concurrency`` calls in
    flight; a part is written every ``checkpoint_every`` new embeddings (and at the end, and on
    interruption), so a rerun resumes where the last part ended. A failing batch is counted and
    skipped; ``max_consecutive_failures`` failing batches in a row raise (the encoder is down).
    """
    started = time.perf_counter()
    cache_dir = Path(cache_path)
    if cache_dir.exists() and not cache_dir.is_dir():
        raise NotADirectoryError(f"{cache_dir}: encode_states writes a cache folder of parts, not a single file")
    if cache_dir.is_symlink() and not cache_dir.exists():
        raise NotADirectoryError(f"{cache_dir}: a link to {os.readlink(cache_dir)}, which does not exist; create that "
                                 "folder or point the embeddings setting at another one")
    connect = getattr(encoder, "connect", None)
    if connect is not None:  # a served encoder reports its identity (and may be refused) before anything runs
        await connect()
    identity = encoder.identity
    existing = cache_identity(cache_dir)
    if existing is not None and existing != identity:
        raise CacheIdentityError(
            f"{cache_dir} holds embeddings of another encoder or template; refusing to mix them: "
            + "; ".join(existing.differences(identity)) + ". Use a separate cache folder.")
    if identity.parts is not None:
        return await _encode_composite(list(states), encoder, cache_dir, written=existing is not None,
                                       batch_size=batch_size, concurrency=concurrency, checkpoint_every=checkpoint_every,
                                       max_consecutive_failures=max_consecutive_failures, progress=progress)
    unique, requested = dedup(states)
    cached = _cached_states(cache_dir)
    misses = [s for s in unique if s not in cached]
    hits = len(unique) - len(misses)
    logger.info("%s: %d states, %d distinct, %d cached, %d to encode",
                cache_dir, requested, len(unique), hits, len(misses))

    pending_states: list[str] = []
    pending_rows: list[np.ndarray] = []
    counts = {"encoded": 0, "parts": 0}

    def flush() -> None:
        if pending_states:
            path = write_part(cache_dir, pending_states, np.concatenate(pending_rows, axis=0), identity)
            counts["parts"] += 1
            counts["encoded"] += len(pending_states)
            logger.debug("wrote %s (%d rows)", path, len(pending_states))
            pending_states.clear()
            pending_rows.clear()

    async def run_batch(batch: list[str]) -> tuple[int, list[str], np.ndarray | None, bool]:
        """(batch size, states encoded, their rows, whether the whole batch failed)."""
        texts = [state_text(s, identity.template) for s in batch]
        try:
            matrix = np.asarray(await encoder.encode(texts), dtype=np.float32)
            if matrix.ndim != 2 or matrix.shape[0] != len(batch):
                raise EncoderProtocolError(f"{identity.model}: {len(batch)} texts gave an array of shape "
                                           f"{list(matrix.shape)}")
            # whatever the encoder checked, nothing NaN, zero-norm or of the wrong width enters the cache
            return len(batch), batch, validate_embeddings(matrix, identity.dim, source=identity.model), False
        except InvalidEmbeddingError as e:
            # Keep the good rows of a batch with a few NaN / zero vectors; the bad ones count as failures.
            logger.warning("%s", e)
            bad = set(e.bad)
            good = [i for i in range(len(batch)) if i not in bad]
            return len(batch), [batch[i] for i in good], e.matrix[good], False
        except EncodeError as e:
            logger.warning("batch of %d states failed: %s", len(batch), e)
            return len(batch), [], None, True

    batches = [misses[i:i + batch_size] for i in range(0, len(misses), batch_size)]
    bar = progress_bar(total=len(misses), desc="encode", unit="state", disable=not progress or not misses)
    consecutive = 0
    in_flight: set[asyncio.Future] = set()
    next_batch = 0
    try:
        while next_batch < len(batches) or in_flight:
            while next_batch < len(batches) and len(in_flight) < concurrency:
                in_flight.add(asyncio.ensure_future(run_batch(batches[next_batch])))
                next_batch += 1
            done, in_flight = await asyncio.wait(in_flight, return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                size, ok_states, matrix, failed = task.result()
                consecutive = consecutive + 1 if failed else 0
                if ok_states:
                    pending_states.extend(ok_states)
                    pending_rows.append(np.asarray(matrix, dtype=np.float32))
                bar.update(size)
            if consecutive >= max_consecutive_failures:
                raise EncodeError(f"{consecutive} batches in a row failed: the encoder looks down (see the "
                                  f"warnings above); finished embeddings are kept in {cache_dir}")
            if len(pending_states) >= checkpoint_every:
                flush()
    finally:
        for task in in_flight:
            task.cancel()
        if in_flight:  # let the cancelled calls unwind (their results are lost, never half-written)
            await asyncio.gather(*in_flight, return_exceptions=True)
        flush()  # checkpoint whatever finished, also when interrupted or failing
        bar.close()
    encoded = counts["encoded"]
    report = EncodeReport(requested=requested, unique=len(unique), hits=hits, misses=len(misses),
                          encoded=encoded, failures=len(misses) - encoded, parts_written=counts["parts"],
                          seconds=time.perf_counter() - started)
    logger.info("encode report: %s", report)
    return report


async def _encode_composite(states: list[str], encoder: Any, cache_dir: Path, *, written: bool,
                            **options: Any) -> EncodeReport:
    """Each part into its own sub-cache; ``composite.json`` names them (written once). A state counts as
    cached, or encoded, once every part has it."""
    started = time.perf_counter()
    identity = encoder.identity
    if not written:
        cache_dir.mkdir(parents=True, exist_ok=True)
        tmp = cache_dir / (COMPOSITE + ".tmp")
        tmp.write_text(json.dumps({"identity": identity.to_dict()}, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        os.replace(tmp, cache_dir / COMPOSITE)
    unique, requested = dedup(states)

    def complete() -> int:
        cached = [_cached_states(_part_dir(cache_dir, i)) for i in range(len(encoder.parts))]
        return sum(all(s in c for c in cached) for s in unique)

    hits = complete()
    reports = [await encode_states(states, part, _part_dir(cache_dir, i), **options) for i, part in enumerate(encoder.parts)]
    encoded = complete() - hits
    report = EncodeReport(requested=requested, unique=len(unique), hits=hits, misses=len(unique) - hits,
                          encoded=encoded, failures=len(unique) - hits - encoded,
                          parts_written=sum(r.parts_written for r in reports), seconds=time.perf_counter() - started)
    logger.info("encode report (all parts): %s", report)
    return report


def ensure_embeddings(states: Sequence[str], cache: str | os.PathLike[str], encoder: Encoder | None = None, *,
                      progress: bool = True) -> EmbeddingTable:
    """Read the embedding cache; with an encoder, first encode the states it lacks into it (then close it).

    Synchronous (notebooks, ``train-ebm``); works inside Jupyter's running loop (``workbench.aio``)."""
    from workbench.aio import run_sync

    if encoder is not None:
        # shortest first: a batch is padded to its longest state, so mixed lengths waste most of the work
        distinct = sorted(dict.fromkeys(states), key=len)
        run_sync(encode_states(distinct, encoder, cache, progress=progress))  # logs its report
        close = getattr(encoder, "aclose", None)
        if close is not None:
            run_sync(close())
    return read_embeddings(cache)
