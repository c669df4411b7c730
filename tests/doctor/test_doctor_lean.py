"""`workbench doctor`'s Lean checks against the simulator and its broken variants (issue 22).

Upstream facts pinned here (lenianiva/Pantograph v0.3.4, /work/notes/pantograph_facts.md; SPEC §1):
``repl --version`` prints ``Pantograph.version`` (Main.lean L56-60; ``0.3.7/v4.21.0`` on backport branches);
each tag's ``lean-toolchain`` (0.3.0/0.3.1 v4.18.0, 0.3.2/0.3.3 v4.20.1, 0.3.4 v4.21.0); ``hasSorry`` exists in
``goal.tactic`` replies from 0.3.1 (Protocol.lean v0.3.1 GoalTacticResult); RLIMIT_AS caps VmSize (setrlimit(2));
Lean's allocator failing under ``ulimit -v`` prints ``INTERNAL PANIC: out of memory``.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys

import pytest
from doctor_helpers import by_name

from workbench.doctor import Verdict
from workbench.doctor.checks import SIMULATED
from workbench.doctor.lean import (WALK_COLUMNS, _goal_id, _heartbeats, _Probe, check_lean, group_memory, toolchain_of,
                                   version_checks)
from workbench.lean import protocol as P
from workbench.lean.errors import LeanProtocolError
from workbench.lean.protocol import GoalStartReply, GoalTacticReply, TacticOutcome
from workbench.states import Goal

GiB = 1024**3


def _check(config, theorems, traces, fast):
    return asyncio.run(check_lean(config, theorems, traces, opts=fast))


def test_the_simulator_passes_every_lean_check_it_can_answer_and_says_it_is_simulated(
        sim_lean, theorems, sample_traces_path, fast):
    found = _check(sim_lean(), theorems, sample_traces_path, fast)
    rows = by_name(found.checks)
    assert all(c.label == SIMULATED for c in found.checks)
    assert [c.name for c in found.checks if c.verdict is Verdict.FAIL] == []
    for name in ("repl --version", "options.set automaticMode", "binder introduction", "sorry flagged by hasSorry",
                 "interrupt typed as Lean's verdict", "heartbeat limit typed as Lean's verdict", "traces walked one step"):
        assert rows[name].verdict is Verdict.PASS, rows[name]
    assert rows["copyFrom a traced theorem"].verdict is Verdict.PASS
    assert rows["tactic with goalId"].verdict is Verdict.SKIP and "simulator" in rows["tactic with goalId"].found
    assert "no cap" in rows["memory after ready."].found
    (table,) = found.tables
    assert [r[0] for r in table.rows] == [t.full_name for t in theorems] and table.label == SIMULATED
    assert {r[1] for r in table.rows} <= {"matched", "normalised", "fuzzy"}  # a newer simulator than its traces
    assert {r[2] for r in table.rows} == {"lean"} and all(r[4].startswith("intro") for r in table.rows)


def test_an_old_pantograph_fails_the_version_floor_and_mining_would_not_walk(sim_lean, theorems, sample_traces_path,
                                                                              fast):
    rows = by_name(_check(sim_lean("--report-version", "0.2.14"), theorems, sample_traces_path, fast).checks)
    floor = ".".join(map(str, P.MIN_VERSION))
    assert rows["version floor"].verdict is Verdict.FAIL and rows["version floor"].found == "0.2.14"
    assert f"Pantograph {floor} or newer" in rows["version floor"].todo and "{pantograph_cmd}" in rows["version floor"].todo
    assert rows["traces walked one step"].verdict is Verdict.SKIP
    assert rows["memory after ready."].verdict is Verdict.PASS  # measured on the bare REPL all the same


def test_a_reply_without_hasSorry_fails_the_sorry_check(sim_lean, theorems, sample_traces_path, fast):
    """Before 0.3.1 ``goal.tactic`` had no ``hasSorry``: the walk's parser refuses the reply (SPEC §1)."""
    rows = by_name(_check(sim_lean("--omit-sorry-flags"), theorems, sample_traces_path, fast).checks)
    sorry = rows["sorry flagged by hasSorry"]
    assert sorry.verdict is Verdict.FAIL and "hasSorry" in sorry.found and "look like a proof" in sorry.todo
    assert "goals, nextStateId" in sorry.found  # the keys the REPL did send


