"""What can go wrong with a policy server, as exceptions (the walk and the run decide what each means)."""

from __future__ import annotations

__all__ = ["PolicyError", "PolicyProtocolError", "PolicyUnavailable", "CircuitBreakerOpen", "PolicyRequestRejected",
           "GenerationFailed"]


class PolicyError(RuntimeError):
    """The policy server is broken (infrastructure, not a bad step)."""


class PolicyProtocolError(PolicyError):
    """The server answered something that is not SGLang's documented JSON."""


class PolicyUnavailable(PolicyError):
    """The server cannot be used: it never became ready, or the circuit breaker tripped (stop the run)."""


class CircuitBreakerOpen(PolicyUnavailable):
    """Generation calls kept failing (refused connections, 5xx, aborts, timeouts; see ``policy/breaker.py``):
    the server is gone or broken (raised from then on)."""


class GenerationFailed(PolicyError):
    """One step's generation call failed after its retries (5xx, 503, abort, timeout, refused connection).

    Not a step with zero candidates: the step has no answer, so the theorem is unfinished and a resumed
    run mines it again (asking again later can help, unlike :class:`PolicyRequestRejected`).
    """

    retry_helps = True

    def __init__(self, message: str, *, kind: str) -> None:
        super().__init__(message)
        self.kind = kind  # the last failure: "connection refused", "HTTP 503", "abort", "timeout", ...


class PolicyRequestRejected(PolicyError):
    """The server refused this one request with a 4xx (e.g. the prompt is longer than the context).

    The same request gets the same answer: retrying the step, or redoing the theorem on resume, does not help.
    """

    retry_helps = False

    def __init__(self, message: str, *, status: int, server_message: str) -> None:
        super().__init__(message)
        self.status = status
        self.server_message = server_message
