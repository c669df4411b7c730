"""Issue 19: which Lean printed the traces, which one answers, and records that carry Lean's own states."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest

from workbench.lean.simulator import newer_theorem, load_theorems, simulator_version
from workbench.lean.simversion import dropped_variables
from workbench.mining.identity import read_identity, versions_meet
from workbench.mining.run import mine, offline_demo_settings
from workbench.states import parse_state
from workbench.traces import TraceError, bundled_sample_path, traces_lean
from workbench.trajectory import read_trajectories

# LeanDojo's export_metadata (scripts/generate-benchmark-lean4.ipynb, LeanDojo v1.8.2): no toolchain field.
LEANDOJO_METADATA = {"dataset_name": "LeanDojo Benchmark 4", "creation_time": "2024-04-11 10:00:00",
                     "from_repo": {"url": "https://github.com/leanprover-community/mathlib4",
                                   "commit": "fe4454af900584467d21f4fd4fe951d29d9332a7"},
                     "leandojo_version": "1.8.2"}


def test_traces_lean_reads_leandojo_metadata_beside_the_traces(tmp_path):
    root = tmp_path / "leandojo_benchmark_4"
    (root / "random").mkdir(parents=True)
    shutil.copy(bundled_sample_path(), root / "random" / "val.json")
    assert traces_lean(root) == traces_lean(root / "random") == traces_lean(root / "random" / "val.json")
    assert traces_lean(root).source == "unknown" and traces_lean(root).toolchain is None
    (root / "metadata.json").write_text(json.dumps(LEANDOJO_METADATA))
    lean = traces_lean(root / "random" / "val.json")
    assert (lean.toolchain, lean.source) == (None, "metadata.json")  # LeanDojo writes no toolchain: never guessed
    assert lean.detail == "LeanDojo 1.8.2, https://github.com/leanprover-community/mathlib4@fe4454af9005"
    assert "Lean version unknown" in lean.describe()
    assert traces_lean(root, "4.7.0").toolchain == "v4.7.0" and traces_lean(root, "v4.7.0").source == "flag"
    (root / "metadata.json").write_text(json.dumps(LEANDOJO_METADATA | {"toolchain": "leanprover/lean4:v4.7.0"}))
    assert traces_lean(root).toolchain == "v4.7.0"
    (root / "metadata.json").write_text("[1, 2")
    with pytest.raises(TraceError, match="metadata.json"):
        traces_lean(root)


def test_versions_meet_says_same_differ_or_unknown():
    old = {"toolchain": "v4.7.0", "source": "flag", "detail": ""}
    unknown = {"toolchain": None, "source": "metadata.json", "detail": "LeanDojo 1.8.2"}
    assert versions_meet(old, "0.3.4")["meet"] == "differ"
    assert versions_meet({"toolchain": "v4.21.0"}, "0.3.4")["meet"] == "same"
    assert versions_meet({"toolchain": "v4.21.0"}, "0.3.7/v4.21.0")["meet"] == "same"
    assert versions_meet(old, "0.3.9")["meet"] == "differ"  # every accepted Pantograph is v4.21 or newer
    assert versions_meet({"toolchain": "v4.22.0"}, "0.3.9")["meet"] == "unknown"  # 0.3.9's toolchain is not known
    v = versions_meet(unknown, "0.3.4")
    assert v["meet"] == "unknown" and "LeanDojo 1.8.2" in v["note"] and "--traces-lean-version" in v["note"]
    assert versions_meet(unknown, simulator_version("newer"))["meet"] == "differ"
    assert versions_meet(unknown, simulator_version("same"))["meet"] == "same"


def _entries_with(shared_traces_dir: Path, pattern: str, n: int) -> list[dict]:
    """Raw LeanDojo entries whose first state matches ``pattern`` and has dropped variables (read, not copied
    into the repository: they go to the test's temporary folder)."""
    out = []
    for split in ("val", "test"):
        for entry in json.loads((shared_traces_dir / "random" / f"{split}.json").read_text(encoding="utf-8")):
            steps = entry.get("traced_tactics") or []
            if not steps or not re.search(pattern, steps[0]["state_before"]):
                continue
            first = parse_state(steps[0]["state_before"])
            if first and dropped_variables(first[0]) and len(out) < n:
                out.append(entry)
    return out


def test_a_repl_newer_than_its_traces_gives_records_with_its_own_states(tmp_path, shared_traces_dir):
    """The simulator as an independent REPL process playing a newer Lean than the traces: every record carries
    the state as that Lean printed it (`∑ x ∈ s`, no unused section variables), never the trace's text."""
    entries = _entries_with(shared_traces_dir, r"∑ \S+ in ", 6)
    assert len(entries) == 6
    traces = tmp_path / "older.json"
    traces.write_text(json.dumps(entries, ensure_ascii=False), encoding="utf-8")
    settings = offline_demo_settings(tmp_path / "out", traces=str(traces), candidates_per_step=2,
                                     simulator_args=("--latency-scale", "0", "--no-namespace-references",
                                                     "--gone-lemma-rate", "0"))
    result = mine(settings)
    df = read_trajectories(tmp_path / "out")
    assert len(df) and not df.state_pp.str.contains(r"[∑∏] \S+ in ", regex=True).any()
    theorems = load_theorems(str(traces))
    for name, records in df.groupby("theorem_name"):
        root = records[records.parent_state_id.isna()].iloc[0]
        newer = newer_theorem(theorems[name])  # what that Lean prints for the trace's first state
        assert root.state_pp == newer.states[0] != theorems[name].states[0]
        first = parse_state(theorems[name].states[0])[0]
        assert len(parse_state(root.state_pp)[0].hypotheses) == len(first.hypotheses) - len(dropped_variables(first))
    identity = read_identity(tmp_path / "out")
    assert identity["versions"]["meet"] == "differ" and identity["traces_lean"]["source"] == "unknown"
    lt = result.summary["lean_and_traces"]
    assert lt["started_with_lean_binders"] == lt["theorems_started"] == 6
    assert lt["theorems_with_dropped_variables"] == 6 and lt["quality_by_step"]["0"]["exact"] == 0
    assert result.summary["versions"]["meet"] == "differ"
    assert "versions (differ)" in result.text and "match quality by step" in result.text
