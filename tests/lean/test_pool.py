"""The pool and theorem sessions against simulator processes (the real protocol, zero latency)."""

from __future__ import annotations

import asyncio
import dataclasses

import pytest

from workbench.lean import (
    TheoremSession,
    Advanced,
    LeanError,
    LeanPool,
    LeanProcessDied,
    LeanProtocolError,
    LeanStartError,
    LeanTimeout,
    ParseError,
    ProofComplete,
    Rejected,
)
from workbench.lean.simulator import simulator_version
from workbench.states import canonical_state
from workbench.traces import load_traces

from lean_test_helpers import first_state, until


@pytest.fixture(scope="module")
def traces(sample_traces_path):
    return {t.full_name: t for t in load_traces(sample_traces_path).theorems}


async def walk(session, thm, node=None, start_depth=0):
    """Apply the ground-truth tactics from ``node`` (the root by default); returns the last result."""
    node = node or await first_state(session, thm)
    result = None
    for step in thm.steps[start_depth:]:
        assert node.state_text == canonical_state(step.state_before)
        result = await session.tactic(node, step.tactic)
        assert isinstance(result, (Advanced, ProofComplete)), (thm.full_name, step.depth, result)
        node = result.node
    assert isinstance(result, ProofComplete)
    return result


async def test_full_ground_truth_walk(sim_config, traces):
    async with LeanPool(sim_config()) as pool:
        assert pool.version == simulator_version("same")
        for thm in traces.values():
            async with TheoremSession(pool, thm.full_name) as s:
                done = await walk(s, thm)
                intro = "\n⊢" in thm.steps[0].state_before  # the setup intro is on the session's path
                assert done.node.depth == len(thm.steps) + intro and done.node.is_complete
        stats = pool.stats()
    intros = sum(1 for t in traces.values() if "\n⊢" in t.steps[0].state_before)  # the walk's setup intro
    assert stats.tactic_requests == sum(len(t.steps) for t in traces.values()) + intros
    assert stats.restarts_by_cause == {}
    assert stats.tactic_p50_s is not None and stats.tactic_p99_s >= stats.tactic_p50_s
    assert 0.0 < stats.busy_fraction <= 1.0


async def test_outcome_kinds(sim_config, traces):
    async with LeanPool(sim_config()) as pool:
        async with TheoremSession(pool, "Nat.even_iff_mod_two_foo") as s:
            root = await first_state(s, traces[s.name])
            assert isinstance(await s.tactic(root, "sorry"), Rejected)
            assert isinstance(await s.tactic(root, "exact (foo"), ParseError)
            results = [await s.tactic(root, f"simp [aux_{i}]") for i in range(30)]
            errors = [r for r in results if isinstance(r, LeanError)]
            assert errors and all(r.text for r in errors)
            divergent = [r for r in results if isinstance(r, Advanced)]
            assert divergent and all(r.node.state_text != canonical_state(traces[s.name].steps[1].state_before)
                                     for r in divergent)
            # A divergent node is a real node: tactics can be applied to it.
            await s.tactic(divergent[0].node, "simp")
        async with TheoremSession(pool, "unused") as s:
            with pytest.raises(LeanProtocolError) as e:
                await s.start(copy_from="No.such_theorem")
            assert e.value.kind == "index"
        async with TheoremSession(pool, "by_expr") as s:
            root = await s.start(expr="∀ (n : Nat), n = n")
            assert root.state_text == "⊢ ∀ (n : Nat), n = n"


async def test_concurrent_theorems_share_processes(sim_config, traces):
    names = sorted(traces)[:12]
    async with LeanPool(sim_config(workers=2)) as pool:
        sessions = [TheoremSession(pool, n) for n in names]
        roots = [await first_state(s, traces[s.name]) for s in sessions]
        assert [p.sessions for p in pool.stats().processes] == [6, 6]  # many theorems per process

        async def run(s, root):
            # Interleave siblings with the ground-truth walk, as the miner does.
            await s.tactic(root, "simp [foo]")
            return await walk(s, traces[s.name], root)

        results = await asyncio.gather(*(run(s, r) for s, r in zip(sessions, roots, strict=True)))
        assert all(isinstance(r, ProofComplete) for r in results)
        for s in sessions:
            await s.close()
        stats = pool.stats()
        assert all(p.requests > 12 for p in stats.processes) and all(p.sessions == 0 for p in stats.processes)
        assert stats.restarts_by_cause == {}


