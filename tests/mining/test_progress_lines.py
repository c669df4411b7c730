"""Progress log lines when stderr is not a terminal (issue 12, item 5)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from workbench.mining.progress import progress_line

REPO = Path(__file__).resolve().parents[2]


def test_progress_line_has_done_total_rate_eta_records_and_lean_busy():
    line = progress_line(30, 120, 60.0, 451, 0.934)
    assert line == ("progress: 30/120 theorems, 1800/h, ETA 0:03:00, 451 records, Lean busy 93%, elapsed 0:01:00")
    assert "ETA ?" in progress_line(0, 10, 5.0, 0, None) and "Lean busy ?" in progress_line(0, 10, 5.0, 0, None)


def test_cli_off_a_terminal_logs_progress_lines_and_the_plan(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in ("PANTOGRAPH_REPL", "SGLANG_URL", "ENCODE_URL")}
    env["PYTHONPATH"] = str(REPO)
    r = subprocess.run([sys.executable, "-m", "workbench.cli", "mine", "--output", str(tmp_path / "o"),
                        "--lean", "simulated", "--num-theorems", "6", "--simulator-latency-scale", "0.3",
                        "--progress-every", "0.01", "--num-theorems", "50"],
                       capture_output=True, text=True, env=env, timeout=300)  # stderr is a pipe: not a TTY
    assert r.returncode == 0, r.stderr[-2000:]
    assert "50 requested, 32 available" in r.stderr and "SIMULATOR" in r.stderr
    lines = re.findall(r"progress: (\d+)/32 theorems, \d+/h, ETA \S+, \d+ records, Lean busy \d+%", r.stderr)
    assert lines, r.stderr[-2000:]
    assert "\r" not in r.stderr  # no bar refreshes in a log
