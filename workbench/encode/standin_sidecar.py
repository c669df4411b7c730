"""A stand-in encoding sidecar: a real HTTP server on 127.0.0.1 speaking ``POST /encode`` (SPEC §2).

For tests and benchmarks only. Embeddings are deterministic pseudo-random vectors seeded by the text
(so equal texts get equal vectors). With ``serve_info`` it answers ``GET /info`` as ``workbench serve-encoder``
does (its identity, marked ``standin``); without, it is a sidecar that has none (404). Batches are processed one
at a time, each taking a fixed
``batch_cost_s`` (its own work included) to model a single GPU; faults can be injected. ``GET /stats``
returns the counters. Run it by hand with
``python -m workbench.encode.standin_sidecar --port 30001``.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import logging
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from workbench.standin_http import NOT_FOUND, LoopbackJsonServer

logger = logging.getLogger(__name__)


@dataclass
class SidecarFaults:
    """Mutable fault plan; the server consumes counters as requests arrive."""

    fail_next: int = 0               # answer HTTP 500 to the next N /encode requests
    malformed_next: int = 0          # answer non-JSON to the next N requests
    nan_marker: str | None = None    # texts containing this get a NaN vector
    zero_marker: str | None = None   # texts containing this get a zero vector
    wrong_dim: bool = False          # answer vectors one element short
    shape: str = "sidecar"           # "sidecar": {"embeddings": [...]}; "sglang": [{"embedding": [...]}]
    pad_leak: bool = False           # mean pooling without the attention mask: a text's vector depends on its batch


@dataclass
class SidecarCounters:
    requests: int = 0
    texts: int = 0
    batches_served: int = 0
    errors_injected: int = 0
    busy_s: float = 0.0


def text_vector(text: str, dim: int) -> np.ndarray:
    seed = int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "little")
    return np.random.default_rng(seed).standard_normal(dim).astype(np.float32)


@dataclass
class StandinSidecar(LoopbackJsonServer):
    """Context manager: ``with StandinSidecar(batch_cost_s=0.01) as s: url = s.url``."""

    hidden_size: int = 4096
    batch_cost_s: float = 0.0
    serve_info: bool = False  # GET /info with an identity, like `workbench serve-encoder` (encode/server.py)
    host: str = "127.0.0.1"
    port: int = 0
    faults: SidecarFaults = field(default_factory=SidecarFaults)
    counters: SidecarCounters = field(default_factory=SidecarCounters)
    # `workbench serve-encoder` runs uvicorn with its default timeout_keep_alive of 5 s (uvicorn 0.30.6
    # config.py:212, still 5 in 0.55.0, the version installed here; encode/server.py uvicorn_server), on a
    # socket it listens on with a backlog of 128 (encode/server.py listening_socket).
    keep_alive_s: float | None = 5.0
    backlog: int = 128

    name = "stand-in sidecar"

    def __post_init__(self) -> None:
        LoopbackJsonServer.__init__(self, self.host, self.port)
        self._gpu = threading.Lock()      # one batch at a time, like one GPU
        self._state = threading.Lock()

    def handle_get(self, path: str) -> tuple[int, bytes]:
        if path == "/health":
            return 200, b"{}"
        if path == "/get_model_info":
            return 200, json.dumps({"model_path": "standin-sidecar", "standin": True, "hidden_size": self.hidden_size}).encode()
        if path == "/info" and self.serve_info:
            identity = {"model": "standin-sidecar", "dim": self.hidden_size, "pooling": "mean", "dtype": "float32",
                        "revision": None, "compute_dtype": None, "max_length": None}
            return 200, json.dumps({"server": "stand-in sidecar", "standin": True, "identity": identity}).encode()
        if path == "/stats":
            return 200, json.dumps(dataclasses.asdict(self.counters)).encode()
        return NOT_FOUND

    def handle_post(self, path: str, payload: Any) -> tuple[int, bytes]:
        return self.answer(payload) if path == "/encode" else NOT_FOUND

    def _take(self, name: str) -> bool:
        return self.take_fault(self.faults, name, self.counters)

    def answer(self, payload: Any) -> tuple[int, bytes]:
        """(HTTP status, body) for one /encode payload."""
        with self._state:
            self.counters.requests += 1
        if self._take("fail_next"):
            return 500, b'{"error": "injected failure"}'
        if self._take("malformed_next"):
            return 200, b"<html>not json"
        if not isinstance(payload, dict) or "text" not in payload:
            return 400, b'{"error": "expected {\\"text\\": [...]}"}'
        texts = payload["text"]
        single = isinstance(texts, str)
        texts = [texts] if single else list(texts)
        dim = int(payload.get("hidden_size", self.hidden_size))
        with self._gpu:
            # The batch occupies the "GPU" for batch_cost_s in all, its own vector building and JSON
            # encoding included, so batches back to back give exactly batch_size / batch_cost_s.
            t0 = time.perf_counter()
            vectors = []
            longest = max((len(t) for t in texts), default=0)
            for t in texts:
                v = text_vector(t, dim)
                if self.faults.pad_leak and longest:
                    # the batch pads every text to the longest; unmasked pooling averages the pad positions in
                    share = len(t) / longest
                    v = share * v + (1 - share) * text_vector("<pad>", dim)
                if self.faults.nan_marker and self.faults.nan_marker in t:
                    v[0] = np.nan
                if self.faults.zero_marker and self.faults.zero_marker in t:
                    v[:] = 0.0
                vectors.append(v[:-1] if self.faults.wrong_dim else v)
            rows = [v.tolist() for v in vectors]
            if single:
                body: Any = {"embedding": rows[0]}
            elif self.faults.shape == "sglang":
                body = [{"embedding": r, "index": i} for i, r in enumerate(rows)]
            else:
                body = {"embeddings": rows}
            encoded = json.dumps(body).encode()  # NaN goes out as Python's NaN literal, as numpy-based servers do
            left = self.batch_cost_s - (time.perf_counter() - t0)
            if left > 0:
                time.sleep(left)
            with self._state:
                self.counters.batches_served += 1
                self.counters.texts += len(texts)
                self.counters.busy_s += time.perf_counter() - t0
        return 200, encoded


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, default=30001)
    parser.add_argument("--hidden-size", type=int, default=4096)
    parser.add_argument("--batch-cost-s", type=float, default=0.0)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO)
    StandinSidecar(hidden_size=args.hidden_size, batch_cost_s=args.batch_cost_s, port=args.port).serve_until_interrupted()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
