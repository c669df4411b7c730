"""Issue 20, items 3, 4 and 9: a run deletes only what it wrote, export reads only what is sealed, and a
run's history says how it ended (also when it was killed, or SIGTERMed while starting)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest

from .test_run_lifecycle import finish, spawn, wait_for_lines
from workbench.cli import main
from workbench.mining.commit import own_files
from workbench.mining.run import mine, offline_demo_settings
from workbench.trajectory import read_trajectories

FAST = ("--latency-scale", "0")


@pytest.fixture(scope="module")
def run_folder(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("runs") / "run"
    mine(offline_demo_settings(out, num_theorems=4, simulator_args=FAST))
    return out


def copy_run(run_folder: Path, tmp_path: Path) -> Path:
    out = tmp_path / "run"
    shutil.copytree(run_folder, out)
    return out


def mine_cli(out: Path, *flags: str) -> int:
    return main(["mine", "--output", str(out), "--lean", "simulated", "--num-theorems", "2",
                 "--simulator-latency-scale", "0", *flags])


# --- item 3: --overwrite and recovery delete only the run's own files ---------------------------------


def test_every_file_a_run_writes_is_its_own(run_folder):
    on_disk = {p for p in run_folder.rglob("*") if p.is_file()}
    assert on_disk == set(own_files(run_folder))


def test_overwrite_refuses_a_folder_that_is_not_a_run(tmp_path, capsys):
    """Before: `mine --overwrite` deleted any folder it was given."""
    thesis = tmp_path / "thesis"
    thesis.mkdir()
    (thesis / "chapter1.tex").write_text("precious")
    (thesis / "part-00000.parquet").write_text("not ours either")
    assert mine_cli(thesis, "--overwrite") == 2
    assert "is not a mining run folder" in capsys.readouterr().err
    assert (thesis / "chapter1.tex").read_text() == "precious" and (thesis / "part-00000.parquet").exists()


def test_overwrite_deletes_only_what_the_run_wrote(run_folder, tmp_path):
    out = copy_run(run_folder, tmp_path)
    foreign = [out / "notes.md", out / "attempts" / "my_analysis.csv", out / "scratch.tmp", out / "part-1.parquet",
               out / "part-final.parquet"]
    for f in foreign:
        f.write_text("mine, not the workbench's")
    old_parts = {p.name for p in out.glob("part-*.parquet")}
    assert mine_cli(out, "--overwrite") == 0
    assert all(f.read_text() == "mine, not the workbench's" for f in foreign)
    assert len(read_trajectories(out).theorem_name.unique()) == 2  # the new run's, not the old one's 4
    assert json.loads((out / "runs-000.json").read_text())["parameters"]["num_theorems"] == 2
    assert old_parts  # the old run had parts; what is there now is the new run's


def test_resume_removes_its_own_temporary_files_only(run_folder, tmp_path):
    """Before: recovery deleted every *.tmp of the folder."""
    out = copy_run(run_folder, tmp_path)
    (out / "my_download.tmp").write_text("someone else's")
    (out / "part-final.parquet").write_text("someone else's")
    (out / "part-00042.parquet.tmp").write_text("a part a kill left half-written")
    (out / "manifest.json.tmp").write_text("{")
    mine(offline_demo_settings(out, num_theorems=4, mode="resume", simulator_args=FAST))
    assert (out / "my_download.tmp").read_text() == "someone else's"
    assert (out / "part-final.parquet").read_text() == "someone else's"
    assert not (out / "part-00042.parquet.tmp").exists() and not (out / "manifest.json.tmp").exists()


# --- item 4: export follows the manifest -----------------------------------------------------------


def test_export_reads_only_sealed_parts(run_folder, tmp_path):
    """Before: every part on disk was exported (a part a kill left unlisted, twice the records, ...)."""
    out = copy_run(run_folder, tmp_path)
    sealed = len(read_trajectories(out))
    shutil.copy(next(out.glob("part-*.parquet")), out / "part-99999.parquet")  # renamed, never committed
    assert main(["export", str(out), str(tmp_path / "x.parquet")]) == 0
    assert pq.read_metadata(tmp_path / "x.parquet").num_rows == sealed


def test_export_refuses_targets_inside_the_run_and_existing_files(run_folder, tmp_path, capsys):
    out = copy_run(run_folder, tmp_path)
    manifest = (out / "manifest.json").read_bytes()
    assert main(["export", str(out), str(out / "manifest.json")]) == 2  # before: it overwrote the manifest
    assert main(["export", str(out), str(out / "all.parquet")]) == 2
    assert "inside the run folder" in capsys.readouterr().err
    assert (out / "manifest.json").read_bytes() == manifest and not (out / "all.parquet").exists()
    target = tmp_path / "x.parquet"
    target.write_text("an earlier export, or anything")
    assert main(["export", str(out), str(target)]) == 2
    assert "--overwrite" in capsys.readouterr().err and target.read_text() == "an earlier export, or anything"
    assert main(["export", str(out), str(target), "--overwrite"]) == 0
    assert pq.read_metadata(target).num_rows == len(read_trajectories(out))


def test_export_writes_csv_under_a_csv_name_and_refuses_other_names(run_folder, tmp_path, capsys):
    """Before: `export x.csv` wrote Parquet under a .csv name."""
    assert main(["export", str(run_folder), str(tmp_path / "x.csv")]) == 0
    df = pd.read_csv(tmp_path / "x.csv")
    expected = read_trajectories(run_folder)
    assert len(df) == len(expected) and list(df.columns) == list(expected.columns[: len(df.columns)])
    assert set(df.theorem_name) == set(expected.theorem_name)
    assert main(["export", str(run_folder), str(tmp_path / "x.txt")]) == 2
    assert "name the file *.parquet or *.csv" in capsys.readouterr().err
    assert main(["export", str(tmp_path), str(tmp_path / "y.parquet")]) == 2  # not a run folder


def test_mine_to_an_existing_parquet_file_is_refused_without_overwrite(tmp_path, capsys):
    target = tmp_path / "negatives.parquet"
    target.write_text("someone's file")
    assert main(["mine", "--output", str(target), "--lean", "simulated", "--num-theorems", "1",
                 "--simulator-latency-scale", "0"]) == 2
    assert target.read_text() == "someone's file" and "--overwrite" in capsys.readouterr().err


# --- item 9: the run's history -----------------------------------------------------------------------


def test_a_killed_run_is_marked_killed_by_the_next_run(tmp_path):
    """Before: a SIGKILLed run stayed `running` in runs-000.json for ever."""
    out = tmp_path / "out"
    proc = spawn(out, 8)
    try:
        wait_for_lines(proc, out, 1)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    assert json.loads((out / "runs-000.json").read_text())["state"] == "running"
    finish(out, 8)
    first, second = (json.loads((out / f"runs-{i:03d}.json").read_text()) for i in range(2))
    assert first["state"] == "killed" and "runs-001" in first["note"]
    assert second["state"] == "finished"


def _ppid(pid: int) -> int | None:
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
    except (OSError, ValueError, IndexError):
        return None


def descendants_running(ancestor: int, needle: str) -> list[int]:
    """Live descendants of ``ancestor`` whose command line holds ``needle`` (from /proc: the only signal there is)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmd = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if needle not in cmd:
            continue
        pid = int(entry.name)
        while pid not in (None, 0, 1, ancestor):
            pid = _ppid(pid)
        if pid == ancestor:
            found.append(int(entry.name))
    return found


def test_sigterm_while_lean_starts_is_ctrl_c(tmp_path):
    """Before: the SIGTERM handler was installed only after start-up: a SIGTERM then killed the run at once."""
    out = tmp_path / "out"
    env_before = os.environ.get("MINE_ENTRY_SIMULATOR_ARGS")
    os.environ["MINE_ENTRY_SIMULATOR_ARGS"] = "--start-delay 120"  # Lean "imports Mathlib" for 2 minutes
    try:
        proc = spawn(out, 4)
    finally:
        if env_before is None:
            os.environ.pop("MINE_ENTRY_SIMULATOR_ARGS")
        else:
            os.environ["MINE_ENTRY_SIMULATOR_ARGS"] = env_before
    try:
        deadline = time.monotonic() + 60
        while not descendants_running(proc.pid, "--start-delay 120") and proc.poll() is None:
            assert time.monotonic() < deadline, "the simulator never started"
            time.sleep(0.02)  # polling /proc: a starting REPL sends no other signal
        proc.send_signal(signal.SIGTERM)
        _, stderr = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=30)
    assert proc.returncode == 130, stderr[-2000:]
    assert "--resume" in stderr
