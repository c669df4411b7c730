"""What can go wrong with a policy server, as exceptions (the walk and the run decide what each means)."""

from __future__ import annotations

__all__ = ["PolicyError", "PolicyProtocolError", "PolicyUnavailable", "CircuitBreakerOpen", "PolicyRequestRejected"]


class PolicyError(RuntimeError):
    """The policy server is broken (infrastructure, not a bad step)."""


class PolicyProtocolError(PolicyError):
    """The server answered something that is not SGLang's documented JSON."""


class PolicyUnavailable(PolicyError):
    """The server cannot be used: it never became ready, or the circuit breaker tripped (stop the run)."""


class CircuitBreakerOpen(PolicyUnavailable):
    """Connections were refused for ``breaker_window_s``: the server is gone (raised from then on)."""


class PolicyRequestRejected(PolicyError):
    """The server refused this one request with a 4xx (e.g. the prompt is longer than the context).

    The same request gets the same answer: retrying the step, or redoing the theorem on resume, does not help.
    """

    retry_helps = False

    def __init__(self, message: str, *, status: int, server_message: str) -> None:
        super().__init__(message)
        self.status = status
        self.server_message = server_message
