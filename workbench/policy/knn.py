"""Nearest-neighbour indexes over proof-state texts for the retrieval policy.

Two interchangeable indexes, both cosine similarity over L2-normalised vectors:

* ``TfidfStateIndex``: TF-IDF over Lean tokens (identifiers with their dots and subscripts, and
  single symbols such as ``⊢ ∀ → ≤ +``), unigrams and bigrams. No model, milliseconds per query.
* ``EmbeddingStateIndex``: any ``workbench.encode`` encoder (MiniLM by default) over
  ``state_text(state, template)``.
"""

from __future__ import annotations

import logging
from typing import Protocol, Sequence

import numpy as np

from workbench.encode.identity import Encoder
from workbench.encode.text import state_text

logger = logging.getLogger(__name__)

# identifiers (Lean names: dots, primes, subscripts, unicode letters) or one non-space symbol
LEAN_TOKEN_PATTERN = r"[\w.'₀-₉ₐ-ₜ!?]+|[^\w\s]"


class StateIndex(Protocol):
    async def fit(self, states: Sequence[str]) -> None: ...

    async def query(self, state: str, k: int) -> tuple[np.ndarray, np.ndarray]:
        """(row indices, similarities), best first."""
        ...

    def describe(self) -> dict: ...


def _top_k(sims: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    k = min(k, sims.shape[0])
    if k <= 0:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32)
    idx = np.argpartition(-sims, k - 1)[:k]
    order = np.lexsort((idx, -sims[idx]))  # ties broken by row, for determinism
    idx = idx[order]
    return idx.astype(np.int64), sims[idx].astype(np.float32)


class TfidfStateIndex:
    """TF-IDF (sublinear tf, unigrams + bigrams of Lean tokens) with cosine similarity."""

    def __init__(self, *, ngram_range: tuple[int, int] = (1, 2), min_df: int = 1,
                 max_features: int | None = 200_000) -> None:
        from sklearn.feature_extraction.text import TfidfVectorizer  # scikit-learn comes with sentence-transformers

        self._vectorizer = TfidfVectorizer(token_pattern=LEAN_TOKEN_PATTERN, lowercase=False, sublinear_tf=True,
                                           ngram_range=ngram_range, min_df=min_df, max_features=max_features,
                                           dtype=np.float32)
        self._matrix = None
        self._params = {"ngram_range": list(ngram_range), "min_df": min_df, "max_features": max_features}

    def fit_sync(self, states: Sequence[str]) -> None:
        self._matrix = self._vectorizer.fit_transform(list(states)).tocsr()

    async def fit(self, states: Sequence[str]) -> None:
        self.fit_sync(states)

    def query_sync(self, state: str, k: int) -> tuple[np.ndarray, np.ndarray]:
        if self._matrix is None:
            raise RuntimeError("TfidfStateIndex.query before fit")
        q = self._vectorizer.transform([state])
        sims = np.asarray((self._matrix @ q.T).todense()).ravel()
        return _top_k(sims, k)

    async def query(self, state: str, k: int) -> tuple[np.ndarray, np.ndarray]:
        return self.query_sync(state, k)

    def describe(self) -> dict:
        return {"index": "tfidf", "token_pattern": LEAN_TOKEN_PATTERN, **self._params,
                "vocabulary": len(getattr(self._vectorizer, "vocabulary_", {}))}


class EmbeddingStateIndex:
    """Cosine kNN over encoder embeddings of ``state_text(state, encoder.identity.template)``."""

    def __init__(self, encoder: Encoder, *, batch_size: int = 256) -> None:
        self.encoder = encoder
        self.batch_size = batch_size
        self._matrix: np.ndarray | None = None

    def _texts(self, states: Sequence[str]) -> list[str]:
        return [state_text(s, self.encoder.identity.template) for s in states]

    async def fit(self, states: Sequence[str]) -> None:
        texts = self._texts(states)
        parts = [await self.encoder.encode(texts[i:i + self.batch_size]) for i in range(0, len(texts), self.batch_size)]
        m = np.concatenate(parts, axis=0) if parts else np.zeros((0, self.encoder.identity.dim), np.float32)
        self._matrix = m / np.maximum(np.linalg.norm(m, axis=1, keepdims=True), 1e-12)

    async def query(self, state: str, k: int) -> tuple[np.ndarray, np.ndarray]:
        if self._matrix is None:
            raise RuntimeError("EmbeddingStateIndex.query before fit")
        q = (await self.encoder.encode(self._texts([state])))[0]
        q = q / max(float(np.linalg.norm(q)), 1e-12)
        return _top_k(self._matrix @ q, k)

    async def query_many(self, states: Sequence[str], k: int) -> list[tuple[np.ndarray, np.ndarray]]:
        """Batched queries (one encoder call per batch) for benchmarks."""
        if self._matrix is None:
            raise RuntimeError("EmbeddingStateIndex.query before fit")
        texts = self._texts(states)
        out = []
        for i in range(0, len(texts), self.batch_size):
            q = await self.encoder.encode(texts[i:i + self.batch_size])
            q = q / np.maximum(np.linalg.norm(q, axis=1, keepdims=True), 1e-12)
            sims = q @ self._matrix.T
            out.extend(_top_k(row, k) for row in sims)
        return out

    def describe(self) -> dict:
        return {"index": "embedding", "encoder": self.encoder.identity.to_dict()}