async def test_crash_mid_walk_recovered_by_replay_on_another_process(sim_config, traces):
    thm = traces["Nat.even_iff_mod_two_foo"]
    async with LeanPool(sim_config(workers=2)) as pool:
        async with TheoremSession(pool, thm.full_name) as s:
            root = await first_state(s, traces[s.name])
            node, produced = root, []
            for step in thm.steps[:4]:
                result = await s.tactic(node, step.tactic)
                produced.append(result)
                node = result.node
            first_slot = s._slot.index
            with pytest.raises(LeanProcessDied):
                await s.tactic(node, "__sim_crash__")
            # The walk continues where it was: the node is replayed on the other (live) process.
            await walk(s, thm, node, start_depth=4)
            assert s._slot.index != first_slot and s.replays == 1
            # Earlier nodes stay usable (siblings at the root), and what was produced is intact.
            again = await s.tactic(root, thm.steps[0].tactic)
            assert again.node == produced[0].node
        stats = pool.stats()
    assert stats.restarts_by_cause == {"died": 1}
    assert stats.replayed_steps >= 4


async def test_other_sessions_on_a_dead_process_replay_transparently(sim_config, traces):
    a_thm, b_thm = traces["Set.image_union_foo"], traces["Nat.succ_le_two_pow_foo"]
    async with LeanPool(sim_config(workers=1)) as pool:
        async with TheoremSession(pool, a_thm.full_name) as a, TheoremSession(pool, b_thm.full_name) as b:
            b_node = (await b.tactic(await first_state(b, traces[b.name]), b_thm.steps[0].tactic)).node
            a_root = await first_state(a, traces[a.name])
            with pytest.raises(LeanProcessDied):
                await a.tactic(a_root, "__sim_crash__")
            await walk(b, b_thm, b_node, start_depth=1)  # no error: b replays on the restarted process
            await walk(a, a_thm)
            assert b.replays == 1


async def test_hang_caught_by_timeout(sim_config, traces):
    thm = traces["Set.inter_comm_foo"]
    async with LeanPool(sim_config(request_timeout_s=0.5)) as pool:
        async with TheoremSession(pool, thm.full_name) as s:
            node = (await s.tactic(await first_state(s, traces[s.name]), thm.steps[0].tactic)).node
            with pytest.raises(LeanTimeout):
                await s.tactic(node, "__sim_hang__")
            await walk(s, thm, node, start_depth=1)
        assert pool.stats().restarts_by_cause == {"timeout": 1}


async def test_cancelled_tactic_does_not_poison_the_pool(sim_config, traces):
    thm = traces["Nat.Prime.two_le_foo"]
    async with LeanPool(sim_config()) as pool:
        async with TheoremSession(pool, thm.full_name) as s:
            root = await first_state(s, traces[s.name])
            task = asyncio.create_task(s.tactic(root, "__sim_hang__"))
            proc = pool._slots[0].process
            await until(lambda: proc._lock.locked())
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            await walk(s, thm)  # no unread reply is left behind: the process was replaced
        assert pool.stats().restarts_by_cause == {"cancelled": 1}


async def test_goal_delete_frees_the_sessions_states(sim_config, traces):
    thm = traces["Nat.sum_range_odd_foo"]
    async with LeanPool(sim_config()) as pool:
        proc = pool._slots[0].process
        async with TheoremSession(pool, thm.full_name) as s:
            root = await first_state(s, traces[s.name])
            for i in range(5):
                await s.tactic(root, f"sorry_free_{i} x")
            await walk(s, thm, root)
            assert (await proc.stat()).n_goals > len(thm.steps)
        assert (await proc.stat()).n_goals == 0
        assert pool.stats().deleted_states > len(thm.steps)


async def test_recycling_after_n_requests(sim_config, traces):
    thm = traces["Nat.even_iff_mod_two_foo"]
    async with LeanPool(sim_config(max_requests_per_process=4)) as pool:
        async with TheoremSession(pool, thm.full_name) as s:
            await walk(s, thm)
        stats = pool.stats()
    assert stats.restarts_by_cause.get("recycle", 0) >= 1
    assert stats.processes[0].requests > stats.processes[0].requests_current


