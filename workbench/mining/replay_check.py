"""Replay only the ground truth of many theorems and tally how each walk started and ended.

No policy: every step gets no candidates, so this measures what the walk itself can follow
(``intro`` setup, step 0, the steps after it) on a Lean backend — the simulator in tests and
notebooks, Pantograph for real. ``introduce_binders=False`` is the reference implementation's walk
(ground truth applied straight to ``copyFrom``'s ∀-root, in trace order, always to the main goal), kept
to show what it cost.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from dataclasses import dataclass, field, replace
from typing import Any, Iterable

from workbench.lean import LeanConfig, PantographBackend
from workbench.mining.records import EndReason
from workbench.mining.walk import WalkParams, walk_theorem
from workbench.traces import Theorem

__all__ = ["NoCandidates", "ReplayTally", "ground_truth_params", "replay_ground_truth"]


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
    start: Counter = field(default_factory=Counter)  # matched / intro_failed / mismatch / …
    step0: Counter = field(default_factory=Counter)  # replayed / binder_context / namespace / other / infra
    ended: Counter = field(default_factory=Counter)  # qed / gt_failed / unaligned / …
    align: Counter = field(default_factory=Counter)  # nested_skipped / unaligned.* / after_mismatch (steps)
    without_unaligned: int = 0  # theorems walked to their end (qed or trace end) without an unaligned step

    def as_dict(self) -> dict[str, Any]:
        return {"theorems": self.theorems, "start": dict(self.start), "step0": dict(self.step0),
                "ended": dict(self.ended), "align": dict(self.align),
                "walked_end_to_end_without_unaligned_step": self.without_unaligned,
                "step0_replayed_share": round(self.step0["replayed"] / self.theorems, 4) if self.theorems else None}


async def replay_ground_truth(theorems: Iterable[Theorem], config: LeanConfig, *, introduce_binders: bool = True,
                              concurrency: int = 8, simulated: bool = True,
                              params: WalkParams | None = None) -> ReplayTally:
    params = ground_truth_params(params, introduce_binders=introduce_binders)
    tally = ReplayTally()
    gate = asyncio.Semaphore(concurrency)
    async with PantographBackend(config) as lean:
        async def one(thm: Theorem) -> None:
            async with gate:
                result = await walk_theorem(thm, lean, NoCandidates(), params, simulated=simulated)
            tally.theorems += 1
            tally.start[result.start.get("problem") or "matched"] += 1
            tally.step0[result.step0 or "not_reached"] += 1
            tally.ended[result.reason] += 1
            tally.align.update(result.counts.alignment())
            tally.without_unaligned += result.reason in (EndReason.QED, EndReason.TRACE_EXHAUSTED)

        await asyncio.gather(*(one(t) for t in theorems if t.steps))
    return tally
