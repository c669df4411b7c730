"""Read LeanDojo proof traces and tactic-pairs JSONL into typed theorem records.

Both inputs give the same records: a :class:`Theorem` with its ordered :class:`TacticStep`s. LeanDojo
JSON is streamed entry by entry (ijson) so the full benchmark (~1 GB) loads in bounded memory.
Grouping drops unusable theorems and counts every drop by reason (``TraceSet.dropped``).
"""

from __future__ import annotations

import ctypes
import gc
import json
import logging
import math
import random
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Iterator, Sequence

import ijson

log = logging.getLogger(__name__)

LEANDOJO_SPLITS = ("train", "val", "test")
TRACED_FILES = "files"  # `workbench trace` writes OUTPUT/files/<source path>.json
# A theorem whose proof uses one of these as a tactic is a stub, not a proof.
_STUB_TACTIC = re.compile(r"(?<![\w.'])(sorry|admit)(?![\w'])")
_ANNOTATION = re.compile(r"<a>(.*?)</a>", re.S)


class TraceError(ValueError):
    """Bad trace input; the message names the file and the line (JSONL) or entry (JSON)."""


@dataclass(frozen=True, slots=True)
class TacticStep:
    depth: int
    state_before: str
    tactic: str
    state_after: str | None = None
    extra: dict[str, Any] | None = field(default=None, compare=False, hash=False)
    # (name as written in the tactic, full name Lean resolved it to), from LeanDojo's annotated_tactic
    references: tuple[tuple[str, str], ...] = field(default=(), compare=False, hash=False)


@dataclass(frozen=True, slots=True)
class Theorem:
    full_name: str
    steps: tuple[TacticStep, ...]
    file_path: str | None = None
    statement: str | None = None
    start_line: int | None = field(default=None, compare=False, hash=False)  # LeanDojo's `start` [line, col]

    @property
    def first_state(self) -> str:
        return self.steps[0].state_before

    def __len__(self) -> int:
        return len(self.steps)


@dataclass
class TraceSet:
    theorems: list[Theorem]
    dropped: dict[str, int]  # reason -> number of theorems dropped
    bad_records: int = 0  # malformed lines/entries skipped (only with skip_bad=True)
    not_sampled: int = 0  # usable theorems left out by num_theorems
    source: str = ""
    bad_examples: list[str] = field(default_factory=list)  # the first few skipped entries' reasons

    @property
    def num_steps(self) -> int:
        return sum(len(t.steps) for t in self.theorems)

    def summary(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "kept": len(self.theorems),
            "steps": self.num_steps,
            "dropped": dict(self.dropped),
            "bad_records": self.bad_records,
            "bad_examples": list(self.bad_examples),
            "not_sampled": self.not_sampled,
        }


# --- raw readers: yield (full_name, file_path, statement, [TacticStep]) per theorem entry ----------


@dataclass
class _RawTheorem:
    full_name: str
    steps: list[TacticStep]
    file_path: str | None = None
    statement: str | None = None
    start_line: int | None = None


def _require(obj: dict, key: str, kind: type | tuple[type, ...], where: str) -> Any:
    if key not in obj:
        raise TraceError(f"{where}: missing field '{key}'")
    value = obj[key]
    if not isinstance(value, kind):
        raise TraceError(f"{where}: field '{key}' should be {_kind_name(kind)}, got {type(value).__name__}")
    return value


def _kind_name(kind: type | tuple[type, ...]) -> str:
    kinds = kind if isinstance(kind, tuple) else (kind,)
    return " or ".join(k.__name__ for k in kinds)


def _check_top_level(path: Path, opener: str) -> None:
    with path.open("rb") as f:
        head = f.read(4096).lstrip(b"\xef\xbb\xbf \t\r\n")
    if not head:
        raise TraceError(f"{path}: file is empty")
    if not head.startswith(opener.encode()):
        kind = "a JSON list of theorems" if opener == "[" else "one JSON object per line"
        raise TraceError(f"{path}: expected {kind}, file starts with {head[:40]!r}")


# what may follow an alternative's tag up to its `=>`: binder names and holes (`| succ n ih =>`, `| inl _ =>`)
_ALTERNATIVE_REST = re.compile(r"(?:\s+[^\s=|<>()\[\]{}⟨⟩,:]+)*\s*=>")


