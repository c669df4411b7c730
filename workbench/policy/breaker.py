"""The generation server's circuit breaker (pure): when failed calls say the server is gone or broken.

Every HTTP attempt at ``/generate`` is a success (the server answered: samples, or a 4xx about this one
request) or a failure (refused connection, timeout, 5xx, an ``abort`` sample, a malformed answer). The
breaker trips on ``consecutive`` failures in a row, or when at least ``failure_rate`` of the last
``window`` attempts failed. What those failures look like on real SGLang (``/work/notes/sglang_facts.md``):
a killed or restarting server refuses connections while it loads weights (§3: the port is bound only
after ``_launch_subprocesses``); an overloaded one answers 503 "The request queue is full." or the
waiting/running-timeout 503s (§6c, 0.5.23 ``scheduler.py:3552-3562``, ``:3605-3648``); a scheduler fault
answers 500 (§6a); an aborted request comes back as 200 with ``finish_reason.type == "abort"`` (§6b); a
hung scheduler answers nothing (the client's timeout). One of those now and then is retried; a run of
them means no theorem can get its candidates, so the run stops (exit 3) and ``--resume`` continues.
"""

from __future__ import annotations

from collections import Counter, deque
from dataclasses import dataclass

__all__ = ["BreakerConfig", "CircuitBreaker"]


@dataclass(frozen=True, slots=True)
class BreakerConfig:
    consecutive: int = 8         # this many failed attempts in a row trip it ...
    window: int = 40             # ... or, over the last `window` attempts (once that many were made),
    failure_rate: float = 0.5    # at least this share failed

    def __post_init__(self) -> None:
        if self.consecutive < 1 or self.window < 1 or not 0.0 < self.failure_rate <= 1.0:
            raise ValueError(f"invalid circuit-breaker settings: {self}")


class CircuitBreaker:
    """``note(ok, kind)`` after every attempt; ``tripped`` is the reason once it has tripped (for good)."""

    def __init__(self, config: BreakerConfig, *, name: str) -> None:
        self.config, self.name = config, name
        self.tripped: str | None = None
        self._recent: deque[str | None] = deque(maxlen=config.window)  # the failure's kind, None = answered
        self._in_a_row = 0

    def note(self, ok: bool, kind: str = "") -> str | None:
        """Record one attempt; returns the trip reason when this attempt trips the breaker."""
        self._recent.append(None if ok else (kind or "failure"))
        if ok:
            self._in_a_row = 0
            return None
        self._in_a_row += 1
        if self.tripped is not None:
            return None
        c = self.config
        failed = sum(k is not None for k in self._recent)
        if self._in_a_row >= c.consecutive:
            why = f"{self._in_a_row} generation calls in a row failed"
        elif len(self._recent) == c.window and failed >= c.failure_rate * c.window:
            why = f"{failed} of the last {c.window} generation calls failed"
        else:
            return None
        kinds = ", ".join(f"{k} x{n}" for k, n in Counter(k for k in self._recent if k is not None).most_common())
        self.tripped = f"{self.name}: {why} ({kinds}); circuit breaker open"
        return self.tripped
