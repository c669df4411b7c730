"""Measure the energy head on the real shared LeanDojo sample, without Lean.

Train split: ground-truth states of ``random/val.json`` (10 % of its theorems held back for early
stopping); held-out split: every theorem of ``random/test.json``. States are encoded with the local
MiniLM encoder (384-d, plain template; cached, so reruns skip encoding). The head is trained four times:
with spectral norm off and on, and with and without earlier states of the same proof as negatives
(``progress_negatives``); each is scored on the held-out theorems for progress accuracy and
Spearman(energy, remaining depth) next to the baselines (state length, number of goals, random).

    .venv/bin/python bench/ebm_real.py [--steps 600] [--batch-size 128] [--out runs/ebm_real]

Skips (exit 0 with a message) when ../shared/data/leandojo_mathlib4 is absent.
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from pathlib import Path

import pandas as pd

from workbench.ebm.data import SamplerConfig, attach_embeddings
from workbench.ebm.evaluate import ground_truth_report, record_energies
from workbench.ebm.model import EnergyHeadConfig
from workbench.ebm.pipeline import ensure_embeddings, load_records, make_encoder, prepare, run_experiment
from workbench.ebm.train import TrainConfig
from workbench.encode import PLAIN_TEMPLATE

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared" / "data" / "leandojo_mathlib4" / "random"
log = logging.getLogger("bench.ebm_real")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--traces-dir", type=Path, default=SHARED)
    ap.add_argument("--out", type=Path, default=REPO / "runs" / "ebm_real")
    ap.add_argument("--embeddings", type=Path, help="embedding cache folder (default OUT/embeddings)")
    ap.add_argument("--steps", type=int, default=600)
    ap.add_argument("--batch-size", type=int, default=128)
    ap.add_argument("--hidden", type=int, nargs=3, default=[1024, 512, 256])
    ap.add_argument("--depth-weight", type=float, default=0.3)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("workbench.ebm.train").setLevel(logging.WARNING)
    if not (args.traces_dir / "val.json").exists():
        print(f"skipped: shared traces not found at {args.traces_dir}")
        return 0

    train_records = load_records(traces=args.traces_dir / "val.json")
    test_records = load_records(traces=args.traces_dir / "test.json")
    states = pd.concat([train_records["state_pp"], test_records["state_pp"]]).tolist()
    t0 = time.perf_counter()
    table = ensure_embeddings(states, args.embeddings or args.out / "embeddings", make_encoder("local", template=PLAIN_TEMPLATE))
    encode_s = time.perf_counter() - t0

    held_out, missing = attach_embeddings(test_records, table)
    results = {"encode_s": round(encode_s, 1), "train_theorems": int(train_records.theorem_name.nunique()),
               "train_states": len(train_records), "held_out_theorems": int(held_out.theorem_name.nunique()),
               "held_out_states": len(held_out), "missing_embeddings": missing.count, "runs": {}}
    runs = [(pn, sn) for pn in (False, True) for sn in (False, True)]
    for pn, sn in runs:
        name = f"progress_negatives_{'on' if pn else 'off'}__spectral_norm_{'on' if sn else 'off'}"
        sampler = SamplerConfig(k_negatives=7, progress_negatives=pn, seed=args.seed)
        data = prepare(train_records, table, sampler, val_fraction=0.1, seed=args.seed)
        model_cfg = EnergyHeadConfig(d_encoder=table.matrix.shape[1], d_hidden1=args.hidden[0], d_hidden2=args.hidden[1],
                                     d_hidden3=args.hidden[2], spectral_norm=sn)
        train_cfg = TrainConfig(steps=args.steps, batch_size=args.batch_size, warmup_steps=args.steps // 20,
                                eval_every=max(1, args.steps // 10), depth_weight=args.depth_weight, seed=args.seed)
        t0 = time.perf_counter()
        exp = run_experiment(data, model_cfg, train_cfg, args.out / name, progress=False)
        train_s = time.perf_counter() - t0
        report = ground_truth_report(held_out, record_energies(exp.model, held_out, table.matrix), seed=args.seed)
        print(f"\n== {name}: {report.verdict}\n{report.table.round(3).to_string()}", flush=True)
        results["runs"][name] = {
            "train_s": round(train_s, 1), "best_step": exp.result.best_step, "last_step": exp.result.last_step,
            "table": report.table.round(4).reset_index().to_dict(orient="records"),
            "pairs": report.n_pairs, "beats_best_baseline": report.beats_best_baseline, "verdict": report.verdict,
        }
    (args.out / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps({k: v for k, v in results.items() if k != "runs"}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
