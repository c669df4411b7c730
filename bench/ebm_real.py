"""Measure energy-head variants on the real shared LeanDojo sample, without Lean: sibling checks first,
the progress headline second, every figure beside baselines fitted on the training side.

Two stages, never mixed:
  --stage select  (model selection) train on ``random/val.json`` minus a selection split carved from it by
                  theorem (``workbench.traces.held_out_names``, 20 %, seed 0); evaluate on that split. The
                  default is chosen here: by the sibling checks first (no-progress siblings of the kinds held
                  out of training, then parent→child), the progress headline second.
  --stage test    train on all of ``random/val.json``, evaluate once on all of ``random/test.json``.

Each evaluation is ``workbench.ebm.pipeline.evaluate_records``/``evaluate_traces`` -- the one evaluation
``train-ebm --eval-traces`` and notebook 04 use: per-theorem progress accuracy and the sibling checks
(``workbench.ebm.checks``), each with a 95 % bootstrap interval by theorem and the numbers of theorems and
pairs, beside the structural baselines (direction fixed on the training side) and pairwise logistic models
fitted there. States are encoded once into caches under OUT/cache (MiniLM and the hashed n-grams each in
their own; ``local+hashed`` reads both), so reruns only read them.

    .venv/bin/python bench/ebm_real.py --stage select --seeds 0 1 [--variants ...] [--out runs/ebm_real]

Diagnostics beside the two stages: ``--set FIELD=JSON`` changes a setting of every variant (its rows say so),
``--train-fraction F`` trains on a nested share of the training theorems (a learning curve), ``--score-train``
also scores each model on its own training theorems (the generalisation gap).

Writes OUT/<stage>/results.json and prints Markdown tables. Skips (exit 0) when ../shared/data/leandojo_mathlib4
is absent.
"""

from __future__ import annotations

import argparse
import functools
import json
import logging
import time
from pathlib import Path
from typing import Any

from workbench.ebm.checks import HELD_OUT, LENGTH_MATCHED, PARENT_CHILD, POSITION_MATCHED, TRAINED, UNTRAINED
from workbench.ebm.evaluate import HEADLINE, MODEL
from workbench.ebm.perturb import HELD_OUT_KINDS, PERTURBATION_KINDS
from workbench.ebm.pipeline import (TraceEvaluation, evaluate_records, inputs_from_records, load_records,
                                    prepare_from_settings, train_from_settings)
from workbench.ebm.settings import OFFLINE_HIDDEN, EbmSettings
from workbench.ebm.data import split_by_theorem
from workbench.encode.factory import spec_parts

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared" / "data" / "leandojo_mathlib4" / "random"
SELECTION_FRACTION, SELECTION_SEED = 0.2, 0
SUBSAMPLE_SEED = 1  # --train-fraction: one fixed order of the training theorems, so smaller shares nest in larger
log = logging.getLogger("bench.ebm_real")

