"""Baselines fitted on the training split only, scored beside the model in every table.

  trivial   each structural feature (``workbench.ebm.features``: state length, hypotheses, goals, target
            length) as an energy, in the one direction that orders the *training* progress pairs better
            (never chosen on the evaluation data);
  fitted    pairwise logistic models (RankNet's linear twin: P(a closer than b) = sigmoid(w . (x_a - x_b)))
            on the same training pairs the head sees (later vs earlier state of a proof; a positive vs the
            negatives that share its parent, perturbation siblings included): on log1p structural
            features, and on TF-IDF character n-grams (regularisation chosen by 5-fold cross-validation
            grouped by theorem).

  position  the distance of a state from its theorem's first state (``position_energies``, nothing fitted):
            farther = closer to QED. It reads where in its proof a state is, not what the state says, so it
            shows how much of a check position alone explains (docs/EBM_REAL.md).

A model that does not beat them is reported as such.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from workbench.ebm.features import FEATURE_NAMES, state_features
from workbench.ebm.records import ground_truth_mask
from workbench.states import collapse

if TYPE_CHECKING:
    from workbench.encode.cache import EmbeddingTable

log = logging.getLogger(__name__)

FEATURE_WORDS = {"state_length": ("state length", "shorter", "longer"), "hypotheses": ("hypotheses", "fewer", "more"),
                 "goals": ("goals", "fewer", "more"), "target_length": ("goal-target length", "shorter", "longer")}
STRUCTURAL_LOGISTIC = "pairwise logistic: structural features"
TFIDF_LOGISTIC = "pairwise logistic: TF-IDF char n-grams"
TFIDF_CS = (0.1, 1.0, 10.0)
POSITION = "position: distance from the theorem's first state"


def feature_baseline_name(feature: str, lower_is_closer: bool) -> str:
    what, low, high = FEATURE_WORDS[feature]
    return f"{what}: {low if lower_is_closer else high} = closer"


def both_directions(texts: Sequence[str]) -> dict[str, np.ndarray]:
    """Each structural feature as an energy in both directions (no training data to fix one)."""
    feats = state_features(texts, FEATURE_NAMES).astype(np.float64)
    out: dict[str, np.ndarray] = {}
    for j, name in enumerate(FEATURE_NAMES):
        out[feature_baseline_name(name, True)] = feats[:, j]
        out[feature_baseline_name(name, False)] = -feats[:, j]
    return out


def first_states(records: pd.DataFrame) -> dict[str, str]:
    """Each theorem's first ground-truth state (its lowest ``depth_from_root``): where its proof starts."""
    gt = records.loc[ground_truth_mask(records)]
    return gt.sort_values("depth_from_root", kind="stable").groupby("theorem_name", sort=False)["state_pp"].first().to_dict()


def position_energies(texts: Sequence[str], theorems: Sequence[str], first: Mapping[str, str], *,
                      table: EmbeddingTable | None = None) -> np.ndarray:
    """Energy (lower = closer to QED) of each text as a state of its theorem: minus its cosine distance from the
    theorem's first state, both as the default encoder's hashed n-grams (plain template). 0 where the theorem
    has no first state. Nothing is fitted: a proof's states move away from where it started. ``table``: an
    embedding table (``read_embeddings``) to take the vectors from when it holds exactly these (the default
    ``--encode hashed`` run's cache does; the n-gram analysis is most of the cost)."""
    from workbench.encode.hashed import HashedEncoder
    from workbench.encode.text import PLAIN_TEMPLATE

    texts, theorems = list(texts), list(theorems)
    if len(texts) != len(theorems):
        raise ValueError(f"{len(texts)} texts for {len(theorems)} theorems")
    out = np.zeros(len(texts))
    known = np.array([t in first for t in theorems], bool)
    if not known.any():
        return out
    encoder = HashedEncoder(template=PLAIN_TEMPLATE)

    def vectors(xs: list[str]) -> np.ndarray:
        if table is not None and table.identity == encoder.identity:
            found, missing = table.lookup(xs)
            if not missing:
                return found
        return encoder.encode_sync(xs)

    names = sorted({t for t, k in zip(theorems, known) if k})
    roots = dict(zip(names, vectors([first[n] for n in names])))
    idx = np.flatnonzero(known)
    rows = vectors([texts[i] for i in idx])
    out[idx] = -(1.0 - np.einsum("ij,ij->i", rows, np.stack([roots[theorems[i]] for i in idx])))
    return out