def _is_alternative_tag(text: str, match: re.Match[str]) -> bool:
    """``| <a>zero</a> =>``, ``| <a>succ</a> n ih =>``: the tag of an ``induction``/``cases``/``match``
    alternative. Lean matches an ``induction``/``cases`` tag against the constructor names
    (Lean/Elab/Tactic/Induction.lean, ``inductionAltLHS := "| " ("@"? ident <|> hole) (ident <|> hole)*``,
    ``getAltName`` takes the ident's ``getId``), and a ``match`` pattern identifier that does not resolve
    becomes a pattern variable (Lean/Elab/PatternVar.lean, ``processIdAux``: no candidates -> ``processVar``):
    neither is a name lookup that can fail with ``unknown identifier``. ``|x|`` (absolute value) and
    ``{x | p x}`` are not followed by binders and ``=>``, so they stay references."""
    before = text[: match.start()].rstrip()
    before = before[:-1].rstrip() if before.endswith("@") else before
    return before.endswith("|") and bool(_ALTERNATIVE_REST.match(_ANNOTATION.sub(r"\1", text[match.end():])))


def _references(annotated: Any) -> tuple[tuple[str, str], ...]:
    """Pair each ``<a>name</a>`` of LeanDojo's annotated tactic with the definition it resolved to, keeping
    the ones that are name lookups in the tactic's scope.

    LeanDojo 1.8.2 (``TracedTactic.get_annotated_tactic``, data_extraction/traced_data.py) marks every ident
    whose span carries a ``TermInfo`` for a constant (ExtractData.lean, ``visitTermInfo``), in source order,
    one provenance entry per mark. That covers more than written names: field notation and case tags too.
    """
    if not (isinstance(annotated, list) and len(annotated) == 2 and isinstance(annotated[0], str)):
        return ()
    text = annotated[0]
    provenance = annotated[1] if isinstance(annotated[1], list) else []
    return tuple(
        (m.group(1), p["full_name"]) for m, p in zip(_ANNOTATION.finditer(text), provenance)
        if isinstance(p, dict) and isinstance(p.get("full_name"), str)
        # `h.symm`, `(foo).mp`: field notation resolves through the receiver's type, not an open namespace
        and not text[: m.start()].endswith(".")
        and not _is_alternative_tag(text, m)
    )


def _leandojo_entry(entry: Any, where: str) -> _RawTheorem:
    if not isinstance(entry, dict):
        raise TraceError(f"{where}: expected a theorem object, got {type(entry).__name__}")
    name = _require(entry, "full_name", str, where)
    tactics = _require(entry, "traced_tactics", list, where)
    steps = []
    for i, t in enumerate(tactics):
        at = f"{where} ({name}), traced_tactics[{i}]"
        if not isinstance(t, dict):
            raise TraceError(f"{at}: expected an object, got {type(t).__name__}")
        steps.append(
            TacticStep(
                depth=i,
                state_before=_require(t, "state_before", str, at),
                tactic=_require(t, "tactic", str, at),
                state_after=t.get("state_after") if isinstance(t.get("state_after"), str) else None,
                references=_references(t.get("annotated_tactic")),
            )
        )
    statement = entry.get("theorem_statement")
    start = entry.get("start")
    line = start[0] if isinstance(start, list) and start and isinstance(start[0], int) else None
    return _RawTheorem(name, steps, entry.get("file_path"), statement if isinstance(statement, str) else None, line)


MAX_BAD_EXAMPLES = 5  # skipped entries whose reasons are kept (file, entry/line, field)


class _BadRecords(Counter):
    """The skipped-entry counter, plus the first few reasons (for the run summary)."""

    def __init__(self) -> None:
        super().__init__()
        self.examples: list[str] = []


def _note_bad(bad: Counter | None, error: Exception) -> None:
    if bad is None:
        return
    bad["bad_records"] += 1
    examples = getattr(bad, "examples", None)
    if examples is not None and len(examples) < MAX_BAD_EXAMPLES:
        examples.append(str(error))


