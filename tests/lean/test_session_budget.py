"""A session pauses its caller's budget while it waits on infrastructure: re-pinning after a crash (restart
wait + replay), or a request delayed by another request that crashed or hung; ordinary requests are charged."""

from __future__ import annotations

import asyncio
import contextlib
import types

import pytest

from workbench.lean import TheoremSession, LeanPool, LeanProcessDied, LeanTimeout
from workbench.traces import load_traces


def _recording_pause(holds: list[bool]):
    """A ``pause_budget`` hook that records, per held request, whether the session charged it."""
    @contextlib.contextmanager
    def pause():
        hold = types.SimpleNamespace(charged=False)
        yield hold
        holds.append(hold.charged)

    return pause


async def test_rebinding_after_another_theorems_crash_runs_inside_the_pause(sim_config, sample_traces_path):
    traces = {t.full_name: t for t in load_traces(sample_traces_path).theorems}
    a_thm, b_thm = traces["Set.image_union_foo"], traces["Nat.succ_le_two_pow_foo"]
    pauses: list[str] = []

    @contextlib.contextmanager
    def pause():
        hold = types.SimpleNamespace(charged=False)
        pauses.append("enter")
        yield hold
        pauses.append("charged" if hold.charged else "refunded")

    async with LeanPool(sim_config(workers=1)) as pool:
        async with TheoremSession(pool, a_thm.full_name) as a, TheoremSession(pool, b_thm.full_name) as b:
            b.pause_budget = pause
            b_root = await b.start()
            assert pauses == ["enter", "charged"], "the first start is the theorem's own work (held like any request)"
            pauses.clear()
            await b.tactic(b_root, "simp")
            assert pauses == ["enter", "charged"], "an ordinary tactic is the theorem's own work"
            pauses.clear()
            with pytest.raises(LeanProcessDied):
                await a.tactic(await a.start(), "__sim_crash__")
            await b.tactic(b_root, "simp")  # b re-pins (restart wait, root again) first
            assert pauses == ["enter", "enter", "refunded", "refunded"] and b.infra_wait_s > 0



async def test_a_request_queued_behind_a_hang_is_not_charged(sim_config, sample_traces_path):
    """Issue 20, item 2: a hung request held the process for the whole request deadline, and every
    theorem queued behind it paid for it (at a 5 % hang rate 95 % of theorems timed out)."""
    holds: list[bool] = []
    pause = _recording_pause(holds)

    async with LeanPool(sim_config(workers=1, request_timeout_s=0.3)) as pool:
        async with TheoremSession(pool, "Nat.exists_gt_foo") as a, TheoremSession(pool, "Set.image_union_foo") as b:
            a_root, b_root = await a.start(), await b.start()
            hung = asyncio.ensure_future(a.tactic(a_root, "__sim_hang__"))
            await asyncio.sleep(0)  # a's request is in flight (the process holds it); b queues behind it
            b.pause_budget = pause
            result = await b.tactic(b_root, "simp")
            with pytest.raises(LeanTimeout):
                await hung
    # b's tactic (and its re-pin: the hang's kill took b's states too, and close()) waited on a's hang
    assert len(holds) == 3 and not any(holds), "refunded, never charged"
    assert result is not None


async def test_entering_a_file_scope_behind_a_hang_is_not_charged(sim_config, sample_traces_path):
    """``set_scope`` (--source-root) is held like any request: charged when nothing delayed it, refunded when it
    waited behind another theorem's hang (before, it ran outside the pause and the theorem paid for the hang)."""
    holds: list[bool] = []
    pause = _recording_pause(holds)

    async with LeanPool(sim_config(workers=1, request_timeout_s=0.3)) as pool:
        async with TheoremSession(pool, "Nat.exists_gt_foo") as a, TheoremSession(pool, "Set.image_union_foo") as b, \
                TheoremSession(pool, "Nat.succ_le_two_pow_foo") as c:
            c.pause_budget = pause
            assert await c.set_scope("open Nat") == ()
            assert holds == [True], "an undisturbed scope entry is the theorem's own work"
            holds.clear()
            a_root = await a.start()
            hung = asyncio.ensure_future(a.tactic(a_root, "__sim_hang__"))
            await asyncio.sleep(0)  # a's request is in flight (the process holds it); b queues behind it
            b.pause_budget = pause
            assert await b.set_scope("open Set") == ()
            with pytest.raises(LeanTimeout):
                await hung
            assert holds == [False], "refunded: it waited on a's hang"
            assert (await b.start()) is not None
