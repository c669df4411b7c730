import numpy as np
import pandas as pd
import pytest

from workbench.ebm.evaluate import ground_truth_report, sibling_report


def _gt(n_theorems=4, steps=4):
    rows = []
    for t in range(n_theorems):
        for d in range(steps):
            # later states are shorter and have fewer goals, so the baselines get progress right too
            goals = "\n\n".join(["x : ℕ\n⊢ x = x"] * (steps - d))
            rows.append({"theorem_name": f"T{t}", "state_pp": goals, "label": "positive", "depth_from_root": d,
                         "remaining_depth": steps - d, "record_kind": "ground_truth", "parent_state_id": d - 1 if d else None})
    return pd.DataFrame(rows)


def test_perfect_energy_progress():
    df = _gt()
    report = ground_truth_report(df, df["remaining_depth"].to_numpy(float))
    assert report.table.loc["energy (model)", "progress_acc"] == 1.0
    assert report.table.loc["energy (model)", "spearman"] == pytest.approx(1.0)
    assert report.n_pairs == 4 * 6 and report.n_theorems == 4
    # the length and goal-count baselines are perfect too here: a tie is not a win
    assert not report.beats_best_baseline and "does NOT beat" in report.verdict
    assert report.by_depth.loc[0, "energy (model)"] == 1.0


def test_inverted_energy_loses_and_random_near_half():
    df = _gt(n_theorems=50, steps=5)
    report = ground_truth_report(df, -df["remaining_depth"].to_numpy(float))
    assert report.table.loc["energy (model)", "progress_acc"] == 0.0
    assert abs(report.table.loc["random", "progress_acc"] - 0.5) < 0.1
    assert "does NOT beat" in report.verdict


def test_model_beats_uninformative_baselines():
    df = _gt()
    df["state_pp"] = "⊢ same"  # length and goal count cannot tell states apart: ties, 0.5
    report = ground_truth_report(df, df["remaining_depth"].to_numpy(float))
    assert report.beats_best_baseline and "BEATS" in report.verdict
    assert report.table.loc["state length (shorter = closer)", "progress_acc"] == 0.5


def test_sibling_rank1_energy_vs_llm_vs_random():
    rows = []
    for g in range(10):
        # one positive and two negatives per parent; the LLM prefers a negative
        rows.append(("T", 100 + g, g, "positive", 1 + g % 2, 0.0, -1.0))
        rows.append(("T", 200 + g, g, "negative", 1 + g % 2, 1.0, -0.5))
        rows.append(("T", 300 + g, g, "negative", 1 + g % 2, 2.0, -3.0))
    rows.append(("T", 999, 50, "positive", 3, 0.0, 0.0))  # no negative sibling: not a group
    df = pd.DataFrame(rows, columns=["theorem_name", "state_id", "parent_state_id", "label", "depth_from_root", "energy", "llm_log_prob"])
    report = sibling_report(df, df["energy"].to_numpy())
    s = report.summary
    assert report.n_groups == 10
    assert s.loc["energy (model)", "rank1"] == 1.0 and s.loc["llm log-prob", "rank1"] == 0.0
    assert s.loc["random", "rank1"] == pytest.approx(1 / 3)
    assert s.loc["llm log-prob", "pairwise_acc"] == 0.5
    assert s.loc["energy (model)", "auroc"] == pytest.approx(1.0)
    assert list(report.by_depth.index) == [1, 2] and report.by_depth["groups"].sum() == 10
    assert "BEATS" in report.verdict
