"""Environment failures end the CLI with a few lines (what failed, what was said, what to do); notebooks
raise the same message naming their parameters."""

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from workbench.errors import EXIT_ENVIRONMENT, EnvironmentFailure, describe, format_problem, notebook_errors
from workbench.lean.errors import LeanStartError
from workbench.policy.errors import CircuitBreakerOpen, PolicyUnavailable

REPO = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _mine(tmp_path, *args, verbose=False):
    env = {k: v for k, v in os.environ.items() if k not in ("PANTOGRAPH_REPL", "SGLANG_URL", "ENCODE_URL")}
    env["PYTHONPATH"] = str(REPO)
    return subprocess.run([sys.executable, "-m", "workbench.cli", *(["-v"] if verbose else []), "mine",
                           "--output", str(tmp_path / "o"), "--num-theorems", "1", *args], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=120)


def _error_part(stderr: str) -> list[str]:
    lines = stderr.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("error: "))
    return lines[start:]


def test_unreachable_sglang_is_a_few_lines_and_v_adds_the_traceback(tmp_path):
    url = f"http://127.0.0.1:{_free_port()}"
    r = _mine(tmp_path, "--lean", "simulated", "--server-url", url, "--server-wait", "0.2")
    assert r.returncode == EXIT_ENVIRONMENT and "Traceback" not in r.stderr
    part = _error_part(r.stderr)
    assert len(part) <= 5 and part[0] == "error: SGLang is not ready."
    assert url in part[1] and "/health last answered no answer" in part[1]
    assert "--server-url" in part[2] and "--server-wait" in part[2]
    assert "waiting for SGLang at" in r.stderr   # the countdown line
    r = _mine(tmp_path, "--lean", "simulated", "--server-url", url, "--server-wait", "0.2", verbose=True)
    assert r.returncode == EXIT_ENVIRONMENT and "Traceback" in r.stderr and "error: SGLang is not ready." in r.stderr


def test_missing_repl_binary(tmp_path):
    r = _mine(tmp_path, "--pantograph-cmd", "no-such-lake-binary env repl")
    assert r.returncode == EXIT_ENVIRONMENT and "Traceback" not in r.stderr
    part = _error_part(r.stderr)
    assert "cannot run 'no-such-lake-binary'" in part[0] and "--pantograph-cmd" in part[-2]


def test_pantograph_failing_to_import_mathlib_shows_the_stderr_tail(tmp_path):
    fake = tmp_path / "repl.py"   # what a REPL started outside its Mathlib project prints, then exits
    fake.write_text("import sys\nsys.stderr.write(\"uncaught exception: unknown module prefix 'Mathlib'\\n\\n"
                    "No directory 'Mathlib' or file 'Mathlib.olean' in the search path entries:\\n"
                    "/home/me/.elan/toolchains/lean4/lib/lean\\n\")\nsys.exit(1)\n")
    r = _mine(tmp_path, "--pantograph-cmd", f"{sys.executable} {fake}")
    assert r.returncode == EXIT_ENVIRONMENT and "Traceback" not in r.stderr
    part = _error_part(r.stderr)
    assert part[0].startswith("error: Pantograph could not import the modules")
    assert any("unknown module prefix 'Mathlib'" in line for line in part)
    assert "lake env" in part[-2] and "--imports" in part[-2]
    assert len(part) <= 12


def test_notebooks_get_the_same_message_naming_their_parameters():
    with pytest.raises(EnvironmentFailure) as e:
        with notebook_errors():
            raise PolicyUnavailable("SGLang at http://h:30000 was not ready after 600s: /health last answered HTTP 503")
    text = str(e.value)
    assert text.startswith("error: SGLang is not ready.") and "HTTP 503" in text
    assert "point server_url at it" in text and "raise server_wait." in text and "--server" not in text
    assert e.value.__suppress_context__ and isinstance(e.value.original, PolicyUnavailable)
    with pytest.raises(KeyError):   # a bug is not an environment failure: untouched
        with notebook_errors():
            raise KeyError("x")


def test_describe_finds_the_failure_behind_wrappers():
    try:
        try:
            raise CircuitBreakerOpen("SGLang at http://h refused 5 connections in a row over 30s; circuit breaker open")
        except CircuitBreakerOpen as inner:
            raise RuntimeError("worker failed") from inner
    except RuntimeError as outer:
        problem = describe(ExceptionGroup("run", [outer]))
    assert problem is not None and "circuit breaker" in problem.what
    assert "--resume" in format_problem(problem) and "resume = True" in format_problem(problem, style="notebook")
    err = LeanStartError("lean-0: exited before 'ready.'", stderr="\n".join(f"line {i}" for i in range(50)))
    said = format_problem(describe(err)).splitlines()
    assert said[1:-1] == [f"  line {i}" for i in range(42, 50)]   # the stderr tail only
    assert describe(ValueError("bad input")) is None


def test_notebook_02_raises_the_short_message_naming_its_parameters(tmp_path, execute_notebook):
    papermill = pytest.importorskip("papermill")
    url = f"http://127.0.0.1:{_free_port()}"
    with pytest.raises(papermill.PapermillExecutionError) as e:
        execute_notebook(
            REPO / "notebooks" / "02_mine_negatives.ipynb", tmp_path / "02.ipynb", cwd=str(REPO / "notebooks"),
            parameters={"output": str(tmp_path / "o"), "num_theorems": 1, "lean": "simulated", "server_url": url,
                        "server_wait": 0.2})
    assert e.value.ename == "EnvironmentFailure"
    assert url in e.value.evalue and "point server_url at it" in e.value.evalue and "--server" not in e.value.evalue