# Guards for what a trace entry may be (a LeanDojo entry nests 5 levels and holds kilobytes of text):
# anything past them is not a trace, and building it would take memory without bound (ijson.items builds
# a prefix string per nesting level, so 200 KB of nested brackets took 22 GB).
MAX_NESTING = 64
MAX_ENTRY_CHARS = 64 * 1024 * 1024  # characters in one entry's strings and keys
MAX_LINE_BYTES = 64 * 1024 * 1024  # one JSONL line


def _list_items(f: Any, where: str) -> Iterator[Any]:
    """The elements of the top-level JSON list in ``f``, built from ijson's flat events (no prefixes) with
    the nesting depth and text size of each bounded. An element past a bound is skipped to its end and
    yielded as a :class:`TraceError` (so ``skip_bad`` can go on); the stream stays in step."""
    events = ijson.basic_parse(f, use_float=True)
    first = next(events, (None, None))[0]
    if first != "start_array":
        raise TraceError(f"{where}: expected a JSON list of theorems")
    stack: list[Any] = []  # the containers of the element being built, outermost first
    keys: list[Any] = []  # the pending key of each open object
    depth = chars = index = 0
    problem: str | None = None  # set once the element is past a bound: it is skipped, not built

    def done(value: Any) -> Any:
        nonlocal chars, index, problem
        out = TraceError(f"{where}: entry {index}: {problem}") if problem else value
        chars, problem = 0, None
        index += 1
        return out

    for event, value in events:
        if event == "map_key":
            chars += len(value)
            if problem is None:
                keys[-1] = value
            continue
        if event == "start_map" or event == "start_array":
            depth += 1
            if depth > MAX_NESTING and problem is None:
                problem = f"nested deeper than {MAX_NESTING} levels (not a LeanDojo theorem entry)"
                stack.clear()
                keys.clear()
            if problem is None:
                stack.append({} if event == "start_map" else [])
                keys.append(None)
            continue
        if event == "end_map" or event == "end_array":
            if depth == 0:  # the top-level list ends
                return
            depth -= 1
            if problem is None:
                value = stack.pop()
                keys.pop()
        elif event == "string":
            chars += len(value)
            if chars > MAX_ENTRY_CHARS and problem is None:
                problem = f"holds more than {MAX_ENTRY_CHARS:,} characters of text (not a LeanDojo theorem entry)"
                stack.clear()
                keys.clear()
        if depth == 0:
            yield done(value)
        elif problem is None:
            parent = stack[-1]
            if keys[-1] is None:
                parent.append(value)
            else:
                parent[keys[-1]] = value


def iter_leandojo_file(path: Path, *, skip_bad: bool = False, bad: Counter | None = None) -> Iterator[_RawTheorem]:
    """Stream the theorem entries of one LeanDojo Benchmark 4 JSON file."""
    _check_top_level(path, "[")
    index = -1
    with path.open("rb") as f:
        try:
            for index, entry in enumerate(_list_items(f, str(path))):
                try:
                    if isinstance(entry, TraceError):
                        raise entry
                    yield _leandojo_entry(entry, f"{path}: entry {index}")
                except TraceError as e:
                    if not skip_bad:
                        raise
                    _note_bad(bad, e)
        except ijson.JSONError as e:
            raise TraceError(f"{path}: malformed JSON after entry {index}: {e}") from e


