"""``serve-encoder``: an :class:`~workbench.encode.hf.HFEncoder` behind the sidecar API of SPEC §2 (FastAPI).

- ``POST /encode`` ``{"text": "..." | [...], "hidden_size": 4096}`` -> ``{"embedding": [...]}`` for one string,
  ``{"embeddings": [[...], ...]}`` for a list. The texts are encoded as sent (the client applies the template).
- ``GET /health`` 200 once the model is loaded (it loads before the port is served).
- ``GET /info`` the encoder identity without ``template`` (clients refuse a server whose identity differs
  from what they expect), the batching settings, the request limits and the counters.

Request limits (:class:`RequestLimits`): a body over ``max_body_bytes`` is answered 413 before it is read
(from ``Content-Length``, or while a chunked body streams in), and so is a text over ``max_text_chars``,
before it is tokenised; the message names the limit and the flag that sets it. (Without them one 30 MB
request took 140 s and 9.7 GB, and 119 MB reached 16 GB without an answer.)

Micro-batching: the texts of concurrent requests wait in one queue; a round starts ``linger_s`` after the
first waiting text (or at once when ``max_batch`` texts or ``token_budget`` tokens wait), takes every waiting text and runs them in
length-sorted batches planned by :func:`~workbench.encode.hf.plan_batches`, one forward at a time. A lone
request is therefore batched exactly as in-process ``HFEncoder.encode`` batches it. One log line per forward.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import socket
import threading
import time
from dataclasses import asdict, dataclass, field
from typing import Any, Iterator

import numpy as np
from pydantic import BaseModel

from workbench.encode.hf import HFEncoder, plan_batches
from workbench.encode.identity import EncodeError

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class BatcherConfig:
    linger_s: float = 0.005      # how long the first waiting text waits for company
    token_budget: int = 32768    # padded tokens per forward
    max_batch: int = 64          # texts per forward
    max_waiting: int = 65536     # texts queued before new requests get 503

    def __post_init__(self) -> None:
        if self.linger_s < 0 or self.token_budget <= 0 or self.max_batch <= 0 or self.max_waiting <= 0:
            raise ValueError(f"invalid batching settings: {self}")


@dataclass(frozen=True, slots=True)
class RequestLimits:
    max_body_bytes: int = 16 * 1024 * 1024   # one /encode body (a client batch of 32 states is ~10-100 KB)
    max_text_chars: int = 100_000            # one text: far past any tokenizer window (max_length tokens)

    def __post_init__(self) -> None:
        if self.max_body_bytes <= 0 or self.max_text_chars <= 0:
            raise ValueError(f"invalid request limits: {self}")


DRAIN_BYTES = 256 * 1024 * 1024  # past this a refused body's sender gets a closed connection instead of the 413


class BodyLimit:
    """ASGI middleware: answer 413 to a request body over ``max_bytes`` without reading (or keeping) it."""

    def __init__(self, app: Any, max_bytes: int) -> None:
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        length = dict(scope.get("headers") or []).get(b"content-length")
        if length is not None:
            if int(length) > self.max_bytes:
                await self._drain(receive)
                return await self._refuse(send, f"{int(length)} bytes")
            return await self.app(scope, receive, send)
        chunks, total = [], 0  # chunked: read up to the limit, then hand the body on
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return
            total += len(message.get("body", b""))
            if total > self.max_bytes:
                if message.get("more_body"):
                    await self._drain(receive)
                return await self._refuse(send, f"more than {self.max_bytes} bytes")
            chunks.append(message.get("body", b""))
            if not message.get("more_body"):
                break
        body = [{"type": "http.request", "body": b"".join(chunks), "more_body": False}]

        async def replay() -> dict:
            return body.pop() if body else await receive()

        await self.app(scope, replay, send)

    @staticmethod
    async def _drain(receive: Any) -> None:
        """Read and discard the rest of a refused body (up to ``DRAIN_BYTES``): closing a socket with unread
        data makes the kernel send a reset, and the client then sees a broken connection, not the 413."""
        drained = 0
        while drained <= DRAIN_BYTES:
            message = await receive()
            if message["type"] != "http.request":
                return
            drained += len(message.get("body", b""))
            if not message.get("more_body"):
                return

    async def _refuse(self, send: Any, size: str) -> None:
        text = json.dumps({"error": f"request body of {size} is over this server's limit of {self.max_bytes} "
                                    "bytes (serve-encoder --max-body-mb); send fewer texts per request"}).encode()
        await send({"type": "http.response.start", "status": 413,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(text)).encode()),
                                (b"connection", b"close")]})
        await send({"type": "http.response.body", "body": text})


@dataclass(slots=True)
class ServerStats:
    requests: int = 0
    texts: int = 0
    rounds: int = 0
    forwards: int = 0
    rejected_busy: int = 0
    rejected_too_large: int = 0   # texts over max_text_chars (bodies over the limit never reach the app)
    failed_forwards: int = 0


@dataclass(slots=True)
class _Waiting:
    ids: list[int]
    future: asyncio.Future
    request: int
    since: float = field(default_factory=time.perf_counter)


class EncodeRequest(BaseModel):
    """SPEC §2's /encode body (FastAPI answers 422 naming the field when it is not this)."""

    text: str | list[str]
    hidden_size: int | None = None