NO_PERTURBATIONS: dict[str, Any] = {"perturbations": (), "parent_negatives": False}
# slug -> (label, changes from the EbmSettings defaults). Every variant names its encoder and negatives, so
# the table means the same whatever the defaults are.
VARIANTS: dict[str, tuple[str, dict[str, Any]]] = {
    "minilm-plain": ("MiniLM, within-proof pairs only (the default before this issue)",
                     {"encode": "local", **NO_PERTURBATIONS}),
    "minilm": ("MiniLM + made-up siblings", {"encode": "local", "parent_negatives": False}),
    "hashed-plain": ("hashed n-grams, within-proof pairs only", {"encode": "hashed", "hidden": OFFLINE_HIDDEN, **NO_PERTURBATIONS}),
    "hashed": ("hashed n-grams + made-up siblings", {"encode": "hashed", "hidden": OFFLINE_HIDDEN, "parent_negatives": False}),
    "hashed-parent": ("hashed n-grams + made-up siblings + parent as hard negative",
                      {"encode": "hashed", "hidden": OFFLINE_HIDDEN, "parent_negatives": True}),
    "hashed-parent-plain": ("hashed n-grams + parent as hard negative, no made-up siblings",
                            {"encode": "hashed", "hidden": OFFLINE_HIDDEN, **NO_PERTURBATIONS, "parent_negatives": True}),
    "hashed-anon": ("hashed n-grams without hypothesis names + made-up siblings",
                    {"encode": "hashed-anon", "hidden": OFFLINE_HIDDEN, "parent_negatives": False}),
    "hashed-set-parent": ("hashed n-grams of the hypothesis-set view + made-up siblings + parent as hard negative",
                          {"encode": "hashed-set", "hidden": OFFLINE_HIDDEN, "parent_negatives": True}),
    "hashed-fields-parent": ("hashed n-grams, hypotheses and targets apart + made-up siblings + parent as hard negative",
                             {"encode": "hashed-fields", "hidden": OFFLINE_HIDDEN, "parent_negatives": True}),
    "hashed+fields-parent": ("hashed n-grams ++ the same, hypotheses and targets apart + made-up siblings + parent as hard negative",
                             {"encode": "hashed+hashed-fields", "hidden": OFFLINE_HIDDEN, "parent_negatives": True}),
    "local+hashed": ("MiniLM ++ hashed n-grams + made-up siblings",
                     {"encode": "local+hashed", "hidden": OFFLINE_HIDDEN, "parent_negatives": False}),
    "local+hashed-plain": ("MiniLM ++ hashed n-grams, within-proof pairs only",
                           {"encode": "local+hashed", "hidden": OFFLINE_HIDDEN, **NO_PERTURBATIONS}),
    "minilm-tuned": ("MiniLM tuned as a ranker (300 steps) + made-up siblings",
                     {"encode": "local", "finetune_encoder": True, "parent_negatives": False}),
    "local-tuned+hashed-parent": ("MiniLM tuned as a ranker (300 steps) ++ hashed n-grams + made-up siblings + parent as hard negative",
                                  {"encode": "local+hashed", "hidden": OFFLINE_HIDDEN, "finetune_encoder": True,
                                   "parent_negatives": True}),
}
DEFAULT_VARIANTS = ("minilm-plain", "minilm", "hashed-plain", "hashed", "hashed-parent", "hashed-anon", "local+hashed")
# "other": the training kinds, or the same kinds untrained
CHECKS = (PARENT_CHILD, HELD_OUT, "other", LENGTH_MATCHED, POSITION_MATCHED)


def _cell(report: Any, check: str, method: str) -> str:
    t = report.table
    if check == "other":
        trained = (TRAINED, method) in t.index
        check = TRAINED if trained else UNTRAINED
        if (check, method) not in t.index:
            return "–"
        r = t.loc[(check, method)]
        return f"{r['value']:.3f} [{r['lo']:.3f}, {r['hi']:.3f}]" + (" (trained)" if trained and method == MODEL else "")
    if (check, method) not in t.index:
        return "–"
    r = t.loc[(check, method)]
    return f"{r['value']:.3f} [{r['lo']:.3f}, {r['hi']:.3f}]"


def _progress_cell(report: Any, method: str) -> str:
    r = report.table.loc[method]
    return f"{r[HEADLINE]:.3f} [{r[HEADLINE + '_lo']:.3f}, {r[HEADLINE + '_hi']:.3f}]"


def _cache(out: Path, encode: str) -> Path:
    return out / "cache" / encode.replace("/", "_").replace(":", "_")


