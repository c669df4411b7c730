"""Sibling checks: what a value model must get right to rank siblings in search.

The progress headline compares a state with later states of the same script, so it rewards knowing
*where in a script* a state is (history markers: ``case`` tags, ``✝`` names, ``this``). Search asks
something else: which of the children of one state is closer to QED. Until real mined siblings
exist, these checks stand in, each a set of (better, worse) pairs grouped by theorem:

  parent→child              the state a traced tactic produced (``state_after``; not ``no goals``) beats
                            the state it was applied to
  no-progress: KIND         the same child beats the parent after a no-progress step of KIND
                            (``workbench.ebm.perturb``; every kind, whatever the model trained on);
                            summarised over the kinds held out of training, the training kinds, and
                            the rest
  length-matched progress   the later of two states of one proof beats the earlier, among pairs whose
                            lengths differ by at most 5 % (where "longer = closer" says little)
  position-matched progress the same, among pairs whose distances from the theorem's first state differ by
                            at most 5 % (where the position cue, ``baselines.position_energies``, says
                            little): what a model knows beyond where in its script a state is

  mined siblings            on mined data, the real thing: a positive child beats a negative child of the
                            same parent (``evaluate.sibling_report`` adds rank-1 vs the policy's score)

Every figure is the mean over theorems of each theorem's pair accuracy (ties count half), with a 95 %
bootstrap interval that resamples theorems (the same resamples for every method, so differences are
paired), and the number of theorems and pairs beside it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from workbench.ebm.perturb import HELD_OUT_KINDS, PERTURBATION_KINDS, TRAIN_KINDS, check_kinds, perturb
from workbench.ebm.baselines import first_states, position_energies, sibling_pairs
from workbench.ebm.metrics import percentile_interval, theorem_bootstrap_weights
from workbench.ebm.records import ground_truth_mask, made_up_mask
from workbench.states import NO_GOALS

PARENT_CHILD = "parent→child"
HELD_OUT = "no-progress siblings, held-out kinds"
TRAINED = "no-progress siblings, training kinds"
UNTRAINED = "no-progress siblings, other kinds (not trained on)"  # the kinds neither held out nor trained
LENGTH_MATCHED = "length-matched progress pairs"
POSITION_MATCHED = "position-matched progress pairs"
MINED = "mined siblings (positive vs negative child of one parent)"
LENGTH_TOLERANCE = 0.05
POSITION_TOLERANCE = 0.05


def kind_check(kind: str) -> str:
    return f"no-progress: {kind}"


@dataclass(frozen=True)
class CheckPairs:
    texts: list[str]  # state texts, distinct within a theorem; pairs index into it
    pairs: pd.DataFrame  # check, theorem, better, worse
    groups: dict[str, tuple[str, ...]]  # summary check -> the checks it pools (per theorem)
    held_out: tuple[str, ...]
    trained: tuple[str, ...]
    theorems: list[str]  # each text's theorem (a baseline may score a state relative to its theorem)
    position: np.ndarray | None = None  # the position cue's energy of each text (check_pairs computes it once)

    @property
    def order(self) -> list[str]:
        """Checks in report order: the headline checks first, then each kind."""
        present = set(self.pairs["check"]) | set(self.groups)
        kinds = [kind_check(k) for k in (*self.held_out, *self.trained)]
        kinds += [kind_check(k) for k in PERTURBATION_KINDS if kind_check(k) not in kinds]
        return [c for c in (MINED, PARENT_CHILD, HELD_OUT, TRAINED, UNTRAINED, LENGTH_MATCHED, POSITION_MATCHED,
                                   *kinds) if c in present]


def _children(gt: pd.DataFrame) -> pd.Series:
    """Per ground-truth record, the state its tactic produced: ``state_after`` when the trace has it, else the
    record whose parent it is (mined trees, or traces read without it)."""
    child = pd.Series([None] * len(gt), index=gt.index, dtype=object)
    if "state_after" in gt.columns:
        child = gt["state_after"].astype(object)
    missing = child.isna()
    if missing.any():
        by_parent = {(t, int(p)): s for t, p, s in zip(gt["theorem_name"], gt["parent_state_id"], gt["state_pp"])
                     if not pd.isna(p)}
        child[missing] = [by_parent.get((t, int(i))) for t, i in zip(gt.loc[missing, "theorem_name"], gt.loc[missing, "state_id"])]
    return child.where(child.notna(), None)  # a state with no child: None (pandas stores NaN)


def _matched(later_better: np.ndarray, scale: np.ndarray, tolerance: float) -> list[tuple[int, int]]:
    """(better, worse) positions within one proof: the later state of every pair whose ``scale`` values differ
    by at most ``tolerance`` of the larger (``later_better[j, i]``: state j is closer to QED than state i)."""
    close = np.abs(scale[:, None] - scale[None, :]) <= tolerance * np.maximum(scale[:, None], scale[None, :])
    return [(int(j), int(i)) for i, j in zip(*np.nonzero(close & later_better.T))]


def check_pairs(records: pd.DataFrame, *, held_out: Sequence[str] = HELD_OUT_KINDS, trained: Sequence[str] = TRAIN_KINDS,
                seed: int = 0, length_tolerance: float = LENGTH_TOLERANCE, position_tolerance: float = POSITION_TOLERANCE,
                table: Any = None) -> CheckPairs:
    """The check pairs of the ground-truth paths in ``records`` (label positive, remaining depth known,
    ``record_kind`` ground_truth when present), with the position cue of every text (``table``: an embedding
    table it may read its vectors from, as ``position_energies``)."""
    held_out, trained = check_kinds(held_out), check_kinds(trained)
    gt = records.loc[ground_truth_mask(records)]
    index: dict[tuple[str, str], int] = {}  # (theorem, text): a text two theorems share is a state of each

    def row(theorem: str, text: str) -> int:
        return index.setdefault((theorem, text), len(index))

    rows: list[tuple[str, str, int, int]] = []
    kinds = list(PERTURBATION_KINDS)  # every kind, so that models trained on different kinds compare on the same pairs
    for (theorem, parent, child) in zip(gt["theorem_name"], gt["state_pp"], _children(gt)):
        if child is None or child == NO_GOALS or child == parent:
            continue
        rows.append((PARENT_CHILD, theorem, row(theorem, child), row(theorem, parent)))
        for kind in kinds:
            sibling = perturb(parent, kind, seed)
            if sibling is not None and sibling != child:
                rows.append((kind_check(kind), theorem, row(theorem, child), row(theorem, sibling)))
    proofs = [(theorem, g["state_pp"].tolist(), g["remaining_depth"].to_numpy())
              for theorem, g in gt.groupby("theorem_name", sort=False)]
    for theorem, texts, _ in proofs:
        for text in texts:
            row(theorem, text)
    all_texts, theorems = [text for _, text in index], [theorem for theorem, _ in index]
    position = position_energies(all_texts, theorems, first_states(records), table=table)
    for theorem, texts, depth in proofs:
        at = np.array([index[(theorem, t)] for t in texts])
        later_better = depth[:, None] < depth[None, :]  # [j, i]: state j is fewer steps from QED than state i
        lengths = np.array([len(t) for t in texts], np.float64)
        for check, scale, tolerance in ((LENGTH_MATCHED, lengths, length_tolerance),
                                        (POSITION_MATCHED, -position[at], position_tolerance)):
            rows.extend((check, theorem, int(at[j]), int(at[i])) for j, i in _matched(later_better, scale, tolerance))
    pairs = pd.DataFrame(rows, columns=["check", "theorem", "better", "worse"])
    groups = {}
    other = tuple(k for k in PERTURBATION_KINDS if k not in held_out and k not in trained)
    for name, members in ((HELD_OUT, held_out), (TRAINED, trained), (UNTRAINED, other)):
        if members:
            groups[name] = tuple(kind_check(k) for k in members)
    return CheckPairs(texts=all_texts, pairs=pairs, groups=groups, held_out=held_out, trained=trained, theorems=theorems,
                      position=position)


def mined_sibling_pairs(records: pd.DataFrame) -> CheckPairs:
    """Real siblings from a mined tree: every (positive, negative) pair of children of one parent (made-up
    siblings left out). ``texts`` are the records' states in record order, so energies per record align."""
    r = records.reset_index(drop=True)
    sp = sibling_pairs(r, keep=~made_up_mask(r))
    rows = pd.DataFrame({"check": MINED, "theorem": sp["theorem"], "better": sp["better"], "worse": sp["worse"]})
    return CheckPairs(texts=r["state_pp"].astype(str).tolist(), pairs=rows,
                      groups={}, held_out=(), trained=(), theorems=r["theorem_name"].astype(str).tolist())


