"""Run lifecycle: SIGTERM is Ctrl-C, a dead policy server stops the run cleanly, --resume retries
theorems ended by infrastructure (never Lean's verdicts), every run leaves runs-NNN.json, and a storm of
SIGKILLs followed by --resume gives exactly the uninterrupted run's results."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from .test_output_commit import snapshot
from .test_run import check_output, expected_names
from workbench.mining.output import ResultSink, read_status_lines, retry_counts
from workbench.mining.run import RunStopped, mine, mine_async, offline_demo_settings, retry_reason
from workbench.policy.errors import PolicyUnavailable

REPO = Path(__file__).resolve().parents[2]
SAMPLE = str(REPO / "workbench" / "data" / "sample_traces.json")


def cli_args(out: Path, n: int) -> list[str]:
    return ["--traces", SAMPLE, "--output", str(out), "--lean", "simulated", "--num-theorems", str(n),
            "--lean-workers", "1", "--concurrency", "2"]


def spawn(out: Path, n: int, *extra: str, latency: str = "0.1") -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if k not in ("PANTOGRAPH_REPL", "SGLANG_URL", "ENCODE_URL")}
    env["PYTHONPATH"] = str(REPO)
    args = [sys.executable, "-m", "tests.mining.mine_entry", latency, *cli_args(out, n), *extra]
    return subprocess.Popen(args, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)


def finish(out: Path, n: int) -> None:
    proc = spawn(out, n, "--resume", latency="0")
    _, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 0, stderr[-2000:]


def wait_for_lines(proc: subprocess.Popen, out: Path, at_least: int, timeout: float = 60) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.poll() is None:
        if (out / "manifest.json").exists() and len(read_status_lines(out)) >= at_least:
            return len(read_status_lines(out))
        time.sleep(0.02)  # polling files another process writes: no other signal exists
    raise AssertionError(f"no {at_least} sealed theorems: rc={proc.poll()} {proc.stderr.read()[-2000:] if proc.poll() is not None else ''}")


def test_sigterm_seals_finished_theorems_and_writes_the_summary_like_ctrl_c(tmp_path):
    out = tmp_path / "out"
    proc = spawn(out, 16)
    try:
        wait_for_lines(proc, out, 2)
        proc.send_signal(signal.SIGTERM)
        _, stderr = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == 130, stderr[-2000:]
    assert "--resume" in stderr
    summary = json.loads((out / "summary.json").read_text())
    assert summary["this_run"]["stopped_by"] == "SIGTERM" and summary["attempted"] == len(read_status_lines(out))
    assert json.loads((out / "runs-000.json").read_text())["state"] == "stopped"
    finish(out, 16)
    check_output(out, expected_names(offline_demo_settings(out, num_theorems=16)))
    assert json.loads((out / "runs-001.json").read_text())["state"] == "finished"


def test_a_kill_storm_then_resume_gives_the_uninterrupted_result(tmp_path):
    """Repeated SIGKILLs of the run and its Lean processes; every kill after the first seal keeps what it sealed."""
    reference = tmp_path / "reference"
    mine(offline_demo_settings(reference, num_theorems=12, concurrency=2, lean_workers=1,
                               simulator_args=("--latency-scale", "0")))
    out = tmp_path / "out"
    rng = random.Random(7)
    sealed = [0]
    for kill in range(3):
        proc = spawn(out, 12, *(["--resume"] if kill else []))
        try:
            wait_for_lines(proc, out, sealed[-1] + 1)
            time.sleep(rng.uniform(0.0, 0.3))  # kill at a random point, mostly mid-flush or mid-walk
        finally:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=30)
        sealed.append(len(read_status_lines(out)))
        if sealed[-1] >= 12:
            break
    assert all(b > a for a, b in zip(sealed, sealed[1:])), f"every run sealed something before its kill: {sealed}"
    finish(out, 12)
    got, expected = snapshot(out), snapshot(reference)
    pd.testing.assert_frame_equal(got[0], expected[0])
    pd.testing.assert_frame_equal(got[1], expected[1])
    assert got[2] == expected[2]


class DiesAfter:
    """Wraps a policy; after ``n`` calls every call raises PolicyUnavailable (the circuit breaker tripped)."""

    def __init__(self, inner, n: int) -> None:
        self.inner, self.n = inner, n

    async def candidates(self, state_pp, n, *, theorem):
        self.n -= 1
        if self.n < 0:
            raise PolicyUnavailable("http://127.0.0.1:1: circuit breaker open")
        return await self.inner.candidates(state_pp, n, theorem=theorem)

    def provenance(self):
        return self.inner.provenance()

    async def aclose(self):
        return None


def test_an_unavailable_policy_stops_the_run_and_resume_finishes_it(tmp_path):
    from workbench.policy.retrieval import RetrievalPolicy
    from workbench.traces import bundled_sample_path, load_traces

    out = tmp_path / "out"
    settings = offline_demo_settings(out, num_theorems=12, concurrency=2, seal_every_s=0,
                                     simulator_args=("--latency-scale", "0"))

    async def run() -> RunStopped:
        inner = await RetrievalPolicy.build(load_traces(bundled_sample_path()).theorems)
        with pytest.raises(RunStopped, match="--resume") as info:
            await mine_async(settings, policy=DiesAfter(inner, 12))
        return info.value

    stopped = asyncio.run(run())
    lines = read_status_lines(out)
    assert 0 < len(lines) < 12, "finished theorems kept, unfinished ones left for --resume"
    assert all(line["counts"].get("policy_errors", 0) == 0 for line in lines), "no theorem mined without a policy"
    assert stopped.result.this_run["stopped_by"] == "policy_unavailable"
    assert json.loads((out / "summary.json").read_text())["attempted"] == len(lines)
    mine(dataclasses.replace(settings, mode="resume"))
    check_output(out, expected_names(settings))


def test_resume_retries_infrastructure_endings_up_to_the_limit_never_lean_verdicts(tmp_path):
    out = tmp_path / "out"
    settings = offline_demo_settings(out, num_theorems=6, concurrency=2, simulator_args=("--latency-scale", "0"))
    results = sorted(mine(settings, keep_results=True).results, key=lambda r: r.theorem)
    infra, verdict = results[0], results[1]
    # Rewrite the folder as if two theorems had ended badly: one by a Lean crash, one by Lean's verdict.
    sink = ResultSink(out, {"simulated": True}, mode="overwrite", simulated=True)
    for r in results:
        if r is infra:
            r = dataclasses.replace(r, status="skipped", reason="gt_infra_error", records=r.records[:1], attempts=[])
        elif r is verdict:
            r = dataclasses.replace(r, status="skipped", reason="gt_failed")
        sink.add(r)
    sink.close()
    resumed = mine(dataclasses.replace(settings, mode="resume", retry_infra=1))
    assert resumed.this_run["retried"] == {"gt_infra_error": 1} and resumed.this_run["theorems"] == 1
    lines = {line["theorem"]: line for line in read_status_lines(out)}
    assert lines[infra.theorem]["reason"] == infra.reason and lines[verdict.theorem]["reason"] == "gt_failed"
    assert retry_counts(out) == {infra.theorem: 1}
    check_output(out, expected_names(settings))
    # The limit: a theorem that keeps ending by infrastructure is not retried forever.
    assert retry_reason({"reason": "gt_infra_error"}, retry_incomplete=False) == "gt_infra_error"
    assert retry_reason({"status": "timed_out", "reason": "theorem_timeout", "counts": {"infra.timeout": 2}},
                        retry_incomplete=False) == "timed_out_during_infra_errors"
    assert retry_reason({"status": "timed_out", "reason": "theorem_timeout", "counts": {}}, retry_incomplete=False) is None
    assert retry_reason({"status": "completed", "reason": "qed", "incomplete": True}, retry_incomplete=False) is None
    assert retry_reason({"status": "completed", "reason": "qed", "incomplete": True}, retry_incomplete=True) == "incomplete"
    again = mine(dataclasses.replace(settings, mode="resume", retry_infra=1))
    assert again.this_run["theorems"] == 0 and again.this_run["retried"] == {}


def test_every_run_leaves_its_own_history_file(tmp_path):
    out = tmp_path / "out"
    mine(offline_demo_settings(out, num_theorems=2, simulator_args=("--latency-scale", "0")))
    mine(offline_demo_settings(out, num_theorems=4, mode="resume", simulator_args=("--latency-scale", "0")))
    runs = [json.loads((out / f"runs-{i:03d}.json").read_text()) for i in range(2)]
    assert [r["parameters"]["num_theorems"] for r in runs] == [2, 4]
    assert all(r["state"] == "finished" and r["this_run"]["wall_s"] > 0 for r in runs)


def test_malformed_trace_entries_are_named_in_the_summary_and_strict_stops(tmp_path):
    from workbench.cli import main
    from workbench.traces import bundled_sample_path, load_traces, write_tactic_pairs

    pairs = tmp_path / "pairs.jsonl"
    write_tactic_pairs(load_traces(bundled_sample_path()).theorems[:3], pairs)
    with pairs.open("a") as f:
        f.write('{"state": "⊢ True", "tactic": "trivial", "theorem": "Bad"}\n')  # no depth
        f.write("not json\n")
    n = len(pairs.read_text().splitlines())
    result = mine(offline_demo_settings(tmp_path / "out", traces=str(pairs), simulator_args=("--latency-scale", "0")))
    assert f"skipped 2 malformed trace entries" in result.text
    assert f"pairs.jsonl: line {n - 1}: missing field 'depth'" in result.text
    assert f"pairs.jsonl: line {n}: malformed JSON" in result.text
    assert result.summary["this_run"]["malformed_trace_entries"]["count"] == 2
    rc = main(["mine", "--traces", str(pairs), "--output", str(tmp_path / "strict"), "--lean", "simulated", "--strict"])
    assert rc == 2
