"""A theorem's time budget is not spent waiting for restarts and replays (audit: under 5 % Lean crashes,
most theorems ended timed_out because each crash made every theorem on that process wait and replay)."""

from __future__ import annotations

import asyncio
import contextlib

from workbench.mining.walk import Status, WalkParams, walk_theorem

from .fakes import FakePolicy, FakePool, FakeSession
from .test_labels import THM, gt_script


class RepinningSession(FakeSession):
    """Every tactic first 're-pins': waits ``wait_s`` inside the budget pause, as the pool's session does."""

    wait_s = 0.15
    pause_budget = None

    async def tactic(self, node, tactic, goal_id=None):
        with self.pause_budget() if self.pause_budget is not None else contextlib.nullcontext():
            await asyncio.sleep(self.wait_s)  # stands for a restart + replay happening meanwhile
        return await super().tactic(node, tactic, goal_id)


def run(params: WalkParams):
    session = RepinningSession(THM.full_name, THM.steps[0].state_before, gt_script())
    return asyncio.run(walk_theorem(THM, FakePool({THM.full_name: session}), FakePolicy({}), params, simulated=False))


def test_time_spent_re_pinning_does_not_count_against_the_theorem():
    result = run(WalkParams(theorem_timeout_s=0.25))  # 3 steps x 0.15 s of re-pinning > 0.25 s budget
    assert (result.status, result.reason) == (Status.COMPLETED, "qed")
    assert result.counts.infra_rebinds >= 3


def test_the_pause_is_capped_so_a_dead_pool_still_ends_the_theorem():
    result = run(WalkParams(theorem_timeout_s=0.25, infra_grace_s=0.05))
    assert result.status == Status.TIMED_OUT and result.counts.infra_rebinds >= 1
