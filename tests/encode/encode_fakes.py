"""A deterministic in-process encoder for the cache tests (no network)."""

from __future__ import annotations

import hashlib
from typing import Sequence

import numpy as np

from workbench.encode import EncodeError, EncoderIdentity
from workbench.encode.identity import validate_embeddings
from workbench.encode.text import DEFAULT_TEMPLATE


class FakeEncoder:
    """Deterministic 8-d encoder; fails (EncodeError) on calls listed in ``fail_calls``."""

    def __init__(self, *, dim: int = 8, template: str = DEFAULT_TEMPLATE, model: str = "fake",
                 fail_calls: Sequence[int] = (), zero_marker: str | None = None) -> None:
        self.identity = EncoderIdentity(model=model, dim=dim, pooling="mean", dtype="float32", template=template)
        self.calls = 0
        self.texts: list[str] = []
        self.fail_calls = set(fail_calls)
        self.zero_marker = zero_marker

    async def encode(self, texts: Sequence[str]) -> np.ndarray:
        call = self.calls
        self.calls += 1
        if call in self.fail_calls:
            raise EncodeError(f"fake failure on call {call}")
        self.texts.extend(texts)
        rows = []
        for t in texts:
            seed = int.from_bytes(hashlib.sha256(t.encode()).digest()[:4], "little")
            v = np.random.default_rng(seed).standard_normal(self.identity.dim).astype(np.float32)
            if self.zero_marker and self.zero_marker in t:
                v[:] = 0
            rows.append(v)
        return validate_embeddings(np.stack(rows), self.identity.dim, source="fake")