async def test_pool_start_failure_is_reported_with_stderr(sim_config):
    with pytest.raises(LeanStartError) as e:
        async with LeanPool(sim_config("--fail-start", "json", workers=2)):
            pass
    assert "simulated startup failure" in str(e.value)


async def test_process_killed_while_idle_is_replaced_transparently(sim_config, traces):
    import os
    import signal

    thm = traces["Finset.card_insert_le_foo"]
    async with LeanPool(sim_config()) as pool:
        async with TheoremSession(pool, thm.full_name) as s:
            node = (await s.tactic(await first_state(s, traces[s.name]), thm.steps[0].tactic)).node
            proc = pool._slots[0].process
            os.killpg(proc.pid, signal.SIGKILL)  # as the OOM killer would
            await proc._proc.wait()
            await walk(s, thm, node, start_depth=1)  # no error reaches the caller
            assert s.replays == 1
        assert pool.stats().restarts_by_cause == {"died": 1}


async def test_cancel_while_queued_keeps_the_binding(sim_config, traces):
    thm = traces["Nat.exists_gt_foo"]
    async with LeanPool(sim_config()) as pool:
        async with TheoremSession(pool, thm.full_name) as a, TheoremSession(pool, "Nat.Prime.two_le_foo") as b:
            a_root, b_root = await first_state(a, traces[a.name]), await first_state(b, traces[b.name])
            slow = asyncio.create_task(b.tactic(b_root, "__sim_hang__"))
            slot = pool._slots[0]
            await until(lambda: slot.process.in_flight)  # b's request is in flight
            queued = asyncio.create_task(a.tactic(a_root, thm.steps[0].tactic))
            await until(lambda: slot.waiting > 0)  # a waits for the process
            queued.cancel()  # cancelled while waiting for the lock: the process is not touched
            with pytest.raises(asyncio.CancelledError):
                await queued
            slow.cancel()  # cancelled while its reply is pending: the process is killed
            with pytest.raises(asyncio.CancelledError):
                await slow
            await walk(a, thm, a_root)
        assert pool.stats().restarts_by_cause == {"cancelled": 1}


async def test_random_faults_never_hang_or_lose_work(sim_config, traces):
    """Chaos: crashes, garbage lines and hangs at random; callers retry the failed request."""
    names = [n for n, t in sorted(traces.items()) if len(t.steps) >= 3][:8]
    cfg = sim_config("--crash-rate", "0.06", "--garbage-rate", "0.06", "--hang-rate", "0.02",
                     workers=2, request_timeout_s=0.5)
    infra_errors = 0

    async def run(pool, name):
        nonlocal infra_errors
        thm = traces[name]
        async with TheoremSession(pool, name) as s:
            node = await first_state(s, traces[s.name])
            produced = [node]
            for step in thm.steps:
                for _ in range(20):
                    try:
                        result = await s.tactic(node, step.tactic)
                        break
                    except (LeanProcessDied, LeanTimeout, LeanProtocolError):
                        infra_errors += 1
                else:
                    raise AssertionError("a tactic kept failing")
                node = result.node
                produced.append(node)
            assert isinstance(result, ProofComplete)
            # Everything produced is still reachable (replayed where needed).
            assert [n.state_text for n in produced[:-1]] == [canonical_state(st.state_before) for st in thm.steps]
            return s.replays

    async with LeanPool(cfg) as pool:
        await asyncio.wait_for(asyncio.gather(*(run(pool, n) for n in names)), 60)
        stats = pool.stats()
    assert infra_errors > 0 and sum(stats.restarts_by_cause.values()) >= infra_errors


async def test_concurrent_tactics_in_one_session_survive_a_crash(sim_config, traces):
    thm = traces["Set.image_union_foo"]
    async with LeanPool(sim_config(workers=2)) as pool:
        async with TheoremSession(pool, thm.full_name) as s:
            root = await first_state(s, traces[s.name])
            node = (await s.tactic(root, thm.steps[0].tactic)).node
            tactics = [f"simp [c{i}]" for i in range(6)] + ["__sim_crash__"] + [f"simp [d{i}]" for i in range(6)]
            results = await asyncio.gather(*(s.tactic(node, t) for t in tactics), return_exceptions=True)
            crashed = [r for r in results if isinstance(r, BaseException)]
            assert len(crashed) == 1 and isinstance(crashed[0], LeanProcessDied)
            await walk(s, thm, node, start_depth=1)
        for p in pool.stats().processes:
            proc = pool._slots[p.index].process
            if proc is not None and proc.alive:
                assert (await proc.stat()).n_goals == 0  # nothing leaked on any process


