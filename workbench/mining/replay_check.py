"""Replay only the ground truth of many theorems and tally how each walk started and ended.

No policy: every step gets no candidates, so this measures what the walk itself can follow (Lean's
binders introduced, step 0, the steps after it, how each step's goal was found) on a Lean backend — the
simulator in tests and notebooks, Pantograph for real. ``introduce_binders=False`` is the reference
implementation's walk (ground truth applied straight to ``copyFrom``'s ∀-root, in trace order, always to
the main goal), kept to show what it cost.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from dataclasses import dataclass, field, replace
from typing import Any, Iterable

from workbench.lean import LeanConfig, PantographBackend
from workbench.mining.records import EndReason, TheoremResult
from workbench.mining.walk import WalkParams, walk_theorem
from workbench.traces import Theorem

__all__ = ["NoCandidates", "ReplayTally", "ground_truth_params", "replay_ground_truth", "LEAN_VERDICT_ENDS"]

# A walk that ends here went as far as Lean let it: to the proof's end, or to a step Lean refused.
LEAN_VERDICT_ENDS = frozenset({EndReason.QED, EndReason.TRACE_EXHAUSTED, EndReason.GT_FAILED})


class NoCandidates:
    """A policy that proposes nothing: the walk follows the ground truth alone."""

    async def candidates(self, state_pp: str, n: int, *, theorem: str) -> list[Any]:
        return []

    def provenance(self) -> dict:
        return {"policy": "none"}

    async def aclose(self) -> None:
        return None


def ground_truth_params(params: WalkParams | None = None, *, introduce_binders: bool = True) -> WalkParams:
    """The walk's parameters for a ground-truth-only replay (no candidates, no overlap)."""
    return replace(params or WalkParams(), introduce_binders=introduce_binders, align_goals=introduce_binders,
                   candidates_per_step=0, overlap_generation=False)


@dataclass
class ReplayTally:
    theorems: int = 0
    start: Counter = field(default_factory=Counter)  # matched / normalised / fuzzy / mismatch / intro_failed / …
    binders: Counter = field(default_factory=Counter)  # lean / trace / none: where the intro's binders came from
    dropped: Counter = field(default_factory=Counter)  # theorems / variables: trace hypotheses Lean's type lacks
    step0: Counter = field(default_factory=Counter)  # replayed / binder_context / namespace / other / infra
    ended: Counter = field(default_factory=Counter)  # qed / gt_failed / unaligned / …
    align: Counter = field(default_factory=Counter)  # nested_skipped / unaligned.* / quality.* / after_mismatch
    quality_by_step: dict[str, Counter] = field(default_factory=dict)  # "0", "1", …, "5+" -> quality -> steps
    without_unaligned: int = 0  # theorems walked to their end (qed or trace end) without an unaligned step
    to_lean_verdict: int = 0  # ... or to a ground-truth step Lean refused (gt_failed), never unaligned

    def add(self, result: TheoremResult) -> None:
        self.theorems += 1
        self.start[result.start.get("problem") or "matched"] += 1
        self.binders[result.start.get("binders") or "none"] += 1
        if result.start.get("dropped"):
            self.dropped["theorems"] += 1
            self.dropped["variables"] += len(result.start["dropped"])
        self.step0[result.step0 or "not_reached"] += 1
        self.ended[result.reason] += 1
        self.align.update(result.counts.alignment())
        for i, quality in enumerate(result.align):
            self.quality_by_step.setdefault(str(i) if i < 5 else "5+", Counter())[quality] += 1
        self.without_unaligned += result.reason in (EndReason.QED, EndReason.TRACE_EXHAUSTED)
        self.to_lean_verdict += result.reason in LEAN_VERDICT_ENDS

    def as_dict(self) -> dict[str, Any]:
        share = (lambda n: round(n / self.theorems, 4) if self.theorems else None)
        return {"theorems": self.theorems, "start": dict(self.start), "binders": dict(self.binders),
                "dropped": dict(self.dropped), "step0": dict(self.step0), "ended": dict(self.ended),
                "align": dict(self.align),
                "quality_by_step": {k: dict(v) for k, v in sorted(self.quality_by_step.items())},
                "walked_end_to_end_without_unaligned_step": self.without_unaligned,
                "walked_to_end_or_lean_verdict": self.to_lean_verdict,
                "started_with_lean_binders_share": share(self.binders["lean"]),
                "walked_to_end_or_lean_verdict_share": share(self.to_lean_verdict),
                "step0_replayed_share": share(self.step0["replayed"])}


async def replay_ground_truth(theorems: Iterable[Theorem], config: LeanConfig, *, introduce_binders: bool = True,
                              concurrency: int = 8, simulated: bool = True,
                              params: WalkParams | None = None) -> ReplayTally:
    params = ground_truth_params(params, introduce_binders=introduce_binders)
    tally = ReplayTally()
    gate = asyncio.Semaphore(concurrency)
    async with PantographBackend(config) as lean:
        async def one(thm: Theorem) -> None:
            async with gate:
                tally.add(await walk_theorem(thm, lean, NoCandidates(), params, simulated=simulated))

        await asyncio.gather(*(one(t) for t in theorems if t.steps))
    return tally