@dataclass(frozen=True)
class CheckReport:
    table: pd.DataFrame  # rows (check, method): value, lo, hi, n_theorems, n_pairs
    p_above: pd.DataFrame  # rows check, columns other methods: P(model > method) over paired bootstrap resamples
    model: str
    held_out: tuple[str, ...]
    trained: tuple[str, ...]
    n_boot: int

    @property
    def verdict(self) -> str:
        """One line per headline check: the model, the best other method, theorems and pairs."""
        lines = []
        for check in (MINED, PARENT_CHILD, HELD_OUT, LENGTH_MATCHED, POSITION_MATCHED):
            if (check, self.model) not in self.table.index:
                continue
            rows = self.table.xs(check, level="check")
            rivals = rows.drop(index=self.model)["value"]
            m = rows.loc[self.model]
            line = (f"{check} ({int(m['n_theorems'])} theorems, {int(m['n_pairs'])} pairs): model {m['value']:.3f} "
                    f"[{m['lo']:.3f}, {m['hi']:.3f}]")
            if len(rivals):
                best = str(rivals.idxmax())
                b, p = rows.loc[best], self.p_above.loc[check, best]
                line += f" vs best baseline '{best}' {b['value']:.3f} [{b['lo']:.3f}, {b['hi']:.3f}], P(model above) {p:.2f}"
            lines.append(line)
        return "Sibling checks: " + "; ".join(lines) + "." if lines else "Sibling checks: no pairs."

    def value(self, check: str, method: str | None = None) -> float:
        return float(self.table.loc[(check, method or self.model), "value"])

    def formatted(self) -> pd.DataFrame:
        """check x method: 'value [lo, hi]' strings, with theorems/pairs per check (notebooks, README)."""
        t = self.table
        cells = {(c, m): f"{v:.3f} [{lo:.3f}, {hi:.3f}]" for (c, m), v, lo, hi in zip(t.index, t["value"], t["lo"], t["hi"])}
        checks = list(dict.fromkeys(c for c, _ in t.index))
        methods = list(dict.fromkeys(m for _, m in t.index))
        out = pd.DataFrame({m: [cells.get((c, m), "") for c in checks] for m in methods}, index=pd.Index(checks, name="check"))
        first = t.xs(self.model, level="method")
        out.insert(0, "pairs", first["n_pairs"].reindex(checks).astype(int).to_numpy())
        out.insert(0, "theorems", first["n_theorems"].reindex(checks).astype(int).to_numpy())
        return out

    def to_dict(self) -> dict[str, Any]:
        checks: dict[str, Any] = {}
        for (check, method), r in self.table.iterrows():
            entry = checks.setdefault(check, {"n_theorems": int(r["n_theorems"]), "n_pairs": int(r["n_pairs"]), "methods": {}})
            entry["methods"][method] = {"value": r["value"], "interval": [r["lo"], r["hi"]]}
        for check, r in self.p_above.iterrows():
            checks[check]["p_model_above"] = {k: (None if pd.isna(v) else float(v)) for k, v in r.items()}
        return {"metric": "mean over theorems of each theorem's pair accuracy (ties half); 95 % bootstrap by theorem",
                "model": self.model, "held_out_kinds": list(self.held_out), "training_kinds": list(self.trained),
                "n_boot": self.n_boot, "checks": checks}


