"""`python -m workbench.policy.standin_server` runs a usable server (as bench/mine.py starts it)."""

import json
import subprocess
import sys
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[2]


def test_module_entry_point_serves_scripted_completions(tmp_path):
    script = tmp_path / "script.json"
    script.write_text(json.dumps({"*": ["```lean4\nomega\n```"]}))
    proc = subprocess.Popen([sys.executable, "-m", "workbench.policy.standin_server", "--port", "0",
                             "--script", str(script)], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                            text=True, cwd=REPO)
    try:
        line = proc.stdout.readline()
        assert "serving on http://127.0.0.1:" in line
        url = line.split()[-1]
        assert httpx.get(f"{url}/health", timeout=5).status_code == 200
        assert httpx.get(f"{url}/get_model_info", timeout=5).json()["standin"] is True
        answer = httpx.post(f"{url}/generate", json={"text": "p", "sampling_params": {"n": 2},
                                                     "return_logprob": True}, timeout=5).json()
        assert [a["text"] for a in answer] == ["```lean4\nomega\n```"] * 2
        assert all(a["meta_info"]["output_token_logprobs"] for a in answer)
    finally:
        proc.terminate()
        proc.wait(timeout=10)
