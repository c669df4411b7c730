"""Hashed character n-grams: an offline, deterministic encoder of state text into a fixed vector.

The bundled MiniLM's WordPiece vocabulary has no ``⊢ ∀ ∃ ℕ ✝ ∑ ⊤ ⊥`` (they become ``[UNK]``) and maps
``≠`` to ``=``; character n-grams keep every symbol. Each text becomes the counts of its character
n-grams (``n_min``..``n_max``, whitespace runs collapsed), hashed into ``dim`` buckets with scikit-learn's
``HashingVectorizer`` (MurmurHash3, signed so that colliding n-grams tend to cancel rather than pile up),
sub-linear counts ``sign(c) * log1p(|c|)`` (a hypothesis repeated twice is not twice as informative),
then L2-normalised. 4096 buckets by default: the energy head's native input width. No model, no
download, no state: two processes give bit-identical vectors, so the identity says everything.

``view="anonymous"`` (spec ``hashed-anon``) hashes ``workbench.states.anonymize`` of the state instead: every
hypothesis name and reference replaced by one mark, so states that differ only in the names their
hypotheses were given (``intro x`` vs ``intro y``, a shadowed ``h✝``) get the same vector, and names cannot
serve as a "where in the script" cue. ``view="set"`` (spec ``hashed-set``) hashes
``workbench.states.hypothesis_set``: also each goal's hypotheses sorted, repeats and case tags dropped.
Both measured worse than plain text on the shared sample (docs/EBM_REAL.md).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import numpy as np

from workbench.encode.identity import EncoderIdentity, validate_embeddings
from workbench.encode.text import DEFAULT_TEMPLATE, STATE_PLACEHOLDER
from workbench.states import anonymize, collapse, hypothesis_set

HASHED_MODEL = "hashed-char-ngrams"
HASHED_DIM = 4096
HASHED_NGRAMS = (1, 4)
# view -> (what the state text becomes before hashing, the identity's pooling suffix)
VIEWS = {"text": (None, ""), "anonymous": (anonymize, ",anonymous-names"), "set": (hypothesis_set, ",hypothesis-set")}


def hashed_pooling(ngrams: tuple[int, int], view: str = "text") -> str:
    """The identity's pooling field: every choice that changes the vectors."""
    return f"char{ngrams[0]}-{ngrams[1]},murmur3-signed,log1p,l2" + VIEWS[view][1]


class HashedEncoder:
    """Hashed character n-gram counts, ``dim`` wide (see the module docstring)."""

    def __init__(self, *, template: str = DEFAULT_TEMPLATE, dim: int = HASHED_DIM,
                 ngrams: tuple[int, int] = HASHED_NGRAMS, view: str = "text") -> None:
        if view not in VIEWS:
            raise ValueError(f"view must be one of {list(VIEWS)}, got {view!r}")
        if dim < 16:
            raise ValueError(f"dim must be >= 16, got {dim}")
        if not 1 <= ngrams[0] <= ngrams[1]:
            raise ValueError(f"ngrams must be (n_min, n_max) with 1 <= n_min <= n_max, got {ngrams}")
        from sklearn.feature_extraction.text import HashingVectorizer

        self.identity = EncoderIdentity(model=HASHED_MODEL, dim=dim, pooling=hashed_pooling(tuple(ngrams), view),
                                        dtype="float32", template=template)
        self.view = view
        self._around = template.split(STATE_PLACEHOLDER)  # the template's text before and after the state
        self._vectorizer = HashingVectorizer(analyzer="char", ngram_range=tuple(ngrams), n_features=dim,
                                             alternate_sign=True, norm=None, lowercase=False,
                                             preprocessor=collapse)

    def encode_sync(self, texts: Sequence[str]) -> np.ndarray:
        """[len(texts), dim] float32, rows L2-normalised."""
        if VIEWS[self.view][0] is not None:
            texts = [self._view(t) for t in texts]
        counts = self._vectorizer.transform(list(texts))
        counts.data = np.sign(counts.data) * np.log1p(np.abs(counts.data))
        matrix = np.asarray(counts.toarray(), np.float32)
        norms = np.linalg.norm(matrix, axis=1, keepdims=True)
        matrix = matrix / np.where(norms > 0, norms, 1.0)
        return validate_embeddings(np.ascontiguousarray(matrix), self.identity.dim, source=HASHED_MODEL)

    def _view(self, text: str) -> str:
        """The state inside the template's text, seen through the view, put back in it."""
        see = VIEWS[self.view][0]
        before, after = self._around
        if text.startswith(before) and text.endswith(after) and len(text) >= len(before) + len(after):
            return before + see(text[len(before):len(text) - len(after)]) + after
        return see(text)

    async def encode(self, texts: Sequence[str]) -> np.ndarray:
        return await asyncio.to_thread(self.encode_sync, list(texts))


def hashed_from_identity(identity: EncoderIdentity) -> HashedEncoder:
    """Rebuild the encoder an identity describes (it has no state beyond its parameters)."""
    pooling = identity.pooling
    head = pooling.split(",", 1)[0]
    if identity.model != HASHED_MODEL or not head.startswith("char"):
        raise ValueError(f"not a hashed n-gram identity: {identity.model!r} / {pooling!r}")
    lo, hi = (int(x) for x in head[len("char"):].split("-"))
    view = next((v for v, (_, suffix) in VIEWS.items() if suffix and pooling.endswith(suffix)), "text")
    encoder = HashedEncoder(template=identity.template, dim=identity.dim, ngrams=(lo, hi), view=view)
    if encoder.identity != identity:
        raise ValueError(f"cannot rebuild hashed encoder {pooling!r}: this version makes {encoder.identity.pooling!r}")
    return encoder


__all__ = ["HASHED_DIM", "HASHED_MODEL", "HashedEncoder", "hashed_from_identity"]
