"""A stand-in encoding sidecar: a real HTTP server on 127.0.0.1 speaking ``POST /encode`` (SPEC §2).

For tests and benchmarks only. Embeddings are deterministic pseudo-random vectors seeded by the text
(so equal texts get equal vectors). Batches are processed one at a time, each taking a fixed
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
import socket
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import numpy as np

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
class StandinSidecar:
    """Context manager: ``with StandinSidecar(batch_cost_s=0.01) as s: url = s.url``."""

    hidden_size: int = 4096
    batch_cost_s: float = 0.0
    host: str = "127.0.0.1"
    port: int = 0
    faults: SidecarFaults = field(default_factory=SidecarFaults)
    counters: SidecarCounters = field(default_factory=SidecarCounters)

    def __post_init__(self) -> None:
        self._gpu = threading.Lock()      # one batch at a time, like one GPU
        self._state = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._lock_conns = threading.Lock()
        self._connections: set[socket.socket] = set()   # open keep-alive connections, closed by stop()
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        assert self._server is not None, "server not started"
        return f"http://{self.host}:{self._server.server_address[1]}"

    def start(self) -> "StandinSidecar":
        self._server = ThreadingHTTPServer((self.host, self.port), _make_handler(self))
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        name="standin-sidecar", daemon=True)
        self._thread.start()
        logger.info("stand-in sidecar on %s", self.url)
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        with self._lock_conns:
            for conn in list(self._connections):  # a stopped server must look dead to kept-alive clients too
                try:
                    conn.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> "StandinSidecar":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _take(self, name: str) -> bool:
        with self._state:
            left = getattr(self.faults, name)
            if left > 0:
                setattr(self.faults, name, left - 1)
                self.counters.errors_injected += 1
                return True
            return False

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
            for t in texts:
                v = text_vector(t, dim)
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


def _make_handler(sidecar: StandinSidecar) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def setup(self) -> None:
            super().setup()
            with sidecar._lock_conns:
                sidecar._connections.add(self.request)

        def finish(self) -> None:
            with sidecar._lock_conns:
                sidecar._connections.discard(self.request)
            super().finish()

        def log_message(self, fmt: str, *args: Any) -> None:
            logger.debug("stand-in sidecar: " + fmt, *args)

        def _send(self, status: int, body: bytes) -> None:
            try:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
            except (BrokenPipeError, ConnectionResetError):  # the client gave up (timeouts) or stop() closed it
                self.close_connection = True

        def do_GET(self) -> None:
            if self.path == "/health":
                self._send(200, b"{}")
            elif self.path == "/get_model_info":
                self._send(200, json.dumps({"model_path": "standin-sidecar", "standin": True,
                                            "hidden_size": sidecar.hidden_size}).encode())
            elif self.path == "/stats":
                self._send(200, json.dumps(dataclasses.asdict(sidecar.counters)).encode())
            else:
                self._send(404, b'{"error": "not found"}')

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            raw = self.rfile.read(length)
            if self.path != "/encode":
                self._send(404, b'{"error": "not found"}')
                return
            try:
                payload = json.loads(raw)
            except json.JSONDecodeError:
                self._send(400, b'{"error": "bad json"}')
                return
            self._send(*sidecar.answer(payload))

    return Handler


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, default=30001)
    parser.add_argument("--hidden-size", type=int, default=4096)
    parser.add_argument("--batch-cost-s", type=float, default=0.0)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO)
    sidecar = StandinSidecar(hidden_size=args.hidden_size, batch_cost_s=args.batch_cost_s, port=args.port).start()
    print(f"stand-in sidecar serving on {sidecar.url}", flush=True)  # CLI entry point: tell the caller where
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        sidecar.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
