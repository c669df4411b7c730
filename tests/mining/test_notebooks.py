"""Papermill runs of notebooks 02 and 03 with small parameters (offline: simulator + retrieval policy)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

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


def test_notebooks_02_then_03_run_with_small_parameters(tmp_path):
    mined = tmp_path / "mined"
    out02 = tmp_path / "02.ipynb"
    papermill.execute_notebook(
        str(NOTEBOOKS / "02_mine_negatives.ipynb"), str(out02), cwd=str(NOTEBOOKS), kernel_name="python3",
        parameters={"output": str(mined), "num_theorems": 4, "candidates_per_step": 4, "simulator_latency_scale": 0.0,
                    "lean": "simulated"}, progress_bar=False)
    text = _outputs_text(out02)
    assert "SIMULATED" in text and "theorems: 4 attempted" in text
    assert (mined / "summary.json").exists()
    out03 = tmp_path / "03.ipynb"
    papermill.execute_notebook(
        str(NOTEBOOKS / "03_depth_distribution.ipynb"), str(out03), cwd=str(NOTEBOOKS), kernel_name="python3",
        parameters={"inputs": [str(mined)]}, progress_bar=False)
    text = _outputs_text(out03)
    assert "SIMULATED LABELS" in text and "positives" in text and "fixed_by_open" in text
    assert "step0" in text and "replayed" in text  # the start-state / step-0 table


def test_notebook_03_mines_the_offline_demo_when_its_input_is_missing(tmp_path):
    missing = tmp_path / "not_there"
    papermill.execute_notebook(
        str(NOTEBOOKS / "03_depth_distribution.ipynb"), str(tmp_path / "03.ipynb"), cwd=str(NOTEBOOKS),
        kernel_name="python3", parameters={"inputs": str(missing)}, progress_bar=False)
    assert (missing / "summary.json").exists()
    assert json.loads((missing / "summary.json").read_text())["simulated"] is True