def training_pairs(records: pd.DataFrame) -> pd.DataFrame:
    """(better, worse, theorem) record positions of the ranking judgements in ``records``.

    progress: two ground-truth states of one proof (``records.ground_truth_mask``), the later one better;
    siblings: a positive and a negative with the same (theorem, parent), the positive better (``sibling_pairs``).
    """
    r = records.reset_index(drop=True)
    depth = r["remaining_depth"].fillna(-1).to_numpy(np.int64)
    out: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
    on_path = np.flatnonzero(ground_truth_mask(r))
    for name, idx in r.iloc[on_path].groupby("theorem_name", sort=False).indices.items():
        members = on_path[idx]
        d = depth[members]
        later = d[None, :] < d[:, None]  # [i, j]: j is closer to QED than i
        i, j = np.nonzero(later)
        out.append((members[j], members[i], np.full(i.size, name, object)))
    return pd.concat([_pair_frame(out), sibling_pairs(r)], ignore_index=True)


def sibling_pairs(records: pd.DataFrame, keep: np.ndarray | None = None) -> pd.DataFrame:
    """(better, worse, theorem) record positions of every (positive, negative) pair of children of one parent,
    among the records in ``keep`` (all by default)."""
    r = records.reset_index(drop=True)
    label = r["label"].astype(str).to_numpy()
    mask = r["parent_state_id"].notna().to_numpy() & np.isin(label, ["positive", "negative"])
    sub = r.loc[mask if keep is None else mask & keep]
    out: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
    for (name, _), g in sub.groupby([sub["theorem_name"], sub["parent_state_id"].astype("int64")], sort=False):
        pos = g.index[g["label"] == "positive"].to_numpy()
        neg = g.index[g["label"] == "negative"].to_numpy()
        if pos.size and neg.size:
            b, w = np.repeat(pos, neg.size), np.tile(neg, pos.size)
            out.append((b, w, np.full(b.size, name, object)))
    return _pair_frame(out)


def _pair_frame(parts: list[tuple[np.ndarray, np.ndarray, np.ndarray]]) -> pd.DataFrame:
    if not parts:
        return pd.DataFrame({"better": np.empty(0, np.int64), "worse": np.empty(0, np.int64), "theorem": np.empty(0, object)})
    better, worse, theorem = (np.concatenate(x) for x in zip(*parts))
    return pd.DataFrame({"better": better.astype(np.int64), "worse": worse.astype(np.int64), "theorem": theorem})


def pair_weights(theorems: np.ndarray) -> np.ndarray:
    """Each theorem weighs the same (the metrics average over theorems), normalised to mean 1."""
    _, inverse, counts = np.unique(theorems, return_inverse=True, return_counts=True)
    w = 1.0 / counts[inverse]
    return w * (w.size / w.sum())


@dataclass
class FittedBaselines:
    directions: dict[str, bool]  # feature -> lower value = closer (chosen on the training progress pairs)
    training_accuracy: dict[str, float]  # feature -> its progress-pair accuracy in the chosen direction
    structural: Any = None  # (mean, std, LogisticRegression) on log1p features
    tfidf: Any = None  # (TfidfVectorizer, LogisticRegression)
    tfidf_c: float | None = None
    n_pairs: int = 0
    n_theorems: int = 0
    notes: list[str] = field(default_factory=list)
    # text -> TF-IDF energy: each evaluation scores states an earlier one scored (sklearn's n-gram analysis is
    # most of a baseline's cost), and the energy of a text under a fitted model never changes
    _tfidf_seen: dict[str, float] = field(default_factory=dict, repr=False)

    @property
    def trivial_names(self) -> list[str]:
        return [feature_baseline_name(f, low) for f, low in self.directions.items()]

    def energies(self, texts: Sequence[str]) -> dict[str, np.ndarray]:
        """Baseline name -> energies [len(texts)] (lower = closer to QED)."""
        texts = list(texts)
        feats = state_features(texts, FEATURE_NAMES).astype(np.float64)
        out = {feature_baseline_name(f, low): (1.0 if low else -1.0) * feats[:, FEATURE_NAMES.index(f)]
               for f, low in self.directions.items()}
        if self.structural is not None:
            mean, std, clf = self.structural
            out[STRUCTURAL_LOGISTIC] = -(((np.log1p(feats) - mean) / std) @ clf.coef_.ravel())
        if self.tfidf is not None:
            out[TFIDF_LOGISTIC] = self._tfidf_energies(texts)
        return out

    def _tfidf_energies(self, texts: list[str]) -> np.ndarray:
        vec, clf = self.tfidf
        new = list(dict.fromkeys(t for t in texts if t not in self._tfidf_seen))
        if new:
            self._tfidf_seen.update(zip(new, (-np.asarray(vec.transform(new) @ clf.coef_.ravel()).ravel()).tolist()))
        return np.array([self._tfidf_seen[t] for t in texts], np.float64)

    def describe(self) -> dict[str, Any]:
        return {"directions": {f: ("lower" if low else "higher") + " = closer" for f, low in self.directions.items()},
                "training_progress_accuracy": self.training_accuracy, "tfidf_C": self.tfidf_c,
                "fitted_on": f"{self.n_pairs} training pairs of {self.n_theorems} theorems", "notes": self.notes}


