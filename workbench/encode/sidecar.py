"""Client for the encoding sidecar's ``POST /encode`` (SPEC §2).

Accepted answers: ``{"embeddings": [[...], ...]}`` (the sidecar), ``{"embedding": [...]}`` (one
text), and SGLang's embedding mode ``[{"embedding": [...]}, ...]``. Texts are sent in batches with
bounded concurrency over one long-lived ``httpx.AsyncClient``; 5xx, timeouts and connection errors
are retried with backoff, anything else is an error naming the endpoint.

Before the first batch the client asks ``GET /info`` (``workbench serve-encoder`` answers its identity;
other sidecars answer 404 and are trusted as configured). A server whose model, width or pooling differs
from what the client was told to expect is refused (``EncoderMismatchError``); otherwise the client
takes the server's identity (model, revision, compute dtype, max length), so the cache records what
really produced the vectors.
"""

from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import dataclass
from typing import Any, Sequence

import httpx
import numpy as np

from workbench.encode.identity import (
    EncodeError,
    EncoderIdentity,
    EncoderMismatchError,
    EncoderProtocolError,
    EncoderUnavailable,
    InvalidEmbeddingError,
    validate_embeddings,
)
from workbench.encode.text import DEFAULT_TEMPLATE
from workbench.http_pool import pool_limits

logger = logging.getLogger(__name__)


@dataclass(slots=True)
class SidecarStats:
    requests: int = 0
    retries: int = 0
    failures: int = 0          # requests that failed after all retries
    texts: int = 0


def parse_encode_response(obj: Any, n: int, *, endpoint: str) -> list[list[float]]:
    """The vectors of one /encode answer, in request order; raises EncoderProtocolError on any other shape."""
    if isinstance(obj, dict) and "embeddings" in obj:
        vectors = obj["embeddings"]
    elif isinstance(obj, dict) and "embedding" in obj:
        vectors = [obj["embedding"]]
    elif isinstance(obj, list) and all(isinstance(x, dict) and "embedding" in x for x in obj):
        vectors = [x["embedding"] for x in obj]
    else:
        keys = list(obj)[:5] if isinstance(obj, dict) else type(obj).__name__
        raise EncoderProtocolError(
            f"{endpoint}: answer is neither {{'embeddings': [...]}} nor a list of {{'embedding': [...]}} (got {keys})")
    if not isinstance(vectors, list) or len(vectors) != n:
        got = len(vectors) if isinstance(vectors, list) else type(vectors).__name__
        raise EncoderProtocolError(f"{endpoint}: sent {n} texts, got {got} embeddings")
    for i, v in enumerate(vectors):
        if not isinstance(v, list):
            raise EncoderProtocolError(f"{endpoint}: embedding {i} is {type(v).__name__}, expected a list of numbers")
    return vectors


