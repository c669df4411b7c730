"""Benchmark: the baselines scoring states an earlier evaluation already scored.

One `train-ebm --eval-traces` run scores the same states' structural features in training, in each
evaluation and in each baseline, and the TF-IDF baseline's energies in every evaluation (the progress
metric's states again inside the sibling checks). This fits the baselines on the shared sample's
`random/val.json` ground truth, then times, taking turns each round, over the same texts (ground-truth
states of `random/test.json` and their made-up siblings, as the sibling checks score them):
  fresh   every text analysed again (the features' kept rows and the TF-IDF energies emptied first: what
          every call cost before)
  kept    the same call again on the same texts

    .venv/bin/python bench/score_again.py [--rounds 3]

Skips (exit 0) when ../shared/data/leandojo_mathlib4 is absent.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

from workbench.ebm import features
from workbench.ebm.baselines import fit_baselines
from workbench.ebm.checks import check_pairs
from workbench.ebm.pipeline import load_records

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data" / "leandojo_mathlib4" / "random"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--traces-dir", type=Path, default=SHARED)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    if not (args.traces_dir / "val.json").is_file():
        print(f"skipped: no {args.traces_dir / 'val.json'}")
        return 0
    t0 = time.perf_counter()
    fitted = fit_baselines(load_records(traces=args.traces_dir / "val.json"))
    fit_s = time.perf_counter() - t0
    texts = check_pairs(load_records(traces=args.traces_dir / "test.json")).texts

    def fresh() -> None:
        features._feature_row.cache_clear()
        fitted._tfidf_seen.clear()
        fitted.energies(texts)

    def kept() -> None:
        fitted.energies(texts)

    times: dict[str, list[float]] = {"fresh": [], "kept": []}
    for _ in range(args.rounds):
        for name, fn in (("fresh", fresh), ("kept", kept)):
            t0 = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t0)
    med = {name: statistics.median(v) for name, v in times.items()}
    print(json.dumps({"texts": len(texts), "fit_s": round(fit_s, 1), "median_s": {k: round(v, 3) for k, v in med.items()},
                      "fresh_over_kept": round(med["fresh"] / med["kept"], 1)}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
