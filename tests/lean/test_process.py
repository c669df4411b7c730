"""One REPL process against the simulator: startup, the request chokepoint, faults, limits."""

from __future__ import annotations

import asyncio
import os
import time

import pytest

from workbench.lean import LeanProcess, repl_version
from workbench.lean.errors import LeanGarbage, LeanProcessDied, LeanProtocolError, LeanStartError, LeanTimeout
from workbench.lean import protocol as P
from workbench.lean.protocol import TacticOutcome
from workbench.lean.simulator import simulator_version

from lean_test_helpers import until


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


async def test_version_and_requests(sim_config):
    cfg = sim_config()
    assert await repl_version(cfg) == simulator_version("same")
    proc = await LeanProcess.start(cfg)
    try:
        start = await proc.goal_start(copy_from="Nat.exists_gt_foo")
        printed = await proc.goal_print(start.state_id)
        assert printed.goals[0].target == "∀ (n : ℕ), ∃ m, n < m"  # copyFrom: the whole type, no context
        intro = await proc.goal_tactic(start.state_id, "intro n")
        r = await proc.goal_tactic(intro.next_state_id, "use n + 1")
        assert r.outcome is TacticOutcome.ADVANCED
        with pytest.raises(LeanProtocolError) as e:
            await proc.goal_tactic(123, "simp")
        assert e.value.kind == "index" and proc.alive  # a protocol error does not kill
        assert (await proc.stat()).n_goals == 3
        await proc.goal_delete([start.state_id])
        assert (await proc.reset()).n_goals == 2
        assert proc.requests == 9  # with the options.set {"automaticMode": true} sent at start
        assert (await proc.request(P.Request("options.print")))["automaticMode"] is True
    finally:
        await proc.close()
    assert not proc.alive and not pid_alive(proc.pid)


async def test_memory_cap_is_applied(sim_config):
    limit = 3 * 1024**3
    proc = await LeanProcess.start(sim_config(memory_limit_bytes=limit))
    try:
        with open(f"/proc/{proc.pid}/limits") as f:
            line = next(x for x in f if x.startswith("Max address space"))
        assert line.split()[3:5] == [str(limit), str(limit)]
        assert os.getpgid(proc.pid) == proc.pid  # its own process group
    finally:
        await proc.close()


async def test_hang_is_caught_by_the_timeout_and_the_process_killed(sim_config):
    proc = await LeanProcess.start(sim_config(request_timeout_s=0.5))
    sid = (await proc.goal_start(copy_from="Nat.exists_gt_foo")).state_id
    t0 = time.monotonic()
    with pytest.raises(LeanTimeout):
        await proc.goal_tactic(sid, "__sim_hang__")
    assert time.monotonic() - t0 < 5
    assert not proc.alive and proc.death_cause == "timeout" and not pid_alive(proc.pid)
    with pytest.raises(LeanProcessDied):
        await proc.stat()
    await proc.close()


async def test_crash_reports_stderr(sim_config):
    proc = await LeanProcess.start(sim_config())
    sid = (await proc.goal_start(copy_from="Nat.exists_gt_foo")).state_id
    with pytest.raises(LeanProcessDied) as e:
        await proc.goal_tactic(sid, "__sim_crash__")
    assert "simulated crash" in str(e.value) and e.value.returncode == 134
    assert proc.death_cause == "died"
    await proc.close()


async def test_garbage_line_kills(sim_config):
    proc = await LeanProcess.start(sim_config())
    sid = (await proc.goal_start(copy_from="Nat.exists_gt_foo")).state_id
    with pytest.raises(LeanGarbage) as e:
        await proc.goal_tactic(sid, "__sim_garbage__")
    assert "PANIC" in str(e.value)
    assert proc.death_cause == "garbage" and not proc.alive
    await proc.close()


