"""Offline retrieval policy: k-nearest-neighbour tactic retrieval (in the spirit of Tactician).

Every (state, tactic) pair of the training theorems is indexed by its state; for a query state the
tactics of the most similar states are proposed, deduped after whitespace normalisation, scored by
similarity (``score_kind="similarity"``: not a log-probability). Pairs from the query theorem itself
(matched by full name) are never proposed, so mining a theorem cannot leak its own proof.
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from workbench.policy.base import Candidate
from workbench.policy.extract import has_forbidden, normalize_tactic
from workbench.policy.knn import StateIndex, TfidfStateIndex

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class TacticPair:
    theorem: str
    depth: int
    state: str                 # canonical state text
    tactic: str
    tail: tuple[str, ...]      # this tactic and the next ones of the same proof (for the chain walk)


def _canonical(text: str) -> str:
    from workbench.states import canonical_state, collapse

    try:
        return canonical_state(text)
    except ValueError:  # an unparsable trace state is still indexable as raw text
        return collapse(text)


def pairs_from_theorems(theorems: Sequence, *, chain_length: int = 4, canonicalize: bool = True) -> list[TacticPair]:
    """(state, tactic) pairs of ``workbench.traces.Theorem`` records; sorry/admit steps are left out."""
    pairs: list[TacticPair] = []
    for thm in theorems:
        tactics = [s.tactic for s in thm.steps]
        for i, step in enumerate(thm.steps):
            if has_forbidden(step.tactic):
                continue
            tail: list[str] = []
            for t in tactics[i:i + max(1, chain_length)]:
                if has_forbidden(t):
                    break
                tail.append(t)
            state = _canonical(step.state_before) if canonicalize else step.state_before
            pairs.append(TacticPair(thm.full_name, step.depth, state, step.tactic, tuple(tail)))
    return pairs


def rank_tactics(pairs: Sequence[TacticPair], idx: np.ndarray, sims: np.ndarray, n: int, *,
                 exclude_theorem: str | None) -> list[Candidate]:
    """Candidates from neighbours ``idx`` (best first): skip the excluded theorem, dedupe, keep the best n."""
    seen: set[str] = set()
    out: list[Candidate] = []
    for i, sim in zip(idx.tolist(), sims.tolist()):
        pair = pairs[i]
        if exclude_theorem is not None and pair.theorem == exclude_theorem:
            continue
        key = normalize_tactic(pair.tactic)
        if key in seen:
            continue
        seen.add(key)
        out.append(Candidate(tactic=pair.tactic, tactics=pair.tail, raw_text="\n".join(pair.tail),
                             score=float(sim), score_kind="similarity"))
        if len(out) >= n:
            break
    return out


class RetrievalPolicy:
    """kNN over training (state, tactic) pairs. Build with ``await RetrievalPolicy.build(theorems)``.

    ``fill_frequent`` of the ``n`` slots go to the most frequent training tactics not already
    proposed (``simp``, ``rfl``, ``ext``, ...), scored 0.0: on held-out mathlib theorems this keeps the
    kNN's tactic-name recall and recovers the exact-match recall of a frequency baseline
    (``bench/policy_knn.py``). A filler is proposed only if a theorem other than the query uses it.
    """

    def __init__(self, pairs: Sequence[TacticPair], index: StateIndex, *, neighbors: int = 64,
                 fill_frequent: int = 2, frequent_pool: int = 64) -> None:
        self.pairs = list(pairs)
        self.index = index
        self.neighbors = neighbors
        self.fill_frequent = fill_frequent
        self._per_theorem = Counter(p.theorem for p in self.pairs)
        counts = Counter(normalize_tactic(p.tactic) for p in self.pairs)
        frequent = {t for t, _ in counts.most_common(frequent_pool)}
        users: dict[str, set[str]] = {}
        first: dict[str, TacticPair] = {}
        for p in self.pairs:
            key = normalize_tactic(p.tactic)
            if key in frequent:
                users.setdefault(key, set()).add(p.theorem)
                first.setdefault(key, p)
        # (normalised tactic, a pair carrying its text, theorems using it), most frequent first
        self._frequent = [(t, first[t], users[t]) for t, _ in counts.most_common(frequent_pool)]
        self.queries = 0

    @classmethod
    async def build(cls, theorems: Sequence, *, index: StateIndex | None = None, neighbors: int = 64,
                    fill_frequent: int = 2, chain_length: int = 4, canonicalize: bool = True) -> "RetrievalPolicy":
        pairs = pairs_from_theorems(theorems, chain_length=chain_length, canonicalize=canonicalize)
        if not pairs:
            raise ValueError("RetrievalPolicy needs at least one training (state, tactic) pair")
        index = index or TfidfStateIndex()
        await index.fit([p.state for p in pairs])
        logger.info("retrieval policy: %d pairs from %d theorems, %s", len(pairs), len(theorems), index.describe())
        return cls(pairs, index, neighbors=neighbors, fill_frequent=fill_frequent)

    def query_k(self, n: int, theorem: str | None) -> int:
        """Neighbours to fetch: own-theorem pairs are removed and duplicate tactics collapse."""
        own = self._per_theorem.get(theorem, 0) if theorem else 0
        return max(self.neighbors, 4 * n) + own

    def propose(self, idx: np.ndarray, sims: np.ndarray, n: int, theorem: str | None,
                fill_frequent: int | None = None) -> list[Candidate]:
        """Candidates from the neighbours of a query (pure given the index's answer)."""
        fill = min(n, self.fill_frequent if fill_frequent is None else fill_frequent)
        out = rank_tactics(self.pairs, idx, sims, n - fill, exclude_theorem=theorem)
        seen = {normalize_tactic(c.tactic) for c in out}
        for key, pair, users in self._frequent:
            if len(out) >= n:
                break
            if key in seen or not (users - {theorem}):
                continue
            seen.add(key)
            out.append(Candidate(tactic=pair.tactic, tactics=(pair.tactic,), raw_text=pair.tactic, score=0.0,
                                 score_kind="similarity"))
        return out

    async def candidates(self, state_pp: str, n: int, *, theorem: str) -> list[Candidate]:
        self.queries += 1
        idx, sims = await self.index.query(state_pp, self.query_k(n, theorem))
        return self.propose(idx, sims, n, theorem)

    def provenance(self) -> dict:
        return {"policy": "retrieval", "pairs": len(self.pairs), "theorems": len(self._per_theorem),
                "neighbors": self.neighbors, "fill_frequent": self.fill_frequent, "score_kind": "similarity",
                **self.index.describe()}

    async def aclose(self) -> None:
        return None
