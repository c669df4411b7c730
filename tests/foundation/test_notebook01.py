"""Notebook 01 executed headless by papermill with non-default parameters, and the CLI twin."""

import json
from pathlib import Path

from workbench.cli import main

NOTEBOOK = Path(__file__).resolve().parents[2] / "notebooks" / "01_group_traces.ipynb"


def test_notebook_01_on_real_traces(shared_traces_dir, tmp_path, execute_notebook):
    out_dir = tmp_path / "grouped"
    execute_notebook(
        NOTEBOOK, tmp_path / "01.ipynb",
        parameters={"traces_path": str(shared_traces_dir), "min_steps": 2, "num_theorems": 200, "seed": 5,
                    "val_fraction": 0.25, "output_dir": str(out_dir)},
    )
    summary = json.loads((out_dir / "summary.json").read_text())
    assert summary["kept"] == 200 and summary["val_theorems"] == 50
    assert summary["dropped"]["below_min_steps"] > 0
    train = {json.loads(l)["theorem"] for l in (out_dir / "train.jsonl").read_text().splitlines()}
    val = {json.loads(l)["theorem"] for l in (out_dir / "val.jsonl").read_text().splitlines()}
    assert len(train) == 150 and len(val) == 50 and not train & val


def test_group_cli_on_bundled_sample(sample_traces_path, tmp_path, capsys):
    assert main(["group", "--traces", str(sample_traces_path), "--output-dir", str(tmp_path)]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["kept"] >= 20 and summary["dropped"] == {"term_mode": 1, "sorry_stub": 1}
    assert (tmp_path / "theorems.json").exists()


def test_group_cli_names_bad_input(tmp_path, capsys):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"state": "⊢ a", "tactic": "simp", "theorem": "T"}\n')
    assert main(["group", "--traces", str(bad), "--output-dir", str(tmp_path / "o")]) == 2
    assert "bad.jsonl: line 1: missing field 'depth'" in capsys.readouterr().err


def test_notebook_01_traces_a_source_root_first(sample_traces_path, tmp_path, execute_notebook):
    """``source_root`` set: notebook 01 runs ``workbench trace`` (the same translation of parameters) on the
    simulator's source files, then groups what it wrote."""
    from workbench.lean.simulator import load_theorems, write_sources

    write_sources(load_theorems(str(sample_traces_path)), str(tmp_path / "src"))
    out_dir = tmp_path / "grouped"
    execute_notebook(
        NOTEBOOK, tmp_path / "01.ipynb",
        parameters={"source_root": str(tmp_path / "src"), "trace_output": str(tmp_path / "traces"), "lean": "simulated",
                    "modules": "Mathlib.Data.*", "output_dir": str(out_dir), "val_fraction": 0.0},
    )
    meta = json.loads((tmp_path / "traces" / "metadata.json").read_text())
    assert meta["simulated"] is True
    summary = json.loads((out_dir / "summary.json").read_text())
    held = load_theorems(str(sample_traces_path)).values()
    assert summary["kept"] == sum(1 for t in held if t.file_path.startswith("Mathlib/Data/")) > 0


def test_notebook_01_says_when_its_source_is_the_hand_written_sample(tmp_path):
    """Issue 24, item 6: the bundled sample is hand-written; a reader of notebook 01 must not take it for Mathlib."""
    from workbench.trace_stats import source_summary
    from workbench.traces import bundled_sample_path

    summary = {"kept": 30, "steps": 90, "train_theorems": 24, "val_theorems": 6}
    sample = source_summary(bundled_sample_path(), summary, "runs/01")
    assert sample.startswith("**Source: the bundled HAND-WRITTEN sample**") and "do not exist in Mathlib" in sample
    real = source_summary(tmp_path / "leandojo_benchmark_4", summary, "runs/01")
    assert "HAND-WRITTEN" not in real and real.startswith(f"**Source:** `{tmp_path / 'leandojo_benchmark_4'}`")