def _link_composite(out: Path, encode: str) -> None:
    """A '+' encoder reads its parts' caches (encoder-0, encoder-1, ...) from the single encoders' caches."""
    parts = spec_parts(encode)
    if len(parts) < 2:
        return
    folder = _cache(out, encode)
    folder.mkdir(parents=True, exist_ok=True)
    for i, part in enumerate(parts):
        link = folder / f"encoder-{i}"
        if not link.exists():
            _cache(out, part).mkdir(parents=True, exist_ok=True)
            link.symlink_to(_cache(out, part).resolve(), target_is_directory=True)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--stage", choices=["select", "test"], required=True)
    ap.add_argument("--traces-dir", type=Path, default=SHARED)
    ap.add_argument("--out", type=Path, default=REPO / "runs" / "ebm_real")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    ap.add_argument("--variants", nargs="*", choices=list(VARIANTS), default=list(DEFAULT_VARIANTS))
    ap.add_argument("--torch-threads", type=int, default=2)
    ap.add_argument("--set", nargs="*", default=[], metavar="FIELD=JSON",
                    help="extra EbmSettings changes for every variant (over the variant's own); rows and "
                         "results.json name them")
    ap.add_argument("--train-fraction", type=float, default=1.0, metavar="F",
                    help="train on this share of the stage's training theorems (a learning curve; nested: a "
                         "smaller share is a subset of a larger one); the evaluation side is unchanged")
    ap.add_argument("--score-train", action="store_true",
                    help="also score each model on its own training theorems (the generalisation gap; its "
                         "early-stopping share included)")
    ap.add_argument("--siblings-from", type=Path, metavar="MINED",
                    help="also train on this mined run (30 %% of its theorems held out) and report its real siblings "
                         "(SIMULATED when the run was); the first variant's settings")
    args = ap.parse_args()
    if not 0.0 < args.train_fraction <= 1.0:
        ap.error(f"--train-fraction must be in (0, 1], got {args.train_fraction}")
    import torch

    torch.set_num_threads(args.torch_threads)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    for noisy in ("workbench.ebm.train", "workbench.encode", "workbench.traces", "workbench.ebm.data", "workbench.ebm.baselines"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    train_file, test_file = args.traces_dir / "val.json", args.traces_dir / "test.json"
    if not train_file.exists():
        print(f"skipped: shared traces not found at {args.traces_dir}")
        return 0
    extra = {k: json.loads(v) for k, v in (item.split("=", 1) for item in args.set)}
    out = args.out / args.stage
    all_train = load_records(traces=train_file)
    if args.stage == "select":
        train_records, eval_records = split_by_theorem(all_train, SELECTION_FRACTION, SELECTION_SEED)
        held = eval_records["theorem_name"].nunique()
        eval_name, eval_source = "selection", f"{train_file} (selection split: {held} theorems, held_out_names 0.2 seed 0)"
    else:
        train_records, eval_records = all_train, load_records(traces=test_file)
        eval_name, eval_source = test_file.stem, str(test_file)
    if args.train_fraction < 1.0:
        # held_out_names keeps the first share of one seeded order of the names: shares nest
        _, train_records = split_by_theorem(train_records, args.train_fraction, SUBSAMPLE_SEED)
        out = out.with_name(f"{out.name}-train{args.train_fraction:g}")
    results: dict[str, Any] = {"stage": args.stage, "train": str(train_file), "evaluated_on": eval_source,
                               "train_fraction": args.train_fraction,
                               "train_theorems": int(train_records["theorem_name"].nunique()),
                               "eval_theorems": int(eval_records["theorem_name"].nunique()), "runs": []}
    runs: list[tuple[str, int, float, Any, TraceEvaluation]] = []
    on_train: list[tuple[str, int, float, Any, TraceEvaluation]] = []  # --score-train
    for slug in args.variants:
        name, changes = VARIANTS[slug]
        # a row made with --set says so: the variant's label alone would name another model
        name = f"{name} [--set {' '.join(args.set)}]" if extra else name
        if args.train_fraction < 1.0:
            name += f" (trained on {results['train_theorems']} theorems)"
        for seed in args.seeds:
            settings = EbmSettings(traces=str(train_file), progress=False).replace(
                seed=seed, output=str(out / slug / f"seed{seed}"), **{**changes, **extra})
            if not settings.finetune_encoder:
                _link_composite(args.out, settings.encode)
                settings = settings.replace(embeddings=str(_cache(args.out, settings.encode)))
            t = time.perf_counter()
            records, table = inputs_from_records(settings, train_records)
            exp = train_from_settings(settings, prepare_from_settings(settings, records, table))
            train_s = time.perf_counter() - t
            # one evaluation, one encoder, for the stage's evaluation side and (--score-train) the training side
            score = functools.partial(evaluate_records, exp.result.best_dir, output_dir=settings.output,
                                      cache=settings.embeddings_path(), encoder=settings.encoder(), seed=seed,
                                      baselines=exp.baselines, held_out=settings.held_out_perturbations,
                                      trained=settings.perturbations)
            ev = score(eval_records, name=eval_name, source=eval_source)
            runs.append((name, seed, train_s, exp, ev))
            run = {"variant": name, "slug": slug, "seed": seed, "train_s": round(train_s, 1),
                   "best_step": exp.result.best_step,
                   "changes": {k: list(v) if isinstance(v, tuple) else v for k, v in changes.items()}, "set": extra,
                   "progress": ev.progress.to_dict(), "checks": ev.checks.to_dict() if ev.checks else None}
            if args.score_train:
                mine = score(train_records, name="training_theorems", source=f"{train_file} (its training theorems)")
                on_train.append((name, seed, train_s, exp, mine))
                run["on_training_theorems"] = {"progress": mine.progress.to_dict(),
                                               "checks": mine.checks.to_dict() if mine.checks else None}
            results["runs"].append(run)
            print(f"== {name} seed {seed} ({train_s:.0f} s): {ev.progress.verdict}\n   {ev.checks.verdict if ev.checks else ''}",
                  flush=True)
            (out / "results.json").write_text(json.dumps(results, indent=2, default=str) + "\n")
    if args.siblings_from:
        name, changes = VARIANTS[args.variants[0]]
        base = EbmSettings(progress=False).replace(**{**changes, **extra})
        results["mined"] = [sibling_run(args.siblings_from, base, out / "mined" / f"seed{seed}", seed) for seed in args.seeds]
    results["markdown"] = tables(runs)
    if on_train:
        results["markdown"] += ("\n\nThe same models scored on their own training theorems (`--score-train`; the "
                                "early-stopping share included):\n\n" + "\n".join(_model_rows(on_train)))
    if args.stage == "select":
        results["choice"] = choose(runs)
        results["markdown"] += "\n\n" + results["choice"]["text"]
    (out / "results.json").write_text(json.dumps(results, indent=2, default=str) + "\n")
    print(results["markdown"])
    return 0


def tables(runs: list[tuple[str, int, float, Any, TraceEvaluation]]) -> str:
    """Models (one row per variant and seed), then the baselines of the first variant's runs, one row per seed
    (each fitted on that run's training side)."""
    lines = _model_rows(runs)
    # A fitted baseline depends on its run's training records (the seed's split, the made-up siblings), so the
    # first variant's fits are shown for every seed.
    for _, seed, _, _, ev in (run for run in runs if run[0] == runs[0][0]):
        for b in (m for m in ev.progress.table.index if m != MODEL):
            cells = [_cell(ev.checks, c, b) if ev.checks else "–" for c in CHECKS]
            lines.append(f"| baseline: {b} | {seed} | {_progress_cell(ev.progress, b)} | " + " | ".join(cells) + " | | |")
    return "\n".join(lines)


def _model_rows(runs: list[tuple[str, int, float, Any, TraceEvaluation]]) -> list[str]:
    """The table's head and one row per model run."""
    first = runs[0][4]
    counts = first.checks.table.xs(MODEL, level="method") if first.checks else None
    head = [f"per-theorem progress ({first.progress.n_theorems} theorems, {first.progress.n_pairs} pairs)"]
    for check in CHECKS:
        if check == "other":
            head.append("no-progress siblings, the other kinds (" + ", ".join(k for k in PERTURBATION_KINDS if k not in HELD_OUT_KINDS) + ")")
            continue
        n = "" if counts is None or check not in counts.index else \
            f" ({int(counts.loc[check, 'n_theorems'])} theorems, {int(counts.loc[check, 'n_pairs'])} pairs)"
        head.append(check + n)
    lines = ["| model | seed | " + " | ".join(head) + " | P(model > length) parent→child | progress vs best trivial |",
             "|---" * (len(head) + 4) + "|"]
    for name, seed, _, _, ev in runs:
        length = next((c for c in ev.checks.p_above.columns if c.startswith("state length")), None) if ev.checks else None
        p = f"{ev.checks.p_above.loc[PARENT_CHILD, length]:.2f}" if length else "–"
        lines.append(f"| {name} | {seed} | {_progress_cell(ev.progress, MODEL)} | "
                     + " | ".join(_cell(ev.checks, c, MODEL) if ev.checks else "–" for c in CHECKS)
                     + f" | {p} | {100 * ev.progress.delta:+.1f} pts ({'no overlap' if not ev.progress.intervals_overlap else 'overlap'}) |")
    return lines


def choose(runs: list[tuple[str, int, float, Any, TraceEvaluation]]) -> dict[str, Any]:
    """The rule: mean over seeds of the no-progress sibling check on held-out kinds plus parent→child first
    (what search needs), the progress headline second (to break ties within 0.01)."""
    by: dict[str, list[TraceEvaluation]] = {}
    for name, _, _, _, ev in runs:
        by.setdefault(name, []).append(ev)
    scores = {}
    for name, evs in by.items():
        sib = sum(ev.checks.value(HELD_OUT) + ev.checks.value(PARENT_CHILD) for ev in evs if ev.checks) / (2 * len(evs))
        prog = sum(float(ev.progress.table.loc[MODEL, HEADLINE]) for ev in evs) / len(evs)
        scores[name] = (round(sib, 2), prog)
    ranked = sorted(scores, key=lambda n: scores[n], reverse=True)
    text = ("Selection (validation side only): rank by the mean of the held-out no-progress check and parent→child "
            "(rounded to 0.01), then by progress: " + "; ".join(f"{n}: siblings {scores[n][0]:.2f}, progress {scores[n][1]:.3f}"
                                                                 for n in ranked) + f". Chosen: **{ranked[0]}**.")
    return {"ranked": ranked, "scores": {n: list(v) for n, v in scores.items()}, "text": text}


def sibling_run(mined: Path, base: EbmSettings, out: Path, seed: int) -> dict[str, Any]:
    """Train on a mined run (30 % of its theorems held out) and report its real siblings: pairwise accuracy by
    theorem beside the baselines, and rank-1 among siblings beside the policy's own score and random."""
    from workbench.ebm.pipeline import load_inputs

    settings = base.replace(traces=None, trajectories=(str(mined),), output=str(out), seed=seed, val_fraction=0.3)
    records, table = load_inputs(settings)
    exp = train_from_settings(settings, prepare_from_settings(settings, records, table))
    if exp.siblings is None or exp.mined is None:
        raise SystemExit(f"{mined}: no held-out sibling group with a positive and a negative")
    tag = "SIMULATED (Lean simulator, not Lean)" if exp.simulated else "real Lean"
    print(f"== siblings, seed {seed}, {tag}: {exp.mined.verdict}\n{exp.siblings.verdict}\n"
          f"{exp.mined.formatted().T.to_string()}\n{exp.siblings.summary.round(3).to_string()}", flush=True)
    return {"seed": seed, "simulated": exp.simulated, "data": tag, "groups": exp.siblings.n_groups,
            "pairs": exp.mined.to_dict(), "rank1": exp.siblings.summary.reset_index().to_dict(orient="records"),
            "verdict": exp.siblings.verdict}


if __name__ == "__main__":
    raise SystemExit(main())