def fit_baselines(records: pd.DataFrame, *, tfidf: bool = True) -> FittedBaselines:
    """Fit every baseline on training records (ground-truth paths, plus any negatives with parents)."""
    from sklearn.linear_model import LogisticRegression

    r = records.reset_index(drop=True)
    texts = r["state_pp"].astype(str).tolist()
    pairs = training_pairs(r)
    if pairs.empty:
        raise ValueError("no training pairs (two states of one proof, or a positive and a negative sibling) "
                         "to fit the baselines on")
    feats = state_features(texts, FEATURE_NAMES).astype(np.float64)
    b, w = pairs["better"].to_numpy(), pairs["worse"].to_numpy()
    weight = pair_weights(pairs["theorem"].to_numpy())
    depth = r["remaining_depth"].fillna(-1).to_numpy()
    progress = (depth[b] >= 0) & (depth[w] >= 0)  # directions: progress pairs only (the headline's pairs)
    directions, accuracy = {}, {}
    for j, name in enumerate(FEATURE_NAMES):
        d = feats[w, j] - feats[b, j]  # > 0: the better state has the lower value
        wins = ((d > 0) + 0.5 * (d == 0))[progress]
        acc = float(np.average(wins, weights=weight[progress])) if progress.any() else 0.5
        directions[name] = acc >= 0.5
        accuracy[name] = acc if acc >= 0.5 else 1.0 - acc
    fitted = FittedBaselines(directions, accuracy, n_pairs=len(pairs), n_theorems=int(pairs["theorem"].nunique()))
    x = np.log1p(feats)
    mean, std = x.mean(axis=0), x.std(axis=0) + 1e-9
    z = (x - mean) / std
    diff = np.concatenate([z[b] - z[w], z[w] - z[b]])
    y = np.r_[np.ones(len(b)), np.zeros(len(b))]
    sw = np.r_[weight, weight]
    fitted.structural = (mean, std, LogisticRegression(fit_intercept=False, max_iter=1000).fit(diff, y, sample_weight=sw))
    if tfidf:
        fitted.tfidf, fitted.tfidf_c = _fit_tfidf(texts, b, w, pairs["theorem"].to_numpy(), weight)
    return fitted


def _fit_tfidf(texts: list[str], b: np.ndarray, w: np.ndarray, theorems: np.ndarray,
               weight: np.ndarray) -> tuple[tuple[Any, Any], float]:
    """Deterministic: grouped folds by theorem (no shuffling), a convex loss."""
    import scipy.sparse as sp
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import GroupKFold

    vec = TfidfVectorizer(analyzer="char", ngram_range=(1, 4), sublinear_tf=True, min_df=2, lowercase=False,
                          preprocessor=collapse, dtype=np.float32)
    x = vec.fit_transform(texts)
    diff = sp.vstack([x[b] - x[w], x[w] - x[b]]).tocsr()
    y = np.r_[np.ones(len(b)), np.zeros(len(b))]
    sw, groups = np.r_[weight, weight], np.r_[theorems, theorems]
    folds = min(5, len(set(theorems)))
    best_c, best = TFIDF_CS[len(TFIDF_CS) // 2], -1.0
    if folds >= 2:
        for c in TFIDF_CS:
            scores = []
            for tr, te in GroupKFold(n_splits=folds).split(diff, y, groups):
                clf = LogisticRegression(C=c, fit_intercept=False, max_iter=2000).fit(diff[tr], y[tr], sample_weight=sw[tr])
                scores.append(float(np.average(clf.predict(diff[te]) == y[te], weights=sw[te])))
            if np.mean(scores) > best:
                best_c, best = c, float(np.mean(scores))
    clf = LogisticRegression(C=best_c, fit_intercept=False, max_iter=2000).fit(diff, y, sample_weight=sw)
    log.info("TF-IDF pairwise logistic: C=%s (grouped %d-fold accuracy %.3f), %d n-grams", best_c, folds, best,
             len(vec.vocabulary_))
    return (vec, clf), best_c


__all__ = ["FittedBaselines", "POSITION", "STRUCTURAL_LOGISTIC", "TFIDF_LOGISTIC", "both_directions",
           "feature_baseline_name", "first_states", "fit_baselines", "position_energies", "training_pairs"]