async def test_version_failure_is_recorded_not_fatal(sim_config, traces):
    """A REPL that cannot answer --version still serves; provenance says the version is unknown."""
    sim = sim_config()
    script = 'for a; do last=$a; done; if [ "$last" = --version ]; then echo "no such option" >&2; exit 3; fi; exec "$0" "$@"'
    wrapper = ("sh", "-c", script)
    config = dataclasses.replace(sim, command=wrapper + sim.command)
    async with LeanPool(config) as pool:
        assert pool.version.startswith("unknown")
        thm = next(iter(traces.values()))
        async with TheoremSession(pool, thm.full_name) as s:
            await walk(s, thm)


async def test_heartbeat_recursion_and_interrupt_are_verdicts_not_failures(sim_config, traces):
    """Pantograph answers them as errors (Repl.lean @0528a15, runCoreM: Exception.error -> "core",
    Exception.internal -> "internal"/"interrupt"); the process and its states are fine (SPEC §1)."""
    from workbench.lean import LeanLimit, TacticTimedOut

    thm = traces["Nat.even_iff_mod_two_foo"]
    async with LeanPool(sim_config()) as pool:
        async with TheoremSession(pool, thm.full_name) as s:
            root = await first_state(s, thm)
            heavy = await s.tactic(root, "__sim_heartbeat__")
            assert isinstance(heavy, LeanLimit) and heavy.kind == "heartbeats" and "maxHeartbeats" in heavy.text
            deep = await s.tactic(root, "__sim_recursion__")
            assert isinstance(deep, LeanLimit) and deep.kind == "max_recursion"
            assert isinstance(await s.tactic(root, "__sim_interrupt__"), TacticTimedOut)
            await walk(s, thm, root)
        assert pool.stats().restarts_by_cause == {}


async def test_injected_verdict_rates_are_deterministic(sim_config, traces):
    from workbench.lean import LeanLimit, TacticTimedOut

    thm = traces["Nat.even_iff_mod_two_foo"]
    cfg = sim_config("--heartbeat-rate", "0.3", "--interrupt-rate", "0.3")
    async with LeanPool(cfg) as pool:
        async with TheoremSession(pool, thm.full_name) as s:
            root = await s.start()
            first = [type(await s.tactic(root, f"simp [h{i}]")) for i in range(40)]
            again = [type(await s.tactic(root, f"simp [h{i}]")) for i in range(40)]
    assert first == again and LeanLimit in first and TacticTimedOut in first


def _version_wrapper(sim, version: str):
    """The simulator behind a shell wrapper that answers ``--version`` with ``version``."""
    script = f'for a; do last=$a; done; if [ "$last" = --version ]; then echo "{version}"; exit 0; fi; exec "$0" "$@"'
    return dataclasses.replace(sim, command=("sh", "-c", script) + sim.command)


async def test_old_pantograph_is_refused_by_name(sim_config):
    """Below 0.3.4 refuse, naming both versions: before 0.3.1 goal.tactic has no hasSorry/hasUnsafe (SPEC §1),
    in 0.3.1-0.3.2 a tactic sent with goalId sees only that goal, 0.3.4 isolates the REPL's stdout."""
    with pytest.raises(LeanStartError) as e:
        async with LeanPool(_version_wrapper(sim_config(), "0.2.18")):
            pass
    assert "0.2.18" in str(e.value) and "0.3.4" in str(e.value)
    with pytest.raises(LeanStartError, match=r"0\.3\.3.*0\.3\.4"):
        async with LeanPool(_version_wrapper(sim_config(), "0.3.3")):
            pass


async def test_current_pantograph_versions_are_accepted(sim_config):
    for version in ("0.3.4", "0.3.7/v4.21.0"):
        async with LeanPool(_version_wrapper(sim_config(), version)) as pool:
            assert pool.version == version
