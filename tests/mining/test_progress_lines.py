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


def test_simulated_rates_say_their_latency_scale_and_resume_lines_say_what_was_done():
    from workbench.mining.progress import latency_scale, resume_line

    line = progress_line(3, 4, 2.0, 10, 0.5, simulator_latency=0.05)
    assert line.endswith("(rate with SIMULATED Lean, latencies x 0.05)") and "5400/h" in line
    assert latency_scale(("--crash-rate", "0.1", "--latency-scale", "0.3")) == 0.3 and latency_scale(()) == 1.0
    said = resume_line(Path("runs/x"), 32, "2026-01-02T03:04:05+00:00")
    assert said.startswith("RESUMING runs/x: 32 theorems already done since 2026-01-02T03:04:05+00:00")


def _papermill_02(output: Path, env: dict) -> subprocess.CompletedProcess:
    """The user's command (README): papermill --log-output on notebook 02, here on a tiny simulated run."""
    return subprocess.run(
        [sys.executable, "-m", "papermill", "--log-output", "--no-progress-bar", "--execution-timeout", "600",
         "--cwd", str(REPO / "notebooks"), str(REPO / "notebooks" / "02_mine_negatives.ipynb"),
         str(output.with_suffix(".ipynb")), "-p", "output", str(output), "-p", "num_theorems", "4",
         "-p", "lean", "simulated", "-p", "simulator_latency_scale", "0", "-p", "candidates_per_step", "2"],
        capture_output=True, text=True, env=env, timeout=900)


def test_papermill_log_output_shows_progress_lines_and_a_resumed_run_says_so_first(tmp_path):
    """Issue 24, items 2 and 3: under papermill stderr is no terminal and the bar is a widget nobody sees; the
    progress lines reach papermill's terminal through the kernel's stderr (--log-output) and the run folder's
    progress.log; a second run into the same folder starts by saying it resumes, how many and since when."""
    env = {k: v for k, v in os.environ.items() if k not in ("PANTOGRAPH_REPL", "SGLANG_URL", "ENCODE_URL")}
    env["PYTHONPATH"] = str(REPO)
    out = tmp_path / "run"
    first = _papermill_02(out, env)
    assert first.returncode == 0, first.stderr[-3000:]
    terminal = first.stdout + first.stderr
    shown = re.findall(r"progress: 4/4 theorems, \d+/h, ETA \S+, \d+ records, Lean busy \d+%, elapsed \S+"
                       r" \(rate with SIMULATED Lean, latencies x 0\)", terminal)
    assert shown, terminal[-3000:]
    log_file = (out / "progress.log").read_text()
    assert shown[-1] in log_file and re.match(r"\d{4}-\d\d-\d\dT", log_file)  # each line with its time

    second = _papermill_02(out, env)  # notebook 02 resumes by default
    assert second.returncode == 0, second.stderr[-3000:]
    terminal = second.stdout + second.stderr
    resumed = re.search(r"RESUMING \S+: 4 theorems already done since \d{4}-\d\d-\d\dT", terminal)
    assert resumed, terminal[-3000:]
    assert resumed.start() < terminal.index("progress: 0/0 theorems")  # said before anything else of the run
    assert log_file.strip() in (out / "progress.log").read_text()  # appended, the first run's lines kept
    assert (out / "progress.log").read_text().splitlines()[len(log_file.splitlines())].split(" ", 1)[1].startswith("RESUMING")
