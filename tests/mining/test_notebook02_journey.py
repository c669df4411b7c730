"""The user's two papermill commands after a demo, in either order: honest, separate outputs (issue 12)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

NOTEBOOK = Path(__file__).resolve().parents[2] / "notebooks" / "02_mine_negatives.ipynb"
FAST = {"simulator_latency_scale": 0.0, "candidates_per_step": 2}


def _run(execute_notebook, cwd: Path, name: str, **params) -> str:
    out = cwd / f"{name}.ipynb"
    execute_notebook(NOTEBOOK, out, cwd=str(cwd), parameters=FAST | params)
    nb = json.loads(out.read_text())
    return "\n".join("".join(o.get("text", "")) + "".join("".join(v) if isinstance(v, list) else str(v)
                                                           for v in o.get("data", {}).values())
                     for c in nb["cells"] for o in c.get("outputs", []))


@pytest.mark.parametrize("order", ["num_theorems_first", "traces_first"])
def test_second_command_never_lands_in_the_first_ones_data(tmp_path, order, monkeypatch, execute_notebook):
    for var in ("PANTOGRAPH_REPL", "SGLANG_URL", "ENCODE_URL"):
        monkeypatch.delenv(var, raising=False)
    from workbench.traces import bundled_sample_path

    other = tmp_path / "test.json"
    other.write_text(json.dumps(json.loads(bundled_sample_path().read_text())[:4]))
    demo = tmp_path / "runs" / "demo" / "02"
    _run(execute_notebook, tmp_path, "demo", output=str(demo), resume=False)  # what `make demo` leaves behind
    demo_lines = (demo / "theorems.jsonl").read_text()
    commands = [("many", {"num_theorems": 5000}), ("other", {"traces": str(other)})]
    if order == "traces_first":
        commands.reverse()
    texts = {name: _run(execute_notebook, tmp_path, name, **params) for name, params in commands}

    assert "5000 requested, 32 available" in texts["many"] and "SIMULATOR" in texts["many"]
    assert "test.json (4 theorems" in texts["other"]
    folders = sorted(p for p in (tmp_path / "runs" / "mine").iterdir())
    assert len(folders) == 2, folders  # one folder per identity
    counts = sorted(len((f / "theorems.jsonl").read_text().splitlines()) for f in folders)
    assert counts == [4, 32]
    assert (demo / "theorems.jsonl").read_text() == demo_lines  # the demo's data untouched
    for f in folders:
        assert json.loads((f / "identity.json").read_text())["lean_backend"] == "simulator"
