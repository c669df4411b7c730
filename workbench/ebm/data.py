"""Contrastive data: trajectory records joined to an embedding table, split by theorem, sampled
into (1 positive, k negatives) groups of embedding-row indices.

Negative tiers, for a positive p of theorem T with parent state P:
  hard   = negatives of T whose parent is P (siblings: the other tactics tried at the same state)
  medium = the other negatives of T (plus, with progress_negatives, the earlier states of T's proof)
  easy   = negatives of other theorems (``easy_source="negatives"``), any state of another theorem
           (``"any"``), or nothing (``"none"``)
A tier that is short hands its deficit to the next one (hard -> medium -> easy); what is still short
is drawn again, with replacement, from the positive's own pools, so every group has exactly k
negatives. With traces only (no labelled negatives) "auto" means "none": the other theorems' states
are *correct* proof states, often closer to QED than the positive, so they are never negatives there;
positives with no negative of their own (the first state of a proof) are then not sampled.

Pure numpy/pandas; the trainer gathers the rows from the embedding matrix.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol

import numpy as np
import pandas as pd

from workbench.ebm.perturb import RECORD_KIND_PREFIX as PERTURBATION_RECORD
from workbench.ebm.perturb import check_kinds, perturb
from workbench.ebm.records import ground_truth_mask, made_up_mask
from workbench.traces import held_out_names

log = logging.getLogger(__name__)

HARD, MEDIUM, EASY = 0, 1, 2
TIER_NAMES = ("hard", "medium", "easy")
REQUIRED_COLUMNS = ("theorem_name", "state_id", "parent_state_id", "state_pp", "label", "remaining_depth")
EasySource = Literal["auto", "negatives", "any", "none"]


class EmbeddingSource(Protocol):
    """What the sampler needs from ``workbench.encode.EmbeddingTable``."""

    states: Sequence[str]  # state_pp keys, one per row of matrix
    matrix: np.ndarray  # float32 [n, d]


@dataclass(frozen=True, slots=True)
class SamplerConfig:
    k_negatives: int = 7
    hard_ratio: float = 0.5  # share of k drawn from siblings
    medium_ratio: float = 0.3  # share drawn from the same theorem
    easy_ratio: float = 0.2  # share drawn from other theorems (also absorbs every deficit)
    # "negatives": easy negatives are negative records of other theorems; "any": any state of another
    # theorem; "none": no easy tier; "auto": "negatives" if there are labelled negatives, else "none".
    easy_source: EasySource = "auto"
    # Also count the earlier states of the same proof (positives with a larger known remaining depth)
    # as medium negatives: a state closer to QED must get lower energy. The only within-proof signal
    # that traces alone carry.
    progress_negatives: bool = True
    # Draw positives so that every theorem is equally likely (each epoch is a weighted draw of as many
    # positives): otherwise one 45-step proof supplies as many groups as 20 short ones, while the
    # headline metric averages over theorems.
    balance_theorems: bool = False
    # The parent state itself (the proof state the positive's tactic was applied to) is a hard negative of
    # the positive: the parent→child judgement a value model makes in search, every time, not only when the
    # draw from the earlier states happens to pick the parent. On by default: the best on the sibling checks of
    # the shared validation split (issue 25, docs/EBM_REAL.md).
    parent_negatives: bool = True
    seed: int = 0

    def __post_init__(self) -> None:
        if self.k_negatives < 1:
            raise ValueError(f"k_negatives must be >= 1, got {self.k_negatives}")
        ratios = (self.hard_ratio, self.medium_ratio, self.easy_ratio)
        if min(ratios) < 0 or not math.isclose(sum(ratios), 1.0, abs_tol=1e-6):
            raise ValueError(f"tier ratios must be >= 0 and sum to 1, got {ratios}")
        if self.easy_source not in ("auto", "negatives", "any", "none"):
            raise ValueError(f"easy_source must be auto/negatives/any/none, got {self.easy_source!r}")

    def tier_counts(self) -> tuple[int, int, int]:
        """Requested (hard, medium, easy) counts before backfill; they sum to k."""
        k = self.k_negatives
        n_hard = min(k, math.floor(k * self.hard_ratio + 0.5))
        n_medium = min(k - n_hard, math.floor(k * self.medium_ratio + 0.5))
        return n_hard, n_medium, k - n_hard - n_medium


@dataclass(frozen=True, slots=True)
class MissingEmbeddings:
    count: int  # records dropped because their state_pp has no embedding
    distinct_states: int
    examples: tuple[str, ...]  # a few of the missing states, truncated

    def __str__(self) -> str:
        if not self.count:
            return "every state has an embedding"
        ex = "; ".join(repr(s[:80]) for s in self.examples)
        return f"{self.count} records ({self.distinct_states} distinct states) have no embedding, e.g. {ex}"


@dataclass(frozen=True, slots=True)
class ContrastiveBatch:
    pos: np.ndarray  # [B] int64 embedding rows of the positives
    neg: np.ndarray  # [B, k] int64 embedding rows of the negatives
    tier: np.ndarray  # [B, k] int8 HARD / MEDIUM / EASY
    remaining_depth: np.ndarray  # [B] int32, -1 = unknown
    depth_from_root: np.ndarray  # [B] int32, -1 = unknown


def _check_columns(records: pd.DataFrame) -> None:
    missing = [c for c in REQUIRED_COLUMNS if c not in records.columns]
    if missing:
        raise ValueError(
            f"trajectory records lack column(s) {missing}; have {list(records.columns)}"
        )


def attach_embeddings(
    records: pd.DataFrame, table: EmbeddingSource, *, max_examples: int = 5
) -> tuple[pd.DataFrame, MissingEmbeddings]:
    """Add an ``emb_row`` column (row of table.matrix for the record's state_pp).

    Records whose state has no embedding are dropped and reported -- never zero-filled, because a
    zero vector is a real input to the head and would teach it something false.
    """
    _check_columns(records)
    row_of = {s: i for i, s in enumerate(table.states)}
    rows = records["state_pp"].map(row_of)
    missing_mask = rows.isna().to_numpy()
    missing_states = records.loc[missing_mask, "state_pp"]
    distinct = list(dict.fromkeys(missing_states.tolist()))
    report = MissingEmbeddings(
        count=int(missing_mask.sum()),
        distinct_states=len(distinct),
        examples=tuple(distinct[:max_examples]),
    )
    if report.count:
        log.warning("%s", report)
    out = records.loc[~missing_mask].copy()
    out["emb_row"] = rows[~missing_mask].astype(np.int64).to_numpy()
    return out.reset_index(drop=True), report


def split_by_theorem(
    records: pd.DataFrame, val_fraction: float, seed: int
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Train/validation split on theorem names: no theorem has records on both sides. The rule is
    ``workbench.traces.held_out_names``, shared with the trace split (same seed, same theorems held out)."""
    held = held_out_names(records["theorem_name"].unique().tolist(), val_fraction, seed)
    is_val = records["theorem_name"].isin(held).to_numpy()
    return (
        records.loc[~is_val].reset_index(drop=True),
        records.loc[is_val].reset_index(drop=True),
    )


def _parent_key(value: Any) -> int | None:
    return None if value is None or pd.isna(value) else int(value)


class ContrastiveSampler:
    """Seeded sampler of (positive, k negatives) groups from records that carry ``emb_row``.

    Positives are visited in a shuffled order, reshuffled each epoch; the full state (generator,
    order, cursor) is in ``state_dict`` so a resumed run draws exactly what it would have drawn.
    """

    def __init__(self, records: pd.DataFrame, config: SamplerConfig = SamplerConfig()) -> None:
        _check_columns(records)
        if "emb_row" not in records.columns:
            raise ValueError("records need an emb_row column: call attach_embeddings first")
        self.config = config
        labels = records["label"].astype(str).to_numpy()
        theorem_codes, theorem_names = pd.factorize(records["theorem_name"], sort=True)
        self.theorem_names: list[str] = list(theorem_names)
        rows = records["emb_row"].to_numpy(np.int64)
        parents = [_parent_key(v) for v in records["parent_state_id"].tolist()]
        depth = records["remaining_depth"].fillna(-1).to_numpy(np.int64).astype(np.int32)
        from_root = (
            records["depth_from_root"].fillna(-1).to_numpy(np.int64).astype(np.int32)
            if "depth_from_root" in records.columns
            else np.full(len(records), -1, np.int32)
        )

        is_pos = labels == "positive"
        is_neg = labels == "negative"
        # no-progress siblings made from the parent (ebm.perturb) are as provable as that parent: negatives for
        # its children only (hard tier), never for the theorem's other states or other theorems
        is_sibling_only = is_neg & made_up_mask(records)
        self.pos_idx = np.flatnonzero(is_pos)
        if self.pos_idx.size == 0:
            raise ValueError("no positive records to sample from")
        self._rows, self._theorem, self._parents = rows, theorem_codes, parents
        self._depth, self._from_root = depth, from_root

        # negatives grouped by theorem and by (theorem, parent)
        self._neg_by_theorem: dict[int, np.ndarray] = {}
        self._neg_by_parent: dict[tuple[int, int], np.ndarray] = {}
        neg_idx = np.flatnonzero(is_neg)
        by_t: dict[int, list[int]] = {}
        by_p: dict[tuple[int, int], list[int]] = {}
        for i in neg_idx.tolist():
            t = int(theorem_codes[i])
            if not is_sibling_only[i]:
                by_t.setdefault(t, []).append(i)
            if parents[i] is not None:
                by_p.setdefault((t, parents[i]), []).append(i)
        self._neg_by_theorem = {t: np.array(v, np.int64) for t, v in by_t.items()}
        self._neg_by_parent = {key: np.array(v, np.int64) for key, v in by_p.items()}

        mined_neg = np.flatnonzero(is_neg & ~is_sibling_only)
        source = config.easy_source
        if source == "auto":
            source = "negatives" if mined_neg.size else "none"
        self.easy_source: str = source
        self.has_labelled_negatives = bool(mined_neg.size)
        self.perturbation_negatives = int(is_sibling_only.sum())
        self._easy_pool = {"negatives": mined_neg, "any": np.flatnonzero(~is_sibling_only),
                           "none": np.empty(0, np.int64)}[source]
        if np.unique(theorem_codes[self._easy_pool]).size < 2 and self._easy_pool.size:
            log.warning("easy negatives need at least two theorems; only hard/medium are available")
        self._earlier: dict[int, tuple[np.ndarray, np.ndarray]] = {}  # theorem -> (records, remaining depth)
        if config.progress_negatives:
            on_path = np.flatnonzero(is_pos & (depth >= 0))
            on_path = on_path[np.argsort(theorem_codes[on_path], kind="stable")]  # group by theorem
            codes = theorem_codes[on_path]
            starts = np.flatnonzero(np.r_[True, codes[1:] != codes[:-1]])
            for members in np.split(on_path, starts[1:]):
                if members.size:
                    self._earlier[int(theorem_codes[members[0]])] = (members, depth[members])
        ids = records["state_id"].to_numpy()
        self._path_record = {(int(theorem_codes[i]), int(ids[i])): int(i) for i in np.flatnonzero(is_pos & (depth >= 0))}
        self._pools_cache: dict[tuple[int, int | None, int], tuple[np.ndarray, np.ndarray]] = {}
        if not self._easy_pool.size:  # no easy tier: a positive needs a negative of its own
            has_own = np.array([self._has_own_negative(int(i)) for i in self.pos_idx], bool)
            self.skipped_positives = int((~has_own).sum())
            self.pos_idx = self.pos_idx[has_own]
            if self.pos_idx.size == 0:
                raise ValueError("no positive has a negative of its own (sibling, same-theorem negative or "
                                 "earlier state of its proof), and easy negatives are off")
            if self.skipped_positives:
                log.info("%d positives have no negative of their own and are not sampled", self.skipped_positives)
        else:
            self.skipped_positives = 0

        self._rng = np.random.default_rng(config.seed)
        self._weights: np.ndarray | None = None
        if config.balance_theorems:
            per_theorem = np.bincount(self._theorem[self.pos_idx])
            w = 1.0 / per_theorem[self._theorem[self.pos_idx]]
            self._weights = w / w.sum()
        self._order = self._epoch_order()
        self._cursor = 0
        self.epoch = 0

    # -- pools ----------------------------------------------------------------------------------
    def _pools(self, t: int, parent: int | None, own_depth: int) -> tuple[np.ndarray, np.ndarray]:
        key = (t, parent, own_depth if self._earlier else -1)
        if key not in self._pools_cache:
            empty = np.empty(0, np.int64)
            hard = self._neg_by_parent.get((t, parent), empty) if parent is not None else empty
            own_parent = self._path_record.get((t, parent), -1) if parent is not None and self.config.parent_negatives else -1
            if own_parent >= 0 and self._depth[own_parent] > own_depth >= 0:
                hard = np.concatenate([hard, [own_parent]])
            medium = self._neg_by_theorem.get(t, empty)
            if t in self._earlier and own_depth >= 0:
                members, rd = self._earlier[t]
                medium = np.concatenate([medium, members[rd > own_depth]])
            medium = np.setdiff1d(medium, hard, assume_unique=True)  # the parent, a hard negative, is not drawn twice
            self._pools_cache[key] = (hard, medium)
        return self._pools_cache[key]

    def _epoch_order(self) -> np.ndarray:
        if self._weights is None:
            return self._rng.permutation(self.pos_idx)
        return self._rng.choice(self.pos_idx, size=self.pos_idx.size, replace=True, p=self._weights)

    def _has_own_negative(self, i: int) -> bool:
        hard, medium = self._pools(int(self._theorem[i]), self._parents[i], int(self._depth[i]))
        own = self._rows[i]
        return bool((self._rows[hard] != own).any() or (self._rows[medium] != own).any())

    def _draw_easy(self, t: int, own_row: int, n: int, rng: np.random.Generator) -> np.ndarray:
        """Up to n states of other theorems (fewer only when fewer exist)."""
        out: list[int] = []
        pool = self._easy_pool
        for _ in range(50 * n + 50):  # rejection: other theorems dominate any realistic pool
            if len(out) == n or pool.size == 0:
                break
            i = int(pool[rng.integers(pool.size)])
            if self._theorem[i] != t and self._rows[i] != own_row:
                out.append(i)
        if len(out) < n:  # pathological pools: filter explicitly
            allowed = pool[(self._theorem[pool] != t) & (self._rows[pool] != own_row)]
            if allowed.size:
                out.extend(rng.choice(allowed, size=n - len(out), replace=True).tolist())
        return np.array(out, np.int64)

    def _take(self, pool: np.ndarray, own_row: int, n: int, rng: np.random.Generator) -> np.ndarray:
        pool = pool[self._rows[pool] != own_row]  # the same state text is never its own negative
        if n <= 0 or pool.size == 0:
            return np.empty(0, np.int64)
        return rng.choice(pool, size=min(n, pool.size), replace=False)

    def negatives_for(self, i: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """Record indices [k] and tiers [k] of the negatives for positive record i."""
        t, parent, own = int(self._theorem[i]), self._parents[i], int(self._rows[i])
        k = self.config.k_negatives
        n_hard, n_medium, _ = self.config.tier_counts()  # easy takes whatever is left
        hard_pool, medium_pool = self._pools(t, parent, int(self._depth[i]))
        hard = self._take(hard_pool, own, n_hard, rng)
        medium = self._take(medium_pool, own, n_medium + (n_hard - hard.size), rng)
        easy = self._draw_easy(t, own, k - hard.size - medium.size, rng)
        picked = [(hard, HARD), (medium, MEDIUM), (easy, EASY)]
        short = k - hard.size - medium.size - easy.size
        if short:  # no other theorem to draw from: reuse this theorem's negatives (with replacement)
            own_pool = np.concatenate([hard_pool, medium_pool])
            own_pool = own_pool[self._rows[own_pool] != own]
            if own_pool.size == 0:
                raise ValueError(
                    f"cannot draw negatives for a positive of {self.theorem_names[t]!r}: it has no "
                    "negatives and there is no state of another theorem"
                )
            extra = rng.choice(own_pool, size=short, replace=True)
            picked.append((extra, MEDIUM))
        idx = np.concatenate([p for p, _ in picked])
        tier = np.concatenate([np.full(p.size, code, np.int8) for p, code in picked])
        return idx, tier

    def _batch_for(self, positives: np.ndarray, rng: np.random.Generator) -> ContrastiveBatch:
        k = self.config.k_negatives
        neg = np.empty((positives.size, k), np.int64)
        tier = np.empty((positives.size, k), np.int8)
        for b, i in enumerate(positives.tolist()):
            idx, tr = self.negatives_for(i, rng)
            neg[b], tier[b] = self._rows[idx], tr
        return ContrastiveBatch(
            pos=self._rows[positives],
            neg=neg,
            tier=tier,
            remaining_depth=self._depth[positives],
            depth_from_root=self._from_root[positives],
        )

    # -- public ---------------------------------------------------------------------------------
    def sample(self, batch_size: int) -> ContrastiveBatch:
        """The next batch_size positives of the shuffled order, each with k fresh negatives."""
        chosen: list[np.ndarray] = []
        need = batch_size
        while need:
            if self._cursor == self._order.size:
                self._order = self._epoch_order()
                self._cursor = 0
                self.epoch += 1
            take = self._order[self._cursor : self._cursor + need]
            self._cursor += take.size
            need -= take.size
            chosen.append(take)
        return self._batch_for(np.concatenate(chosen), self._rng)

    def fixed_batch(self, seed: int | None = None) -> ContrastiveBatch:
        """Every positive once, negatives drawn from a separate generator: a fixed validation set."""
        rng = np.random.default_rng(self.config.seed + 1 if seed is None else seed)
        return self._batch_for(self.pos_idx, rng)

    def tier_report(self, batch: ContrastiveBatch) -> dict[str, float]:
        """Share of each tier among a batch's negatives (backfill shows up here)."""
        return {name: float((batch.tier == code).mean()) for code, name in enumerate(TIER_NAMES)}

    def embedding_rows(self) -> np.ndarray:
        """Distinct embedding rows of every record this sampler can draw (for input statistics)."""
        return np.unique(self._rows)

    def state_dict(self) -> dict:
        return {
            "rng": self._rng.bit_generator.state,
            "order": self._order.copy(),
            "cursor": self._cursor,
            "epoch": self.epoch,
        }

    def load_state_dict(self, state: dict) -> None:
        self._rng.bit_generator.state = state["rng"]
        self._order = np.asarray(state["order"], np.int64)
        self._cursor = int(state["cursor"])
        self.epoch = int(state["epoch"])

    def __len__(self) -> int:
        return int(self.pos_idx.size)


# -- no-progress siblings as hard negatives ---------------------------------------------------------
def with_perturbations(records: pd.DataFrame, kinds: Sequence[str], *, seed: int = 0, both_sides: bool = True) -> pd.DataFrame:
    """``records`` plus, for every ground-truth state with a parent on its path, that parent after a
    no-progress step of each kind (``workbench.ebm.perturb``) as a *negative sibling* of the state: same
    parent, ``record_kind`` ``perturbation:<kind>``. The sampler uses them as hard negatives of that state
    only (they are as provable as the parent, so they say nothing about the theorem's other states)."""
    kinds = check_kinds(kinds)
    if not kinds or records.empty:
        return records
    gt = records[ground_truth_mask(records)]
    state_of = {(t, int(i)): s for t, i, s in zip(gt["theorem_name"], gt["state_id"], gt["state_pp"])}
    next_id = int(pd.to_numeric(records["state_id"]).max()) + 1
    rows = []
    for t, parent, child, depth, rd in zip(gt["theorem_name"], gt["parent_state_id"], gt["state_pp"], gt["depth_from_root"],
                                           gt["remaining_depth"]):
        if pd.isna(parent) or (t, int(parent)) not in state_of:
            continue
        for kind in kinds:
            sibling = perturb(state_of[(t, int(parent))], kind, seed)
            if sibling is None or sibling == child:
                continue
            rows.append({"theorem_name": t, "state_id": next_id, "state_pp": sibling, "tactic_applied": "",
                         "parent_state_id": int(parent), "label": "negative", "depth_from_root": depth,
                         "remaining_depth": -1, "llm_log_prob": float("nan"), "record_kind": PERTURBATION_RECORD + kind,
                         "state_source": "perturbation", "simulated": False})
            next_id += 1
            junk_child = perturb(child, kind, seed) if both_sides else None
            if junk_child is not None and junk_child != sibling:
                rows.append({**rows[-1], "state_id": next_id, "state_pp": junk_child, "label": "positive",
                             "remaining_depth": rd})
                next_id += 1
    if not rows:
        return records
    out = pd.concat([records, pd.DataFrame(rows)], ignore_index=True)
    out["parent_state_id"] = out["parent_state_id"].astype("Int64")
    log.info("added %d no-progress siblings (%s) as hard negatives", len(rows), ", ".join(kinds))
    return out


# -- records from traces alone ----------------------------------------------------------------
def records_from_traces(theorems: Iterable[Any]) -> pd.DataFrame:
    """Ground-truth positives from LeanDojo traces, no Lean needed.

    One record per ``state_before`` of each step: state_id = depth, parent = depth - 1,
    remaining_depth = n - depth (steps to QED along the recorded proof), canonical state text.
    The final ``no goals`` state is left out: it is the same text for every theorem. ``state_after``
    (canonical) is what the step's tactic produced, for the parent→child check (``ebm.checks``).
    """
    from workbench.states import canonical_state  # foundation module, imported on use

    rows: list[dict] = []
    for thm in theorems:
        n = len(thm.steps)
        for step in thm.steps:
            rows.append({
                "theorem_name": thm.full_name,
                "state_id": step.depth,
                "state_pp": canonical_state(step.state_before),
                "state_after": None if getattr(step, "state_after", None) is None else canonical_state(step.state_after),
                "tactic_applied": "" if step.depth == 0 else thm.steps[step.depth - 1].tactic,
                "parent_state_id": None if step.depth == 0 else step.depth - 1,
                "label": "positive",
                "depth_from_root": step.depth,
                "remaining_depth": n - step.depth,
                "llm_log_prob": float("nan"),
                "record_kind": "ground_truth",
                "state_source": "leandojo",
                "simulated": False,
            })
    df = pd.DataFrame(rows, columns=[
        "theorem_name", "state_id", "state_pp", "state_after", "tactic_applied", "parent_state_id", "label",
        "depth_from_root", "remaining_depth", "llm_log_prob", "record_kind", "state_source", "simulated",
    ])
    df["parent_state_id"] = df["parent_state_id"].astype("Int64")
    return df
