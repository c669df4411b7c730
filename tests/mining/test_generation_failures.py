"""Issue 20, item 1: nothing is finished without its candidates.

A generation call that failed after its retries is not a step with zero candidates: the theorem stays
unfinished (never sealed), the circuit breaker stops the run on persistent failures of any kind, the run
exits 3 saying how many theorems are left, and a plain ``--resume`` with the server back mines them, so
every sealed theorem got candidates at every step it walked. The servers are the stand-in SGLang on
loopback (in-process, or a separate process that is SIGKILLed mid-run).
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from .test_run_lifecycle import REPO, SAMPLE, spawn, wait_for_lines
from workbench.mining.output import read_attempts, read_status_lines
from workbench.mining.run import RunStopped, mine, mine_async, offline_demo_settings
from workbench.policy.breaker import BreakerConfig
from workbench.policy.prompt import prompt_format
from workbench.policy.sglang import SGLangConfig, SGLangPolicy
from workbench.policy.standin_server import ScriptedCompleter, StandinSGLang

# Tactics no ground-truth step of the sample uses: each step sends some to Lean (seeded outcomes).
SCRIPT = {"*": ["norm_num [foo_bar_baz]", "exact absurd_lemma_x", "simp only [qux_quux]", "omega_nonexistent"]}


def steps_without_candidates(out: Path) -> dict[str, list[int]]:
    """Sealed theorems with a ground-truth step at which no candidate was sent to Lean."""
    attempts = read_attempts(out).to_pandas()
    sealed = {line["theorem"] for line in read_status_lines(out)}
    missing = {}
    for name, rows in attempts.groupby("theorem"):
        if name not in sealed:
            continue
        walked = set(rows[rows.role.str.startswith("ground_truth")].step)
        asked = set(rows[rows.role == "candidate"].step)
        if walked - asked:
            missing[name] = sorted(walked - asked)
    return missing


class FailsAfter:
    """A completer that turns the server's fault on after ``n`` answered calls (deterministic, no clocks)."""

    def __init__(self, server_faults, n: int, fault: str) -> None:
        self.inner, self.faults, self.n, self.fault = ScriptedCompleter(SCRIPT), server_faults, n, fault

    def __call__(self, state, prompt, k):
        self.n -= 1
        if self.n == 0:
            if self.fault == "abort":
                self.faults.abort_next = 10**6
            else:
                self.faults.fail_next, self.faults.fail_status = 10**6, int(self.fault)
        return self.inner(state, prompt, k)


@pytest.mark.parametrize("fault", ["503", "500", "abort"])
def test_a_failing_server_leaves_theorems_unfinished_and_resume_mines_them(tmp_path, fault):
    """Before: 503/500/abort answers made every later step a step without candidates, and those
    theorems were sealed as completed (the run exited 0; neither --resume nor --retry-incomplete redid them)."""
    out = tmp_path / "out"
    settings = offline_demo_settings(out, num_theorems=12, concurrency=2, lean_workers=1, seal_every_s=0,
                                     simulator_args=("--latency-scale", "0"))
    server = StandinSGLang()
    server.completer = FailsAfter(server.faults, 6, fault)

    async def run(s) -> None:
        config = SGLangConfig(url=server.url, prompt=prompt_format("deepseek-chat"), backoff_s=0.001,
                              startup_wait_s=5, startup_poll_s=0.01, breaker=BreakerConfig(consecutive=6))
        async with SGLangPolicy(config) as policy:
            await mine_async(s, policy=policy)

    with server:
        with pytest.raises(RunStopped, match=r"theorems left to mine: re-run the same command with --resume") as info:
            asyncio.run(run(settings))
        stopped = info.value
        sealed = read_status_lines(out)
        assert len(sealed) < 12 and stopped.left == 12 - len(sealed) > 0
        assert stopped.result.this_run["stopped_by"] == "policy_unavailable"
        assert steps_without_candidates(out) == {}, "a sealed theorem lost the candidates of a step"
        assert all(line["status"] != "unfinished" for line in sealed)
        history = json.loads((out / "runs-000.json").read_text())
        assert history["state"] == "stopped" and history["this_run"]["left_to_mine"] == stopped.left
        # the server answers again: a plain --resume (no --retry-incomplete) mines exactly what is left
        server.faults.fail_next = server.faults.abort_next = 0
        server.completer = ScriptedCompleter(SCRIPT)
        asyncio.run(run(dataclasses.replace(settings, mode="resume")))
    lines = read_status_lines(out)
    assert sorted(line["theorem"] for line in lines) == sorted({line["theorem"] for line in lines}) and len(lines) == 12
    assert steps_without_candidates(out) == {}


