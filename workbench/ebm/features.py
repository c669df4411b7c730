"""Structural features of a proof state, computed from its canonical text. Pure functions.

They serve twice: as trivial baselines in the evaluation (each in both directions) and, optionally,
as extra inputs appended to the embedding (standardised with training statistics that are stored in
the checkpoint, see ``EnergyHead``), so the head can use both the text and the counts.

  state_length    characters of the whole state
  hypotheses      hypothesis names over all goals (``a b : ℕ`` counts 2)
  goals           open goals
  target_length   characters of the main (first) goal's target
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import lru_cache

import numpy as np

from workbench.states import TURNSTILE, Goal, parse_state


def _hypotheses(goals: tuple[Goal, ...], text: str) -> float:
    return float(sum(len(g.hypotheses) for g in goals))


def _target_length(goals: tuple[Goal, ...], text: str) -> float:
    return float(len(goals[0].target)) if goals else 0.0


FEATURES: dict[str, Callable[[tuple[Goal, ...], str], float]] = {
    "state_length": lambda goals, text: float(len(text)),
    "hypotheses": _hypotheses,
    "goals": lambda goals, text: float(len(goals)),
    "target_length": _target_length,
}
FEATURE_NAMES: tuple[str, ...] = tuple(FEATURES)


def _parse(text: str) -> tuple[Goal, ...]:
    try:
        return parse_state(text)
    except ValueError:  # not a Lean goal list: one pseudo-goal per turnstile, no hypotheses
        return tuple(Goal(target=part) for part in text.split(TURNSTILE)[1:])


def check_feature_names(names: Sequence[str]) -> tuple[str, ...]:
    unknown = [n for n in names if n not in FEATURES]
    if unknown:
        raise ValueError(f"unknown structural feature(s) {unknown}; known: {list(FEATURE_NAMES)}")
    return tuple(names)


@lru_cache(maxsize=1 << 17)
def _feature_row(text: str) -> tuple[float, ...]:
    """Every feature of one text. Kept: one train-ebm run asks for the same states' features in training,
    each evaluation and each baseline (73,017 parses in a shared val->test run), and a row is a few floats
    beside a text the run holds anyway (bench/score_again.py)."""
    goals = _parse(text)
    return tuple(FEATURES[name](goals, text) for name in FEATURE_NAMES)


def state_features(texts: Sequence[str], names: Sequence[str] = FEATURE_NAMES) -> np.ndarray:
    """[len(texts), len(names)] float32 feature matrix (raw counts; the model standardises them)."""
    names = check_feature_names(names)
    columns = [FEATURE_NAMES.index(n) for n in names]
    out = np.empty((len(texts), len(names)), np.float32)
    for i, text in enumerate(texts):
        row = _feature_row(text)
        out[i] = [row[j] for j in columns]
    return out


def with_features(embeddings: np.ndarray, texts: Sequence[str], names: Sequence[str]) -> np.ndarray:
    """The head's input: embeddings [n, d] with log1p of the named features appended -> [n, d + len(names)].

    log1p because lengths are heavy-tailed (a few states run to thousands of characters) and the
    head standardises each input column; it is monotone, so it changes no ordering.
    """
    emb = np.asarray(embeddings, np.float32)
    if not names:
        return emb
    if emb.shape[0] != len(texts):
        raise ValueError(f"{emb.shape[0]} embeddings for {len(texts)} state texts")
    return np.concatenate([emb, np.log1p(state_features(texts, names))], axis=1)


__all__ = ["FEATURES", "FEATURE_NAMES", "check_feature_names", "state_features", "with_features"]
