"""A concatenation of encoders (``local+hashed``, ``hf:MODEL+hashed``): one vector per state, the parts'
vectors side by side, with a composite identity (``EncoderIdentity.parts``) that names every part.

In an embedding cache each part keeps a sub-cache of its own (``workbench.encode.cache``), so adding the
hashed view to a MiniLM run re-encodes nothing MiniLM already encoded, and a composite is never mixed
with a single encoder's cache.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

import numpy as np

from workbench.encode.identity import EncoderIdentity


class ConcatEncoder:
    """Encoders whose vectors are concatenated in the given order."""

    def __init__(self, parts: Sequence[Any]) -> None:
        parts = list(parts)
        if len(parts) < 2:
            raise ValueError("a concatenated encoder needs at least two parts")
        self.parts = parts

    @property
    def identity(self) -> EncoderIdentity:
        # read on use: a served part learns its identity in connect()
        return EncoderIdentity.concatenated([p.identity for p in self.parts])

    async def connect(self) -> None:
        for part in self.parts:
            connect = getattr(part, "connect", None)
            if connect is not None:
                await connect()

    async def encode(self, texts: Sequence[str]) -> np.ndarray:
        blocks = [np.asarray(await part.encode(list(texts)), np.float32) for part in self.parts]
        return np.concatenate(blocks, axis=1)

    async def aclose(self) -> None:
        await asyncio.gather(*(close() for p in self.parts if (close := getattr(p, "aclose", None)) is not None))


__all__ = ["ConcatEncoder"]
