"""Encoder identity, the Encoder protocol, encoder errors and embedding validation (pure)."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from typing import Any, Protocol, Sequence, runtime_checkable

import numpy as np

from workbench.encode.text import check_template


@dataclass(frozen=True, slots=True)
class EncoderIdentity:
    """What produced an embedding. Two caches are compatible only if their identities are equal."""

    model: str        # e.g. "sentence-transformers/all-MiniLM-L6-v2" or the sidecar's model name
    dim: int          # embedding width
    pooling: str      # e.g. "mean+l2norm" (MiniLM) or "mean" (sidecar last hidden layer)
    dtype: str        # dtype of the stored vectors, "float32"
    template: str     # the state_text template the encoded strings were built with
    # Set by model-backed encoders (workbench.encode.hf); None elsewhere, so identities recorded before
    # these fields existed still compare equal.
    revision: str | None = None       # model commit / version the weights came from
    compute_dtype: str | None = None  # dtype the forward ran in ("bfloat16", "nf4/bfloat16", ...)
    max_length: int | None = None     # token limit; longer texts were truncated
    # A concatenated encoder (``workbench.encode.concat``): the identities of its parts, in order; None for
    # a single encoder (and for identities recorded before concatenation existed).
    parts: tuple["EncoderIdentity", ...] | None = None

    def __post_init__(self) -> None:
        if not self.model:
            raise ValueError("EncoderIdentity.model must be a non-empty string")
        if not isinstance(self.dim, int) or self.dim <= 0:
            raise ValueError(f"EncoderIdentity.dim must be a positive int, got {self.dim!r}")
        check_template(self.template)
        if self.parts is not None:
            if len(self.parts) < 2 or sum(p.dim for p in self.parts) != self.dim:
                raise ValueError(f"a concatenated identity needs >= 2 parts whose widths sum to dim {self.dim}")
            if any(p.template != self.template for p in self.parts):
                raise ValueError("the parts of a concatenated encoder must share one state template")

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready values (parts as a list of dicts): what checkpoints store and compare."""
        d = asdict(self)
        d["parts"] = None if self.parts is None else [p.to_dict() for p in self.parts]
        return d

    @classmethod
    def from_dict(cls, obj: dict[str, Any]) -> "EncoderIdentity":
        fields = ("model", "dim", "pooling", "dtype", "template")
        missing = [f for f in fields if f not in obj]
        if missing:
            raise ValueError(f"encoder identity is missing field(s) {missing}: {obj!r}")
        max_length = obj.get("max_length")
        parts = obj.get("parts")
        return cls(model=str(obj["model"]), dim=int(obj["dim"]), pooling=str(obj["pooling"]),
                   dtype=str(obj["dtype"]), template=str(obj["template"]),
                   revision=_opt_str(obj.get("revision")), compute_dtype=_opt_str(obj.get("compute_dtype")),
                   max_length=None if max_length is None else int(max_length),
                   parts=None if parts is None else tuple(p if isinstance(p, EncoderIdentity) else cls.from_dict(p)
                                                          for p in parts))

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True, ensure_ascii=False)

    @classmethod
    def from_json(cls, text: str) -> "EncoderIdentity":
        return cls.from_dict(json.loads(text))

    def differences(self, other: "EncoderIdentity") -> list[str]:
        """Human-readable list of fields that differ (for refusal messages)."""
        a, b = self.to_dict(), other.to_dict()
        return [f"{k}: {a[k]!r} != {b[k]!r}" for k in a if a[k] != b[k]]

    @classmethod
    def concatenated(cls, parts: "Sequence[EncoderIdentity]") -> "EncoderIdentity":
        """The composite identity of parts whose vectors are concatenated in this order."""
        parts = tuple(parts)
        return cls(model=" + ".join(p.model for p in parts), dim=sum(p.dim for p in parts),
                   pooling="concat(" + " | ".join(p.pooling for p in parts) + ")", dtype="float32",
                   template=parts[0].template, parts=parts)


def _opt_str(value: Any) -> str | None:
    return None if value is None else str(value)


@runtime_checkable
class Encoder(Protocol):
    identity: EncoderIdentity

    async def encode(self, texts: Sequence[str]) -> np.ndarray:  # [n, identity.dim] float32
        ...


class EncodeError(RuntimeError):
    """An encoder could not produce embeddings (infrastructure: server down, bad answers)."""


class EncoderProtocolError(EncodeError):
    """The encoder answered something that is not the documented JSON."""


class EncoderUnavailable(EncodeError):
    """The encoder could not be reached (connection refused, timeouts) after retries."""


class EncoderMismatchError(EncodeError):
    """The encoder (e.g. a server's /info) is not the one the caller expects; nothing was encoded."""


class InvalidEmbeddingError(EncodeError):
    """Some vectors are NaN/inf or zero-norm; ``matrix`` holds the whole batch, ``bad`` the rows."""

    def __init__(self, message: str, bad: tuple[int, ...], matrix: np.ndarray) -> None:
        super().__init__(message)
        self.bad = bad
        self.matrix = matrix


def validate_embeddings(matrix: np.ndarray, dim: int, *, source: str) -> np.ndarray:
    """Check shape [n, dim] and reject NaN/inf or zero-norm rows (they are invalid in the cache)."""
    if matrix.ndim != 2 or matrix.shape[1] != dim:
        raise EncoderProtocolError(f"{source}: expected embeddings of shape [n, {dim}], got {list(matrix.shape)}")
    finite = np.isfinite(matrix).all(axis=1)
    norms = np.linalg.norm(np.where(np.isfinite(matrix), matrix, 0.0), axis=1)
    bad = tuple(int(i) for i in np.flatnonzero(~finite | (norms == 0.0)))
    if bad:
        kinds = []
        if (~finite).any():
            kinds.append(f"{int((~finite).sum())} with NaN/inf")
        if ((norms == 0.0) & finite).any():
            kinds.append(f"{int(((norms == 0.0) & finite).sum())} zero-norm")
        raise InvalidEmbeddingError(
            f"{source}: {len(bad)} of {matrix.shape[0]} embeddings are invalid ({', '.join(kinds)}); "
            f"first bad row {bad[0]}", bad, matrix)
    return matrix
