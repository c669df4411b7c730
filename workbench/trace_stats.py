"""Tables describing a set of traces (for notebook 01): lengths, tactics, namespaces."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any, Mapping, Sequence

import pandas as pd

from workbench.namespaces import infer_open_namespace, namespaced_references
from workbench.tactics import tactic_name
from workbench.traces import Theorem, TraceSet, bundled_sample_path


def source_summary(source: str | Path, summary: Mapping[str, Any], output_dir: str | Path) -> str:
    """Notebook 01's first line (Markdown): where the traces came from, what was kept, where it went; when the
    source is the bundled sample, says loudly that it is the hand-written sample, not Mathlib traces."""
    kept = (f"kept **{summary['kept']}** theorems, {summary['steps']} steps; train {summary['train_theorems']} / "
            f"val {summary['val_theorems']} theorems; outputs in `{output_dir}`")
    if Path(source).resolve() == bundled_sample_path().resolve():
        return (f"**Source: the bundled HAND-WRITTEN sample** (`{Path(source).name}`, written for this project in "
                f"LeanDojo's format; its theorem names do not exist in Mathlib, so it only exercises the pipeline: "
                f"set `traces_path` to LeanDojo Benchmark 4 traces for real numbers) — {kept}")
    return f"**Source:** `{source}` — {kept}"


def kept_dropped_table(trace_set: TraceSet) -> pd.DataFrame:
    rows = [("kept", len(trace_set.theorems))]
    rows += [(f"dropped: {reason}", n) for reason, n in sorted(trace_set.dropped.items())]
    if trace_set.bad_records:
        rows.append(("skipped: malformed record", trace_set.bad_records))
    if trace_set.not_sampled:
        rows.append(("not sampled", trace_set.not_sampled))
    return pd.DataFrame(rows, columns=["theorems", "count"])


def proof_lengths(theorems: Sequence[Theorem]) -> pd.Series:
    return pd.Series([len(t.steps) for t in theorems], name="steps")


def tactic_frequencies(theorems: Sequence[Theorem], top: int = 20) -> pd.DataFrame:
    counts = Counter(tactic_name(s.tactic) for t in theorems for s in t.steps)
    total = sum(counts.values()) or 1
    rows = [(name, n, n / total) for name, n in counts.most_common(top)]
    return pd.DataFrame(rows, columns=["tactic", "count", "share"])


def namespace_table(theorems: Sequence[Theorem]) -> pd.DataFrame:
    """One row per theorem: its inferred ``open`` prefix and the short names its tactics rely on.

    ``theorem_ns_refs``: names resolved through the theorem's own namespace (the ``open ... in``
    retry should fix them); ``other_ns_refs``: names resolved through a file-level ``open`` or an
    ``export`` (the retry cannot help; exported ones usually resolve anyway).
    """
    rows = []
    for t in theorems:
        refs = [r for s in t.steps for r in namespaced_references(t.full_name, s.references)]
        own = sorted({r.written for r in refs if r.fixed_by_open_retry})
        other = sorted({f"{r.written} ({r.namespace})" for r in refs if not r.fixed_by_open_retry})
        rows.append({
            "theorem": t.full_name,
            "open_prefix": infer_open_namespace(t.full_name),
            "steps": len(t.steps),
            "theorem_ns_refs": ", ".join(own),
            "other_ns_refs": ", ".join(other),
            "likely_mismatch": bool(own or other),
        })
    return pd.DataFrame(rows)
