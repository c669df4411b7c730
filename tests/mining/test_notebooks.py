"""Papermill runs of notebooks 02 and 03 with small parameters (offline: simulator + retrieval policy), and
notebook 03's inputs: a missing or mistyped folder is an error, never a silent simulated substitute (issue 24,
item 3)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from workbench.mining import report

papermill = pytest.importorskip("papermill")

NOTEBOOKS = Path(__file__).resolve().parents[2] / "notebooks"


def _outputs_text(nb_path: Path) -> str:
    nb = json.loads(nb_path.read_text())
    chunks = []
    for cell in nb["cells"]:
        for out in cell.get("outputs", []):
            chunks.append("".join(out.get("text", "")))
            for value in out.get("data", {}).values():
                chunks.append("".join(value) if isinstance(value, list) else str(value))
    return "\n".join(chunks)


def test_notebooks_02_then_03_run_with_small_parameters_and_a_typo_fails_loudly(tmp_path, execute_notebook):
    mined = tmp_path / "mined"
    out02 = tmp_path / "02.ipynb"
    execute_notebook(NOTEBOOKS / "02_mine_negatives.ipynb", out02, cwd=str(NOTEBOOKS),
                     parameters={"output": str(mined), "num_theorems": 4, "candidates_per_step": 4,
                                 "simulator_latency_scale": 0.0, "lean": "simulated"})
    text = _outputs_text(out02)
    assert "SIMULATED" in text and "theorems: 4 attempted" in text
    assert "theorems_per_hour (SIMULATED Lean, latencies x 0: not a real-Lean rate)" in text  # item 6
    assert (mined / "summary.json").exists()
    out03 = tmp_path / "03.ipynb"
    execute_notebook(NOTEBOOKS / "03_depth_distribution.ipynb", out03, cwd=str(NOTEBOOKS),
                     parameters={"inputs": [str(mined)]})
    text = _outputs_text(out03)
    assert "SIMULATED LABELS" in text and "positives" in text and "fixed_by_open" in text
    assert "step0" in text and "replayed" in text  # the start-state / step-0 table
    assert "Every tactic sent" in text  # the static drill-down of the first theorem
    # the user's typo: exit non-zero naming the folder, and nothing mined into it
    typo = tmp_path / "minde"
    with pytest.raises(papermill.PapermillExecutionError) as e:
        execute_notebook(NOTEBOOKS / "03_depth_distribution.ipynb", tmp_path / "typo.ipynb", cwd=str(NOTEBOOKS),
                         parameters={"inputs": [str(typo)]})
    assert e.value.ename == "FileNotFoundError" and str(typo) in e.value.evalue
    assert not typo.exists()


def test_input_paths_refuse_missing_folders_unless_the_demo_is_asked_for(tmp_path, monkeypatch):
    missing = tmp_path / "not_there"
    with pytest.raises(FileNotFoundError, match="no mining output in .*not_there"):
        report.input_paths(str(missing))
    with pytest.raises(FileNotFoundError, match="not_there"):
        report.input_paths(json.dumps([str(missing)]))
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(FileNotFoundError, match="empty"):  # a folder without mining output is no input either
        report.input_paths([str(empty)])
    monkeypatch.chdir(tmp_path)  # None: notebook 02's default folder, relative to here: not mined yet
    with pytest.raises(FileNotFoundError, match="runs/mine/simulator-bundled_sample-"):
        report.input_paths(None, env={})
    # only when asked: the quick offline SIMULATED mining into the first input
    assert report.input_paths(str(missing), demo_if_missing=True) == [str(missing)]
    assert json.loads((missing / "summary.json").read_text())["simulated"] is True
    # an --output NAME.parquet was mined into NAME.parquet.run
    (tmp_path / "neg.parquet.run").symlink_to(missing)
    assert report.input_paths(str(tmp_path / "neg.parquet")) == [str(tmp_path / "neg.parquet.run")]
