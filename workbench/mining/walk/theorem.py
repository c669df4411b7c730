"""One theorem, start to end: start, then per ground-truth step align → generate ∥ apply → candidates.

Inside a theorem, Lean calls are sequential (a session serves one task), but each step's policy call runs
while Lean applies the ground-truth tactic, and many theorems run at once (the executor bounds how
many), so the LLM and the Lean processes stay busy together.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
from typing import Iterator

from workbench.lean.backend import LeanBackend
from workbench.lean.errors import LeanBackendError, LeanGarbage, LeanProtocolError
from workbench.lean.results import ProofComplete
from workbench.mining.labels import Outcome
from workbench.mining.records import EndReason, TheoremResult, status_of
from workbench.mining.walk.align import align
from workbench.mining.walk.candidates import generate, try_candidates
from workbench.mining.walk.context import WalkContext, WalkParams, now_ms
from workbench.mining.walk.ground_truth import advance_ground_truth
from workbench.mining.walk.start import enter_file_scope, introduce
from workbench.policy.base import Policy
from workbench.policy.errors import GenerationFailed
from workbench.trace_breaks import is_nested_in
from workbench.traces import Theorem

__all__ = ["walk_theorem"]

log = logging.getLogger(__name__)


class _Hold:
    """One pause of the theorem's clock; the session sets ``charged`` when the time was its own work after all."""

    __slots__ = ("charged",)

    def __init__(self) -> None:
        self.charged = False


class _Budget:
    """The theorem's clock, which stops while its session waits on infrastructure (re-pinning after a
    crash, or a request delayed by a process that hung or crashed: others' failures are not its work),
    for at most ``grace_s`` in all; past that it times out and --resume retries it.

    While paused the deadline is pushed out by the grace left, so it cannot fire in the middle of someone
    else's failure; on leaving, the pause is granted (the deadline moves by the time it took) unless every
    hold in it was ``charged`` (then the deadline goes back where it was, and may fire at once)."""

    def __init__(self, ctx: WalkContext, timeout: "asyncio.Timeout", grace_s: float) -> None:
        self.ctx, self.timeout, self.grace_s = ctx, timeout, grace_s
        self.granted_s = 0.0
        self._depth, self._paused_at, self._when, self._refund = 0, 0.0, None, False

    @contextlib.contextmanager
    def paused(self) -> Iterator[_Hold]:
        loop = asyncio.get_running_loop()
        if self._depth == 0:
            self._paused_at, self._when, self._refund = loop.time(), self.timeout.when(), False
            if self._when is not None and not self.timeout.expired():
                self.timeout.reschedule(self._when + self.grace_s - self.granted_s)
        self._depth += 1  # several requests of one theorem may wait at once
        hold = _Hold()
        try:
            yield hold
        finally:
            self._refund |= not hold.charged
            self._depth -= 1
            if self._depth == 0:
                if self._refund:
                    self.ctx.counts.infra_rebinds += 1  # a timed-out theorem with these is retried by --resume
                if self._when is not None and not self.timeout.expired():
                    grant = min(loop.time() - self._paused_at, self.grace_s - self.granted_s) if self._refund else 0.0
                    self.granted_s += grant
                    self.timeout.reschedule(self._when + grant)


