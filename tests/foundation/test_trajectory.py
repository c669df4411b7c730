import dataclasses
import json

import pyarrow as pa
import pyarrow.parquet as pq
import pandas as pd
import pytest

from workbench.trajectory import (
    TRAJECTORY_SCHEMA,
    TrajectoryRecord,
    TrajectoryWriter,
    read_metadata,
    read_trajectories,
)

SPEC_COLUMNS = [
    ("theorem_name", pa.string()), ("state_id", pa.uint64()), ("state_pp", pa.string()),
    ("tactic_applied", pa.string()), ("parent_state_id", pa.uint64()), ("label", pa.string()),
    ("depth_from_root", pa.uint32()), ("remaining_depth", pa.int32()), ("llm_log_prob", pa.float64()),
    ("ebm_score", pa.float64()), ("is_proof_complete", pa.bool_()), ("timestamp_ms", pa.uint64()),
    ("q_value", pa.float64()), ("visits", pa.uint32()),
]


def _records(theorem, n):
    out = [TrajectoryRecord(theorem, 0, "⊢ a", "", None, "positive", 0, n, record_kind="ground_truth", num_goals=1)]
    for i in range(1, n):
        out.append(TrajectoryRecord(theorem, i, f"⊢ s{i}", f"t{i}", 0, "negative", 1, -1, llm_log_prob=-1.5,
                                    record_kind="divergent", num_goals=1, open_prefix="Nat"))
    return out


def test_schema_starts_with_the_14_spec_columns():
    assert [(f.name, f.type) for f in TRAJECTORY_SCHEMA][:14] == SPEC_COLUMNS
    assert TRAJECTORY_SCHEMA.field("parent_state_id").nullable
    assert TRAJECTORY_SCHEMA.names[14] == "record_kind"


def test_writer_parts_round_trip(tmp_path):
    out = tmp_path / "run"
    with TrajectoryWriter(out, {"backend": "simulator"}, rows_per_part=3) as w:
        w.write_many(_records("A", 2))
        w.write_many(_records("B", 2))  # buffer reaches 4 ≥ 3: flushed as one part
        w.write_many(_records("C", 1))
    parts = sorted(p.name for p in out.glob("part-*.parquet"))
    assert parts == ["part-00000.parquet", "part-00001.parquet"]
    for p in out.glob("part-*.parquet"):
        assert pq.read_schema(p).names[:14] == [c for c, _ in SPEC_COLUMNS]
    df = read_trajectories(out)
    assert len(df) == 5
    assert df["parent_state_id"].isna().sum() == 3
    assert records_from_frame(df) == _records("A", 2) + _records("B", 2) + _records("C", 1)
    assert read_metadata(out)["backend"] == "simulator"
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["rows"] == 5 and len(manifest["parts"]) == 2


def test_crash_keeps_flushed_parts_and_resume_appends(tmp_path):
    out = tmp_path / "run"
    w = TrajectoryWriter(out, rows_per_part=1)
    w.write_many(_records("A", 2))  # flushed
    w.write(_records("B", 1)[0])  # buffered, then the process "dies"
    (out / "part-00001.parquet.tmp").write_bytes(b"half a file")
    del w
    assert len(read_trajectories(out)) == 2
    with pytest.raises(FileExistsError, match="resume or overwrite"):
        TrajectoryWriter(out)
    before = (out / "part-00000.parquet").read_bytes()
    with TrajectoryWriter(out, mode="resume") as w:
        w.write_many(_records("B", 1))
    assert (out / "part-00000.parquet").read_bytes() == before  # never rewritten
    assert not list(out.glob("*.tmp"))
    assert sorted(read_trajectories(out)["theorem_name"].unique()) == ["A", "B"]
    with TrajectoryWriter(out, mode="overwrite") as w:
        w.write_many(_records("C", 1))
    assert list(read_trajectories(out)["theorem_name"]) == ["C"]


def test_reader_accepts_several_inputs_and_core_only_files(tmp_path):
    core = pa.schema([pa.field(n, t) for n, t in SPEC_COLUMNS])
    table = pa.Table.from_pylist([{
        "theorem_name": "X", "state_id": 1, "state_pp": "⊢ p", "tactic_applied": "", "parent_state_id": None,
        "label": "positive", "depth_from_root": 0, "remaining_depth": 1, "llm_log_prob": 0.0, "ebm_score": 0.0,
        "is_proof_complete": False, "timestamp_ms": 0, "q_value": 0.0, "visits": 0,
    }], schema=core)
    pq.write_table(table, tmp_path / "ref.parquet")
    with TrajectoryWriter(tmp_path / "ours") as w:
        w.write_many(_records("A", 2))
    df = read_trajectories([tmp_path / "ref.parquet", tmp_path / "ours"])
    assert len(df) == 3 and df["record_kind"].isna().sum() == 1


def test_bad_records_are_refused():
    with pytest.raises(ValueError, match="label"):
        TrajectoryRecord("A", 0, "⊢ a", "", None, "good", 0, 0)
    with pytest.raises(ValueError, match="record_kind"):
        TrajectoryRecord("A", 0, "⊢ a", "", None, "positive", 0, 0, record_kind="weird")


def test_missing_input_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="nothere"):
        read_trajectories(tmp_path / "nothere")


def records_from_frame(df: pd.DataFrame) -> list[TrajectoryRecord]:
    """A DataFrame from :func:`read_trajectories` back into records (this test's round-trip check)."""
    names = [f.name for f in dataclasses.fields(TrajectoryRecord)]
    out = []
    for row in df[names].itertuples(index=False):
        values = dict(zip(names, row))
        for key in ("parent_state_id", "open_prefix"):  # the nullable columns
            if values[key] is not None and pd.isna(values[key]):
                values[key] = None
        if values["parent_state_id"] is not None:
            values["parent_state_id"] = int(values["parent_state_id"])
        out.append(TrajectoryRecord(**values))
    return out
