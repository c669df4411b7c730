"""Contrastive metrics and health checks on (positive, k negatives) energies. Pure numpy."""

from __future__ import annotations

import logging
import math

import numpy as np
from scipy.stats import rankdata

log = logging.getLogger(__name__)

# Below this energy standard deviation the head outputs (almost) one constant: it has collapsed.
COLLAPSE_STD = 1e-4


def auroc(pos_scores: np.ndarray, neg_scores: np.ndarray) -> float:
    """P(score of a random positive > score of a random negative), ties counted half.

    Mann-Whitney U from average ranks: O(n log n), no sklearn needed. NaN when a side is empty.
    """
    pos = np.asarray(pos_scores, dtype=np.float64).ravel()
    neg = np.asarray(neg_scores, dtype=np.float64).ravel()
    if pos.size == 0 or neg.size == 0:
        return float("nan")
    ranks = rankdata(np.concatenate([pos, neg]))
    u = ranks[: pos.size].sum() - pos.size * (pos.size + 1) / 2.0
    return float(u / (pos.size * neg.size))


def contrastive_metrics(e_pos: np.ndarray, e_neg: np.ndarray) -> dict[str, float]:
    """e_pos: [N], e_neg: [N, k] energies (lower = more provable).

    energy_gap: mean(neg) - mean(pos), positive when the polarity is right.
    rank_acc: positive strictly below all its k negatives.
    pairwise_acc: positive below each of its negatives, averaged over the N*k pairs (ties half).
    auroc: all positives against all negatives of the set, on score = -energy.
    """
    e_pos = np.asarray(e_pos, dtype=np.float64)
    e_neg = np.asarray(e_neg, dtype=np.float64)
    if e_neg.ndim != 2 or e_neg.shape[0] != e_pos.shape[0]:
        raise ValueError(f"expected e_pos [N] and e_neg [N, k], got {e_pos.shape} and {e_neg.shape}")
    diff = e_neg - e_pos[:, None]  # > 0 where the positive wins
    all_e = np.concatenate([e_pos, e_neg.ravel()])
    return {
        "energy_gap": float(e_neg.mean() - e_pos.mean()),
        "rank_acc": float((diff > 0).all(axis=1).mean()),
        "pairwise_acc": float(((diff > 0) + 0.5 * (diff == 0)).mean()),
        "auroc": auroc(-e_pos, -e_neg),
        "energy_mean_pos": float(e_pos.mean()),
        "energy_mean_neg": float(e_neg.mean()),
        "energy_std": float(all_e.std()),
    }


def health_warnings(metrics: dict[str, float], *, step: int, warmup_steps: int = 0) -> list[str]:
    """Plain-language warnings: NaN, collapse, inverted polarity (the last only after warmup)."""
    warnings: list[str] = []
    if any(isinstance(v, float) and math.isnan(v) for k, v in metrics.items() if k != "auroc"):
        bad = sorted(k for k, v in metrics.items() if isinstance(v, float) and math.isnan(v))
        warnings.append(f"step {step}: NaN in {', '.join(bad)}; training has diverged")
    std = metrics.get("energy_std", float("nan"))
    if not math.isnan(std) and std < COLLAPSE_STD:
        warnings.append(
            f"step {step}: energy std {std:.2e} < {COLLAPSE_STD:.0e}: the head outputs one constant (collapse)"
        )
    gap = metrics.get("energy_gap", float("nan"))
    if step > warmup_steps and not math.isnan(gap) and gap < 0:
        warnings.append(
            f"step {step}: inverted polarity: negatives have lower energy than positives "
            f"(gap {gap:.4f}); lower energy must mean more provable"
        )
    for w in warnings:
        log.warning(w)
    return warnings


# -- bootstrap by theorem (the evaluations and the sibling checks share it) ---------------------------
def theorem_bootstrap_weights(n_theorems: int, n_boot: int, rng: np.random.Generator) -> np.ndarray:
    """[n_boot, n_theorems] resampling counts of theorems; one draw shared by every method, so comparisons
    between methods are paired."""
    return rng.multinomial(n_theorems, np.full(n_theorems, 1.0 / n_theorems), size=n_boot).astype(np.float64)


def percentile_interval(samples: np.ndarray) -> tuple[float, float]:
    """The 95 % percentile interval of the finite bootstrap samples (NaN, NaN when none is finite)."""
    finite = samples[np.isfinite(samples)]
    if finite.size == 0:
        return float("nan"), float("nan")
    lo, hi = np.percentile(finite, [2.5, 97.5])
    return float(lo), float(hi)