class SidecarEncoder:
    """Embeddings from the sidecar at ``url`` (mean-pooled last hidden layer, ``hidden_size`` wide)."""

    def __init__(self, url: str, hidden_size: int = 4096, *, model: str | None = None,
                 template: str = DEFAULT_TEMPLATE, pooling: str = "mean", batch_size: int = 32,
                 concurrency: int = 4, timeout_s: float = 120.0, retries: int = 2, backoff_s: float = 0.5,
                 expect: EncoderIdentity | None = None,
                 transport: httpx.AsyncBaseTransport | None = None) -> None:
        if batch_size <= 0 or concurrency <= 0:
            raise ValueError("batch_size and concurrency must be positive")
        self.url = url.rstrip("/")
        self.endpoint = f"{self.url}/encode"
        self.hidden_size = hidden_size
        # The model name travels with the cache; default to the URL so two sidecars are never confused.
        self.identity = EncoderIdentity(model=model or f"sidecar:{self.url}", dim=hidden_size, pooling=pooling,
                                        dtype="float32", template=template)
        # What the server must be: the full identity when given (e.g. a cache's or a checkpoint's), else
        # the model name when the caller named one; width is always checked.
        self.expect = expect
        self._model_named = model is not None
        self.server_info: dict[str, Any] | None = None  # the /info answer, None for sidecars without one
        self._connected = False
        self.batch_size = batch_size
        self.retries = retries
        self.backoff_s = backoff_s
        self.stats = SidecarStats()
        self._semaphore = asyncio.Semaphore(concurrency)
        self._client = httpx.AsyncClient(
            timeout=httpx.Timeout(timeout_s, connect=min(10.0, timeout_s)),
            limits=pool_limits(concurrency),
            transport=transport)

    async def __aenter__(self) -> "SidecarEncoder":
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._client.aclose()

    async def connect(self) -> EncoderIdentity:
        """Ask the server who it is (once); refuse a mismatch, adopt its identity. Returns ``self.identity``."""
        if self._connected:
            return self.identity
        info_url = f"{self.url}/info"
        info = await self._request("GET", info_url, absent=(404, 405))
        if info is None:
            logger.info("%s: no /info (not a workbench serve-encoder); identity taken as configured: %s",
                        self.url, self.identity)
        else:
            self._adopt(info_url, info)
        self._connected = True
        return self.identity

    def _adopt(self, info_url: str, info: Any) -> None:
        try:
            server = EncoderIdentity.from_dict({**info["identity"], "template": self.identity.template})
        except (KeyError, TypeError, ValueError) as e:
            raise EncoderProtocolError(f"{info_url}: no encoder identity in the answer ({e}): {str(info)[:200]}") from e
        if self.expect is not None:
            diffs = self.expect.differences(server)
        else:
            diffs = [f"dim: {self.hidden_size!r} != {server.dim!r}"] if server.dim != self.hidden_size else []
            if self._model_named and server.model != self.identity.model:
                diffs.append(f"model: {self.identity.model!r} != {server.model!r}")
        if diffs:
            raise EncoderMismatchError(f"{self.url} serves another encoder than expected ({'; '.join(diffs)}); "
                                       "refusing to use it")
        self.server_info = info
        self.identity = server
        logger.info("%s serves %s", self.url, server)

    async def encode(self, texts: Sequence[str]) -> np.ndarray:
        """[len(texts), hidden_size] float32. Raises InvalidEmbeddingError (with the whole matrix and
        the bad rows) if any vector is NaN/inf or zero-norm."""
        await self.connect()
        texts = list(texts)
        if not texts:
            return np.zeros((0, self.hidden_size), dtype=np.float32)
        batches = [texts[i:i + self.batch_size] for i in range(0, len(texts), self.batch_size)]
        # Few batches per call (callers hand us one checkpoint's worth), the semaphore bounds the wire.
        parts = await asyncio.gather(*(self._encode_batch(b) for b in batches))
        matrix = np.concatenate(parts, axis=0) if len(parts) > 1 else parts[0]
        return validate_embeddings(matrix, self.hidden_size, source=self.endpoint)

    async def _encode_batch(self, batch: list[str]) -> np.ndarray:
        async with self._semaphore:
            obj = await self._post({"text": batch, "hidden_size": self.hidden_size})
        vectors = parse_encode_response(obj, len(batch), endpoint=self.endpoint)
        bad_dims = [(i, len(v)) for i, v in enumerate(vectors) if len(v) != self.hidden_size]
        if bad_dims:
            i, d = bad_dims[0]
            raise EncoderProtocolError(
                f"{self.endpoint}: embedding {i} has dimension {d}, expected hidden_size={self.hidden_size} "
                f"({len(bad_dims)} of {len(vectors)} wrong); is the sidecar serving another model?")
        try:
            matrix = np.asarray(vectors, dtype=np.float32)
        except (TypeError, ValueError) as e:
            raise EncoderProtocolError(f"{self.endpoint}: embeddings are not numeric: {e}") from e
        self.stats.texts += len(batch)
        return matrix

    async def _post(self, payload: dict[str, Any]) -> Any:
        return await self._request("POST", self.endpoint, payload)

    async def _request(self, method: str, url: str, payload: dict[str, Any] | None = None, *,
                       absent: tuple[int, ...] = ()) -> Any:
        """One request with retries for 5xx / timeouts / connection errors; the only place that touches HTTP.
        Returns the JSON answer, or None when the status is in ``absent``."""
        last: Exception | None = None
        for attempt in range(self.retries + 1):
            if attempt:
                self.stats.retries += 1
                await asyncio.sleep(self.backoff_s * 2 ** (attempt - 1))
            self.stats.requests += 1
            try:
                response = await self._client.request(method, url, json=payload)
            except (httpx.TimeoutException, httpx.TransportError) as e:
                last = e
                logger.warning("%s: %s (attempt %d/%d)", url, type(e).__name__, attempt + 1,
                               self.retries + 1)
                continue
            if response.status_code >= 500:
                last = EncodeError(f"{url}: HTTP {response.status_code}: {response.text[:200]}")
                logger.warning("%s (attempt %d/%d)", last, attempt + 1, self.retries + 1)
                continue
            if response.status_code in absent:
                return None
            if response.status_code != 200:
                self.stats.failures += 1
                raise EncodeError(f"{url}: HTTP {response.status_code}: {response.text[:200]}")
            try:
                return response.json()
            except json.JSONDecodeError as e:
                self.stats.failures += 1
                raise EncoderProtocolError(
                    f"{url}: malformed JSON answer ({e}): {response.text[:120]!r}") from e
        self.stats.failures += 1
        if isinstance(last, (httpx.TimeoutException, httpx.TransportError)):
            raise EncoderUnavailable(
                f"{url}: unreachable after {self.retries + 1} attempts: "
                f"{type(last).__name__}: {last}") from last
        raise EncodeError(f"{last} (after {self.retries + 1} attempts)") from last


__all__ = ["SidecarEncoder", "SidecarStats", "parse_encode_response", "InvalidEmbeddingError"]
