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


def test_a_theorem_queued_behind_other_theorems_hangs_is_not_charged_for_them(sample_traces_path):
    """Issue 20, item 2: a hung request holds its process until the request deadline, and before, every
    theorem queued behind it paid that time from its own budget (5 % hangs: 95 % of theorems timed out).
    Here another theorem hangs the one simulated REPL four times in a row (0.4 s each) while ours walks."""
    from workbench.lean import LeanConfig, LeanTimeout, PantographBackend, simulator_command
    from workbench.traces import load_traces

    theorem = next(t for t in load_traces(sample_traces_path).theorems if t.full_name == "Set.image_union_foo")
    config = LeanConfig(command=simulator_command(sample_traces_path, "--latency-scale", "0",
                                                   "--no-namespace-references"),
                        workers=1, request_timeout_s=0.4, start_timeout_s=20, memory_limit_bytes=None)

    async def main():
        async with PantographBackend(config) as lean:
            async def hang_four_times():
                for _ in range(4):
                    async with lean.theorem("Nat.exists_gt_foo") as s:
                        root = await s.start()
                        try:
                            await s.tactic(root, "__sim_hang__")
                        except LeanTimeout:
                            pass

            noise = asyncio.ensure_future(hang_four_times())
            await asyncio.sleep(0)  # the first hang is queued before our theorem's first request
            try:
                return await walk_theorem(theorem, lean, FakePolicy({}), WalkParams(theorem_timeout_s=1.0),
                                          simulated=True)
            finally:
                await noise

    result = asyncio.run(main())
    assert (result.status, result.reason) == (Status.COMPLETED, "qed"), result.message
    assert result.counts.infra_rebinds >= 1 and result.duration_s > 1.0  # it did wait longer than its budget
