"""Connection-pool limits for the project's HTTP clients (SGLang, the encoding sidecar, the doctor)."""

from __future__ import annotations

import httpx

# SGLang's uvicorn, and `workbench serve-encoder`'s, close a kept-alive connection idle 5 s (timeout_keep_alive=5).
# httpx's own default keeps it 5 s too, so a request sent just as the server closes the connection fails with
# "Server disconnected without sending a response" (encode/httpx#2487). The client lets it go a second earlier.
KEEPALIVE_EXPIRY_S = 4.0


def pool_limits(connections: int) -> httpx.Limits:
    """At most ``connections`` open (and kept alive), none reused after ``KEEPALIVE_EXPIRY_S`` idle."""
    return httpx.Limits(max_connections=connections, max_keepalive_connections=connections,
                        keepalive_expiry=KEEPALIVE_EXPIRY_S)


__all__ = ["KEEPALIVE_EXPIRY_S", "pool_limits"]
