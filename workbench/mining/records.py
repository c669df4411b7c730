"""Mining's typed vocabulary: one tactic attempt, one theorem's counters and result, its status line.

``output.py`` (writing, resume) and ``summary.py`` (aggregation) depend on this module, not on the walk.
The counters' on-disk spelling (``"gt.steps"``, ``"outcome.divergent"``, ...) lives here and nowhere
else: the walk increments typed fields, readers go through :meth:`WalkCounts.from_dict`.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Iterable, Mapping

from workbench.trajectory import TrajectoryRecord

__all__ = ["Status", "EndReason", "SKIP_REASONS", "INFRA_REASONS", "Attempt", "WalkCounts", "TheoremResult",
           "status_of"]


class Status(StrEnum):
    COMPLETED = "completed"
    SKIPPED = "skipped"
    TIMED_OUT = "timed_out"
    UNFINISHED = "unfinished"  # the walk could not finish (generation failed): never sealed, --resume redoes it


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
    GENERATION_FAILED = "generation_failed"  # a step's generation call failed after retries: unfinished


SKIP_REASONS = frozenset({EndReason.START_FAILED, EndReason.START_INFRA_ERROR, EndReason.GT_FAILED,
                          EndReason.GT_INFRA_ERROR, EndReason.NO_STEPS, EndReason.UNALIGNED,
                          EndReason.INTERNAL_ERROR})
# Walks ended by infrastructure, not by Lean's verdict: --resume mines them again (up to --retry-infra times).
INFRA_REASONS = frozenset({EndReason.START_INFRA_ERROR, EndReason.GT_INFRA_ERROR})


@dataclass(frozen=True, slots=True, kw_only=True)
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


def _count(key: str) -> Any:
    return field(default=0, metadata={"key": key})


def _family(prefix: str) -> Any:
    return field(default_factory=Counter, metadata={"prefix": prefix})


@dataclass
class WalkCounts:
    """What one walk (or, summed, a run) counted. Fields are typed; ``to_dict``/``from_dict`` are the only
    places the status line's spelling appears. Families (``Counter``) hold open-ended kinds: candidate
    outcomes, Lean limits, start problems."""

    # ground truth
    gt_steps: int = _count("gt.steps")
    gt_failed_plain: int = _count("gt.failed_plain")  # failed as written (before the `open … in` retry)
    gt_step0_failed_plain: int = _count("gt.step0_failed_plain")
    gt_rescued_by_open: int = _count("gt.rescued_by_open")
    gt_failed: int = _count("gt.failed")  # failed after the retry: the walk left the ground-truth path
    gt_step0_failed: int = _count("gt.step0_failed")
    gt_infra_failed: int = _count("gt.infra_failed")
    gt_failed_limit: Counter = _family("gt.failed_limit.")  # LimitKind -> ground-truth steps Lean gave up on
    # how the walk reached the trace's first state: the introduced state compared with it
    start: Counter = _family("start.")  # matched (exact) | normalised | fuzzy | mismatch | intro_failed | …
    # `mine --source-root`: file_scope (entered) | no_file | not_found | header_failed (fell back to no scope)
    start_scope: Counter = _family("scope.")
    # Lean's binders (printExprAST) against the trace's first-state hypotheses
    binders_from_lean: int = _count("binders.from_lean")  # the intro named Lean's binders (1 per theorem)
    binders_from_trace: int = _count("binders.from_trace")  # no s-expression: the trace's names were used
    binders_introduced: int = _count("binders.introduced")
    binders_dropped: int = _count("binders.dropped")  # trace hypotheses Lean's type lacks (dropped variables)
    binders_unnamed: int = _count("binders.unnamed")  # introduced binders the trace does not show (`_`)
    # goal alignment
    align_quality: Counter = _family("align.quality.")  # exact | normalised | fuzzy | none, one per step
    align_after_mismatch: int = _count("align.after_mismatch")
    align_nested_skipped: int = _count("align.nested_skipped")
    align_unaligned: Counter = _family("align.unaligned.")  # no_match | ambiguous | no_goals: ended unaligned
    align_other_goal: int = _count("align.other_goal")
    # infrastructure (processes that died, hung or answered garbage)
    infra_garbage: int = _count("infra.garbage")
    infra_protocol_error: int = _count("infra.protocol_error")
    infra_timeout: int = _count("infra.timeout")
    infra_process_error: int = _count("infra.process_error")
    infra_rebinds: int = _count("infra.rebinds")
    # the policy
    policy_rejected: int = _count("policy_rejected")  # 4xx: the server refused the request (not transient)
    policy_errors: int = _count("policy_errors")  # failed generation calls (each retry counts)
    policy_steps: int = _count("policy.steps")  # steps whose generation call was answered
    steps_generation_failed: int = _count("policy.steps_failed")  # ... failed after retries (theorem unfinished)
    policy_cut_by_timeout: int = _count("policy.cut_by_timeout")  # the budget ran out waiting for the server
    steps_without_candidates: int = _count("steps_without_candidates")  # older status lines: failed steps
    #                                                                     this version never seals
    # candidates and their chains
    outcomes: Counter = _family("outcome.")  # Outcome -> candidates
    late_same_state: int = _count("labels.late_same_state")  # negatives relabelled: a later ground-truth state
    chain_interrupted: int = _count("chain.interrupted")
    chain_failed: int = _count("chain.failed")
    chain_rescued: int = _count("chain.rescued")
    chain_rescued_nodes: int = _count("chain.rescued_nodes")
    chain_incomplete: int = _count("chain.incomplete")
    # keys this version does not know (a status line written by another version): kept, never dropped
    other: Counter = field(default_factory=Counter)

    # -- the on-disk spelling ----------------------------------------------------------------------

    def to_dict(self) -> dict[str, int]:
        """Non-zero counters by their status-line key."""
        out: dict[str, int] = {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if "key" in f.metadata:
                if value:
                    out[f.metadata["key"]] = value
            else:
                prefix = f.metadata.get("prefix", "")
                out.update({f"{prefix}{k}": v for k, v in sorted(value.items()) if v})
        return out

    @classmethod
    def from_dict(cls, raw: Mapping[str, int] | None) -> "WalkCounts":
        counts = cls()
        for key, value in (raw or {}).items():
            name, family_key = _SPELLING[key] if key in _SPELLING else _family_of(key)
            if name is None:
                counts.other[key] += int(value)
            elif family_key is None:
                setattr(counts, name, getattr(counts, name) + int(value))
            else:
                getattr(counts, name)[family_key] += int(value)
        return counts

    def __iadd__(self, other: "WalkCounts") -> "WalkCounts":
        for f in dataclasses.fields(self):
            mine, theirs = getattr(self, f.name), getattr(other, f.name)
            if isinstance(mine, Counter):
                mine.update(theirs)
            else:
                setattr(self, f.name, mine + theirs)
        return self

    @classmethod
    def total(cls, many: "Iterable[WalkCounts]") -> "WalkCounts":
        out = cls()
        for c in many:
            out += c
        return out

    # -- views the summary and resume use ----------------------------------------------------------

    @property
    def infra_events(self) -> int:
        return (self.infra_garbage + self.infra_protocol_error + self.infra_timeout + self.infra_process_error
                + self.infra_rebinds)

    def _group(self, prefix: str) -> dict[str, int]:
        return {k.removeprefix(prefix): v for k, v in sorted(self.to_dict().items()) if k.startswith(prefix)}

    def alignment(self) -> dict[str, int]:
        """Goal-alignment counters by name (``other_goal``, ``nested_skipped``, ``unaligned.no_match``, ``quality.exact``, ...)."""
        return self._group("align.")

    def infrastructure(self) -> dict[str, int]:
        return self._group("infra.")

    def chains(self) -> dict[str, int]:
        return self._group("chain.")

    def candidate_outcomes(self) -> dict[str, int]:
        return self._group("outcome.")

    def failed_by_lean_limit(self) -> dict[str, int]:
        return self._group("gt.failed_limit.")


_SPELLING: dict[str, tuple[str, None]] = {
    f.metadata["key"]: (f.name, None) for f in dataclasses.fields(WalkCounts) if "key" in f.metadata}
_FAMILIES: list[tuple[str, str]] = sorted(
    ((f.metadata["prefix"], f.name) for f in dataclasses.fields(WalkCounts) if "prefix" in f.metadata),
    key=lambda p: -len(p[0]))  # the longest prefix first: "gt.failed_limit." before any "gt."


def _family_of(key: str) -> tuple[str | None, str | None]:
    for prefix, name in _FAMILIES:
        if key.startswith(prefix):
            return name, key[len(prefix):]
    return None, None


@dataclass
class TheoremResult:
    theorem: str
    status: Status
    reason: EndReason  # why the walk ended
    message: str = ""
    records: list[TrajectoryRecord] = field(default_factory=list)
    attempts: list[Attempt] = field(default_factory=list)
    counts: WalkCounts = field(default_factory=WalkCounts)
    num_steps: int = 0
    steps_walked: int = 0
    duration_s: float = 0.0
    generation_wait_s: float = 0.0
    lean_wait_s: float = 0.0
    start: dict[str, Any] = field(default_factory=dict)  # how the walk reached the trace's first state
    step0: str | None = None  # "replayed", or why ground-truth step 0 failed before the open retry
    align: list[str] = field(default_factory=list)  # per aligned step: exact | normalised | fuzzy | none

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
            "counts": self.counts.to_dict(),
            "record_kinds": dict(kinds),
            "depth": {str(k): v for k, v in sorted(depth.items())},
            "start": dict(self.start),
            "step0": self.step0,
            "align": list(self.align),
            # (Older versions wrote "incomplete" / "steps_without_candidates" here: steps whose generation
            # failed, sealed anyway. A failed step now leaves its theorem unfinished and never sealed.)
        }


def status_of(reason: EndReason, *, timed_out: bool = False) -> Status:
    """A theorem's status from why its walk ended."""
    if timed_out:
        return Status.TIMED_OUT
    if reason is EndReason.GENERATION_FAILED:
        return Status.UNFINISHED
    return Status.SKIPPED if reason in SKIP_REASONS else Status.COMPLETED
