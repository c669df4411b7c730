"""Bad input gets a message naming the file (and line/field) and what to do, never a traceback.

One row per case the audit found: (name, files to create, argv, exit status, phrases the message must hold).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from workbench.cli import main

SAMPLE = str(Path(__file__).resolve().parents[2] / "workbench" / "data" / "sample_traces.json")


def _run_dir(tmp: Path) -> None:
    (tmp / "run" / "last").mkdir(parents=True)
    (tmp / "run" / "summary.json").write_text("{}")


def _mined(tmp: Path) -> None:
    (tmp / "mined").mkdir()
    (tmp / "mined" / "manifest.json").write_text('{"parts": [')  # torn by a disk-full write


CASES = [
    ("group over finished output",
     lambda t: (t / "g").mkdir() or (t / "g" / "train.jsonl").write_text("{}\n"),
     ["group", "--traces", SAMPLE, "--output-dir", "{t}/g"], 2, ["{t}/g already holds grouped traces", "--overwrite"]),
    ("group output is a file", lambda t: (t / "f").write_text("x"),
     ["group", "--traces", SAMPLE, "--output-dir", "{t}/f"], 2, ["{t}/f is a file", "folder"]),
    ("non-UTF-8 JSONL", lambda t: (t / "bad.jsonl").write_bytes(
        b'{"state": "a", "tactic": "simp", "theorem": "T", "depth": 0}\n{"state": "\xff", "tactic": "x"}\n'),
     ["group", "--traces", "{t}/bad.jsonl", "--output-dir", "{t}/o"], 2, ["bad.jsonl: line 2: not UTF-8", "column"]),
    ("train-ebm over a finished run", _run_dir,
     ["train-ebm", "--traces", SAMPLE, "--embeddings", "{t}/emb", "--output", "{t}/run"], 2,
     ["{t}/run already holds a train-ebm run", "--overwrite", "--resume"]),
    ("train-ebm output is a file", lambda t: (t / "f").write_text("x"),
     ["train-ebm", "--traces", SAMPLE, "--embeddings", "{t}/emb", "--output", "{t}/f"], 2, ["{t}/f is a file"]),
    ("negative --num-theorems", None,
     ["mine", "--output", "{t}/m", "--lean", "simulated", "--num-theorems", "-3"], 2, ["num_theorems must be >= 1", "-3"]),
    ("encode --export to a folder", lambda t: (t / "exp").mkdir(),
     ["encode", "--trajectories", "{t}/none", "--cache", "{t}/c", "--export", "{t}/exp"], 2,
     ["--export {t}/exp is a folder", "file name"]),
    ("corrupt mining manifest.json", _mined,
     ["mine", "--output", "{t}/mined", "--lean", "simulated", "--num-theorems", "2", "--resume"], 2,
     ["{t}/mined/manifest.json: not a readable manifest"]),
    ("REPL start failure", None,
     ["mine", "--output", "{t}/m", "--pantograph-cmd", "{t}/no-repl", "--num-theorems", "1"], 3,
     ["could not be started", "{t}/no-repl", "--pantograph-cmd"]),
    ("corrupt embedding cache part", lambda t: (t / "emb").mkdir() or (t / "emb" / "part-00000.parquet").write_bytes(b"PAR1junk"),
     ["train-ebm", "--traces", SAMPLE, "--embeddings", "{t}/emb", "--output", "{t}/run2", "--steps", "2"], 2,
     ["{t}/emb/part-00000.parquet: not a readable cache part", "delete this file"]),
    ("0-byte trajectory Parquet", lambda t: (t / "traj").mkdir() or (t / "traj" / "part-00000.parquet").write_bytes(b""),
     ["encode", "--trajectories", "{t}/traj", "--cache", "{t}/c"], 2, ["part-00000.parquet: not a readable trajectory"]),
    # issue 20, item 7
    ("read-only output (sysfs refuses mkdir, also to root)", None,
     ["mine", "--output", "/sys/workbench-read-only/m", "--lean", "simulated", "--num-theorems", "1",
      "--simulator-latency-scale", "0"], 2, ["cannot write or read /sys/workbench-read-only", "--output"]),
    ("NaN tactic timeout", None, ["mine", "--output", "{t}/m", "--lean", "simulated", "--tactic-timeout", "nan"], 2,
     ["MineSettings.tactic_timeout_s must be a finite number, got nan"]),
    ("infinite theorem timeout", None, ["mine", "--output", "{t}/m", "--lean", "simulated", "--theorem-timeout", "inf"],
     2, ["MineSettings.theorem_timeout_s must be a finite number, got inf"]),
    ("NaN simulator scale", None, ["mine", "--output", "{t}/m", "--lean", "simulated", "--simulator-latency-scale", "nan"],
     2, ["simulator_latency_scale must be a finite number"]),
    ("NaN learning rate", None, ["train-ebm", "--traces", SAMPLE, "--embeddings", "{t}/emb", "--output", "{t}/r",
                                 "--lr", "nan"], 2, ["EbmSettings.lr must be a finite number, got nan"]),
    ("nested brackets as a LeanDojo file", lambda t: (t / "deep.json").write_bytes(b"[" * 5000 + b"]" * 5000),
     ["group", "--traces", "{t}/deep.json", "--output-dir", "{t}/o"], 2,
     ["deep.json: entry 0: nested deeper than 64 levels"]),
    ("nested brackets as a JSONL line", lambda t: (t / "deep.jsonl").write_bytes(
        b'{"state": "a", "tactic": "simp", "theorem": "T", "depth": 0}\n{"a": ' + b"[" * 100000 + b"]" * 100000 + b"}\n"),
     ["group", "--traces", "{t}/deep.jsonl", "--output-dir", "{t}/o"], 2, ["deep.jsonl: line 2: nested too deep"]),
]


@pytest.mark.parametrize(("name", "setup", "argv", "status", "phrases"), CASES, ids=[c[0] for c in CASES])
def test_bad_input_is_named(tmp_path, capsys, caplog, name, setup, argv, status, phrases):
    if setup is not None:
        setup(tmp_path)
    rc = main([a.replace("{t}", str(tmp_path)) for a in argv])
    captured = capsys.readouterr()
    text = captured.err + captured.out + caplog.text
    assert rc == status, text[-3000:]
    assert "Traceback" not in text
    for phrase in phrases:
        assert phrase.replace("{t}", str(tmp_path)) in text, (phrase, text[-3000:])


def test_cuda_device_without_cuda_is_named():
    import torch

    from workbench.ebm.train import resolve_device

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    with pytest.raises(ValueError, match="--device cuda: no CUDA device"):
        resolve_device("cuda")


def test_disk_full_while_mining_is_named_and_resumable(tmp_path, capsys, monkeypatch):
    import dataclasses
    import errno

    import workbench.mining.cli as mine_cli
    from workbench.mining import commit as commit_mod
    from workbench.mining.output import read_status_lines

    original = mine_cli.settings_from_args
    monkeypatch.setattr(mine_cli, "settings_from_args", lambda args, env: dataclasses.replace(
        original(args, env), simulator_args=("--latency-scale", "0"), seal_every_s=0))  # one flush per theorem
    calls = []

    def full(point: str) -> None:
        calls.append(point)
        if point == "part_tmp_written" and calls.count(point) == 3:
            raise OSError(errno.ENOSPC, "No space left on device", str(tmp_path / "m" / "part-00002.parquet.tmp"))

    argv = ["mine", "--output", str(tmp_path / "m"), "--lean", "simulated", "--num-theorems", "6",
            "--lean-workers", "1", "--concurrency", "1"]
    commit_mod.CRASH_HOOK = full
    try:
        rc = main(argv)
    finally:
        commit_mod.CRASH_HOOK = None
    err = capsys.readouterr().err
    assert rc == 2 and "disk full writing" in err and "part-00002.parquet.tmp" in err and "--resume" in err
    kept = len(read_status_lines(tmp_path / "m"))
    assert kept >= 1
    assert main([*argv, "--resume"]) == 0
    assert len(read_status_lines(tmp_path / "m")) == 6


def test_a_deeply_nested_trace_file_is_refused_in_bounded_memory(tmp_path):
    """Issue 20, item 7: 200 KB of nested brackets took 22.7 GB (ijson built a prefix string per level)
    and was OOM-killed. Measured in a fresh process: its peak RSS, not a clock."""
    import subprocess
    import sys

    deep = tmp_path / "deep.json"
    depth = 30_000  # 60 KB: enough to show the quadratic growth (about 2 GB before), small enough to survive it
    deep.write_bytes(b"[" + b"[" * depth + b"]" * depth + b', {"full_name": "T", "traced_tactics": '
                     b'[{"tactic": "simp", "state_before": "\\u22a2 True", "state_after": "no goals"}]}]')
    code = ("import json, resource, sys\n"
            "from workbench.traces import load_traces\n"
            "before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
            "t = load_traces(sys.argv[1], skip_bad=True)\n"
            "grew = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before\n"
            "print(json.dumps([len(t.theorems), t.bad_records, t.bad_examples, grew // 1024]))\n")
    out = subprocess.run([sys.executable, "-c", code, str(deep)], capture_output=True, text=True, timeout=600,
                         env={"PYTHONPATH": str(Path(__file__).resolve().parents[2]), "PATH": "/usr/bin:/bin"})
    assert out.returncode == 0, out.stderr[-2000:]
    theorems, bad, examples, grew_mb = json.loads(out.stdout)
    assert (theorems, bad) == (1, 1)  # the bad entry skipped (counted, named), the next one loaded
    assert "entry 0: nested deeper than 64 levels" in examples[0]
    assert grew_mb < 100, f"loading grew the process by {grew_mb} MB"
