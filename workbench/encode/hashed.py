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
Both measured worse than plain text on the shared sample (docs/EBM_REAL.md). ``view="fields"`` (spec
``hashed-fields``) hashes ``workbench.states.state_fields``' two parts apart, the hypotheses into the first
``dim/2`` buckets and the targets into the rest, each part L2-normalised to norm 1/sqrt(2): a ``∀`` still
to prove and one already assumed land in different buckets.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import numpy as np

from workbench.encode.identity import EncoderIdentity, validate_embeddings
from workbench.encode.text import DEFAULT_TEMPLATE, STATE_PLACEHOLDER
from workbench.states import anonymize, collapse, hypothesis_set, state_fields

HASHED_MODEL = "hashed-char-ngrams"
HASHED_DIM = 4096
HASHED_NGRAMS = (1, 4)
# view -> (what the state text becomes before hashing, the identity's pooling suffix)
# (a fields view returns a tuple of texts, each hashed into its own equal share of the buckets)
VIEWS = {"text": (None, ""), "anonymous": (anonymize, ",anonymous-names"), "set": (hypothesis_set, ",hypothesis-set"),
         "fields": (state_fields, ",fields-have-show")}
FIELD_VIEWS = {"fields": 2}  # view -> how many parts its texts have


def hashed_pooling(ngrams: tuple[int, int], view: str = "text") -> str:
    """The identity's pooling field: every choice that changes the vectors."""
    return f"char{ngrams[0]}-{ngrams[1]},murmur3-signed,log1p,l2" + VIEWS[view][1]


class HashedEncoder:
    """Hashed character n-gram counts, ``dim`` wide (see the module docstring)."""

    def __init__(self, *, template: str = DEFAULT_TEMPLATE, dim: int = HASHED_DIM,
                 ngrams: tuple[int, int] = HASHED_NGRAMS, view: str = "text") -> None:
        if view not in VIEWS:
            raise ValueError(f"view must be one of {list(VIEWS)}, got {view!r}")
        if dim < 16 or dim % FIELD_VIEWS.get(view, 1):
            raise ValueError(f"dim must be >= 16 (and split evenly among the view's parts), got {dim}")
        if not 1 <= ngrams[0] <= ngrams[1]:
            raise ValueError(f"ngrams must be (n_min, n_max) with 1 <= n_min <= n_max, got {ngrams}")
        from sklearn.feature_extraction.text import HashingVectorizer

        self.identity = EncoderIdentity(model=HASHED_MODEL, dim=dim, pooling=hashed_pooling(tuple(ngrams), view),
                                        dtype="float32", template=template)
        self.view = view
        self._around = template.split(STATE_PLACEHOLDER)  # the template's text before and after the state
        self._parts = FIELD_VIEWS.get(view, 1)
        self._vectorizer = HashingVectorizer(analyzer="char", ngram_range=tuple(ngrams), n_features=dim // self._parts,
                                             alternate_sign=True, norm=None, lowercase=False,
                                             preprocessor=collapse)

    def encode_sync(self, texts: Sequence[str]) -> np.ndarray:
        """[len(texts), dim] float32, rows L2-normalised (a fields view: each part to norm 1/sqrt(parts), an empty
        part zero)."""
        if VIEWS[self.view][0] is not None:
            texts = [self._view(t) for t in texts]
        if self._parts == 1:
            matrix = self._hash(list(texts))
        else:  # each part in its own buckets, with an equal share of the unit norm
            matrix = np.hstack([self._hash([t[i] for t in texts]) for i in range(self._parts)]) / np.sqrt(self._parts)
        return validate_embeddings(np.ascontiguousarray(matrix, np.float32), self.identity.dim, source=HASHED_MODEL)

    def _hash(self, texts: list[str]) -> np.ndarray:
        """Sub-linear n-gram counts, rows L2-normalised (an empty text stays zero)."""
        counts = self._vectorizer.transform(texts)
        counts.data = np.sign(counts.data) * np.log1p(np.abs(counts.data))
        matrix = np.asarray(counts.toarray(), np.float32)
        norms = np.linalg.norm(matrix, axis=1, keepdims=True)
        return matrix / np.where(norms > 0, norms, 1.0)

    def _view(self, text: str) -> str | tuple[str, ...]:
        """The state inside the template's text, seen through the view, put back in it (a fields view puts
        it around the last part: the targets)."""
        see = VIEWS[self.view][0]
        before, after = self._around
        if text.startswith(before) and text.endswith(after) and len(text) >= len(before) + len(after):
            seen = see(text[len(before):len(text) - len(after)])
            if isinstance(seen, tuple):
                return (*seen[:-1], before + seen[-1] + after)
            return before + seen + after
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
