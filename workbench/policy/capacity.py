"""Finite generation capacity for the stand-in SGLang: a running-request cap and a FIFO waiting queue.

Modelled on SGLang's scheduler (sgl-project/sglang, ``python/sglang/srt``, read at commit 0003215c):

* ``io_struct.py`` ``GenerateReqInput._normalize_batch_inputs`` expands a request with ``n`` samples
  (``parallel_sample_num``) into ``batch_size * n`` requests, so each sample is one scheduled
  request: a ``/generate`` with ``n = 8`` takes 8 running slots.
* ``managers/scheduler.py`` ``get_new_batch_prefill`` admits requests from ``waiting_queue`` only while
  ``get_num_allocatable_reqs(running_bs) = max_running_requests - running_bs`` is positive (in
  queue order under the default ``--schedule-policy fcfs``); the rest wait.
* ``managers/scheduler.py`` ``_abort_on_queued_limit`` aborts an incoming request with HTTP 503 and
  ``"The request queue is full."`` when ``len(waiting_queue) + 1 > max_queued_requests``
  (``--max-queued-requests``; unset = unbounded).

Simplifications, said plainly: an admitted sequence runs for a fixed time (a real server's per-token
time grows with the batch), and a call whose samples would overflow the queue is refused whole.
"""

from __future__ import annotations

import heapq
import threading
import time
from collections import deque
from dataclasses import asdict, dataclass
from typing import Callable

QUEUE_FULL_MESSAGE = "The request queue is full."


class QueueFull(RuntimeError):
    """The waiting queue cannot take this call's sequences (SGLang answers 503)."""


@dataclass
class CapacityStats:
    calls: int = 0
    sequences: int = 0
    rejected_calls: int = 0
    max_running: int = 0          # sequences running at once (never above the cap)
    max_waiting: int = 0          # sequences waiting at once
    queue_wait_s: float = 0.0     # summed over calls: arrival until the call's last sequence started
    calls_that_waited: int = 0

    def as_dict(self) -> dict:
        return asdict(self)


class GenerationCapacity:
    """``run(k, seconds)`` blocks until ``k`` sequences got a slot in arrival order and each ran ``seconds``.

    Thread-safe; no scheduler thread: a finished sequence frees its slot when its end time passes, and
    waiting callers wake at the earliest end time or when the queue head moves.
    ``max_running_requests=None`` is an unbounded server (every call just takes ``seconds``).
    """

    def __init__(self, max_running_requests: int | None = None, max_queued_requests: int | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        if max_running_requests is not None and max_running_requests <= 0:
            raise ValueError(f"max_running_requests must be > 0 when set, got {max_running_requests}")
        if max_queued_requests is not None and max_queued_requests < 0:
            raise ValueError(f"max_queued_requests must be >= 0 when set, got {max_queued_requests}")
        self.max_running = max_running_requests
        self.max_queued = max_queued_requests
        self.stats = CapacityStats()
        self._clock = clock
        self._cond = threading.Condition()
        self._ends: list[float] = []       # heap: end times of running sequences
        self._queue: deque[int] = deque()  # ticket per waiting sequence, arrival order
        self._next_ticket = 0

    def _reap(self, now: float) -> None:
        while self._ends and self._ends[0] <= now:
            heapq.heappop(self._ends)

    def _free(self) -> int:
        return (self.max_running - len(self._ends)) if self.max_running is not None else 1 << 30

    def run(self, sequences: int, seconds: float) -> float:
        """Occupy ``sequences`` slots for ``seconds`` each; returns this call's queue wait in seconds."""
        sequences = max(1, sequences)
        arrived = self._clock()
        with self._cond:
            self._reap(arrived)
            must_wait = sequences - (min(self._free(), sequences) if not self._queue else 0)
            if self.max_queued is not None and must_wait and len(self._queue) + must_wait > self.max_queued:
                self.stats.rejected_calls += 1
                raise QueueFull(QUEUE_FULL_MESSAGE)
            self.stats.calls += 1
            self.stats.sequences += sequences
            mine = deque(range(self._next_ticket, self._next_ticket + sequences))
            self._next_ticket += sequences
            self._queue.extend(mine)
            last_end = started = now = arrived
            while mine:
                self._reap(now)
                admitted = False
                while mine and self._queue[0] == mine[0] and self._free() > 0:
                    self._queue.popleft()
                    mine.popleft()
                    last_end = now + seconds
                    heapq.heappush(self._ends, last_end)
                    started, admitted = now, True
                self.stats.max_running = max(self.stats.max_running, len(self._ends))
                self.stats.max_waiting = max(self.stats.max_waiting, len(self._queue))
                if admitted:
                    self._cond.notify_all()  # the head moved: the next caller may have a slot
                if mine:
                    self._cond.wait(timeout=max(0.0, self._ends[0] - now) if self._ends else None)
                    now = self._clock()
            waited = started - arrived
            self.stats.queue_wait_s += waited
            self.stats.calls_that_waited += waited > 0
        delay = last_end - self._clock()
        if delay > 0:
            time.sleep(delay)
        with self._cond:
            self._reap(self._clock())
            self._cond.notify_all()  # slots freed: wake waiters now rather than at their timeout
        return waited

    def snapshot(self) -> dict:
        with self._cond:
            self._reap(self._clock())
            return {**self.stats.as_dict(), "running": len(self._ends), "waiting": len(self._queue),
                    "max_running_requests": self.max_running, "max_queued_requests": self.max_queued}
