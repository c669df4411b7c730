"""`workbench mine` against the stand-in SGLang server with both prompt formats (simulated Lean)."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from workbench.mining.run import mine, offline_demo_settings
from workbench.policy.standin_server import RetrievalCompleter, StandinSGLang
from workbench.traces import bundled_sample_path, load_traces
from workbench.trajectory import read_metadata, read_trajectories

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def completer():
    return RetrievalCompleter(load_traces(bundled_sample_path()).theorems)


@pytest.mark.parametrize("fmt, prompt_end, stop", [
    ("deepseek-prefill", "example := by\n  ", ["```", "\n\n"]),
    ("deepseek-chat", "<｜Assistant｜>", None),
])
def test_mine_with_each_prompt_format(tmp_path, completer, fmt, prompt_end, stop):
    out = tmp_path / "out"
    with StandinSGLang(completer=completer) as server:
        result = mine(offline_demo_settings(out, num_theorems=3, candidates_per_step=4, server_url=server.url,
                                            prompt_format=fmt, simulator_args=("--latency-scale", "0")))
        requests = list(server.requests)
    assert requests and all(r["text"].endswith(prompt_end) for r in requests)
    assert all(r["sampling_params"].get("stop") == stop for r in requests)
    df = read_trajectories(out)
    assert (df.record_kind != "ground_truth").any()   # candidates reached Lean
    gen = result.this_run["policy"]
    assert gen["candidates"] > 0 and gen["truncated"] == 0 and gen["completion_tokens_per_candidate"] > 0
    assert "generation (this run):" in result.text
    assert read_metadata(out)["parameters"]["prompt_format"] == fmt


def test_cli_prompt_format_flag_and_bad_template(tmp_path, completer):
    env = {k: v for k, v in os.environ.items() if k not in ("PANTOGRAPH_REPL", "SGLANG_URL", "ENCODE_URL")}
    template = tmp_path / "plain.txt"
    template.write_text("State:\n{state}\nNext tactic:\n", encoding="utf-8")
    with StandinSGLang(completer=completer) as server:
        r = subprocess.run([sys.executable, "-m", "workbench.cli", "mine", "--output", str(tmp_path / "o"),
                            "--lean", "simulated", "--num-theorems", "2", "--server-url", server.url,
                            "--prompt-format", str(template)], cwd=REPO, env=env, capture_output=True, text=True,
                           timeout=120)
        assert r.returncode == 0, r.stderr[-2000:]
        assert server.requests[0]["text"].startswith("State:\n")
    config = json.loads((tmp_path / "o" / "run_config.json").read_text())
    assert config["policy"]["prompt_format"]["source"] == str(template)
    r = subprocess.run([sys.executable, "-m", "workbench.cli", "mine", "--output", str(tmp_path / "p"),
                        "--lean", "simulated", "--server-url", "http://127.0.0.1:9", "--prompt-format", "nope"],
                       cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and "prompt format 'nope' is neither one of" in r.stderr
