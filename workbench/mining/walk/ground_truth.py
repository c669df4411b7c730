"""One ground-truth step: as written, then inside ``open <the theorem's namespaces> in`` on a Lean failure."""

from __future__ import annotations

from workbench.lean.backend import LeanSession
from workbench.lean.results import LeanError, LeanLimit, Node, ParseError, Rejected, TacticResult, TacticTimedOut
from workbench.lean.binders import first_state_names
from workbench.mining.labels import Outcome, step0_cause
from workbench.mining.walk.align import check_after
from workbench.mining.walk.context import Sent, WalkContext, messages, now_ms

__all__ = ["advance_ground_truth"]


async def advance_ground_truth(ctx: WalkContext, session: LeanSession, node: Node, node_id: int, index: int,
                               position: int, goal_id: int | None = None) -> tuple[TacticResult | Outcome, int | None]:
    """Apply ground-truth step ``index`` to goal ``goal_id`` (None: the main goal); on a Lean failure
    retry inside ``open <prefixes> in``. Returns Lean's answer and the record made for the state reached
    (ground-truth position ``position``), None when the step failed."""
    tactic = ctx.theorem.steps[index].tactic
    ctx.counts.gt_steps += 1
    plain = await ctx.send(session, node, node_id, index, "ground_truth", tactic, goal_id=goal_id,
                           retry_timeouts=True, retries=ctx.params.gt_infra_retries)
    result = plain.result
    if index == 0:
        ctx.step0 = "replayed" if plain.ok else "infra" if isinstance(result, Outcome) else None
    if plain.ok:
        return result, _record(ctx, plain, node_id, position, None)
    ctx.log(plain, Outcome.GROUND_TRUTH_FAILED)
    if isinstance(result, (LeanLimit, TacticTimedOut)):  # Lean's verdict: no open retry, no re-send
        ctx.counts.gt_failed_limit[result.kind] += 1
        if index == 0:
            ctx.step0 = result.kind
    lean_failure = isinstance(result, (LeanError, ParseError, Rejected))
    if lean_failure:
        ctx.counts.gt_failed_plain += 1
        if index == 0:
            ctx.counts.gt_step0_failed_plain += 1
    detail = plain.err if isinstance(result, Outcome) else messages(result)
    if isinstance(result, (LeanLimit, TacticTimedOut)):
        detail = f"[{result.kind}] {detail}"
    binders = first_state_names(ctx.theorem.steps[0].state_before) if index == 0 else frozenset()
    if lean_failure and ctx.prefixes:
        wrapped = await ctx.send(session, node, node_id, index, "ground_truth_open", tactic,
                                 prefix=ctx.prefix_text, goal_id=goal_id, retry_timeouts=True,
                                 retries=ctx.params.gt_infra_retries)
        if index == 0:
            ctx.step0 = step0_cause(messages(result), binders, rescued_by_open=wrapped.ok)
        if wrapped.ok:
            ctx.counts.gt_rescued_by_open += 1
            return wrapped.result, _record(ctx, wrapped, node_id, position, ctx.prefix_text)
        ctx.log(wrapped, Outcome.GROUND_TRUTH_FAILED)
        retry = wrapped.result
        detail += f"; with `open {ctx.prefix_text} in`: " + (wrapped.err if isinstance(retry, Outcome)
                                                             else messages(retry))
        result = retry
    if index == 0 and ctx.step0 is None:
        ctx.step0 = step0_cause(messages(result), binders, rescued_by_open=False)
    ctx.counts.gt_failed += 1
    if index == 0:
        ctx.counts.gt_step0_failed += 1
    ctx.message = f"step {index}: {tactic!r}: {detail}"
    if isinstance(result, Outcome):
        ctx.counts.gt_infra_failed += 1
    return result, None


def _record(ctx: WalkContext, s: Sent, node_id: int, position: int, prefix: str | None) -> int:
    child = s.result.node  # type: ignore[union-attr]  (s.ok)
    check_after(ctx, child, s.step)
    new_id = ctx.tree.add_ground_truth(node_id, position, s.tactic, child.state_text, len(child.goals),
                                       open_prefix=prefix, timestamp_ms=now_ms())
    ctx.log(s, Outcome.GROUND_TRUTH, new_id)
    return new_id