def test_a_repl_that_needs_more_than_the_memory_cap_fails_with_the_cap_named(sim_lean, theorems, sample_traces_path,
                                                                               fast):
    config = sim_lean("--reserve-mb", "1500", memory_limit_bytes=1 * GiB)
    rows = by_name(_check(config, theorems, sample_traces_path, fast).checks)
    memory = rows["memory after ready."]
    assert memory.verdict is Verdict.FAIL and "cap kills" in memory.todo and "memory_limit_bytes" in memory.todo
    assert memory.details["vm_bytes"] > GiB == memory.details["cap_bytes"]
    start = rows["start with imports Init Mathlib"]
    assert start.verdict is Verdict.FAIL and "out of memory" in start.found and "memory row" in start.todo
    assert rows["traces walked one step"].verdict is Verdict.SKIP
    assert rows["sorry flagged by hasSorry"].verdict is Verdict.PASS  # the probes import Init only


@pytest.mark.parametrize(("reserve_mb", "verdict"), [("100", Verdict.PASS), ("900", Verdict.WARN)])
def test_memory_headroom_under_the_cap(sim_lean, theorems, sample_traces_path, fast, reserve_mb, verdict):
    config = sim_lean("--reserve-mb", reserve_mb, memory_limit_bytes=1 * GiB)
    memory = by_name(_check(config, theorems[:1], sample_traces_path, fast).checks)["memory after ready."]
    assert memory.verdict is verdict, memory
    assert memory.details["vm_bytes"] >= int(reserve_mb) * 1024**2


def test_theorems_the_repl_does_not_know_fail_the_walk_with_what_to_do(sim_lean, theorems, sample_traces_path, tmp_path,
                                                                         fast):
    known = tmp_path / "two.json"
    entries = json.loads(sample_traces_path.read_text())
    names = {t.full_name for t in theorems}
    known.write_text(json.dumps([e for e in entries if e["full_name"] not in names][:2]))
    found = _check(sim_lean(traces=known), theorems, sample_traces_path, fast)
    walk = by_name(found.checks)["traces walked one step"]
    assert walk.verdict is Verdict.FAIL and walk.found.startswith(f"0/{len(theorems)} applied step 0")
    assert "lacks traced theorems" in walk.todo
    assert {r[WALK_COLUMNS.index("ended")] for r in found.tables[0].rows} == {"start_failed"}


def test_version_rows_read_the_toolchain_from_the_version_or_the_tag():
    assert toolchain_of("0.3.7/v4.21.0") == "v4.21.0" and toolchain_of("0.3.4") == "v4.21.0"
    assert toolchain_of("0.3.2") == "v4.20.1" and toolchain_of("0.3.9") is None
    rows = by_name(version_checks("0.3.4", None, {"url": "https://github.com/leanprover-community/mathlib4",
                                                  "commit": "f8b56ceb773d"}, None))
    assert rows["repl --version"].verdict is Verdict.PASS and rows["version floor"].verdict is Verdict.PASS
    drift = rows["Lean version vs traces"]
    assert drift.verdict is Verdict.UNKNOWN and "v4.21.0" in drift.found and "mathlib4 @ f8b56ceb" in drift.found
    odd = by_name(version_checks("lean-repl dev", None, {}, None))
    assert odd["repl --version"].verdict is Verdict.UNKNOWN and odd["version floor"].verdict is Verdict.UNKNOWN
    silent = by_name(version_checks("", None, {}, None))["repl --version"]
    assert silent.verdict is Verdict.UNKNOWN and "leanprover-community/repl" in silent.todo
    missing = version_checks(None, FileNotFoundError("repl"), {}, None)
    assert [c.verdict for c in missing] == [Verdict.FAIL, Verdict.SKIP]


class _Scripted:
    """A REPL answering scripted ``goal.tactic`` replies (the branches the simulator cannot reach: real Lean's)."""

    def __init__(self, *replies: GoalTacticReply) -> None:
        self.replies = list(replies)

    async def goal_start(self, **_) -> GoalStartReply:
        return GoalStartReply(0)

    async def goal_tactic(self, state_id, tactic, goal_id=None) -> GoalTacticReply:
        return self.replies.pop(0)