def iter_tactic_pairs(path: Path, *, skip_bad: bool = False, bad: Counter | None = None) -> Iterator[dict]:
    """Stream validated tactic-pair objects (``state``, ``tactic``, ``theorem``, ``depth``; extras kept)."""
    _check_top_level(path, "{")
    with path.open("rb") as f:
        for lineno, raw in enumerate(iter(lambda: f.readline(MAX_LINE_BYTES + 1), b""), start=1):
            where = f"{path}: line {lineno}"
            if len(raw) > MAX_LINE_BYTES and not raw.endswith(b"\n"):
                while raw and not raw.endswith(b"\n"):  # skip the rest of the line, never holding it
                    raw = f.readline(MAX_LINE_BYTES)
                error = TraceError(f"{where}: longer than {MAX_LINE_BYTES:,} bytes (not a tactic pair)")
                if not skip_bad:
                    raise error
                _note_bad(bad, error)
                continue
            if not raw.strip():
                continue
            try:
                try:
                    line = raw.decode("utf-8")
                except UnicodeDecodeError as e:
                    raise TraceError(f"{where}: not UTF-8 (byte {raw[e.start]:#04x} at column {e.start + 1}); "
                                     "re-encode the file as UTF-8") from e
                try:
                    obj = json.loads(line)
                except json.JSONDecodeError as e:
                    raise TraceError(f"{where}: malformed JSON ({e.msg} at column {e.colno})") from e
                except RecursionError:  # the C decoder's own depth guard
                    raise TraceError(f"{where}: nested too deep (not a tactic pair)") from None
                if not isinstance(obj, dict):
                    raise TraceError(f"{where}: expected an object, got {type(obj).__name__}")
                _require(obj, "state", str, where)
                _require(obj, "tactic", str, where)
                _require(obj, "theorem", str, where)
                depth = _require(obj, "depth", int, where)
                if isinstance(depth, bool) or depth < 0:
                    raise TraceError(f"{where}: field 'depth' should be a non-negative integer, got {depth!r}")
            except TraceError as e:
                if not skip_bad:
                    raise
                _note_bad(bad, e)
                continue
            yield obj


def _group_pairs(pairs: Iterable[dict]) -> Iterator[_RawTheorem]:
    by_name: dict[str, list[dict]] = {}
    for obj in pairs:
        by_name.setdefault(obj["theorem"], []).append(obj)
    core = {"state", "tactic", "theorem", "depth", "state_after", "file_path"}
    for name, objs in by_name.items():
        objs.sort(key=lambda o: o["depth"])
        steps = []
        for o in objs:
            extra = {k: v for k, v in o.items() if k not in core} or None
            after = o.get("state_after") if isinstance(o.get("state_after"), str) else None
            steps.append(TacticStep(o["depth"], o["state"], o["tactic"], after, extra))
        yield _RawTheorem(name, steps, objs[0].get("file_path"))


def input_files(path: Path) -> list[Path]:
    if not path.exists():
        raise FileNotFoundError(f"trace input not found: {path}")
    if path.is_file():
        return [path]
    root = path / "random" if (path / "random").is_dir() else path
    files = [root / f"{s}.json" for s in LEANDOJO_SPLITS if (root / f"{s}.json").is_file()]
    if not files:
        files = sorted(root.glob("*.jsonl"))
    if not files and (path / TRACED_FILES).is_dir():  # `workbench trace` output: one LeanDojo list per source file
        files = sorted((path / TRACED_FILES).rglob("*.lean.json"))
    if not files:
        raise TraceError(
            f"{path}: no traces found; expected a LeanDojo JSON file, a tactic-pairs .jsonl file, "
            f"or a folder with random/{{train,val,test}}.json or {TRACED_FILES}/ (workbench trace)"
        )
    return files


def iter_raw_theorems(path: str | Path, *, skip_bad: bool = False, bad: Counter | None = None) -> Iterator[_RawTheorem]:
    for file in input_files(Path(path)):
        if file.suffix == ".jsonl":
            yield from _group_pairs(iter_tactic_pairs(file, skip_bad=skip_bad, bad=bad))
        else:
            yield from iter_leandojo_file(file, skip_bad=skip_bad, bad=bad)


# --- grouping rules (pure) ----------------------------------------------------------------------


def drop_reason(raw: _RawTheorem, min_steps: int = 1) -> str | None:
    """Why a theorem is unusable, or None. Reasons are the keys of ``TraceSet.dropped``."""
    if not raw.steps:
        return "term_mode"
    if [s.depth for s in raw.steps] != list(range(len(raw.steps))):
        return "noncontiguous_depths"
    if any(_STUB_TACTIC.search(s.tactic) for s in raw.steps):
        return "sorry_stub"
    if len(raw.steps) < min_steps:
        return "below_min_steps"
    return None


def _to_theorem(raw: _RawTheorem) -> Theorem:
    steps = list(raw.steps)
    # Fill unknown state_after from the next step; after the last step of a complete proof: no goals.
    for i, s in enumerate(steps):
        if s.state_after is None:
            after = steps[i + 1].state_before if i + 1 < len(steps) else "no goals"
            steps[i] = TacticStep(s.depth, s.state_before, s.tactic, after, s.extra, s.references)
    return Theorem(raw.full_name, tuple(steps), raw.file_path, raw.statement, raw.start_line)


