"""Plumbing shared by the project's HTTP stand-ins (SGLang, encoding sidecar).

A :class:`LoopbackJsonServer` is a real HTTP/1.1 server on 127.0.0.1 (stdlib ``http.server`` in a
thread) that answers JSON. Subclasses implement :meth:`handle_get` and :meth:`handle_post`, each
returning ``(status, body)``. ``stop()`` also closes kept-alive connections, so a stopped stand-in
looks dead to clients that hold a connection (as a crashed server would).
"""

from __future__ import annotations

import json
import logging
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

logger = logging.getLogger(__name__)

NOT_FOUND = (404, b'{"error": "not found"}')


class LoopbackJsonServer:
    """Base class: ``with Subclass(...) as server: server.url``."""

    name = "stand-in"
    keep_alive_s: float | None = None  # close a kept-alive connection idle this long (None: never)
    # Connections waiting to be accepted. The stdlib's 5 reset a burst of new connections (32 concurrent calls:
    # about half failed with ReadError on 2 busy cores), a fault no real server here has: each stand-in says its own.
    backlog: int = 128

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self.host = host
        self.port = port
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._conn_lock = threading.Lock()
        self._connections: set[socket.socket] = set()
        self._fault_lock = threading.Lock()
        self.closed_connections = threading.Semaphore(0)  # released once per connection that ended

    # --- to implement -----------------------------------------------------------------------------
    def handle_get(self, path: str) -> tuple[int, bytes]:
        return NOT_FOUND

    def handle_post(self, path: str, payload: Any) -> tuple[int, bytes]:
        return NOT_FOUND

    # --- lifecycle ----------------------------------------------------------------------------------
    @property
    def url(self) -> str:
        assert self._server is not None, "server not started"
        return f"http://{self.host}:{self._server.server_address[1]}"

    def start(self):
        self._server = ThreadingHTTPServer((self.host, self.port), _make_handler(self), bind_and_activate=False)
        self._server.daemon_threads = True
        self._server.request_queue_size = self.backlog  # read by server_activate's listen()
        try:
            self._server.server_bind()
            self._server.server_activate()
        except BaseException:
            self._server.server_close()
            raise
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        name=self.name, daemon=True)
        self._thread.start()
        logger.info("%s on %s", self.name, self.url)
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        with self._conn_lock:
            for conn in list(self._connections):
                try:
                    conn.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def wait_connections_closed(self, timeout_s: float = 10.0) -> bool:
        """Block until no connection is open (each one that ends releases ``closed_connections``); False if
        one was still open after ``timeout_s`` without any ending."""
        while True:
            with self._conn_lock:
                if not self._connections:
                    return True
            if not self.closed_connections.acquire(timeout=timeout_s):
                return False

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def serve_until_interrupted(self) -> None:
        """For ``python -m`` entry points: serve until Ctrl-C."""
        self.start()
        print(f"{self.name} serving on {self.url}", flush=True)  # CLI entry point: tell the caller where
        try:
            threading.Event().wait()
        except KeyboardInterrupt:
            pass
        finally:
            self.stop()

    # --- fault plans --------------------------------------------------------------------------------
    def take_fault(self, faults: Any, name: str, counters: Any = None) -> bool:
        """Consume one unit of the countdown fault ``faults.<name>``; True if it fires."""
        with self._fault_lock:
            left = getattr(faults, name)
            if left > 0:
                setattr(faults, name, left - 1)
                if counters is not None:
                    counters.errors_injected += 1
                return True
        return False


def _make_handler(server: LoopbackJsonServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        timeout = server.keep_alive_s  # a socket timeout: handle_one_request closes the idle connection

        def setup(self) -> None:
            super().setup()
            with server._conn_lock:
                server._connections.add(self.request)

        def finish(self) -> None:
            with server._conn_lock:
                server._connections.discard(self.request)
            super().finish()
            server.closed_connections.release()

        def log_message(self, fmt: str, *args: Any) -> None:
            logger.debug(server.name + ": " + fmt, *args)

        def _send(self, status: int, body: bytes) -> None:
            try:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
            except (BrokenPipeError, ConnectionResetError):  # the client gave up, or stop() closed it
                self.close_connection = True

        def do_GET(self) -> None:
            self._send(*server.handle_get(self.path))

        def do_POST(self) -> None:
            raw = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            try:
                payload = json.loads(raw)
            except json.JSONDecodeError:
                self._send(400, b'{"error": "bad json"}')
                return
            self._send(*server.handle_post(self.path, payload))

    return Handler