async def test_cancelled_request_kills_the_process(sim_config):
    proc = await LeanProcess.start(sim_config())
    sid = (await proc.goal_start(copy_from="Nat.exists_gt_foo")).state_id
    task = asyncio.create_task(proc.goal_tactic(sid, "__sim_hang__"))
    await until(lambda: proc._lock.locked())  # the request is written, its reply pending
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert proc.death_cause == "cancelled" and not proc.alive
    await proc.close()
    assert not pid_alive(proc.pid)


@pytest.mark.parametrize("mode", ["json", "exit"])
async def test_startup_failure_includes_stderr(sim_config, mode):
    fds = len(os.listdir("/proc/self/fd"))
    with pytest.raises(LeanStartError) as e:
        await LeanProcess.start(sim_config("--fail-start", mode))
    assert len(os.listdir("/proc/self/fd")) <= fds  # pipes and the stderr file are closed
    text = str(e.value)
    assert "simulated startup failure" in text  # the stderr tail
    if mode == "json":
        assert "startup error io" in text and "simulated import failure" in text
    else:
        assert "exited before 'ready.'" in text and e.value.returncode == 1


@pytest.mark.parametrize("flags", [("--start-delay", "30"), ("--slow-start-rate", "1", "--slow-start-s", "30")])
async def test_startup_timeout(sim_config, flags):
    t0 = time.monotonic()
    with pytest.raises(LeanStartError) as e:
        await LeanProcess.start(sim_config(*flags, start_timeout_s=1.0))
    assert "no 'ready.' within 1s" in str(e.value) and time.monotonic() - t0 < 10


async def test_missing_binary(sim_config):
    from workbench.lean import LeanConfig

    with pytest.raises(LeanStartError) as e:
        await LeanProcess.start(LeanConfig(command=("/nonexistent/repl",)))
    assert "/nonexistent/repl" in str(e.value)


def test_config_argv():
    from workbench.lean import LeanConfig

    cfg = LeanConfig(command="lake env repl", imports=["Mathlib"], options={"maxHeartbeats": "400000"})
    assert cfg.argv() == ["lake", "env", "repl", "Mathlib", "--maxHeartbeats=400000"]
    assert cfg.version_argv() == ["lake", "env", "repl", "--version"]
    with pytest.raises(ValueError):
        LeanConfig(command=(), workers=1)
    with pytest.raises(ValueError):
        LeanConfig(command=("repl",), workers=0)


def _gone(pid: int) -> bool:
    """Exited (a zombie waiting for a reaper counts: it holds no memory and runs nothing)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] == "Z"
    except FileNotFoundError:
        return True


def _hung_workbench(command, env=None):
    """A workbench process (a subprocess) with a REPL hung on a request; it prints the REPL's pid when it hangs."""
    import subprocess
    import sys

    code = (
        "import asyncio, os, sys\n"
        "from workbench.lean import LeanProcess, LeanConfig\n"
        f"cfg = LeanConfig(command={tuple(command)!r}, workers=1, request_timeout_s=3600, start_timeout_s=20,"
        f" memory_limit_bytes=None, env={env!r})\n"
        "async def main():\n"
        "    proc = await LeanProcess.start(cfg)\n"
        "    start = await proc.goal_start(copy_from='Nat.exists_gt_foo')\n"
        "    hung = asyncio.ensure_future(proc.goal_tactic(start.state_id, '__sim_hang__'))\n"
        "    await asyncio.sleep(0.2)\n"
        "    pidfile = (cfg.env or {}).get('FAKE_LAKE_PIDFILE')\n"
        "    print(open(pidfile).read() if pidfile else proc.pid, flush=True)\n"
        "    await hung\n"
        "asyncio.run(main())\n"
    )
    return subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)


def _assert_dies_with(parent, repl: int, sig: str) -> None:
    import signal

    try:
        assert not _gone(repl)
        parent.send_signal(getattr(signal, sig))
        parent.wait(timeout=30)
        deadline = time.monotonic() + 20
        while not _gone(repl) and time.monotonic() < deadline:
            time.sleep(0.05)  # the REPL is not our child: polling /proc is the only way to see it go
        assert _gone(repl), f"REPL {repl} outlived its workbench killed by {sig}"
    finally:
        parent.kill()
        parent.wait()
        if not _gone(repl):
            os.kill(repl, 9)