def _advanced(*targets: str) -> GoalTacticReply:
    return GoalTacticReply(TacticOutcome.ADVANCED, next_state_id=1, goals=tuple(Goal(t) for t in targets))


@pytest.mark.parametrize(("last", "verdict", "todo"), [
    (_advanced("p"), Verdict.PASS, ""),
    (GoalTacticReply(TacticOutcome.COMPLETE, next_state_id=3), Verdict.FAIL, "other goal vanished"),
    (GoalTacticReply(TacticOutcome.LEAN_ERROR, messages=(P.Message("type mismatch"),)), Verdict.FAIL, "did not address"),
])
def test_goal_id_verdicts(last, verdict, todo):
    """Goal.lean v0.3.4 L13-54: with goalId in automatic mode the other goals stay in the reply."""
    probe = _Probe(None)
    asyncio.run(_goal_id(_Scripted(_advanced("p → q → p ∧ q"), _advanced("p", "q"), last), probe))
    (row,) = probe.rows
    assert row.verdict is verdict and todo in row.todo


@pytest.mark.parametrize(("reply", "verdict"), [
    (GoalTacticReply(TacticOutcome.LIMIT, messages=(P.Message("(deterministic) timeout"),), limit=P.LimitKind.HEARTBEATS),
     Verdict.PASS),
    (GoalTacticReply(TacticOutcome.LEAN_ERROR, messages=(P.Message("maximum number of heartbeats (100) reached"),)),
     Verdict.WARN),
    (GoalTacticReply(TacticOutcome.COMPLETE, next_state_id=1), Verdict.WARN),
])
def test_heartbeat_verdicts(reply, verdict):
    probe = _Probe(None)
    asyncio.run(_heartbeats(_Scripted(reply), probe, False, 100))
    assert probe.rows[0].verdict is verdict


def test_a_limit_hit_while_elaborating_the_goal_is_unknown_not_a_failure():
    class TooSmall(_Scripted):
        async def goal_start(self, **_):
            raise LeanProtocolError("core", "(deterministic) timeout at `elaborator`, maximum number of heartbeats (1)")

    probe = _Probe(None)
    asyncio.run(_heartbeats(TooSmall(), probe, False, 1))
    assert probe.rows[0].verdict is Verdict.UNKNOWN and "heartbeat_limit" in probe.rows[0].todo


def test_group_memory_reads_every_process_of_the_group():
    """Under ``lake env repl`` the REPL is a grandchild in the process group LeanProcess starts."""
    script = ("import subprocess, sys, time; subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)']); "
              "print('started', flush=True); time.sleep(60)")
    child = subprocess.Popen([sys.executable, "-c", script], start_new_session=True, stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout.readline().strip() == "started"  # the grandchild exists (forked) by now
        procs = group_memory(child.pid)
        assert len(procs) == 2 and child.pid in {p.pid for p in procs}
        assert all(p.vm_bytes > 0 for p in procs)
    finally:
        os.killpg(child.pid, signal.SIGKILL)
        child.wait()


@pytest.mark.pantograph
@pytest.mark.skipif(not os.environ.get("PANTOGRAPH_REPL"), reason="PANTOGRAPH_REPL is not set")
def test_a_real_pantograph_answers_every_protocol_probe(theorems, sample_traces_path, fast):
    """On real Lean (PANTOGRAPH_REPL, optionally PANTOGRAPH_CWD): the probes on Lean core all pass."""
    import shlex

    from workbench.lean import LeanConfig

    config = LeanConfig(command=tuple(shlex.split(os.environ["PANTOGRAPH_REPL"])), imports=("Init",),
                        cwd=os.environ.get("PANTOGRAPH_CWD") or None)
    rows = by_name(_check(config, theorems, sample_traces_path, fast).checks)
    for name in ("version floor", "options.set automaticMode", "copyFrom Nat.add_comm", "binder introduction",
                 "tactic with goalId", "sorry flagged by hasSorry", "interrupt typed as Lean's verdict"):
        assert rows[name].verdict is Verdict.PASS, rows[name]
    assert rows["heartbeat limit typed as Lean's verdict"].verdict in (Verdict.PASS, Verdict.WARN)
