"""Mining's typed vocabulary: one tactic attempt, one theorem's result, its status line.

``output.py`` (writing, resume) and ``summary.py`` (aggregation) depend on this module, not on the walk.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from workbench.trajectory import TrajectoryRecord

__all__ = ["Status", "EndReason", "SKIP_REASONS", "Attempt", "TheoremResult", "status_of"]


class Status(StrEnum):
    COMPLETED = "completed"
    SKIPPED = "skipped"
    TIMED_OUT = "timed_out"


class EndReason(StrEnum):
    """Why a theorem's walk ended (``theorems.jsonl`` ``reason``)."""

    QED = "qed"
    TARGET_NEGATIVES = "target_negatives"
    TRACE_EXHAUSTED = "trace_exhausted"  # the trace ended with goals left (closed by untraced structure)
    THEOREM_TIMEOUT = "theorem_timeout"
    NO_STEPS = "no_steps"
    START_FAILED = "start_failed"
    START_INFRA_ERROR = "start_infra_error"
    GT_FAILED = "gt_failed"
    GT_INFRA_ERROR = "gt_infra_error"
    UNALIGNED = "unaligned"  # a ground-truth step's goal is not among Lean's goals
    INTERNAL_ERROR = "internal_error"


SKIP_REASONS = frozenset({EndReason.START_FAILED, EndReason.START_INFRA_ERROR, EndReason.GT_FAILED,
                          EndReason.GT_INFRA_ERROR, EndReason.NO_STEPS, EndReason.UNALIGNED,
                          EndReason.INTERNAL_ERROR})


@dataclass(frozen=True, slots=True)
class Attempt:
    """One tactic sent to Lean (a row of the attempts log)."""

    theorem: str
    state_id: int  # the tree node the tactic was applied to
    step: int  # ground-truth step index of the state the candidate came from
    role: str  # ground_truth | ground_truth_open | candidate | chain
    tactic: str  # as the policy / trace wrote it
    sent: str  # as sent to Lean (possibly wrapped in `open ... in`)
    outcome: str
    error_kind: str | None
    messages: str
    latency_s: float
    open_prefix: str | None
    new_state_id: int | None = None
    timestamp_ms: int = 0


@dataclass
class TheoremResult:
    theorem: str
    status: str  # Status.*
    reason: str  # why the walk ended: qed, target_negatives, gt_failed, start_failed, infra_error, ...
    message: str = ""
    records: list[TrajectoryRecord] = field(default_factory=list)
    attempts: list[Attempt] = field(default_factory=list)
    counts: Counter = field(default_factory=Counter)
    num_steps: int = 0
    steps_walked: int = 0
    duration_s: float = 0.0
    generation_wait_s: float = 0.0
    lean_wait_s: float = 0.0
    start: dict[str, Any] = field(default_factory=dict)  # how the walk reached the trace's first state
    step0: str | None = None  # "replayed", or why ground-truth step 0 failed before the open retry

    def status_line(self) -> dict[str, Any]:
        """What the run log keeps per theorem (the run summary is aggregated from these)."""
        depth: dict[int, list[int]] = {}
        kinds: Counter = Counter()
        for r in self.records:
            row = depth.setdefault(r.depth_from_root, [0, 0])
            row[0 if r.label == "positive" else 1] += 1
            kinds[f"{r.label}.{r.record_kind}"] += 1
        return {
            "theorem": self.theorem,
            "status": self.status,
            "reason": self.reason,
            "message": self.message[:2000],
            "records": len(self.records),
            "num_steps": self.num_steps,
            "steps_walked": self.steps_walked,
            "duration_s": round(self.duration_s, 4),
            "generation_wait_s": round(self.generation_wait_s, 4),
            "lean_wait_s": round(self.lean_wait_s, 4),
            "counts": dict(self.counts),
            "record_kinds": dict(kinds),
            "depth": {str(k): v for k, v in sorted(depth.items())},
            "start": dict(self.start),
            "step0": self.step0,
            # Steps whose generation failed every retry got no candidates: the theorem's negatives are incomplete.
            "incomplete": self.counts["steps_without_candidates"] > 0,
            "steps_without_candidates": self.counts["steps_without_candidates"],
        }


def status_of(reason: str, *, timed_out: bool = False) -> Status:
    """A theorem's status from why its walk ended."""
    if timed_out:
        return Status.TIMED_OUT
    return Status.SKIPPED if reason in SKIP_REASONS else Status.COMPLETED