@pytest.mark.parametrize("sig", ["SIGKILL", "SIGTERM"])
def test_a_hung_repl_dies_with_its_parent(sim_config, sig):
    """Audit: a REPL hung when the workbench was killed stayed alive, reparented to init (PR_SET_PDEATHSIG)."""
    parent = _hung_workbench(sim_config().command)
    _assert_dies_with(parent, int(parent.stdout.readline()), sig)


async def test_the_simulator_exits_when_its_stdin_closes(sim_config):
    proc = await LeanProcess.start(sim_config())
    pid = proc.pid
    proc._proc.stdin.close()  # the parent went away: EOF, as Pantograph's REPL loop ends on it
    assert await asyncio.wait_for(proc._proc.wait(), 10) == 0
    await proc.close()
    assert _gone(pid)


async def test_goal_print_ast_turns_the_option_on_for_one_print(sim_config):
    """printExprAST on for one goal.print (the caller holds the process: LeanPool.call), off afterwards."""
    proc = await LeanProcess.start(sim_config())
    try:
        sid = (await proc.goal_start(copy_from="Nat.succ_le_of_lt_foo")).state_id
        with_ast = await proc.goal_print_ast(sid)
        assert with_ast.target_sexps[0].startswith("(:forall m ")
        assert (await proc.goal_print(sid)).target_sexps == (None,)
        assert (await proc.request(P.Request("options.print", {})))["printExprAST"] is False
    finally:
        await proc.close()


async def test_session_root_ast_gives_leans_binders(sim_config):
    from workbench.lean import LeanPool, TheoremSession
    from workbench.lean.binders import telescope

    async with LeanPool(sim_config()) as pool:
        async with TheoremSession(pool, "Nat.succ_le_of_lt_foo") as s:
            root = await s.start()
            binders = telescope(await s.root_ast())
            assert [(b.name, b.info) for b in binders] == [("m", "default"), ("n", "default"), ("h", "default")]
            result = await s.tactic(root, "intro m n h")
            assert result.node.state_text == "m n : ℕ\nh : m < n\n⊢ m + 1 ≤ n"


FAKE_LAKE = os.path.join(os.path.dirname(__file__), "fake_lake.py")


@pytest.mark.parametrize("sig", ["SIGKILL", "SIGTERM"])
def test_a_hung_repl_under_a_forking_wrapper_dies_with_the_workbench(sim_config, sig, tmp_path):
    """Issue 20, item 5: under `lake env repl` the REPL is the workbench's grandchild; the parent-death
    signal reached Lake, not the REPL, and a hung REPL outlived a SIGKILLed workbench (2 of 2)."""
    import sys

    parent = _hung_workbench((sys.executable, FAKE_LAKE, *sim_config().command),
                             env={"FAKE_LAKE_PIDFILE": str(tmp_path / "repl.pid")})
    repl = int(parent.stdout.readline())  # the simulator: the wrapper's child, the workbench's grandchild
    assert _ppid(repl) != parent.pid
    _assert_dies_with(parent, repl, sig)


def _ppid(pid: int) -> int:
    with open(f"/proc/{pid}/stat") as f:
        return int(f.read().rsplit(")", 1)[1].split()[1])


async def test_the_repl_status_passes_through_the_wrapper_and_the_guard(sim_config, tmp_path):
    """A crash is still reported with the REPL's own exit status and stderr through `lake`-like wrappers."""
    import dataclasses
    import sys

    pidfile = tmp_path / "repl.pid"
    cfg = sim_config()
    proc = await LeanProcess.start(dataclasses.replace(cfg, command=(sys.executable, FAKE_LAKE, *cfg.command),
                                                       env={"FAKE_LAKE_PIDFILE": str(pidfile)}))
    repl = int(pidfile.read_text())
    sid = (await proc.goal_start(copy_from="Nat.exists_gt_foo")).state_id
    with pytest.raises(LeanProcessDied) as e:
        await proc.goal_tactic(sid, "__sim_crash__")
    assert e.value.returncode == 134 and _gone(repl)  # the wrapper passed the REPL's status on; the guard too
    await proc.close()


