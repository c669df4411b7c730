"""``workbench trace``: a project's own files through ``frontend.process`` → traces ``group``/``mine`` read.

The simulator's source files are materialised from its traces (``--write-sources``); the REPL's JSON shapes
are pinned in tests/lean/test_frontend_process.py (Pantograph v0.3.4 Protocol.lean L361-409, Repl.lean
L189-265). Here: the conversion rules, the end-to-end walk with zero drift, resume, per-file failures.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from workbench.lean.protocol import CompilationUnit, InvokedTactic, Message, Severity
from workbench.lean.simulator import load_theorems, write_sources
from workbench.mining.run import mine
from workbench.mining.settings import MineSettings
from workbench.traces import load_traces, traces_lean
from workbench.tracing.convert import file_trace, position
from workbench.tracing.run import SUMMARY, TraceSettings, source_files, trace

REPO = Path(__file__).resolve().parents[2]


def _unit(start, end, invs, constants, messages=()):
    return CompilationUnit((start, end), tuple(messages), len(invs), new_constants=tuple(constants),
                           invocations=tuple(invs))


def test_invocations_become_leandojo_theorems():
    src = "namespace Foo\n\ntheorem bär (n : ℕ) : n = n := by\n  rfl\n\nend Foo\n"
    data = src.encode()
    t0, t1 = data.index(b"theorem"), data.index(b"end Foo")
    units = [
        _unit(0, t0, [], []),
        _unit(t0, t1, [InvokedTactic("n : ℕ\n⊢ n = n", "", "rfl", ("Eq.refl",)),
                       InvokedTactic("", "", "skip"),  # no goals before: LeanDojo leaves it out
                       InvokedTactic("n : ℕ\n⊢ n = n", "n : ℕ\n⊢ n = n", "skip")],  # unchanged: left out
              ["Foo.bär.proof_1", "Foo.bär"]),
        _unit(t1, len(data), [], []),
    ]
    out = file_trace("Foo.lean", data, units, url="u", commit="c")
    assert out.theorems == [{"url": "u", "commit": "c", "file_path": "Foo.lean", "full_name": "Foo.bär",
                             "start": [3, 1], "end": [4, 6],
                             "traced_tactics": [{"tactic": "rfl", "state_before": "n : ℕ\n⊢ n = n",
                                                 "state_after": "no goals", "used_constants": ["Eq.refl"]}]}]
    assert position(data, data.index("ℕ".encode()) + len("ℕ".encode())) == [3, 19]  # columns in characters (ä and ℕ count one each)


def test_a_theorem_that_does_not_elaborate_is_left_out_and_named():
    data = b"theorem x : True := by\n  trivial\n"
    bad = _unit(0, len(data), [InvokedTactic("⊢ True", "", "trivial")], ["x"],
                [Message("unknown constant 'foo'", Severity.ERROR)])
    out = file_trace("X.lean", data, [bad])
    assert out.theorems == [] and dict(out.skipped) == {"elab_error": 1}
    assert out.named == ["X.lean: x: elab_error: unknown constant 'foo'"]


@pytest.fixture()
def sources(tmp_path, sample_traces_path) -> Path:
    root = tmp_path / "src"
    write_sources(load_theorems(str(sample_traces_path)), str(root))
    return root


def _lean(sample: Path, **kw) -> MineSettings:
    return MineSettings(lean="simulated", simulator_traces=str(sample), simulator_args=("--latency-scale", "0"),
                        progress=False, **kw)


def test_trace_then_group_and_mine_walk_with_zero_drift(tmp_path, sources, sample_traces_path):
    out = tmp_path / "traces"
    result = trace(TraceSettings(str(sources), str(out), _lean(sample_traces_path)))
    held = load_traces(sample_traces_path)
    assert result.files_done == result.files_total == len({t.file_path for t in held.theorems})
    assert not result.files_failed and result.theorems == len(held.theorems)
    meta = json.loads((out / "metadata.json").read_text())
    assert meta["pantograph_version"] == result.version and meta["simulated"] is True
    assert traces_lean(out).repl_version == result.version
    traced = load_traces(out)  # what `group` and `mine` read
    assert {t.full_name for t in traced.theorems} == {t.full_name for t in held.theorems}
    assert all(t.file_path and not Path(t.file_path).is_absolute() for t in traced.theorems)

    from workbench.cli import main

    assert main(["group", "--traces", str(out), "--output-dir", str(tmp_path / "grouped")]) == 0
    assert (tmp_path / "grouped" / "theorems.json").is_file()

    run = tmp_path / "mined"
    mine(_lean(sample_traces_path, traces=str(out), output=str(run), mode="overwrite"))
    summary = json.loads((run / "summary.json").read_text())
    identity = json.loads((run / "identity.json").read_text())
    assert identity["versions"]["meet"] == "same" and summary["versions"]["meet"] == "same"
    lt = summary["lean_and_traces"]
    assert lt["start_state"] == {"matched": len(held.theorems)}
    assert lt["dropped_variables"] == 0 and lt["unaligned_by_reason"] == {}
    assert set(summary["goal_alignment"]) == {"quality.exact"}  # every step's state is Lean's own text


def test_files_and_modules_select_sources(sources):
    every = source_files(sources)
    assert source_files(sources, modules=("Mathlib.Data.Nat.*",)) == [f for f in every if f.startswith("Mathlib/Data/Nat/")]
    assert source_files(sources, files=(every[1], every[0])) == sorted(every[:2])
    with pytest.raises(FileNotFoundError, match="missing.lean"):
        source_files(sources, files=("missing.lean",))


def test_a_failing_file_is_counted_and_named_not_fatal(tmp_path, sources, sample_traces_path):
    broken = sources / "Broken.lean"
    broken.write_bytes(b"theorem x : True := by\n  trivial \xff\n")  # Lean refuses invalid UTF-8: an io error
    result = trace(TraceSettings(str(sources), str(tmp_path / "t"), _lean(sample_traces_path)))
    assert list(result.files_failed) == ["Broken.lean"] and "io" in result.files_failed["Broken.lean"]
    assert result.files_done == result.files_total - 1
    assert json.loads((tmp_path / "t" / SUMMARY).read_text())["files_failed"] == result.files_failed


def test_a_killed_trace_resumes_without_redoing_finished_files(tmp_path, sources, sample_traces_path):
    out = tmp_path / "traces"
    # one worker, real simulator latencies: the run is still going when its first file is done
    cmd = [sys.executable, "-m", "workbench.cli", "trace", "--source-root", str(sources), "--output", str(out),
           "--lean", "simulated", "--simulator-traces", str(sample_traces_path), "--lean-workers", "1",
           "--simulator-latency-scale", "3"]
    proc = subprocess.Popen(cmd, stderr=subprocess.PIPE, text=True, start_new_session=True,
                            env=os.environ | {"PYTHONPATH": str(REPO)})
    for line in proc.stderr:  # the run says each file it finished: kill it after the first
        if "traced " in line and ": " in line and "theorems" in line:
            break
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    proc.stderr.close()
    done = {p: (p.stat().st_ino, p.stat().st_mtime_ns) for p in (out / "files").rglob("*.json")}
    assert done and len(done) < len(source_files(sources))
    torn = next(iter(done)).with_name("Torn.lean.json.tmp")
    torn.write_text("[{")  # a write cut short

    result = trace(TraceSettings(str(sources), str(out), _lean(sample_traces_path)))
    assert result.files_skipped == len(done) and result.files_done == result.files_total - len(done)
    assert {p: (p.stat().st_ino, p.stat().st_mtime_ns) for p in done} == done  # never rewritten
    assert not torn.exists()
    assert len(load_traces(out).theorems) == len(load_traces(sample_traces_path).theorems)