def load_traces(
    path: str | Path,
    *,
    min_steps: int = 1,
    num_theorems: int | None = None,
    seed: int = 0,
    skip_bad: bool = False,
) -> TraceSet:
    """Load, validate and group traces; sample ``num_theorems`` with ``seed`` (same seed, same sample)."""
    dropped: Counter[str] = Counter()
    bad = _BadRecords()
    seen: set[str] = set()
    theorems: list[Theorem] = []
    for raw in iter_raw_theorems(path, skip_bad=skip_bad, bad=bad):
        if raw.full_name in seen:
            dropped["duplicate_name"] += 1
            continue
        seen.add(raw.full_name)
        reason = drop_reason(raw, min_steps)
        if reason:
            dropped[reason] += 1
            continue
        theorems.append(_to_theorem(raw))
    result = select_theorems(TraceSet(theorems, dict(dropped), bad["bad_records"], 0, str(path), bad.examples),
                             min_steps=1, num_theorems=num_theorems, seed=seed)
    if result.not_sampled:
        del theorems
        release_freed_memory()  # a small sample of a big file: hand the parse's memory back to the OS
    log.info("loaded %s", result.summary())
    return result


def release_freed_memory() -> None:
    """Collect garbage and return glibc's free heap pages to the OS (``malloc_trim``; a no-op elsewhere).

    Streaming 100K entries leaves some 200 MB of freed blocks that glibc keeps for reuse: without this
    a run that mines 400 of them holds the RSS of the whole file for hours.
    """
    gc.collect()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):  # not glibc (macOS, musl): nothing to trim
        pass


def select_theorems(traces: TraceSet, *, min_steps: int = 1, num_theorems: int | None = None, seed: int = 0) -> TraceSet:
    """The theorems ``load_traces(..., min_steps, num_theorems, seed)`` keeps, from a set loaded with fewer
    restrictions (so one load can serve both a retrieval index and the mining sample)."""
    dropped = dict(traces.dropped)
    theorems = [t for t in traces.theorems if len(t.steps) >= min_steps]
    if len(theorems) < len(traces.theorems):
        dropped["below_min_steps"] = dropped.get("below_min_steps", 0) + len(traces.theorems) - len(theorems)
    not_sampled = traces.not_sampled
    if num_theorems is not None and num_theorems < len(theorems):
        keep = sorted(random.Random(seed).sample(range(len(theorems)), num_theorems))
        not_sampled += len(theorems) - num_theorems
        theorems = [theorems[i] for i in keep]
    return TraceSet(theorems, dropped, traces.bad_records, not_sampled, traces.source, traces.bad_examples)


def held_out_names(names: Iterable[str], val_fraction: float, seed: int = 0) -> frozenset[str]:
    """The theorem names a split holds out, from the set of names alone (not their order): sorted, shuffled
    with ``seed``, the first ``round(n * val_fraction)`` (at least 1 and at most n - 1 when n >= 2).

    The one split rule: ``split_by_theorem`` (traces, notebook 01, ``group``) and
    ``workbench.ebm.data.split_by_theorem`` (records, ``train-ebm``) hold out the same theorems for a seed.
    """
    if not 0.0 <= val_fraction < 1.0:
        raise ValueError(f"val_fraction must be in [0, 1), got {val_fraction}")
    ordered = sorted(set(names))
    n_val = round(len(ordered) * val_fraction)
    if val_fraction > 0 and len(ordered) >= 2:
        n_val = min(max(n_val, 1), len(ordered) - 1)
    elif len(ordered) < 2:
        n_val = 0
    random.Random(seed).shuffle(ordered)
    return frozenset(ordered[:n_val])


def split_by_theorem(theorems: Sequence[Theorem], val_fraction: float, seed: int = 0) -> tuple[list[Theorem], list[Theorem]]:
    """Split whole theorems (never pairs) into train/val; order within each part is preserved."""
    held = held_out_names((t.full_name for t in theorems), val_fraction, seed)
    return [t for t in theorems if t.full_name not in held], [t for t in theorems if t.full_name in held]