def our_children() -> set[int]:
    """Live direct children of this test process (a zombie is not live: ``_gone``)."""
    pids = set()
    for pid in (int(entry) for entry in os.listdir("/proc") if entry.isdigit()):
        try:
            if _ppid(pid) == os.getpid() and not _gone(pid):
                pids.add(pid)
        except FileNotFoundError:  # exited while we looked
            continue
    return pids


async def test_a_start_cancelled_while_spawning_ends_and_leaves_no_process(sim_config):
    """CPython 3.11's asyncio/unix_events.py ``_make_subprocess_transport``: a cancel while the child's
    pipes connect kills it, then awaits a transport that never finishes, so the cancelled start hung
    forever (a pool closing after a cancelled restart never returned; CI ran out of time). Cancel at
    every early point of the spawn: each start ends, and the process it spawned is killed."""
    cfg = sim_config()
    before = our_children()
    for yields in range(12):
        task = asyncio.create_task(LeanProcess.start(cfg))
        for _ in range(yields):
            await asyncio.sleep(0)
        task.cancel()
        done, _ = await asyncio.wait([task], timeout=60)  # a hang guard only: a healthy cancel takes milliseconds
        assert done, f"LeanProcess.start cancelled after {yields} loop turns never ended"
        if not task.cancelled():  # it finished starting before the cancel landed
            await task.result().close()
    await until(lambda: our_children() <= before, timeout_s=30)


def _spawn_that_hangs_if_cancelled(spawned: list[int]):
    """``asyncio.create_subprocess_exec`` as CPython 3.11.7 behaves when a cancel lands while the new process's
    pipes connect (asyncio/unix_events.py ``_make_subprocess_transport``): it kills the direct child, then
    awaits ``transp._wait()``, which was seen never to return. The pipes take 0.3 s here, so a cancel lands there."""
    real = asyncio.create_subprocess_exec

    async def spawn(*argv, **kwargs):
        proc = await real(*argv, **kwargs)
        spawned.append(proc.pid)
        try:
            await asyncio.sleep(0.3)  # the pipes connecting
        except asyncio.CancelledError:
            proc.kill()
            await asyncio.Event().wait()  # the transport that never finishes
        return proc

    return spawn


async def test_a_start_cancelled_mid_spawn_never_cancels_the_spawn_itself(sim_config, monkeypatch):
    spawned: list[int] = []
    monkeypatch.setattr(asyncio, "create_subprocess_exec", _spawn_that_hangs_if_cancelled(spawned))
    task = asyncio.create_task(LeanProcess.start(sim_config()))
    await until(lambda: spawned, timeout_s=30)
    task.cancel()
    done, _ = await asyncio.wait([task], timeout=30)  # a hang guard only
    assert done and task.cancelled()
    assert not os.path.exists(f"/proc/{spawned[0]}")  # killed and reaped (no zombie) before the cancel came back


def test_a_loop_shut_down_right_after_a_cancelled_start_returns(sim_config, monkeypatch):
    """``asyncio.run`` (run_sync, a Ctrl-C) cancels every task left when its main coroutine returns: a spawn still
    running then would be cancelled midway. The cancelled start waits for its spawn, so none is left."""
    import threading

    spawned: list[int] = []
    monkeypatch.setattr(asyncio, "create_subprocess_exec", _spawn_that_hangs_if_cancelled(spawned))
    cfg = sim_config()

    async def main() -> None:
        task = asyncio.create_task(LeanProcess.start(cfg))
        await until(lambda: spawned, timeout_s=30)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)

    runner = threading.Thread(target=asyncio.run, args=(main(),), daemon=True)
    runner.start()
    runner.join(timeout=60)  # a hang guard only
    assert not runner.is_alive(), "asyncio.run never returned: its shutdown cancelled a spawn midway"
    assert spawned and not os.path.exists(f"/proc/{spawned[0]}")
