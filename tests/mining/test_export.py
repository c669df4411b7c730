"""`--output NAME.parquet` and `workbench export`: one Parquet file pandas reads (issue 12, item 6)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq

from workbench.cli import main
from workbench.mining.export import split_output
from workbench.mining.flags import settings_from_flags
from workbench.mining.run import MineSettings, mine
from workbench.trajectory import read_metadata, read_trajectories


def test_split_output():
    assert split_output("a/negatives.parquet") == (Path("a/negatives.parquet.run"),
                                                    Path("a/negatives.parquet"))
    assert split_output("a/run")[1] is None


def test_output_ending_in_parquet_is_one_file_pandas_reads_and_resume_keeps_it_whole(tmp_path):
    target = tmp_path / "negatives.parquet"
    flags = {"output": str(target), "lean": "simulated", "num_theorems": 3, "simulator_latency_scale": 0.0,
             "candidates_per_step": 2, "progress": False}
    result = mine(settings_from_flags(flags, env={}))
    assert result.output == tmp_path / "negatives.parquet.run" and target.is_file()
    df = pd.read_parquet(target)
    assert len(df) == len(read_trajectories(result.output)) > 0 and df.theorem_name.nunique() == 3
    assert read_metadata(target)["simulated"] is True  # provenance travels with the file
    mine(settings_from_flags(flags | {"num_theorems": 5, "resume": True}, env={}))
    assert pd.read_parquet(target).theorem_name.nunique() == 5


def test_export_command(tmp_path, capsys):
    run = tmp_path / "run"
    mine(settings_from_flags({"output": str(run), "lean": "simulated", "num_theorems": 2,
                                  "simulator_latency_scale": 0.0, "progress": False}, env={}))
    assert main(["export", str(run), str(tmp_path / "x.parquet")]) == 0
    assert pq.read_metadata(tmp_path / "x.parquet").num_rows == len(read_trajectories(run))
    assert "records ->" in capsys.readouterr().out
    assert main(["export", str(tmp_path / "empty"), str(tmp_path / "y.parquet")]) == 2
