"""Held-out evaluation of an energy head, always next to baselines and with intervals.

Ground-truth paths (no Lean needed), :func:`progress_evaluation` -- the one evaluation that
``train-ebm``, ``--eval-traces``, notebook 04 and ``bench/ebm_real.py`` use:
  per-theorem progress accuracy (the headline): for each theorem, the share of its within-proof
  pairs (earlier, later) where the later state gets the lower energy, averaged over theorems (one
  45-step proof would otherwise supply a third of all pairs); progress accuracy over all pairs;
  adjacent steps only; Spearman of energy with remaining depth *within* each proof, averaged over
  proofs (pooled across theorems it would reward "shorter = closer"); accuracy by step distance.
  Every metric has a 95 % bootstrap interval, resampling theorems. Baselines (``workbench.ebm.baselines``):
  each structural feature in the direction fixed on the training split, the pairwise logistic models
  fitted there, and random as the mean of many draws (without fitted baselines: each feature in both
  directions). The verdict compares the model with the best *trivial* baseline (a feature or random) and
  says whether the intervals overlap; each fitted baseline gets its own paired comparison.
Mined data (siblings = children of one parent state):
  rank-1 among siblings: is the lowest-energy child a positive? Energy vs the LLM log-probability
  (highest first) vs random (expected n_pos / n); pairwise accuracy; AUROC; all by depth.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import torch
from scipy.stats import rankdata

from workbench.ebm.baselines import both_directions
from workbench.ebm.metrics import auroc, percentile_interval, theorem_bootstrap_weights
from workbench.ebm.records import ground_truth_mask, made_up_mask
from workbench.ebm.model import EnergyHead
from workbench.ebm.train import as_tensor

log = logging.getLogger(__name__)


@torch.no_grad()
def record_energies(model: EnergyHead, records: pd.DataFrame, embeddings: np.ndarray, *, batch_size: int = 4096) -> np.ndarray:
    """Energies [n_records] for records carrying ``emb_row`` (eval mode)."""
    was_training = model.training
    model.eval()
    rows = np.array(records["emb_row"], dtype=np.int64)  # a writable copy for torch
    emb = as_tensor(embeddings).to(next(model.parameters()).device)
    out = [model(emb[torch.from_numpy(rows[i : i + batch_size])]) for i in range(0, rows.size, batch_size)]
    model.train(was_training)
    return torch.cat(out).cpu().numpy().astype(np.float64) if out else np.empty(0)


# -- ground-truth paths ---------------------------------------------------------------------------
MODEL = "energy (model)"
RANDOM = "random (mean of draws)"
HEADLINE = "progress_accuracy"
# name -> what the metric is; the headline first
PROGRESS_METRICS: dict[str, str] = {
    "progress_accuracy": "per-theorem progress accuracy (mean over theorems of each one's pair accuracy)",
    "progress_accuracy_all_pairs": "progress accuracy over all within-proof pairs",
    "adjacent_accuracy": "progress accuracy over adjacent steps (d -> d + 1)",
    "spearman_within_proof": "Spearman(energy, remaining depth) within a proof, mean over proofs with >= 3 states",
}
DISTANCE_BINS: tuple[tuple[int, int, str], ...] = ((1, 1, "1"), (2, 2, "2"), (3, 3, "3"), (4, 5, "4-5"), (6, 10, "6-10"), (11, 10**9, "11+"))


@dataclass(frozen=True, slots=True)
class _Stats:
    """Per-theorem sums for one method (theorems in a fixed order)."""

    correct: np.ndarray  # [T] pairs won (ties half), averaged over random draws
    total: np.ndarray  # [T] pairs
    adj_correct: np.ndarray  # [T]
    adj_total: np.ndarray  # [T]
    dist_correct: np.ndarray  # [T, n_bins]
    dist_total: np.ndarray  # [T, n_bins]
    rho: np.ndarray  # [T] within-proof Spearman, NaN for proofs with < 3 states


def _bin_of(distance: np.ndarray) -> np.ndarray:
    edges = np.array([lo for lo, _, _ in DISTANCE_BINS])
    return np.searchsorted(edges, distance, side="right") - 1


def _theorem_stats(groups: list[tuple[np.ndarray, np.ndarray]], energy: np.ndarray) -> _Stats:
    """energy: [D, n_states] (D random draws, or 1); groups: per theorem (record indices, depth)."""
    n_bins, T = len(DISTANCE_BINS), len(groups)
    correct, total, adj_c, adj_t, rho = (np.zeros(T) for _ in range(5))
    dist_c, dist_t = np.zeros((T, n_bins)), np.zeros((T, n_bins))
    rho[:] = np.nan
    for t, (idx, depth) in enumerate(groups):
        e = energy[:, idx]  # [D, m]
        later = depth[None, :] > depth[:, None]  # [m, m]: state j is later on the proof than state i
        if later.any():
            diff = e[:, :, None] - e[:, None, :]  # [D, m, m]: E_i - E_j > 0 when the later state is lower
            win = ((diff > 0) + 0.5 * (diff == 0))[:, later].mean(axis=0)  # [pairs]
            dist = (depth[None, :] - depth[:, None])[later]
            correct[t], total[t] = win.sum(), win.size
            adj = dist == 1
            adj_c[t], adj_t[t] = win[adj].sum(), adj.sum()
            b = _bin_of(dist)
            dist_c[t] = np.bincount(b, weights=win, minlength=n_bins)
            dist_t[t] = np.bincount(b, minlength=n_bins)
        if idx.size >= 3:
            r_e = rankdata(e, axis=1)
            r_e -= r_e.mean(axis=1, keepdims=True)
            r_d = rankdata(-depth.astype(np.float64))  # remaining depth falls as depth grows
            r_d -= r_d.mean()
            den = np.sqrt((r_e**2).sum(axis=1) * (r_d**2).sum())
            # a method constant on a proof orders nothing: Spearman 0, not undefined
            rho[t] = float(np.mean(np.where(den > 0, (r_e @ r_d) / np.where(den > 0, den, 1.0), 0.0)))
    return _Stats(correct, total, adj_c, adj_t, dist_c, dist_t, rho)


def _ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, num / np.where(den > 0, den, 1), np.nan)


def _metrics(s: _Stats, w: np.ndarray) -> dict[str, np.ndarray]:
    """Metrics under theorem weights w [B, T] (bootstrap counts; a row of ones = the sample)."""
    has_pairs, has_rho = s.total > 0, np.isfinite(s.rho)
    acc = _ratio(s.correct, s.total)
    return {
        "progress_accuracy": _ratio(w[:, has_pairs] @ acc[has_pairs], w[:, has_pairs].sum(axis=1)),
        "progress_accuracy_all_pairs": _ratio(w @ s.correct, w @ s.total),
        "adjacent_accuracy": _ratio(w @ s.adj_correct, w @ s.adj_total),
        "spearman_within_proof": _ratio(w[:, has_rho] @ s.rho[has_rho], w[:, has_rho].sum(axis=1)),
    }


@dataclass(frozen=True, slots=True)
class Comparison:
    """The headline of the model against one baseline, on the same bootstrap resamples of theorems."""

    baseline: str
    delta: float  # model - baseline
    delta_interval: tuple[float, float]
    p_above: float  # share of resamples where the model is above the baseline
    intervals_overlap: bool

    def to_dict(self) -> dict[str, Any]:
        return {"baseline": self.baseline, "delta": self.delta, "delta_interval": list(self.delta_interval),
                "p_model_above": self.p_above, "intervals_overlap": self.intervals_overlap}


@dataclass(frozen=True)
class ProgressReport:
    table: pd.DataFrame  # one row per method (model first): each metric, its _lo and _hi
    by_distance: pd.DataFrame  # progress accuracy by distance between the two steps: one column per method, plus pairs
    n_theorems: int  # theorems with at least one within-proof pair
    n_states: int
    n_pairs: int
    n_boot: int
    best_baseline: str  # the best trivial baseline (a structural feature or random)
    delta: float  # headline: model - best trivial baseline
    delta_interval: tuple[float, float]  # paired bootstrap (same resampled theorems for both)
    intervals_overlap: bool
    beats_best_baseline: bool  # above the best trivial baseline with non-overlapping intervals
    verdict: str
    comparisons: tuple[Comparison, ...] = ()  # the headline vs every baseline (trivial and fitted), paired
    directions_from_training: bool = False  # False: each feature in both directions (no training data given)

    def formatted(self, metrics: Sequence[str] = tuple(PROGRESS_METRICS)) -> pd.DataFrame:
        """value [lo, hi] strings, for notebooks and the README."""
        t = self.table
        return pd.DataFrame({m: [f"{v:.3f} [{lo:.3f}, {hi:.3f}]" for v, lo, hi in zip(t[m], t[m + "_lo"], t[m + "_hi"])]
                             for m in metrics}, index=t.index)

    def to_dict(self) -> dict[str, Any]:
        """The JSON written as eval_<stem>.json / into summary.json."""
        methods: dict[str, Any] = {}
        for name, row in self.table.iterrows():
            entry: dict[str, Any] = {HEADLINE: row[HEADLINE], "interval": [row[HEADLINE + "_lo"], row[HEADLINE + "_hi"]]}
            for m in PROGRESS_METRICS:
                if m != HEADLINE:
                    entry[m] = {"value": row[m], "interval": [row[m + "_lo"], row[m + "_hi"]]}
            entry["by_distance"] = {str(k): (None if pd.isna(v) else float(v)) for k, v in self.by_distance[name].items()}
            methods[str(name)] = entry
        return {
            "headline": HEADLINE, "metrics": PROGRESS_METRICS, "interval": "95 % bootstrap, resampling theorems",
            "n_boot": self.n_boot, "n_theorems": self.n_theorems, "n_states": self.n_states, "n_pairs": self.n_pairs,
            "pairs_by_distance": {str(k): int(v) for k, v in self.by_distance["pairs"].items()},
            "best_baseline": self.best_baseline, "delta": self.delta, "delta_interval": list(self.delta_interval),
            "intervals_overlap": self.intervals_overlap, "beats_best_baseline": self.beats_best_baseline,
            "verdict": self.verdict, "comparisons": [c.to_dict() for c in self.comparisons],
            "baseline_directions": "fixed on the training split" if self.directions_from_training else "both directions",
            "methods": methods,
        }


def progress_evaluation(records: pd.DataFrame, energies: np.ndarray, *, baselines: Mapping[str, np.ndarray] | None = None,
                        trivial: Sequence[str] | None = None, unfitted: Mapping[str, np.ndarray] | None = None,
                        n_boot: int = 1000, n_random: int = 100, seed: int = 0) -> ProgressReport:
    """Progress metrics of ``energies`` (aligned with ``records``) on ground-truth path states, next to
    every baseline, with 95 % bootstrap intervals resampled by theorem. Lower energy = closer to QED.

    ``baselines``: name -> energies aligned with ``records`` (``FittedBaselines.energies``: directions and
    models fitted on the training split), ``trivial`` naming the ones the verdict compares with (random is
    always trivial). Without them, every structural feature in both directions (all trivial). ``unfitted``:
    more rules with nothing fitted (the position cue, ``baselines.POSITION``), compared with one by one."""
    keep = ground_truth_mask(records)
    gt = records.loc[keep]
    if gt.empty:
        raise ValueError("no ground-truth path states (label positive, remaining_depth >= 0) to evaluate on")
    codes = pd.factorize(gt["theorem_name"])[0]
    depth = gt["depth_from_root"].to_numpy(np.int64)
    order = np.argsort(codes, kind="stable")
    starts = np.flatnonzero(np.r_[True, codes[order][1:] != codes[order][:-1]])
    groups = [(idx, depth[idx]) for idx in np.split(order, starts[1:])]
    rng = np.random.default_rng(seed)
    methods: dict[str, np.ndarray] = {MODEL: np.asarray(energies, np.float64)[keep][None, :]}
    if baselines is None:
        given = both_directions(gt["state_pp"].tolist())
        trivial_names = set(given)
    else:
        given = {k: np.asarray(v, np.float64)[keep] for k, v in baselines.items()}
        trivial_names = set(trivial if trivial is not None else given)
    given.update({k: np.asarray(v, np.float64)[keep] for k, v in (unfitted or {}).items()})
    methods.update({k: v[None, :] for k, v in given.items()})
    methods[RANDOM] = rng.random((n_random, len(gt)))
    trivial_names.add(RANDOM)
    stats = {name: _theorem_stats(groups, e) for name, e in methods.items()}
    T = len(groups)
    weights = theorem_bootstrap_weights(T, n_boot, rng)
    ones = np.ones((1, T))
    rows, boot = [], {}
    for name, s in stats.items():
        point, boot[name] = _metrics(s, ones), _metrics(s, weights)
        row: dict[str, Any] = {"method": name}
        for m in PROGRESS_METRICS:
            row[m] = float(point[m][0])
            row[m + "_lo"], row[m + "_hi"] = percentile_interval(boot[name][m])
        rows.append(row)
    table = pd.DataFrame(rows).set_index("method")
    labels = [label for _, _, label in DISTANCE_BINS]
    by_distance = pd.DataFrame({name: _ratio(s.dist_correct.sum(axis=0), s.dist_total.sum(axis=0)) for name, s in stats.items()},
                               index=pd.Index(labels, name="distance"))
    by_distance["pairs"] = stats[MODEL].dist_total.sum(axis=0).astype(np.int64)
    rivals = table.loc[[n for n in table.index if n in trivial_names], HEADLINE]
    best = str(rivals.idxmax()) if rivals.notna().any() else RANDOM
    m = table.loc[MODEL]

    def compare(name: str) -> Comparison:
        b = table.loc[name]
        return Comparison(name, float(m[HEADLINE] - b[HEADLINE]), percentile_interval(boot[MODEL][HEADLINE] - boot[name][HEADLINE]),
                          float((boot[MODEL][HEADLINE] > boot[name][HEADLINE]).mean()),
                          bool(m[HEADLINE + "_lo"] <= b[HEADLINE + "_hi"] and b[HEADLINE + "_lo"] <= m[HEADLINE + "_hi"]))

    comparisons = tuple(compare(str(n)) for n in table.index if n != MODEL)
    top = next(c for c in comparisons if c.baseline == best)
    delta, delta_interval, overlap = top.delta, top.delta_interval, top.intervals_overlap
    beats = bool(delta > 0 and not overlap)
    fitted = [c for c in comparisons if c.baseline not in trivial_names]
    n_pairs = int(stats[MODEL].total.sum())
    n_theorems = int((stats[MODEL].total > 0).sum())
    b = table.loc[best]
    verdict = (
        f"Per-theorem progress accuracy on {n_theorems} held-out theorems ({n_pairs} within-proof pairs): "
        f"model {m[HEADLINE]:.3f} [{m[HEADLINE + '_lo']:.3f}, {m[HEADLINE + '_hi']:.3f}] vs best trivial baseline "
        f"'{best}' {b[HEADLINE]:.3f} [{b[HEADLINE + '_lo']:.3f}, {b[HEADLINE + '_hi']:.3f}]: {100 * delta:+.1f} points "
        f"(paired 95 % interval {100 * delta_interval[0]:+.1f} to {100 * delta_interval[1]:+.1f}); the intervals "
        + ("do not overlap" if not overlap else "overlap") + " -- the model "
        + ("BEATS the best trivial baseline." if beats else
           "is above the best trivial baseline, but not clearly (overlapping intervals)." if delta > 0 else
           "does NOT beat the best trivial baseline.")
        + "".join(f" Against '{c.baseline}' ({'nothing fitted' if c.baseline in (unfitted or {}) else 'fitted on training data'}) "
                  f"{table.loc[c.baseline, HEADLINE]:.3f}: "
                  f"{100 * c.delta:+.1f} points, " + ("BEATEN." if c.delta > 0 and not c.intervals_overlap else
                                                      "not beaten." if c.delta <= 0 else "not clearly (overlap).")
                  for c in fitted)
    )
    return ProgressReport(table, by_distance, n_theorems, len(gt), n_pairs, n_boot, best, delta, delta_interval,
                          overlap, beats, verdict, comparisons, baselines is not None)


# -- mined siblings -------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class SiblingReport:
    summary: pd.DataFrame  # rows: energy / llm_log_prob / random; columns: rank1, pairwise_acc, auroc
    by_depth: pd.DataFrame  # per depth_from_root of the children: groups, rank1_* , pairwise_*
    n_groups: int
    verdict: str


def sibling_report(records: pd.DataFrame, energies: np.ndarray) -> SiblingReport:
    """Rank-1 among siblings (children of one parent holding >= 1 positive and >= 1 negative)."""
    df = pd.DataFrame({
        "theorem": records["theorem_name"].to_numpy(),
        "parent": records["parent_state_id"].to_numpy(),
        "label": records["label"].to_numpy(),
        "depth": records["depth_from_root"].fillna(-1).to_numpy(np.int64) if "depth_from_root" in records else -1,
        "energy": np.asarray(energies, np.float64),
        "llm": records["llm_log_prob"].to_numpy(np.float64) if "llm_log_prob" in records else np.nan,
    })
    policy = "llm log-prob"
    if "score_kind" in records.columns and records["score_kind"].notna().any():
        kinds = records["score_kind"].fillna("none").to_numpy()
        df.loc[kinds == "none", "llm"] = np.nan  # no policy score recorded
        seen = sorted(set(kinds) - {"none"})
        if seen and seen != ["logprob"]:
            policy = f"policy score ({'/'.join(seen)})"  # e.g. the retrieval policy's similarity
    mined = ~made_up_mask(records)  # made-up no-progress siblings are ebm.checks' business, not mined ones
    df = df[df["label"].isin(["positive", "negative"]) & df["parent"].notna() & mined]
    per_group = []
    for (_, _), g in df.groupby(["theorem", "parent"], sort=False):
        is_pos = (g["label"] == "positive").to_numpy()
        if is_pos.all() or not is_pos.any():
            continue
        e, llm = g["energy"].to_numpy(), g["llm"].to_numpy()
        diff_e = e[~is_pos][None, :] - e[is_pos][:, None]  # > 0: positive below negative
        row = {
            "depth": int(g["depth"].iloc[0]),
            "rank1_energy": float(is_pos[np.argmin(e)]),
            "rank1_random": float(is_pos.mean()),
            "pairwise_energy": float(((diff_e > 0) + 0.5 * (diff_e == 0)).mean()),
        }
        scored = np.isfinite(llm)  # the ground-truth child has no policy score: rank what the policy proposed
        if scored.any() and is_pos[scored].any() and not is_pos[scored].all():
            ls, ps = llm[scored], is_pos[scored]
            diff_l = ls[ps][:, None] - ls[~ps][None, :]  # > 0: positive more likely
            row["rank1_llm"] = float(ps[np.argmax(ls)])
            row["pairwise_llm"] = float(((diff_l > 0) + 0.5 * (diff_l == 0)).mean())
        else:
            row["rank1_llm"] = row["pairwise_llm"] = float("nan")
        per_group.append(row)
    groups = pd.DataFrame(per_group, columns=["depth", "rank1_energy", "rank1_llm", "rank1_random", "pairwise_energy", "pairwise_llm"])
    pos, neg = df["label"] == "positive", df["label"] == "negative"
    summary = pd.DataFrame({
        "rank1": [groups["rank1_energy"].mean(), groups["rank1_llm"].mean(), groups["rank1_random"].mean()],
        "pairwise_acc": [groups["pairwise_energy"].mean(), groups["pairwise_llm"].mean(), 0.5],
        "auroc": [auroc(-df.loc[pos, "energy"], -df.loc[neg, "energy"]), auroc(df.loc[pos, "llm"].dropna(), df.loc[neg, "llm"].dropna()), 0.5],
    }, index=pd.Index(["energy (model)", policy, "random"], name="method"))
    by_depth = groups.groupby("depth").agg(
        groups=("rank1_energy", "size"), rank1_energy=("rank1_energy", "mean"), rank1_llm=("rank1_llm", "mean"),
        rank1_random=("rank1_random", "mean"), pairwise_energy=("pairwise_energy", "mean"), pairwise_llm=("pairwise_llm", "mean"),
    )
    if groups.empty:
        verdict = "No sibling group holds both a positive and a negative: rank-1 among siblings cannot be measured."
    else:
        r = summary["rank1"]
        rivals = r.drop(index="energy (model)").dropna()
        best = str(rivals.idxmax())
        beats = r["energy (model)"] > rivals.max()
        verdict = (
            f"Rank-1 among siblings over {len(groups)} groups: model {r['energy (model)']:.3f}, "
            f"{policy} {r[policy]:.3f}, random {r['random']:.3f} -- the model "
            + ("BEATS" if beats else "does NOT beat") + f" the best alternative ('{best}')."
        )
    return SiblingReport(summary, by_depth, len(groups), verdict)
