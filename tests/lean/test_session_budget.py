"""A session pauses its caller's budget while it re-pins after a crash (restart wait + replay), and only then."""

from __future__ import annotations

import contextlib

import pytest

from workbench.lean import TheoremSession, LeanPool, LeanProcessDied
from workbench.traces import load_traces


async def test_rebinding_after_another_theorems_crash_runs_inside_the_pause(sim_config, sample_traces_path):
    traces = {t.full_name: t for t in load_traces(sample_traces_path).theorems}
    a_thm, b_thm = traces["Set.image_union_foo"], traces["Nat.succ_le_two_pow_foo"]
    pauses: list[str] = []

    @contextlib.contextmanager
    def pause():
        pauses.append("enter")
        yield
        pauses.append("exit")

    async with LeanPool(sim_config(workers=1)) as pool:
        async with TheoremSession(pool, a_thm.full_name) as a, TheoremSession(pool, b_thm.full_name) as b:
            b.pause_budget = pause
            b_root = await b.start()
            await b.tactic(b_root, "simp")
            assert pauses == [], "the first start and ordinary tactics are the theorem's own work"
            with pytest.raises(LeanProcessDied):
                await a.tactic(await a.start(), "__sim_crash__")
            await b.tactic(b_root, "simp")  # b re-pins (restart wait, root again) first
            assert pauses == ["enter", "exit"] and b.infra_wait_s > 0
