"""``EnergyScorer``: a trained head bound to its encoder identity -- the one scoring path from state text."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from workbench.aio import run_sync
from workbench.ebm.checkpoint import CheckpointMeta, check_identity, identity_to_dict, load_model
from workbench.ebm.model import EnergyHead

__all__ = ["EnergyScorer", "cached_table"]


class EnergyScorer:
    """A trained head bound to its encoder identity; refuses embeddings from any other encoder.

    ``score_states(texts)`` is the one scoring path (evaluation, notebooks, search): encode the state
    texts with the checkpoint's encoder (through an embedding cache when one is given), append the
    structural features the head was trained with, score.
    """

    def __init__(self, model: EnergyHead, meta: CheckpointMeta, *, encoder: Any = None, cache: str | Path | None = None) -> None:
        self.model = model.eval()
        self.meta = meta
        self.encoder = encoder
        self.cache = None if cache is None else Path(cache)

    @classmethod
    def from_checkpoint(cls, directory: str | Path, *, encoder: Any = None, cache: str | Path | None = None) -> EnergyScorer:
        """encoder: what encodes new states (default: rebuilt from the identity; the local MiniLM
        only -- pass a sidecar encoder for 4096-d heads). cache: an embedding cache folder to read
        from and add to."""
        model, meta = load_model(directory)
        return cls(model, meta, encoder=encoder, cache=cache)

    @property
    def identity(self) -> dict[str, Any]:
        return self.meta.encoder_identity

    @property
    def features(self) -> tuple[str, ...]:
        return self.model.config.features

    @torch.no_grad()
    def energies(self, embeddings: np.ndarray | torch.Tensor, identity: Any, *, texts: Sequence[str] | None = None,
                 batch_size: int = 4096) -> np.ndarray:
        """embeddings [n, d] from the encoder ``identity`` -> energies [n] (lower = more provable).

        ``texts`` (the states' canonical text) are needed when the head uses structural features.
        """
        check_identity(self.identity, identity)
        x = np.array(embeddings, dtype=np.float32)  # a copy: inputs may be read-only
        if x.ndim != 2 or x.shape[1] != self.model.config.d_encoder:
            raise ValueError(f"expected embeddings [n, {self.model.config.d_encoder}], got {tuple(x.shape)}")
        if self.features:
            if texts is None:
                raise ValueError(f"this head uses structural features {list(self.features)}: pass the state texts")
            from workbench.ebm.features import with_features

            x = with_features(x, texts, self.features)
        t = torch.from_numpy(x)
        out = [self.model(t[i : i + batch_size]) for i in range(0, t.shape[0], batch_size)]
        return torch.cat(out).numpy() if out else np.empty(0, np.float32)

    def scores(self, embeddings: np.ndarray | torch.Tensor, identity: Any, *, texts: Sequence[str] | None = None) -> np.ndarray:
        """-energies: higher = more provable."""
        return -self.energies(embeddings, identity, texts=texts)

    def energies_for_table(self, table: Any) -> np.ndarray:
        """Energies for every row of a ``workbench.encode.EmbeddingTable`` (checks its identity)."""
        return self.energies(table.matrix, table.identity, texts=table.states)

    def _encoder(self) -> Any:
        if self.encoder is None:
            from workbench.encode.factory import encoder_from_identity

            self.encoder = encoder_from_identity(self.identity)
        return self.encoder

    def embed_states(self, texts: Sequence[str], *, progress: bool = False) -> tuple[np.ndarray, Any]:
        """(embeddings [n, d], identity) of canonical state texts, via the cache when there is one."""
        from workbench.encode import EncoderIdentity, ensure_embeddings, state_text

        texts = list(texts)
        if self.cache is not None:
            have = cached_table(self.cache)
            if have is None or any(t not in have for t in texts):
                have = ensure_embeddings(texts, self.cache, self._encoder(), progress=progress)
            rows, missing = have.lookup(texts)
            if missing:
                raise ValueError(f"{len(missing)} states could not be encoded into {self.cache}, e.g. {missing[0][:80]!r}")
            return rows, have.identity
        enc = self._encoder()
        template = self.identity["template"]
        matrix = run_sync(enc.encode([state_text(t, template) for t in texts]))
        ident = enc.identity if isinstance(enc.identity, EncoderIdentity) else identity_to_dict(enc.identity)
        return np.asarray(matrix, np.float32), ident

    def energies_of_states(self, texts: Sequence[str], *, progress: bool = False) -> np.ndarray:
        """Energies [n] of canonical state texts: encode (checkpoint's encoder), add features, score."""
        embeddings, identity = self.embed_states(texts, progress=progress)
        return self.energies(embeddings, identity, texts=list(texts))

    def score_states(self, texts: Sequence[str], *, progress: bool = False) -> np.ndarray:
        """Scores [n] (higher = more provable) of canonical state texts: the one scoring path."""
        return -self.energies_of_states(texts, progress=progress)


def cached_table(cache: str | Path | None) -> Any:
    """The embedding table in ``cache`` (``read_embeddings``, kept while its files are unchanged); None when there
    is no cache or nothing written there yet."""
    from workbench.encode import cache_identity, read_embeddings

    return read_embeddings(cache) if cache is not None and cache_identity(cache) is not None else None
