"""Every `workbench` command ends with the same statuses (docs/ARCHITECTURE.md, "Exit status"):
0 done, 1 a bug (traceback), 2 bad input, 3 an environment failure, 130 interrupted."""

from __future__ import annotations

import socket

import pytest

from workbench.cli import COMMANDS, main
from workbench.errors import EXIT_BAD_INPUT, EXIT_ENVIRONMENT


def _dead_url() -> str:
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{s.getsockname()[1]}"


def _bad_input(tmp_path) -> dict[str, list[str]]:
    missing = str(tmp_path / "missing")
    return {
        "group": ["group", "--traces", missing, "--output-dir", str(tmp_path / "g")],
        "encode": ["encode", "--trajectories", missing, "--cache", str(tmp_path / "c")],
        "serve-encoder": ["serve-encoder", "--model", "minilm", "--linger-ms", "-1"],
        "mine": ["mine", "--lean", "simulated", "--traces", missing, "--output", str(tmp_path / "m")],
        "export": ["export", missing, str(tmp_path / "x.parquet")],
        "train-ebm": ["train-ebm", "--output", str(tmp_path / "t"), "--no-progress"],  # neither traces nor trajectories
        "trace": ["trace", "--lean", "simulated", "--source-root", missing, "--output", str(tmp_path / "tr")],
        "doctor": ["doctor", "--lean", "simulated", "--traces", missing, "--output", str(tmp_path / "d.json")],
    }


def test_the_table_covers_every_command(tmp_path):
    assert set(_bad_input(tmp_path)) == set(COMMANDS)


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_bad_input_is_status_2_with_one_line(command, tmp_path, capsys):
    assert main(_bad_input(tmp_path)[command]) == EXIT_BAD_INPUT
    err = capsys.readouterr().err
    assert "Traceback" not in err and err.strip().splitlines()[-1].startswith("error: ")


def test_environment_failures_are_status_3(tmp_path, sample_traces_path, capsys):
    url = _dead_url()
    mined = tmp_path / "mined"
    assert main(["mine", "--lean", "simulated", "--output", str(mined), "--num-theorems", "2",
                 "--simulator-latency-scale", "0"]) == 0
    assert main(["encode", "--trajectories", str(mined), "--cache", str(tmp_path / "c"), "--encode-url", url,
                 "--hidden-size", "8", "--no-progress"]) == EXIT_ENVIRONMENT
    assert main(["train-ebm", "--traces", str(sample_traces_path), "--output", str(tmp_path / "t"), "--encode", url,
                 "--no-progress"]) == EXIT_ENVIRONMENT
    assert main(["mine", "--lean", "simulated", "--output", str(tmp_path / "m2"), "--server-url", url,
                 "--server-wait", "0.2", "--num-theorems", "1"]) == EXIT_ENVIRONMENT
    err = capsys.readouterr().err
    assert "Traceback" not in err and err.count("what to do:") == 3