class QueueFull(Exception):
    pass


class MicroBatcher:
    """One queue of tokenised texts from all requests; one forward in flight (the model's lock)."""

    def __init__(self, encoder: HFEncoder, config: BatcherConfig) -> None:
        self.encoder = encoder
        self.config = config
        self.stats = ServerStats()
        self._waiting: list[_Waiting] = []
        self._arrived = asyncio.Event()

    async def submit(self, ids: list[list[int]]) -> np.ndarray:
        """Vectors [len(ids), dim] for one request's token ids, once their forwards have run."""
        if len(self._waiting) + len(ids) > self.config.max_waiting:
            self.stats.rejected_busy += 1
            raise QueueFull(f"{len(self._waiting)} texts already waiting (max {self.config.max_waiting})")
        self.stats.requests += 1
        self.stats.texts += len(ids)
        loop = asyncio.get_running_loop()
        items = [_Waiting(row, loop.create_future(), self.stats.requests) for row in ids]
        self._waiting.extend(items)
        self._arrived.set()
        rows = await asyncio.gather(*(item.future for item in items))
        return np.stack(rows).astype(np.float32, copy=False) if rows else np.zeros((0, self.encoder.identity.dim),
                                                                                    dtype=np.float32)

    def _forward_full(self) -> bool:
        """Enough waiting to fill a forward: no point lingering longer."""
        return (len(self._waiting) >= self.config.max_batch
                or sum(len(item.ids) for item in self._waiting) >= self.config.token_budget)

    async def run(self) -> None:
        """The batching loop (a task for the server's lifetime)."""
        while True:
            await self._arrived.wait()
            self._arrived.clear()
            if not self._waiting:
                continue
            deadline = self._waiting[0].since + self.config.linger_s
            while not self._forward_full() and (left := deadline - time.perf_counter()) > 0:
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(self._arrived.wait(), timeout=left)
                self._arrived.clear()
            round_items, self._waiting = self._waiting, []
            self.stats.rounds += 1
            await self._run_round(round_items)

    async def _run_round(self, items: list[_Waiting]) -> None:
        live = [item for item in items if not item.future.done()]  # a disconnected client's texts are dropped
        groups = plan_batches([len(item.ids) for item in live], max_batch=self.config.max_batch,
                              token_budget=self.config.token_budget)
        for group in groups:
            batch = [live[i] for i in group]
            splits_before = self.encoder.stats.oom_splits
            started = time.perf_counter()
            try:
                vectors = await asyncio.to_thread(self.encoder.forward, [item.ids for item in batch])
            except Exception as e:  # noqa: BLE001 - the error goes to the requests of this batch
                self.stats.failed_forwards += 1
                logger.error("forward of %d texts failed: %s", len(batch), e)
                for item in batch:
                    if not item.future.done():
                        item.future.set_exception(e)
                continue
            self.stats.forwards += 1
            for item, row in zip(batch, vectors):
                if not item.future.done():
                    item.future.set_result(row)
            lengths = [len(item.ids) for item in batch]
            logger.info("batch: %d texts from %d requests, %d tokens (%d padded), waited %.1f ms, forward %.1f ms, "
                        "oom splits %d", len(batch), len({item.request for item in batch}), sum(lengths),
                        len(batch) * max(lengths), 1000 * (started - min(item.since for item in batch)),
                        1000 * (time.perf_counter() - started), self.encoder.stats.oom_splits - splits_before)


