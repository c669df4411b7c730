"""State encoders (encoding sidecar client, local MiniLM, transformers models via encode.hf) and the embedding cache."""

from workbench.encode.cache import (
    CacheIdentityError,
    EmbeddingTable,
    EncodeReport,
    cache_identity,
    encode_states,
    ensure_embeddings,
    export_embeddings,
    read_embeddings,
)
from workbench.encode.identity import (
    EncodeError,
    Encoder,
    EncoderIdentity,
    EncoderMismatchError,
    EncoderProtocolError,
    EncoderUnavailable,
    InvalidEmbeddingError,
)
from workbench.encode.local import LocalEncoder
from workbench.encode.sidecar import SidecarEncoder
from workbench.encode.text import DEEPSEEK_PROVER_TEMPLATE, DEFAULT_TEMPLATE, PLAIN_TEMPLATE, state_text

__all__ = [
    "CacheIdentityError", "EmbeddingTable", "EncodeReport", "cache_identity", "encode_states", "ensure_embeddings",
    "export_embeddings", "read_embeddings", "EncodeError", "Encoder", "EncoderIdentity", "EncoderMismatchError",
    "EncoderProtocolError", "EncoderUnavailable", "InvalidEmbeddingError", "LocalEncoder",
    "SidecarEncoder", "DEEPSEEK_PROVER_TEMPLATE", "DEFAULT_TEMPLATE", "PLAIN_TEMPLATE", "state_text",
]
