"""A flush is one commit: a kill at any step of it (and of merging, retiring) leaves a folder whose
readers see whole theorems only, and resuming it gives exactly what an uninterrupted run gives."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pandas as pd
import pytest

from workbench.mining import commit as commit_mod
from workbench.mining.output import STATUS_LOG, ResultSink, finished_theorems, read_attempts, read_status_lines
from workbench.mining.run import mine, offline_demo_settings
from workbench.trajectory import read_trajectories

VOLATILE = ["timestamp_ms", "latency_s", "duration_s", "generation_wait_s", "lean_wait_s"]


class Killed(BaseException):
    """Stands for SIGKILL: nothing after the crash point runs, no clean-up (the sink is abandoned)."""


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    out = tmp_path_factory.mktemp("src") / "out"
    run = mine(offline_demo_settings(out, num_theorems=9, concurrency=3, simulator_args=("--latency-scale", "0")),
               keep_results=True)
    assert any(r.records for r in run.results) and any(r.attempts for r in run.results)
    return sorted(run.results, key=lambda r: r.theorem)


def sink(path: Path, mode: str) -> ResultSink:
    return ResultSink(path, {"test": True}, mode=mode, simulated=True, flush_every_theorems=2, seal_every_s=3600,
                      rows_per_part=10**6, merge_fan_in=3)


def feed(path: Path, results, mode: str) -> None:
    s = sink(path, mode)
    done = finished_theorems(path)
    for r in results:
        if r.theorem not in done:
            s.add(r)
    s.close()


def snapshot(path: Path) -> tuple:
    records = read_trajectories(path).drop(columns=["timestamp_ms"])
    records = records.sort_values(["theorem_name", "state_id"]).reset_index(drop=True)
    attempts = read_attempts(path).to_pandas().drop(columns=["timestamp_ms", "latency_s"])
    attempts = attempts.sort_values(list(attempts.columns)).reset_index(drop=True)
    lines = sorted((json.dumps({k: v for k, v in line.items() if k not in VOLATILE}, sort_keys=True)
                    for line in read_status_lines(path)))
    return records, attempts, lines


def assert_consistent(path: Path) -> None:
    """What readers see of a (possibly killed) folder: every theorem whole, or not at all."""
    lines = read_status_lines(path)
    names = {line["theorem"] for line in lines}
    records = read_trajectories(path)
    attempts = read_attempts(path).to_pandas()
    assert set(records.theorem_name) <= names and set(attempts.theorem) <= names
    per = records.groupby("theorem_name").size()
    for line in lines:
        assert per.get(line["theorem"], 0) == line["records"]


def crash_points(path: Path, results) -> Counter:
    seen: Counter = Counter()
    commit_mod.CRASH_HOOK = lambda point: seen.update([point])
    try:
        feed(path, results, "overwrite")
    finally:
        commit_mod.CRASH_HOOK = None
    return seen


def test_a_kill_at_every_step_of_every_flush_resumes_to_the_uninterrupted_result(tmp_path, results):
    reference = tmp_path / "reference"
    seen = crash_points(reference, results)
    expected = snapshot(reference)
    assert set(seen) == {"part_tmp_written", "part_renamed", "attempts_tmp_written", "attempts_renamed",
                         "status_half_written", "status_appended", "manifest_tmp_written", "committed"}
    assert seen["committed"] > len(results) // 2, "merges are commits too, and are covered"
    for point, count in seen.items():
        for n in sorted({1, 2, count // 2 + 1, count}):  # first flush, a later one, a merge, the final merge
            out = tmp_path / f"{point}-{n}"
            calls = Counter()

            def hook(p: str, point=point, n=n) -> None:
                calls[p] += 1
                if p == point and calls[p] == n:
                    raise Killed

            commit_mod.CRASH_HOOK = hook
            try:
                with pytest.raises(Killed):
                    feed(out, results, "overwrite")
            finally:
                commit_mod.CRASH_HOOK = None
            assert_consistent(out)
            feed(out, results, "resume")
            got = snapshot(out)
            pd.testing.assert_frame_equal(got[0], expected[0], obj=f"records after a kill at {point} #{n}")
            pd.testing.assert_frame_equal(got[1], expected[1], obj=f"attempts after a kill at {point} #{n}")
            assert got[2] == expected[2], f"status lines after a kill at {point} #{n}"
            leftovers = sorted(p.name for p in out.rglob("*.tmp"))
            assert not leftovers


def test_a_torn_status_line_is_cut_before_appending(tmp_path, results):
    out = tmp_path / "out"
    feed(out, results[:3], "overwrite")
    with open(out / STATUS_LOG, "ab") as f:
        f.write(b'{"theorem": "half a li')  # a kill in the middle of a status line
    assert len(read_status_lines(out)) == 3
    feed(out, results, "resume")
    text = (out / STATUS_LOG).read_text()
    assert "half a li" not in text and text.endswith("\n")
    assert [json.loads(l)["theorem"] for l in text.splitlines()] == [r.theorem for r in results]


def test_a_folder_from_before_commits_drops_records_without_status_lines(tmp_path, results):
    """The audit's case: parts renamed, then killed before the status lines: 27 attempted, not 40."""
    reference = tmp_path / "reference"
    feed(reference, results, "overwrite")
    out = tmp_path / "legacy"
    feed(out, results[:4], "overwrite")
    manifest = json.loads((out / "manifest.json").read_text())
    (out / "manifest.json").unlink()  # an older workbench's folder: no commit record ...
    lines = (out / STATUS_LOG).read_text().splitlines(keepends=True)
    (out / STATUS_LOG).write_text("".join(lines[:2]) + lines[2][:10])  # ... lines missing, the last torn
    assert manifest["parts"]
    feed(out, results, "resume")
    got, expected = snapshot(out), snapshot(reference)
    pd.testing.assert_frame_equal(got[0], expected[0])
    pd.testing.assert_frame_equal(got[1], expected[1])
    assert got[2] == expected[2]


def test_retired_theorems_lose_their_old_results_in_one_commit(tmp_path, results):
    out = tmp_path / "out"
    feed(out, results, "overwrite")
    victim = next(r for r in results if r.records)
    s = sink(out, "resume")
    s.retire({victim.theorem: "test"})
    assert victim.theorem not in finished_theorems(out)
    assert victim.theorem not in set(read_trajectories(out).theorem_name)
    assert victim.theorem not in set(read_attempts(out).to_pandas().theorem)
    s.add(victim)
    s.close()
    reference = tmp_path / "reference"
    feed(reference, results, "overwrite")
    got, expected = snapshot(out), snapshot(reference)
    pd.testing.assert_frame_equal(got[0], expected[0])
    assert got[2] == expected[2]
