"""How much of the headline checks a pure position cue explains: the distance of a state from its theorem's first
state, with nothing fitted.

The per-theorem progress metric and parent→child compare states of one proof script, and a script's states move
away from where it started. This scores each ground-truth state by ``1 - cos(v(state), v(first state))``, ``v``
the default encoder's hashed character n-grams (``HashedEncoder``, plain template): farther from the start =
closer to QED. It reads no label, depth or tactic, and fits nothing, so it is scored on both shared files with the
project's own evaluation (``progress_evaluation``, ``check_pairs``/``pair_checks``: intervals by theorem), beside
"longer state = closer". It is ``workbench.ebm.baselines.position_energies``, the baseline every table now shows.

    .venv/bin/python bench/position_baseline.py [--files val test]

Skips (exit 0) when ../shared/data/leandojo_mathlib4 is absent.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from workbench.ebm.baselines import POSITION, both_directions, feature_baseline_name, first_states, position_energies
from workbench.ebm.checks import HELD_OUT, LENGTH_MATCHED, PARENT_CHILD, POSITION_MATCHED, check_pairs, pair_checks
from workbench.ebm.evaluate import HEADLINE, MODEL, progress_evaluation
from workbench.ebm.pipeline import load_records

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data" / "leandojo_mathlib4" / "random"
LENGTH = feature_baseline_name("state_length", lower_is_closer=False)
CHECKS = (PARENT_CHILD, HELD_OUT, LENGTH_MATCHED, POSITION_MATCHED)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--traces-dir", type=Path, default=SHARED)
    ap.add_argument("--files", nargs="+", default=["val", "test"])
    args = ap.parse_args()
    if not (args.traces_dir / "val.json").is_file():
        print(f"skipped: no {args.traces_dir / 'val.json'}")
        return 0
    print("| file | method | per-theorem progress | " + " | ".join(CHECKS) + " |")
    print("|---" * (len(CHECKS) + 3) + "|")
    for stem in args.files:
        records = load_records(traces=args.traces_dir / f"{stem}.json")
        first = first_states(records)
        texts = records["state_pp"].astype(str).tolist()
        energy = position_energies(texts, records["theorem_name"].astype(str).tolist(), first)
        progress = progress_evaluation(records, energy, baselines={LENGTH: both_directions(texts)[LENGTH]},
                                       trivial=[LENGTH])
        cp = check_pairs(records)
        checks = pair_checks(cp, {POSITION: cp.position,
                                  LENGTH: both_directions(cp.texts)[LENGTH]}, model=POSITION)
        for method, row in ((POSITION, progress.table.loc[MODEL]), (LENGTH, progress.table.loc[LENGTH])):
            cells = [f"{row[HEADLINE]:.3f} [{row[HEADLINE + '_lo']:.3f}, {row[HEADLINE + '_hi']:.3f}] "
                     f"({progress.n_theorems} theorems)"]
            for check in CHECKS:
                r = checks.table.loc[(check, method)]
                cells.append(f"{r['value']:.3f} [{r['lo']:.3f}, {r['hi']:.3f}] ({int(r['n_theorems'])} theorems, "
                             f"{int(r['n_pairs'])} pairs)")
            print(f"| {stem} | {method} | " + " | ".join(cells) + " |")
        above = [f"{checks.p_above.loc[c, LENGTH]:.2f}" for c in CHECKS]
        print(f"| {stem} | P(position > length) | – | " + " | ".join(above) + " |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
