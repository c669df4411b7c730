"""``workbench group``: load traces, group by theorem, split by theorem, write tactic pairs."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from workbench.trace_breaks import break_counts
from workbench.traces import TraceSet, bundled_sample_path, load_traces, split_by_theorem, write_tactic_pairs, write_theorem_index


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--traces", default=str(bundled_sample_path()), help="LeanDojo JSON file/folder or tactic-pairs JSONL")
    parser.add_argument("--output-dir", required=True, help="where train.jsonl, val.jsonl, theorems.json go")
    parser.add_argument("--min-steps", type=int, default=1)
    parser.add_argument("--num-theorems", type=int, default=None)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--val-fraction", type=float, default=0.1)
    parser.add_argument("--skip-bad", action="store_true", help="count and skip malformed entries instead of failing")
    parser.add_argument("--overwrite", action="store_true", help="replace train.jsonl/val.jsonl/theorems.json already there")


def group_and_split(traces: str | Path, output_dir: str | Path, *, min_steps: int = 1, num_theorems: int | None = None,
                    seed: int = 0, val_fraction: float = 0.1, skip_bad: bool = False) -> tuple[dict, TraceSet]:
    """Load, group, split by theorem and write ``{train,val}.jsonl`` + ``theorems.json``.

    Returns the summary written to ``summary.json`` and the loaded traces.
    """
    out = Path(output_dir)
    trace_set = load_traces(traces, min_steps=min_steps, num_theorems=num_theorems, seed=seed, skip_bad=skip_bad)
    train, val = split_by_theorem(trace_set.theorems, val_fraction, seed)
    summary = {
        **trace_set.summary(),
        "train_theorems": len(train),
        "val_theorems": len(val),
        "train_pairs": write_tactic_pairs(train, out / "train.jsonl"),
        "val_pairs": write_tactic_pairs(val, out / "val.jsonl"),
        "index_theorems": write_theorem_index(trace_set.theorems, out / "theorems.json"),
        "trace_breaks": break_counts(trace_set.theorems),  # where state_after ≠ next state_before, by cause
        "parameters": {"min_steps": min_steps, "num_theorems": num_theorems, "seed": seed, "val_fraction": val_fraction},
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=1))
    return summary, trace_set


def run(args: argparse.Namespace) -> int:
    from workbench.outputs import refuse_existing

    refuse_existing(args.output_dir, ("train.jsonl", "val.jsonl", "theorems.json"), what="grouped traces",
                    overwrite=args.overwrite)
    summary, _ = group_and_split(args.traces, args.output_dir, min_steps=args.min_steps, num_theorems=args.num_theorems,
                              seed=args.seed, val_fraction=args.val_fraction, skip_bad=args.skip_bad)
    print(json.dumps(summary, indent=1))
    return 0
