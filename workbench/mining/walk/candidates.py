"""The policy's candidates at one state: asked for (with retries), sent to Lean, labelled."""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Sequence

from workbench.lean.backend import LeanSession
from workbench.lean.results import Node
from workbench.mining.labels import Outcome, judge, normalize_tactic, same_tactic
from workbench.mining.walk.chains import walk_chain
from workbench.mining.walk.context import WalkContext, now_ms
from workbench.policy.base import Candidate, Policy
from workbench.policy.errors import GenerationFailed, PolicyUnavailable

__all__ = ["generate", "try_candidates"]

log = logging.getLogger(__name__)


async def generate(ctx: WalkContext, policy: Policy, state_pp: str) -> list[Candidate]:
    """The policy's candidates for ``state_pp``.

    A refused request (4xx: asking again gets the same answer) gives the step no candidates, counted. Any
    other failure is retried (``policy_retries``; a ``GenerationFailed`` has had the policy's own retries)
    and then raises ``GenerationFailed``: a step without an answer is not a step without candidates, so
    the theorem is unfinished (the walk ends it, the run does not seal it, ``--resume`` mines it again).
    """
    t0 = time.monotonic()
    try:
        last: Exception | None = None
        for attempt in range(ctx.params.policy_retries + 1):
            try:
                cands = list(await policy.candidates(state_pp, ctx.params.candidates_per_step, theorem=ctx.name))
                ctx.counts.policy_steps += 1
                return cands
            except (asyncio.CancelledError, KeyboardInterrupt, PolicyUnavailable):
                raise  # PolicyUnavailable: the server is down (breaker tripped); the run decides, not the walk
            except Exception as e:  # noqa: BLE001 - any generation failure: retried, then the theorem is unfinished
                if getattr(e, "retry_helps", True) is False:
                    # The server refused this request (4xx, e.g. the state is too long for the context):
                    # asking again gets the same answer, and nothing transient was lost.
                    ctx.counts.policy_rejected += 1
                    log.warning("%s: generation refused: %s", ctx.name, e)
                    return []
                ctx.counts.policy_errors += 1
                last = e
                log.warning("%s: generation failed (try %d): %s", ctx.name, attempt + 1, e)
                if isinstance(e, GenerationFailed):
                    break  # the policy already retried this call
        ctx.counts.steps_generation_failed += 1
        if isinstance(last, GenerationFailed):
            raise last
        raise GenerationFailed(f"{type(last).__name__}: {last}", kind=type(last).__name__) from last
    except asyncio.CancelledError:
        ctx.counts.policy_cut_by_timeout += 1  # the theorem's budget ran out while it waited for the server
        raise
    finally:
        ctx.generation_wait_s += time.monotonic() - t0


async def try_candidates(ctx: WalkContext, session: LeanSession, node: Node, node_id: int, index: int,
                         candidates: Sequence[Candidate], goal_id: int | None = None) -> None:
    """Each candidate acts on the goal the ground-truth step acts on."""
    gt_tactic = ctx.theorem.steps[index].tactic
    seen: set[tuple[str, ...]] = set()
    prefix = ctx.prefix_text if ctx.params.wrap_candidates else None
    for cand in candidates:
        if ctx.tree.negatives >= ctx.params.target_negatives:
            return
        tactic = cand.tactic or ""
        if not tactic.strip():
            ctx.counts.outcomes[Outcome.EMPTY] += 1
            continue
        if same_tactic(tactic, gt_tactic):
            ctx.counts.outcomes[Outcome.SKIPPED_GROUND_TRUTH] += 1
            continue
        key = tuple(normalize_tactic(t) for t in (cand.tactics or (tactic,)))
        if key in seen:
            ctx.counts.outcomes[Outcome.DUPLICATE] += 1
            continue
        seen.add(key)
        sent = await ctx.send(session, node, node_id, index, "candidate", tactic, prefix=prefix, goal_id=goal_id)
        result = sent.result
        if isinstance(result, Outcome):
            ctx.counts.outcomes[result] += 1
            ctx.log(sent, result)
            continue
        verdict = judge(result, ctx.gt)
        ctx.counts.outcomes[verdict.outcome] += 1
        if not verdict.makes_node:
            ctx.log(sent, verdict.outcome)
            continue
        child = result.node  # type: ignore[union-attr]  (a node-making verdict)
        new_id = ctx.tree.add_candidate(node_id, tactic, verdict, child.state_text, len(child.goals),
                                        log_prob=float(cand.score), score_kind=cand.score_kind,
                                        open_prefix=prefix, timestamp_ms=now_ms())
        ctx.log(sent, verdict.outcome, new_id)
        if verdict.outcome is Outcome.ALTERNATIVE_PROOF:
            log.info("%s: alternative proof at step %d: %r", ctx.name, index, tactic[:120])
        if verdict.outcome is Outcome.DIVERGENT and len(cand.tactics) > 1:
            await walk_chain(ctx, session, child, new_id, index, cand, prefix)