def test_a_failed_step_that_does_not_trip_the_breaker_still_fails_the_run(tmp_path):
    """One failed generation call (after retries) ends only its theorem; the run finishes the others, then
    exits 3 naming how many to resume (a run can end before any breaker would trip)."""
    out = tmp_path / "out"
    settings = offline_demo_settings(out, num_theorems=4, concurrency=1, lean_workers=1, seal_every_s=0,
                                     simulator_args=("--latency-scale", "0"))
    server = StandinSGLang(ScriptedCompleter(SCRIPT))

    class FailOnce:
        def __init__(self) -> None:
            self.calls = 0

        def __call__(self, state, prompt, k):
            self.calls += 1
            if self.calls == 3:  # the third step asked: its two attempts fail
                server.faults.fail_next = 2
            return ScriptedCompleter(SCRIPT)(state, prompt, k)

    server.completer = FailOnce()

    async def run(s):
        config = SGLangConfig(url=server.url, prompt=prompt_format("deepseek-chat"), backoff_s=0.001,
                              startup_wait_s=5, startup_poll_s=0.01)
        async with SGLangPolicy(config) as policy:
            return await mine_async(s, policy=policy)

    with server:
        with pytest.raises(RunStopped, match=r"generation failed for 1 theorems .*, 1 theorems left to mine") as info:
            asyncio.run(run(settings))
        assert info.value.result.this_run["unfinished"] == 1 and len(read_status_lines(out)) == 3
        assert info.value.result.this_run["stopped_by"] == "generation_failed"
        result = asyncio.run(run(dataclasses.replace(settings, mode="resume")))
    assert result.this_run["theorems"] == 1 and len(read_status_lines(out)) == 4
    assert steps_without_candidates(out) == {}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _standin(port: int, script: Path) -> subprocess.Popen:
    env = dict(os.environ, PYTHONPATH=str(REPO))
    return subprocess.Popen([sys.executable, "-m", "workbench.policy.standin_server", "--port", str(port),
                             "--script", str(script), "--latency-s", "0.05"], cwd=REPO, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)


def test_generation_server_killed_mid_run_exits_3_and_resume_completes_every_step(tmp_path):
    """The issue's acceptance check, from outside: `workbench mine` against a stand-in SGLang process that
    is SIGKILLed a few theorems in. Before: exit 0, theorems sealed as completed with no candidate sent."""
    script = tmp_path / "script.json"
    script.write_text(json.dumps(SCRIPT))
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    out = tmp_path / "out"
    server = _standin(port, script)
    try:
        proc = spawn(out, 12, "--server-url", url, "--server-wait", "60", "--prompt-format", "deepseek-chat")
        try:
            wait_for_lines(proc, out, 2)
            os.killpg(server.pid, signal.SIGKILL)
            server.wait(timeout=30)
            _, stderr = proc.communicate(timeout=180)
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
        assert proc.returncode == 3, stderr[-3000:]
        sealed = len(read_status_lines(out))
        assert f"{12 - sealed} theorems left to mine" in stderr and "--resume" in stderr, stderr[-3000:]
        assert steps_without_candidates(out) == {}
        server = _standin(port, script)  # the server is back
        resumed = spawn(out, 12, "--resume", "--server-url", url, "--server-wait", "60",
                        "--prompt-format", "deepseek-chat", latency="0")
        _, stderr = resumed.communicate(timeout=180)
        assert resumed.returncode == 0, stderr[-3000:]
    finally:
        if server.poll() is None:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait(timeout=30)
    lines = read_status_lines(out)
    assert len(lines) == 12 and all(line["status"] != "unfinished" for line in lines)
    assert steps_without_candidates(out) == {}
    assert all(line["counts"].get("policy.steps", 0) > 0 for line in lines)
