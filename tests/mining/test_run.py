"""End to end on the simulator: faults on, every theorem accounted for, no record lost or duplicated,
interrupted runs resume without duplicates; CLI behaviour."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from workbench.mining.output import STATUS_LOG, read_attempts, read_status_lines
from workbench.mining.run import LeanNotConfigured, MineSettings, mine, mine_async, offline_demo_settings
from workbench.trajectory import read_metadata, read_trajectories

REPO = Path(__file__).resolve().parents[2]


def check_output(out: Path, expected: set[str]) -> pd.DataFrame:
    lines = read_status_lines(out)
    names = [line["theorem"] for line in lines]
    assert len(names) == len(set(names)), "a theorem was mined twice"
    assert set(names) == expected, "every selected theorem has exactly one status line"
    for line in lines:
        assert line["status"] in ("completed", "skipped", "timed_out")
        assert line["reason"], line
    df = read_trajectories(out)
    assert not df.duplicated(["theorem_name", "state_id"]).any(), "duplicate records"
    per_theorem = df.groupby("theorem_name").size().to_dict()
    for line in lines:  # nothing lost: the status line's count matches the records on disk
        assert per_theorem.get(line["theorem"], 0) == line["records"], line["theorem"]
    for name, g in df.groupby("theorem_name"):
        ids = set(g.state_id)
        parents = g.parent_state_id.dropna().astype(int)
        assert set(parents) <= ids, f"{name}: dangling parent"
        assert (g.parent_state_id.isna()).sum() == 1, f"{name}: one root"
    assert df.simulated.all() and (df.state_source == "simulator").all()
    return df


def expected_names(settings: MineSettings) -> set[str]:
    from workbench.traces import load_traces

    return {t.full_name for t in load_traces(settings.traces_path, num_theorems=settings.num_theorems,
                                             seed=settings.seed, min_steps=settings.min_steps, skip_bad=True).theorems}


def test_simulated_run_with_faults_accounts_for_every_theorem(tmp_path):
    settings = offline_demo_settings(
        tmp_path / "out", num_theorems=14, lean_workers=2, concurrency=8, tactic_timeout_s=0.5, theorem_timeout_s=30,
        simulator_args=("--latency-scale", "0", "--crash-rate", "0.01", "--hang-rate", "0.005",
                        "--garbage-rate", "0.01", "--seed", "3"))
    result = mine(settings)
    df = check_output(settings.output and Path(settings.output), expected_names(settings))
    s = result.summary
    assert s["simulated"] is True and s["attempted"] == 14
    assert s["completed"] + s["skipped"] + s["timed_out"] == 14
    assert s["negatives"] == int((df.label == "negative").sum()) > 0
    assert s["positives"] == int((df.label == "positive").sum())
    assert sum(result.this_run["lean_restarts"].values()) > 0, "faults were injected and survived"
    meta = read_metadata(settings.output)
    assert meta["simulated"] is True and meta["lean_backend"] == "simulator"
    assert meta["policy"]["policy"] == "retrieval" and meta["parameters"]["num_theorems"] == 14
    attempts = read_attempts(settings.output).to_pandas()
    assert set(attempts.role) >= {"ground_truth", "candidate"}
    assert attempts.simulated.all()
    summary = json.loads((Path(settings.output) / "summary.json").read_text())
    assert summary["simulated"] is True and summary["depth_table"]


def test_namespace_mismatch_is_rescued_by_the_open_retry(tmp_path):
    # The bundled sample's annotated references decide the failures (lean/simnamespace.py): 14 ground-truth
    # steps write a short name; the theorem-prefix retry rescues 13, not `le_succ` (a file-level `open Nat`).
    settings = offline_demo_settings(tmp_path / "out", candidates_per_step=2, simulator_args=("--latency-scale", "0"))
    s = mine(settings).summary["ground_truth_replay"]
    assert (s["failed_before_open_retry"], s["rescued_by_open_retry"], s["failed"]) == (14, 13, 1)
    attempts = read_attempts(settings.output).to_pandas()
    retried = attempts[attempts.role == "ground_truth_open"]
    assert retried.sent.str.startswith("open ").all()
    assert set(retried[retried.outcome != "ground_truth"].theorem) == {"Finset.card_insert_le_foo"}
    failed = attempts[(attempts.role == "ground_truth") & (attempts.outcome == "ground_truth_failed")]
    assert (failed.error_kind == "unknown_identifier").all()
    assert "unknown identifier 'succ_le_of_lt'" in set(failed.messages)


class CancelAfter:
    """Wraps a policy; cancels the mining task after ``n`` generation calls (a deterministic Ctrl-C)."""

    def __init__(self, inner, n: int, task_box: list) -> None:
        self.inner, self.n, self.task_box = inner, n, task_box

    async def candidates(self, state_pp, n, *, theorem):
        self.n -= 1
        if self.n == 0:
            self.task_box[0].cancel()
        return await self.inner.candidates(state_pp, n, theorem=theorem)

    def provenance(self):
        return self.inner.provenance()

    async def aclose(self):
        return None


def test_cancelled_run_keeps_finished_theorems_and_resumes_without_duplicates(tmp_path):
    from workbench.policy.retrieval import RetrievalPolicy
    from workbench.traces import bundled_sample_path, load_traces

    out = tmp_path / "out"
    settings = offline_demo_settings(out, num_theorems=16, concurrency=4, flush_every_theorems=1,
                                     simulator_args=("--latency-scale", "0"))

    async def interrupted() -> None:
        inner = await RetrievalPolicy.build(load_traces(bundled_sample_path()).theorems)
        box: list = []
        box.append(asyncio.ensure_future(mine_async(settings, policy=CancelAfter(inner, 25, box))))
        with pytest.raises(asyncio.CancelledError):
            await box[0]

    asyncio.run(interrupted())
    first = read_status_lines(out)
    assert 0 < len(first) < 16, "some theorems finished before the interruption, not all"
    resumed = mine(offline_demo_settings(out, num_theorems=16, concurrency=4, mode="resume",
                                         simulator_args=("--latency-scale", "0")))
    assert resumed.this_run["already_finished"] >= len(first)
    check_output(out, expected_names(settings))


def test_killed_process_resumes_without_duplicates(tmp_path):
    out = tmp_path / "out"
    code = (
        "from workbench.mining.run import mine, offline_demo_settings\n"
        f"mine(offline_demo_settings({str(out)!r}, num_theorems=16, concurrency=2, lean_workers=1, "
        "flush_every_theorems=1, simulator_args=('--latency-scale', '0.1')))\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", code], cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            start_new_session=True)
    deadline = time.monotonic() + 60
    try:
        while time.monotonic() < deadline and proc.poll() is None:
            if (out / STATUS_LOG).exists() and len(read_status_lines(out)) >= 3:
                break
            time.sleep(0.05)  # polling a file written by another process: no other signal exists
        assert proc.poll() is None, f"run ended before it could be killed: {proc.stderr.read().decode()[-2000:]}"
        os.killpg(proc.pid, signal.SIGKILL)  # the run and its Lean processes, no clean-up at all
    finally:
        proc.wait(timeout=30)
    before = len(read_status_lines(out))
    assert 3 <= before < 16
    mine(offline_demo_settings(out, num_theorems=16, mode="resume", simulator_args=("--latency-scale", "0")))
    check_output(out, expected_names(offline_demo_settings(out, num_theorems=16)))


def test_new_mode_refuses_existing_output_and_overwrite_replaces_it(tmp_path):
    out = tmp_path / "out"
    mine(offline_demo_settings(out, num_theorems=3, simulator_args=("--latency-scale", "0")))
    with pytest.raises(FileExistsError, match="--resume"):
        mine(offline_demo_settings(out, num_theorems=3, mode="new"))
    mine(offline_demo_settings(out, num_theorems=2, mode="overwrite", simulator_args=("--latency-scale", "0")))
    assert len(read_status_lines(out)) == 2


def test_no_lean_backend_stops_with_install_instructions(tmp_path):
    with pytest.raises(LeanNotConfigured, match="Pantograph"):
        mine(MineSettings(output=str(tmp_path / "x")))


def test_settings_take_env_only_when_asked():
    s = MineSettings(output="x").with_env({"PANTOGRAPH_REPL": "repl", "SGLANG_URL": "http://h:1", "ENCODE_URL": "http://h:2"})
    assert (s.pantograph_cmd, s.server_url, s.encode_url) == ("repl", "http://h:1", "http://h:2")
    assert MineSettings(output="x", server_url="http://mine").with_env({"SGLANG_URL": "http://env"}).server_url == "http://mine"
    assert MineSettings(output="x", lean="auto").simulated and not MineSettings(output="x", lean="auto", pantograph_cmd="r").simulated
    with pytest.raises(ValueError, match="mode"):
        MineSettings(mode="append")


def test_sync_twin_shares_the_async_signature():
    import inspect

    assert inspect.signature(mine) == inspect.signature(mine_async)


def run_cli(*args, env=None):
    e = {k: v for k, v in os.environ.items() if k not in ("PANTOGRAPH_REPL", "SGLANG_URL", "ENCODE_URL")}
    e.update(env or {})
    return subprocess.run([sys.executable, "-m", "workbench.cli", "mine", *args], cwd=REPO, env=e,
                          capture_output=True, text=True, timeout=120)


def test_cli_without_lean_explains_how_to_install_pantograph(tmp_path):
    r = run_cli("--output", str(tmp_path / "o"))
    assert r.returncode == 2 and "Install Pantograph" in r.stderr and "--lean simulated" in r.stderr


def test_cli_simulated_run_and_resume(tmp_path):
    out = tmp_path / "o"
    r = run_cli("--traces", str(REPO / "workbench" / "data" / "sample_traces.json"), "--output", str(out),
                "--lean", "simulated", "--num-theorems", "3", "--candidates-per-step", "4", "--lean-workers", "1")
    assert r.returncode == 0, r.stderr[-2000:]
    assert "SIMULATED" in r.stdout and "theorems: 3 attempted" in r.stdout
    meta = json.loads((out / "run_config.json").read_text())
    assert meta["parameters"]["candidates_per_step"] == 4 and meta["simulated"] is True
    r = run_cli("--output", str(out), "--lean", "simulated", "--num-theorems", "3")
    assert r.returncode == 2 and "--resume" in r.stderr
    r = run_cli("--output", str(out), "--lean", "simulated", "--num-theorems", "3", "--resume")
    assert r.returncode == 2 and "candidates_per_step" in r.stderr  # another identity: refused
    r = run_cli("--output", str(out), "--lean", "simulated", "--num-theorems", "3", "--resume",
                "--candidates-per-step", "4")
    assert r.returncode == 0 and len(read_status_lines(out)) == 3


def test_encode_url_encodes_the_mined_states_into_the_cache(tmp_path):
    from workbench.encode import read_embeddings
    from workbench.encode.standin_sidecar import StandinSidecar

    out = tmp_path / "out"
    with StandinSidecar() as sidecar:
        mine(offline_demo_settings(out, num_theorems=2, candidates_per_step=2, encode_url=sidecar.url,
                                   simulator_args=("--latency-scale", "0")))
    table = read_embeddings(out / "embeddings")
    assert set(table.states) == set(read_trajectories(out).state_pp)
    assert read_metadata(out)["policy_model"] == "retrieval"


def test_sglang_policy_through_the_stand_in_server(tmp_path):
    from workbench.policy.standin_server import STANDIN_MODEL, RetrievalCompleter, StandinSGLang
    from workbench.traces import bundled_sample_path, load_traces

    out = tmp_path / "out"
    completer = RetrievalCompleter(load_traces(bundled_sample_path()).theorems)
    with StandinSGLang(completer=completer) as server:
        result = mine(offline_demo_settings(out, num_theorems=3, candidates_per_step=4, server_url=server.url,
                                            simulator_args=("--latency-scale", "0")))
        assert server.counters.generate_requests > 0
    df = read_trajectories(out)
    candidates = df[df.record_kind != "ground_truth"]
    assert len(candidates) and (candidates.score_kind == "logprob").all() and (candidates.llm_log_prob < 0).all()
    assert read_metadata(out)["policy_model"] == STANDIN_MODEL
    assert result.summary["attempted"] == 3
    # The policy's stats are recorded as the run ended (they were a zero snapshot taken at start).
    for name in ("run_config.json", "runs-000.json"):
        stats = json.loads((out / name).read_text())["policy"]["stats"]
        assert stats["requests"] == server.counters.generate_requests > 0, name


@pytest.mark.parametrize("with_sglang", [False, True])
def test_traces_are_read_once_and_the_full_set_only_for_the_retrieval_index(tmp_path, monkeypatch, with_sglang):
    import workbench.mining.run as run_module
    from workbench.policy.standin_server import ScriptedCompleter, StandinSGLang

    calls: list[dict] = []
    real = run_module.load_traces

    def counting(*args, **kwargs):
        calls.append(kwargs)
        return real(*args, **kwargs)

    monkeypatch.setattr(run_module, "load_traces", counting)
    with StandinSGLang(ScriptedCompleter(["simp"])) as server:
        result = mine(offline_demo_settings(tmp_path / "out", num_theorems=2, candidates_per_step=2,
                                            server_url=server.url if with_sglang else None,
                                            simulator_args=("--latency-scale", "0")))
    assert result.summary["attempted"] == 2
    assert len(calls) == 1
    # the retrieval policy indexes every theorem; with SGLang only the 2-theorem sample is kept
    assert calls[0].get("num_theorems") == (2 if with_sglang else None)
