"""Mining against a real Pantograph REPL (skipped unless PANTOGRAPH_REPL names one)."""

from __future__ import annotations

import json
import os

import pytest

from workbench.mining.run import MineSettings, mine
from workbench.trajectory import read_trajectories

pytestmark = pytest.mark.pantograph


@pytest.fixture
def repl_cmd() -> str:
    cmd = os.environ.get("PANTOGRAPH_REPL")
    if not cmd:
        pytest.skip("set PANTOGRAPH_REPL to a Pantograph REPL command to run real-Lean mining tests")
    return cmd


def test_mines_a_core_theorem_with_real_lean(tmp_path, repl_cmd):
    pairs = tmp_path / "pairs.jsonl"
    steps = [("⊢ ∀ (n m : Nat), n + m = m + n", "intro n m"), ("n m : Nat\n⊢ n + m = m + n", "omega")]
    pairs.write_text("".join(json.dumps({"state": s, "tactic": t, "theorem": "Nat.add_comm", "depth": i}) + "\n"
                             for i, (s, t) in enumerate(steps)))
    result = mine(MineSettings(traces=str(pairs), output=str(tmp_path / "out"), pantograph_cmd=repl_cmd,
                               imports=("Init",), lean_workers=1, candidates_per_step=4, progress=False))
    assert result.summary["simulated"] is False and result.summary["attempted"] == 1
    df = read_trajectories(tmp_path / "out")
    gt = df[df.record_kind == "ground_truth"].sort_values("depth_from_root")
    assert list(gt.remaining_depth) == [2, 1, 0] and (df.state_source == "pantograph").all()
