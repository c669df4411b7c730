"""Measure energy-head variants on the real shared LeanDojo sample, without Lean.

Train: ground-truth states of ``random/val.json`` (``EbmSettings.val_fraction`` of its theorems held
back for early stopping). Held out: every theorem of ``random/test.json``, evaluated with
``workbench.ebm.pipeline.evaluate_traces`` -- the same evaluation ``train-ebm --eval-traces`` and
notebook 04 use (per-theorem progress accuracy with 95 % bootstrap intervals resampled by theorem,
next to every baseline in both directions). States are encoded once with the local MiniLM (cached,
so reruns skip encoding). Each variant changes a few ``EbmSettings`` fields from the defaults.

    .venv/bin/python bench/ebm_real.py [--seeds 0 1] [--variants default ...] [--out runs/ebm_real]

Writes OUT/results.json and prints a Markdown table. Skips (exit 0) when ../shared/data/leandojo_mathlib4 is absent.
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from pathlib import Path
from typing import Any

from workbench.ebm.evaluate import HEADLINE, MODEL, PROGRESS_METRICS, ProgressReport
from workbench.ebm.pipeline import evaluate_traces, load_inputs, prepare_from_settings, train_from_settings
from workbench.ebm.settings import EbmSettings

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared" / "data" / "leandojo_mathlib4" / "random"
log = logging.getLogger("bench.ebm_real")

# slug -> (label, changes from the EbmSettings defaults)
VARIANTS: dict[str, tuple[str, dict[str, Any]]] = {
    "default": ("RankNet + features (default)", {}),
    "balanced": ("RankNet + features, theorem-balanced, dropout 0.3", {"balance_theorems": True, "dropout": 0.3}),
    "small-reg": ("RankNet + features, head 64/32/16, dropout 0.5, wd 0.1, balanced",
                  {"hidden": (64, 32, 16), "dropout": 0.5, "weight_decay": 0.1, "balance_theorems": True}),
    "ranknet-emb": ("RankNet, embedding only", {"features": ()}),
    "infonce": ("InfoNCE + features", {"loss": "infonce"}),
    "before": ("before: InfoNCE, other theorems' states as negatives, depth 0.3, no features",
               {"loss": "infonce", "easy_source": "any", "depth_weight": 0.3, "features": ()}),
    "margin": ("margin + features", {"loss": "margin"}),
    "depth-aux": ("RankNet + features + depth regression 0.3", {"depth_weight": 0.3}),
}
DEFAULT_VARIANTS = ("default", "balanced", "small-reg", "ranknet-emb", "infonce", "before")

def _fmt(report: ProgressReport, name: str, metric: str) -> str:
    row = report.table.loc[name]
    return f"{row[metric]:.3f} [{row[metric + '_lo']:.3f}, {row[metric + '_hi']:.3f}]"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--traces-dir", type=Path, default=SHARED)
    ap.add_argument("--out", type=Path, default=REPO / "runs" / "ebm_real")
    ap.add_argument("--embeddings", type=Path, help="embedding cache folder (default OUT/embeddings)")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    ap.add_argument("--variants", nargs="*", choices=list(VARIANTS), default=list(DEFAULT_VARIANTS))
    ap.add_argument("--siblings-from", type=Path, metavar="MINED",
                    help="also train on this mined run and report rank-1 among siblings (SIMULATED when the run was)")
    ap.add_argument("--torch-threads", type=int, default=1, help="torch CPU threads (1 is fastest on a shared, oversubscribed box)")
    ap.add_argument("--set", nargs="*", default=[], metavar="FIELD=JSON", help="extra EbmSettings changes for every variant")
    args = ap.parse_args()
    import torch

    torch.set_num_threads(args.torch_threads)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    for noisy in ("workbench.ebm.train", "workbench.encode", "workbench.traces", "workbench.ebm.data"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    train_file, test_file = args.traces_dir / "val.json", args.traces_dir / "test.json"
    if not train_file.exists():
        print(f"skipped: shared traces not found at {args.traces_dir}")
        return 0
    extra = {k: json.loads(v) for k, v in (item.split("=", 1) for item in args.set)}
    base = EbmSettings(traces=str(train_file), embeddings=str(args.embeddings or args.out / "embeddings"), progress=False).replace(**extra)
    t0 = time.perf_counter()
    records, table = load_inputs(base)
    # the held-out states go into the cache once, so every run below only reads it
    from workbench.ebm.pipeline import load_records
    from workbench.encode import ensure_embeddings

    ensure_embeddings(load_records(traces=test_file)["state_pp"].tolist(), base.embeddings_path(), base.encoder(),
                      progress=False)
    results: dict[str, Any] = {"encode_s": round(time.perf_counter() - t0, 1), "train_file": str(train_file),
                               "test_file": str(test_file), "base_settings": base.to_dict(), "runs": []}
    first: ProgressReport | None = None
    lines = ["| variant | seed | per-theorem progress acc. [95 % CI] | all pairs | adjacent | within-proof Spearman | vs best baseline |",
             "|---|---|---|---|---|---|---|"]
    for slug in args.variants:
        name, changes = VARIANTS[slug]
        for seed in args.seeds:
            settings = base.replace(seed=seed, output=str(args.out / slug / f"seed{seed}"), **changes)
            t = time.perf_counter()
            data = prepare_from_settings(settings, records, table)
            exp = train_from_settings(settings, data)
            train_s = time.perf_counter() - t
            report = evaluate_traces(exp.result.best_dir, test_file, output_dir=settings.output,
                                     cache=settings.embeddings_path(), seed=seed)
            first = first or report
            results["runs"].append({"variant": name, "seed": seed, "train_s": round(train_s, 1),
                                    "best_step": exp.result.best_step, "changes": changes, **report.to_dict()})
            lines.append(f"| {name} | {seed} | {_fmt(report, MODEL, HEADLINE)} | "
                         + " | ".join(f"{report.table.loc[MODEL, m]:.3f}" for m in list(PROGRESS_METRICS)[1:])
                         + f" | {100 * report.delta:+.1f} pts ({'no overlap' if not report.intervals_overlap else 'overlap'}) |")
            print(f"== {name} seed {seed} ({train_s:.0f} s): {report.verdict}", flush=True)
            (args.out / "results.json").write_text(json.dumps(results, indent=2, default=str) + "\n")
    for b in first.table.index.drop(MODEL) if first is not None else ():
        lines.append(f"| baseline: {b} | – | {_fmt(first, b, HEADLINE)} | "
                     + " | ".join(f"{first.table.loc[b, m]:.3f}" for m in list(PROGRESS_METRICS)[1:]) + " | |")
    table_md = "\n".join(lines)
    results["markdown"] = table_md
    if args.siblings_from:
        results["siblings"] = [sibling_run(args.siblings_from, base, args.out / "siblings" / f"seed{seed}", seed) for seed in args.seeds]
    (args.out / "results.json").write_text(json.dumps(results, indent=2, default=str) + "\n")
    print(table_md)
    return 0


def sibling_run(mined: Path, base: EbmSettings, out: Path, seed: int) -> dict[str, Any]:
    """Train on a mined run (30 % of its theorems held out) and report rank-1 among siblings: is the
    lowest-energy child of a node a positive, next to the policy's own score and random."""
    settings = base.replace(traces=None, trajectories=(str(mined),), output=str(out), seed=seed, val_fraction=0.3)
    records, table = load_inputs(settings)
    exp = train_from_settings(settings, prepare_from_settings(settings, records, table))
    if exp.siblings is None:
        raise SystemExit(f"{mined}: no held-out sibling group with a positive and a negative")
    tag = "SIMULATED (Lean simulator, not Lean)" if exp.simulated else "real Lean"
    print(f"== siblings, seed {seed}, {tag}: {exp.siblings.verdict}\n{exp.siblings.summary.round(3).to_string()}", flush=True)
    return {"seed": seed, "simulated": exp.simulated, "data": tag, "groups": exp.siblings.n_groups,
            "table": exp.siblings.summary.reset_index().to_dict(orient="records"), "verdict": exp.siblings.verdict}


if __name__ == "__main__":
    raise SystemExit(main())