def server_identity(encoder: HFEncoder) -> dict[str, Any]:
    """The identity a server reports: everything but the template, which the client applies."""
    identity = encoder.identity.to_dict()
    identity.pop("template")
    return identity


def create_app(encoder: HFEncoder, config: BatcherConfig = BatcherConfig(),
               limits: RequestLimits = RequestLimits()) -> Any:
    """The FastAPI app; the model loads and the batching loop starts in its lifespan."""
    from fastapi import FastAPI, HTTPException
    from fastapi.responses import JSONResponse, Response
    batcher = MicroBatcher(encoder, config)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI):
        await asyncio.to_thread(encoder.load)
        task = asyncio.create_task(batcher.run(), name="micro-batcher")
        logger.info("serving %s (dim %d, %s)", encoder.identity.model, encoder.identity.dim,
                    encoder.identity.compute_dtype)
        try:
            yield
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    app = FastAPI(title="workbench encoder", lifespan=lifespan)
    app.state.batcher = batcher
    app.add_middleware(BodyLimit, max_bytes=limits.max_body_bytes)

    @app.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/info")
    async def info() -> dict[str, Any]:
        return {"server": "workbench serve-encoder", "identity": server_identity(encoder),
                "batching": asdict(config), "limits": asdict(limits), "stats": asdict(batcher.stats),
                "encoder_stats": encoder.stats.to_dict()}

    @app.post("/encode")
    async def encode(request: EncodeRequest) -> Response:
        dim = encoder.identity.dim
        if request.hidden_size is not None and request.hidden_size != dim:
            raise HTTPException(400, f"hidden_size {request.hidden_size} requested, this server's model "
                                     f"({encoder.identity.model}) has {dim}")
        single = isinstance(request.text, str)
        texts = [request.text] if single else request.text
        too_long = next((i for i, t in enumerate(texts) if len(t) > limits.max_text_chars), None)
        if too_long is not None:
            batcher.stats.rejected_too_large += 1
            raise HTTPException(413, f"text {too_long} has {len(texts[too_long])} characters, over this server's "
                                     f"limit of {limits.max_text_chars} (serve-encoder --max-text-chars)")
        ids = await asyncio.to_thread(encoder.tokenize, texts) if texts else []
        try:
            matrix = await batcher.submit(ids)
        except QueueFull as e:
            raise HTTPException(503, f"server busy: {e}") from e
        except EncodeError as e:  # e.g. one text that alone does not fit in memory: retrying will not help
            raise HTTPException(400, str(e)) from e
        rows = matrix.tolist()  # float32 -> float -> JSON -> float32 round-trips exactly
        body = {"embedding": rows[0]} if single else {"embeddings": rows}
        return Response(json.dumps(body), media_type="application/json")

    @app.exception_handler(HTTPException)
    async def error(_request: Any, exc: HTTPException) -> JSONResponse:
        return JSONResponse({"error": exc.detail}, status_code=exc.status_code)

    return app


def listening_socket(host: str, port: int) -> socket.socket:
    """Bound and listening: clients can connect (and wait in the backlog) before the server loop runs."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(128)
    return sock


def uvicorn_server(app: Any, *, log_level: str = "warning") -> Any:
    import uvicorn

    return uvicorn.Server(uvicorn.Config(app, log_level=log_level, access_log=False, timeout_graceful_shutdown=5))


@contextlib.contextmanager
def serve_in_thread(app: Any, host: str = "127.0.0.1", port: int = 0, *, start_timeout_s: float = 300.0) -> Iterator[str]:
    """Serve ``app`` on a loopback port in a thread (tests, benchmarks); yields the base URL."""
    sock = listening_socket(host, port)
    server = uvicorn_server(app)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, name="serve-encoder", daemon=True)
    thread.start()
    try:
        # uvicorn sets `started` after the lifespan (model load); no sleep-polling on the socket.
        deadline = time.monotonic() + start_timeout_s
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                raise EncodeError("serve-encoder did not start (see the log above)")
            thread.join(0.02)
        yield f"http://{host}:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(30)
        sock.close()


__all__ = ["BatcherConfig", "RequestLimits", "BodyLimit", "MicroBatcher", "create_app", "serve_in_thread",
           "server_identity"]