async def _walk(ctx: WalkContext, lean: LeanBackend, policy: Policy, budget: "asyncio.Timeout | None") -> EndReason:
    async with lean.theorem(ctx.name) as session:
        if budget is not None:
            session.pause_budget = _Budget(ctx, budget, ctx.params.infra_grace_s).paused
        if ctx.params.source_root is not None:
            await enter_file_scope(ctx, session)
        try:
            root = await session.start(copy_from=ctx.name)
        except LeanGarbage as e:
            ctx.message = f"{type(e).__name__}: {e}"
            return EndReason.START_INFRA_ERROR
        except LeanProtocolError as e:
            ctx.message = e.desc
            return EndReason.START_FAILED
        except LeanBackendError as e:
            ctx.message = f"{type(e).__name__}: {e}"
            return EndReason.START_INFRA_ERROR
        node = await introduce(ctx, session, root)
        if node is None:
            return EndReason.START_INFRA_ERROR
        node_id = ctx.tree.add_root(node.state_text, len(node.goals), timestamp_ms=now_ms())
        applied: list[str] = []  # ground-truth tactics Lean ran, in order
        for index, step in enumerate(ctx.theorem.steps):
            ctx.steps_walked = index + 1
            nested = is_nested_in(step.tactic, applied)  # its enclosing tactic may have run it already
            goal_id = align(ctx, node, index, nested=nested)
            if goal_id is None:
                if nested:
                    continue
                return EndReason.UNALIGNED  # align counted why and said so in ctx.message
            gid = goal_id or None  # the main goal goes without goalId: same session path as before
            if gid is not None:
                ctx.counts.align_other_goal += 1  # LeanDojo focused a goal that is not Lean's main goal
            # Positions count applied tactics (nested steps excluded): remaining depth follows them.
            apply = functools.partial(advance_ground_truth, ctx, session, node, node_id, index, len(applied) + 1, gid)
            try:
                if ctx.params.overlap_generation:
                    gt_task = asyncio.ensure_future(apply())  # the policy call runs while Lean applies the step
                    try:
                        try:
                            candidates = await generate(ctx, policy, node.state_text)
                        except GenerationFailed:
                            # let Lean answer first: a request cancelled in flight costs its process (and
                            # every theorem's states on it)
                            await asyncio.gather(gt_task, return_exceptions=True)
                            raise
                        gt_result, next_id = await gt_task
                    finally:
                        if not gt_task.done():
                            gt_task.cancel()
                            await asyncio.gather(gt_task, return_exceptions=True)
                else:
                    candidates = await generate(ctx, policy, node.state_text)
                    gt_result, next_id = await apply()
            except GenerationFailed as e:  # no answer is not "no candidates": the theorem is unfinished
                ctx.message = f"step {index}: generation failed: {e}"
                return EndReason.GENERATION_FAILED
            next_node = None
            if next_id is not None:
                applied.append(step.tactic)
                next_node = gt_result.node  # type: ignore[union-attr]  (the step succeeded)
            await try_candidates(ctx, session, node, node_id, index, candidates, gid)
            if ctx.tree.negatives >= ctx.params.target_negatives:
                return EndReason.TARGET_NEGATIVES
            if next_node is None:
                return EndReason.GT_INFRA_ERROR if isinstance(gt_result, Outcome) else EndReason.GT_FAILED
            if isinstance(gt_result, ProofComplete):
                return EndReason.QED
            node, node_id = next_node, next_id
        return EndReason.TRACE_EXHAUSTED  # the trace ended with goals left (closed by untraced structure)


async def walk_theorem(theorem: Theorem, lean: LeanBackend, policy: Policy, params: WalkParams, *,
                       simulated: bool) -> TheoremResult:
    """Walk one theorem; never raises for Lean trouble or a failed generation call (it ends up in the
    result: a failed call leaves it ``unfinished``, which the run never seals). ``PolicyUnavailable`` (the
    policy server is down) propagates: the run stops."""
    ctx = WalkContext(theorem, params, simulated)
    t0 = time.monotonic()
    timed_out = False
    if not theorem.steps:
        reason = EndReason.NO_STEPS
    else:
        try:
            async with asyncio.timeout(params.theorem_timeout_s) as budget:
                reason = await _walk(ctx, lean, policy, budget)
        except TimeoutError:
            timed_out, reason = True, EndReason.THEOREM_TIMEOUT
            ctx.message = f"timed out after {params.theorem_timeout_s:g} s at step {ctx.steps_walked}"
            log.info("%s: %s", theorem.full_name, ctx.message)
    if reason in (EndReason.GT_FAILED, EndReason.GT_INFRA_ERROR):
        log.info("%s: ground truth failed: %s", theorem.full_name, ctx.message[:300])
    elif reason is EndReason.GENERATION_FAILED:
        log.warning("%s: unfinished (--resume mines it again): %s", theorem.full_name, ctx.message[:300])
    records = ctx.tree.records()
    ctx.counts.late_same_state += ctx.tree.late_positives
    return TheoremResult(
        theorem=theorem.full_name,
        status=status_of(reason, timed_out=timed_out),
        reason=reason,
        message=ctx.message,
        records=records,
        attempts=ctx.attempts,
        counts=ctx.counts,
        num_steps=len(theorem.steps),
        steps_walked=ctx.steps_walked,
        duration_s=time.monotonic() - t0,
        generation_wait_s=ctx.generation_wait_s,
        lean_wait_s=ctx.lean_wait_s,
        start=ctx.start,
        step0=ctx.step0,
        align=list(ctx.align),
    )