def _per_theorem(pairs: pd.DataFrame, energy: np.ndarray, theorems: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """(wins, pairs) per theorem in ``theorems`` order; the better state should get the lower energy."""
    d = energy[pairs["worse"].to_numpy()] - energy[pairs["better"].to_numpy()]
    win = (d > 0) + 0.5 * (d == 0)
    codes = pd.Categorical(pairs["theorem"], categories=theorems).codes
    return np.bincount(codes, weights=win, minlength=len(theorems)), np.bincount(codes, minlength=len(theorems)).astype(float)


def pair_checks(checks: CheckPairs, energies: Mapping[str, np.ndarray], *, model: str, n_boot: int = 1000,
                seed: int = 0) -> CheckReport:
    """Every check for every method (``energies[name]`` aligned with ``checks.texts``)."""
    rng = np.random.default_rng(seed)
    rows, p_rows = [], {}
    for check in checks.order:
        members = checks.groups.get(check, (check,))
        sub = checks.pairs[checks.pairs["check"].isin(members)]
        theorems = sorted(set(sub["theorem"]))
        if not theorems:
            continue
        T = len(theorems)
        weights = theorem_bootstrap_weights(T, n_boot, rng)
        boot: dict[str, np.ndarray] = {}
        for name, energy in energies.items():
            wins, n = _per_theorem(sub, np.asarray(energy, np.float64), theorems)
            acc = wins / n
            boot[name] = weights @ acc / weights.sum(axis=1)
            lo, hi = percentile_interval(boot[name])
            rows.append({"check": check, "method": name, "value": float(acc.mean()), "lo": float(lo), "hi": float(hi),
                         "n_theorems": T, "n_pairs": len(sub)})
        p_rows[check] = {name: float((boot[model] > boot[name]).mean()) for name in energies if name != model}
    table = pd.DataFrame(rows).set_index(["check", "method"])
    return CheckReport(table=table, p_above=pd.DataFrame.from_dict(p_rows, orient="index"), model=model,
                       held_out=checks.held_out, trained=checks.trained, n_boot=n_boot)


__all__ = ["CheckPairs", "CheckReport", "HELD_OUT", "LENGTH_MATCHED", "MINED", "PARENT_CHILD", "POSITION_MATCHED", "TRAINED",
           "UNTRAINED", "check_pairs", "kind_check", "mined_sibling_pairs", "pair_checks"]
