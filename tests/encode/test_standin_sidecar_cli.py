"""`python -m workbench.encode.standin_sidecar` runs a usable sidecar (as bench/encode.py starts it)."""

import subprocess
import sys
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[2]


def test_module_entry_point_serves_embeddings_and_stats():
    proc = subprocess.Popen([sys.executable, "-m", "workbench.encode.standin_sidecar", "--port", "0",
                             "--hidden-size", "8"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                            text=True, cwd=REPO)
    try:
        line = proc.stdout.readline()
        assert "serving on http://127.0.0.1:" in line
        url = line.split()[-1]
        body = httpx.post(f"{url}/encode", json={"text": ["a", "b"], "hidden_size": 8}, timeout=5).json()
        assert len(body["embeddings"]) == 2 and len(body["embeddings"][0]) == 8
        assert httpx.get(f"{url}/stats", timeout=5).json()["texts"] == 2
    finally:
        proc.terminate()
        proc.wait(timeout=10)
