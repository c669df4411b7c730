"""A multi-tactic candidate's remaining tactics, walked from its divergent state."""

from __future__ import annotations

from workbench.lean.backend import LeanSession
from workbench.lean.results import Node
from workbench.mining.labels import Outcome, judge_chain_step
from workbench.mining.walk.context import WalkContext, now_ms
from workbench.policy.base import Candidate

__all__ = ["walk_chain"]

_ONWARD = (Outcome.CHAIN_ADVANCED, Outcome.CHAIN_COMPLETE, Outcome.CHAIN_REACHED_GROUND_TRUTH)


async def walk_chain(ctx: WalkContext, session: LeanSession, node: Node, divergent_id: int, index: int,
                     cand: Candidate, prefix: str | None) -> None:
    """Walk the candidate's remaining tactics from its divergent node; a chain that completes the proof or
    reaches a ground-truth state relabels its nodes positive (``TheoremTree.resolve_chain``)."""
    last_id = divergent_id
    for tactic in cand.tactics[1:]:
        if not tactic.strip():
            continue
        sent = await ctx.send(session, node, last_id, index, "chain", tactic, prefix=prefix)
        result = sent.result
        if isinstance(result, Outcome):
            ctx.log(sent, result)
            ctx.counts.chain_interrupted += 1
            return
        verdict = judge_chain_step(result, ctx.gt)
        if verdict.outcome not in _ONWARD:
            ctx.log(sent, verdict.outcome)
            ctx.counts.chain_failed += 1
            return
        child = result.node  # type: ignore[union-attr]  (advanced or complete)
        new_id = ctx.tree.add_chain_node(last_id, tactic, verdict, child.state_text, len(child.goals),
                                         log_prob=float(cand.score), score_kind=cand.score_kind,
                                         open_prefix=prefix, timestamp_ms=now_ms())
        ctx.log(sent, verdict.outcome, new_id)
        if verdict.outcome is not Outcome.CHAIN_ADVANCED:
            ctx.counts.chain_rescued += 1
            ctx.counts.chain_rescued_nodes += ctx.tree.resolve_chain(divergent_id, new_id, verdict.remaining_depth)
            return
        node, last_id = child, new_id
    ctx.counts.chain_incomplete += 1
