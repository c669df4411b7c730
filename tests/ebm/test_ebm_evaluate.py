import json

import numpy as np
import pandas as pd
import pytest

from workbench.ebm.evaluate import MODEL, RANDOM, progress_evaluation, sibling_report
from workbench.ebm.features import state_features


def _gt(n_theorems=4, steps=4, state=None):
    rows = []
    for t in range(n_theorems):
        for d in range(steps):
            # later states are shorter and have fewer goals, so those baselines get progress right too
            text = state(t, d) if state else "\n\n".join(["x : ℕ\n⊢ x = x"] * (steps - d))
            rows.append({"theorem_name": f"T{t}", "state_pp": text, "label": "positive", "depth_from_root": d,
                         "remaining_depth": steps - d, "record_kind": "ground_truth", "parent_state_id": d - 1 if d else None})
    return pd.DataFrame(rows)


def test_features_count_hypotheses_goals_and_target():
    f = state_features(["a b : ℕ\nh : a = b\n⊢ b = a\n\ncase h2\n⊢ True", "not a state"])
    assert f[0].tolist() == [len("a b : ℕ\nh : a = b\n⊢ b = a\n\ncase h2\n⊢ True"), 3, 2, len("b = a")]
    assert f[1].tolist() == [11, 0, 0, 0]
    # any subset, in the order asked, from the rows kept for the texts above
    assert state_features(["not a state", "⊢ True"], ["goals", "state_length"]).tolist() == [[0, 11], [1, 6]]


def test_perfect_energy_progress_ties_with_perfect_baselines():
    df = _gt()
    report = progress_evaluation(df, df["remaining_depth"].to_numpy(float), n_boot=200)
    row = report.table.loc[MODEL]
    assert row["progress_accuracy"] == 1.0 and row["progress_accuracy_all_pairs"] == 1.0
    assert row["adjacent_accuracy"] == 1.0 and row["spearman_within_proof"] == pytest.approx(1.0)
    assert report.n_pairs == 4 * 6 and report.n_theorems == 4
    # "fewer goals" and "shorter" are perfect here too: equal is not better
    assert not report.beats_best_baseline and report.intervals_overlap and "does NOT beat" in report.verdict
    assert report.by_distance.loc["1", MODEL] == 1.0 and report.by_distance.loc["3", "pairs"] == 4
    assert report.table.loc["hypotheses: more = closer", "progress_accuracy"] == 0.0  # both directions present


def test_macro_average_weighs_theorems_not_pairs():
    # one long proof scored perfectly, four 2-step proofs scored backwards
    rows = [dict(theorem_name="long", depth_from_root=d, remaining_depth=10 - d, energy=10 - d) for d in range(10)]
    for t in range(4):
        rows += [dict(theorem_name=f"s{t}", depth_from_root=d, remaining_depth=2 - d, energy=d) for d in range(2)]
    df = pd.DataFrame(rows).assign(label="positive", state_pp="⊢ p")
    report = progress_evaluation(df, df["energy"].to_numpy(float), n_boot=200)
    assert report.table.loc[MODEL, "progress_accuracy_all_pairs"] == pytest.approx(45 / 49)
    assert report.table.loc[MODEL, "progress_accuracy"] == pytest.approx(1 / 5)


def test_random_is_mean_of_draws_and_intervals_resample_theorems():
    df = _gt(n_theorems=60, steps=5, state=lambda t, d: "⊢ p")  # every baseline ties: 0.5
    energy = -df["remaining_depth"].to_numpy(float)  # inverted: 0.0
    report = progress_evaluation(df, energy, n_boot=300, seed=1)
    t = report.table
    assert t.loc[MODEL, "progress_accuracy"] == 0.0 and t.loc[MODEL, "spearman_within_proof"] == pytest.approx(-1.0)
    assert abs(t.loc[RANDOM, "progress_accuracy"] - 0.5) < 0.02  # mean of 100 draws, not one draw
    assert t.loc[RANDOM, "progress_accuracy_lo"] < 0.5 < t.loc[RANDOM, "progress_accuracy_hi"]
    assert t.loc["goals: fewer = closer", "spearman_within_proof"] == 0.0  # constant on a proof orders nothing
    assert "does NOT beat" in report.verdict


def test_model_beats_uninformative_baselines_with_separate_intervals():
    df = _gt(n_theorems=40, state=lambda t, d: "⊢ same")
    report = progress_evaluation(df, df["remaining_depth"].to_numpy(float), n_boot=300)
    assert report.beats_best_baseline and not report.intervals_overlap and "BEATS" in report.verdict
    assert report.delta == pytest.approx(0.5, abs=0.02) and report.delta_interval[0] > 0.4
    d = report.to_dict()
    json.dumps(d)  # JSON-ready
    m = d["methods"][MODEL]
    assert m["progress_accuracy"] == 1.0 and m["interval"] == [1.0, 1.0]
    assert set(m) >= {"progress_accuracy_all_pairs", "adjacent_accuracy", "spearman_within_proof", "by_distance"}
    assert d["best_baseline"] in d["methods"] and d["n_theorems"] == 40


def test_overlapping_intervals_are_not_a_win():
    rng = np.random.default_rng(0)
    df = _gt(n_theorems=12, steps=3, state=lambda t, d: "⊢ same")
    # slightly better than chance on a small sample: above random, but not clearly
    energy = df["remaining_depth"].to_numpy(float) + rng.normal(0, 3.0, len(df))
    report = progress_evaluation(df, energy, n_boot=300)
    assert report.intervals_overlap and not report.beats_best_baseline


def test_only_ground_truth_path_states_are_evaluated():
    df = _gt()
    extra = df.iloc[:2].assign(label="negative", remaining_depth=-1, record_kind="mined")
    both = pd.concat([df, extra], ignore_index=True)
    report = progress_evaluation(both, both["remaining_depth"].to_numpy(float), n_boot=50)
    assert report.n_states == len(df)


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


def test_sibling_policy_rank1_uses_the_children_the_policy_scored():
    # the ground-truth child has no policy score (NaN); the policy ranks its own proposals
    rows = [("T", 1, 0, "positive", 1, 0.0, np.nan), ("T", 2, 0, "positive", 1, 1.0, -0.2),
            ("T", 3, 0, "negative", 1, 2.0, -1.0), ("T", 4, 0, "negative", 1, 3.0, -3.0)]
    df = pd.DataFrame(rows, columns=["theorem_name", "state_id", "parent_state_id", "label", "depth_from_root", "energy", "llm_log_prob"])
    s = sibling_report(df, df["energy"].to_numpy()).summary
    assert s.loc["energy (model)", "rank1"] == 1.0 and s.loc["llm log-prob", "rank1"] == 1.0
    assert s.loc["llm log-prob", "pairwise_acc"] == 1.0