# --- writers ------------------------------------------------------------------------------------


def write_tactic_pairs(theorems: Iterable[Theorem], path: str | Path) -> int:
    """Write SPEC §3 tactic-pairs JSONL (plus ``state_after`` and ``file_path``); returns the line count."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    n = 0
    with path.open("w", encoding="utf-8") as f:
        for thm in theorems:
            for s in thm.steps:
                obj = {"state": s.state_before, "tactic": s.tactic, "theorem": thm.full_name, "depth": s.depth}
                if s.state_after is not None:
                    obj["state_after"] = s.state_after
                if thm.file_path:
                    obj["file_path"] = thm.file_path
                if s.extra:
                    obj.update({k: v for k, v in s.extra.items() if k not in obj})
                f.write(json.dumps(obj, ensure_ascii=False) + "\n")
                n += 1
    return n


def write_theorem_index(theorems: Iterable[Theorem], path: str | Path) -> int:
    """Write ``{"theorems": [{"name", "statement"}]}`` with the first proof state as statement."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    items = [{"name": t.full_name, "statement": t.first_state} for t in theorems]
    path.write_text(json.dumps({"theorems": items}, ensure_ascii=False, indent=1), encoding="utf-8")
    return len(items)


@dataclass(frozen=True, slots=True)
class TracesLean:
    """What is known of the Lean that printed a set of traces (the walk compares it with the REPL's)."""

    toolchain: str | None  # e.g. "v4.7.0"; None: unknown
    source: str  # "flag" | "metadata.json" | "unknown"
    detail: str = ""  # e.g. "LeanDojo 1.8.2, https://github.com/leanprover-community/mathlib4@fe4454af"
    repl_version: str | None = None  # `workbench trace`'s metadata: the REPL (`repl --version`) that traced them

    def describe(self) -> str:
        version = f"Lean {self.toolchain}" if self.toolchain else "Lean version unknown"
        return f"{version} ({self.source}{': ' + self.detail if self.detail else ''})"


METADATA = "metadata.json"


def traces_lean(path: str | Path, declared: str | None = None) -> TracesLean:
    """The traces' Lean: ``declared`` (a flag) when given, else LeanDojo's ``metadata.json`` beside the traces
    (the dataset root holds it beside ``random/``; LeanDojo's ``export_metadata`` writes ``dataset_name``,
    ``creation_time``, ``from_repo {url, commit}`` and ``leandojo_version``, no toolchain; a ``lean_version``
    or ``toolchain`` key, if someone added one, is read), else unknown. Never guessed."""
    if declared:
        return TracesLean(declared if declared.startswith("v") else f"v{declared}", "flag")
    path = Path(path)
    start = path if path.is_dir() else path.parent
    for folder in (start, start.parent, start.parent.parent):
        file = folder / METADATA
        if not file.is_file():
            continue
        try:
            meta = json.loads(file.read_text(encoding="utf-8"))
        except (OSError, ValueError) as e:
            raise TraceError(f"{file}: not readable as JSON ({e})") from e
        if not isinstance(meta, dict):
            raise TraceError(f"{file}: expected a JSON object")
        repo = meta.get("from_repo") if isinstance(meta.get("from_repo"), dict) else {}
        repl = meta.get("pantograph_version") if isinstance(meta.get("pantograph_version"), str) else None
        parts = [f"LeanDojo {meta['leandojo_version']}" if meta.get("leandojo_version") else "",
                 f"workbench trace with REPL {repl}" if repl else "",
                 f"{repo.get('url', '')}@{str(repo.get('commit', ''))[:12]}" if repo.get("commit") else ""]
        toolchain = meta.get("lean_version") or meta.get("toolchain")
        if isinstance(toolchain, str):
            toolchain = toolchain.rpartition(":")[2]  # "leanprover/lean4:v4.7.0"
        return TracesLean(toolchain if isinstance(toolchain, str) and toolchain else None, METADATA,
                          ", ".join(p for p in parts if p), repl)
    return TracesLean(None, "unknown")


def bundled_sample_path() -> Path:
    """The small hand-written sample of LeanDojo-format traces shipped with the package."""
    return Path(__file__).resolve().parent / "data" / "sample_traces.json"
