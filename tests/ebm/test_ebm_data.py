import numpy as np
import pandas as pd
import pytest

from workbench.ebm.data import (
    EASY,
    HARD,
    MEDIUM,
    ContrastiveSampler,
    SamplerConfig,
    attach_embeddings,
    records_from_traces,
    split_by_theorem,
)
from workbench.ebm.synthetic import SyntheticTable, make_synthetic


def _records(rows):
    df = pd.DataFrame(rows, columns=["theorem_name", "state_id", "parent_state_id", "state_pp", "label", "remaining_depth"])
    df["parent_state_id"] = df["parent_state_id"].astype("Int64")
    df["depth_from_root"] = 1
    return df


def _table(states, dim=4):
    return SyntheticTable(states=list(states), matrix=np.eye(len(states), dim, dtype=np.float32) + 1, identity=None)


def test_tier_counts_sum_to_k():
    assert SamplerConfig(k_negatives=7).tier_counts() == (4, 2, 1)
    assert SamplerConfig(k_negatives=7, hard_ratio=0, medium_ratio=0, easy_ratio=1).tier_counts() == (0, 0, 7)
    with pytest.raises(ValueError, match="sum to 1"):
        SamplerConfig(hard_ratio=0.5, medium_ratio=0.5, easy_ratio=0.5)


def test_tiers_and_backfill():
    # theorem A: positive p (parent 0) with 2 sibling negatives, 3 other negatives elsewhere in A
    rows = [("A", 1, 0, "p", "positive", 2)]
    rows += [("A", 10 + i, 0, f"sib{i}", "negative", -1) for i in range(2)]
    rows += [("A", 20 + i, 5, f"cousin{i}", "negative", -1) for i in range(3)]
    rows += [("B", 30 + i, 0, f"b{i}", "negative", -1) for i in range(20)]
    rows += [("B", 50, 0, "bp", "positive", 1)]
    df = _records(rows)
    joined, _ = attach_embeddings(df, _table(df["state_pp"], dim=40))
    s = ContrastiveSampler(joined, SamplerConfig(k_negatives=7, seed=1))
    i = int(np.flatnonzero(joined["state_pp"] == "p")[0])
    idx, tier = s.negatives_for(i, np.random.default_rng(0))
    names = joined["state_pp"].to_numpy()[idx]
    # 4 hard wanted, 2 exist -> 2 hard; medium wants 2 + 2, only 3 exist -> 3; easy gets 1 + 1 = 2
    assert list(tier) == [HARD] * 2 + [MEDIUM] * 3 + [EASY] * 2
    assert set(names[tier == HARD]) == {"sib0", "sib1"}
    assert set(names[tier == MEDIUM]) == {"cousin0", "cousin1", "cousin2"}
    assert all(n.startswith("b") and n != "bp" for n in names[tier == EASY])  # easy: negatives of B


def test_theorem_without_negatives_still_gets_easy_negatives():
    rows = [("A", 1, 0, "p", "positive", 1)] + [("B", 10 + i, 0, f"b{i}", "negative", -1) for i in range(10)]
    rows += [("B", 2, 0, "bp", "positive", 1)]
    df = _records(rows)
    joined, _ = attach_embeddings(df, _table(df["state_pp"], dim=20))
    s = ContrastiveSampler(joined, SamplerConfig(k_negatives=5, seed=0))
    batch = s.fixed_batch()
    assert batch.neg.shape == (2, 5)
    a = int(np.flatnonzero(joined.loc[s.pos_idx, "theorem_name"] == "A")[0])
    assert (batch.tier[a] == EASY).all()


def test_traces_only_never_uses_other_theorems_proof_states():
    df, table = make_synthetic(n_theorems=5, steps=3, siblings=0, dim=8)
    joined, _ = attach_embeddings(df, table)
    s = ContrastiveSampler(joined, SamplerConfig(k_negatives=4, seed=0))
    assert s.easy_source == "none" and not s.has_labelled_negatives
    # the first state of each proof has no earlier state: no negative of its own, not sampled
    assert s.skipped_positives == 5 and len(s) == 5 * 2
    batch = s.fixed_batch()
    row = joined.set_index("emb_row")
    for p, negs in zip(batch.pos, batch.neg):
        assert all(row.loc[n, "theorem_name"] == row.loc[p, "theorem_name"] for n in negs)
        assert all(row.loc[n, "remaining_depth"] > row.loc[p, "remaining_depth"] for n in negs)  # earlier states
    assert (batch.tier != 2).all()


def test_easy_any_still_draws_other_theorems_when_asked():
    df, table = make_synthetic(n_theorems=5, steps=3, siblings=0, dim=8)
    joined, _ = attach_embeddings(df, table)
    s = ContrastiveSampler(joined, SamplerConfig(k_negatives=4, progress_negatives=False, parent_negatives=False, easy_source="any", seed=0))
    batch = s.fixed_batch()
    theorem_of_row = dict(zip(joined["emb_row"], joined["theorem_name"]))
    for p, negs in zip(batch.pos, batch.neg):
        assert all(theorem_of_row[n] != theorem_of_row[p] for n in negs)


def test_never_its_own_negative_and_exactly_k(synthetic):
    joined, _ = synthetic
    s = ContrastiveSampler(joined, SamplerConfig(k_negatives=7, seed=0))
    b = s.sample(64)
    assert b.neg.shape == (64, 7)
    assert not (b.neg == b.pos[:, None]).any()
    report = s.tier_report(b)
    assert report["hard"] > 0.3 and report["easy"] > 0  # siblings exist for depth >= 1 positives


def test_seeded_and_resumable(synthetic):
    joined, _ = synthetic
    a = ContrastiveSampler(joined, SamplerConfig(seed=3))
    b = ContrastiveSampler(joined, SamplerConfig(seed=3))
    for _ in range(3):
        x, y = a.sample(50), b.sample(50)
        assert np.array_equal(x.pos, y.pos) and np.array_equal(x.neg, y.neg)
    state = a.state_dict()
    expected = a.sample(70)
    c = ContrastiveSampler(joined, SamplerConfig(seed=99))
    c.load_state_dict(state)
    got = c.sample(70)
    assert np.array_equal(expected.pos, got.pos) and np.array_equal(expected.neg, got.neg)
    other = ContrastiveSampler(joined, SamplerConfig(seed=4)).sample(50)
    assert not np.array_equal(other.pos, ContrastiveSampler(joined, SamplerConfig(seed=3)).sample(50).pos)


def test_epoch_visits_every_positive_once(synthetic):
    joined, _ = synthetic
    s = ContrastiveSampler(joined, SamplerConfig(seed=0))
    seen = s.sample(len(s)).pos
    assert sorted(seen) == sorted(joined.loc[s.pos_idx, "emb_row"])


def test_split_by_theorem_has_no_leak(synthetic):
    joined, _ = synthetic
    train_df, val_df = split_by_theorem(joined, 0.25, seed=0)
    assert set(train_df["theorem_name"]).isdisjoint(val_df["theorem_name"])
    assert val_df["theorem_name"].nunique() == 10 and len(train_df) + len(val_df) == len(joined)
    assert split_by_theorem(joined, 0.25, seed=0)[1].equals(val_df)
    # negatives of a val sampler come from val theorems only
    val_sampler = ContrastiveSampler(val_df, SamplerConfig(seed=0))
    batch = val_sampler.fixed_batch()
    val_rows = set(val_df["emb_row"])
    assert set(batch.neg.ravel()) <= val_rows and set(batch.pos) <= val_rows


def test_missing_embeddings_reported_not_zero_filled():
    df = _records([("A", 1, 0, "p", "positive", 1), ("A", 2, 0, "gone", "negative", -1), ("B", 3, 0, "q", "positive", 1)])
    joined, missing = attach_embeddings(df, _table(["p", "q"]))
    assert missing.count == 1 and missing.examples == ("gone",)
    assert "gone" in str(missing)
    assert list(joined["state_pp"]) == ["p", "q"]


def test_missing_columns_named():
    with pytest.raises(ValueError, match="remaining_depth"):
        attach_embeddings(pd.DataFrame({"theorem_name": [], "state_id": [], "parent_state_id": [], "state_pp": [], "label": []}), _table([]))


def test_records_from_traces(sample_traces_path):
    from workbench.states import canonical_state
    from workbench.traces import load_traces

    theorems = load_traces(sample_traces_path).theorems
    df = records_from_traces(theorems)
    assert len(df) == sum(len(t.steps) for t in theorems)
    t = theorems[0]
    rows = df[df["theorem_name"] == t.full_name].sort_values("state_id")
    n = len(t.steps)
    assert list(rows["remaining_depth"]) == list(range(n, 0, -1))
    assert list(rows["depth_from_root"]) == list(range(n))
    assert rows["parent_state_id"].isna().iloc[0] and list(rows["parent_state_id"].iloc[1:]) == list(range(n - 1))
    assert rows["state_pp"].iloc[0] == canonical_state(t.steps[0].state_before)
    assert (df["label"] == "positive").all() and (df["record_kind"] == "ground_truth").all()


def test_progress_negatives_are_earlier_states_of_the_same_proof():
    df, table = make_synthetic(n_theorems=6, steps=5, siblings=0, dim=8)
    joined, _ = attach_embeddings(df, table)
    s = ContrastiveSampler(joined, SamplerConfig(k_negatives=4, hard_ratio=0, medium_ratio=1, easy_ratio=0,
                                                 progress_negatives=True, seed=0))
    batch = s.fixed_batch()
    info = joined.set_index("emb_row")
    for p, negs, tiers in zip(batch.pos, batch.neg, batch.tier):
        mine = info.loc[p]
        for n, tier in zip(negs, tiers):
            if tier == MEDIUM:  # an earlier state of the same proof: further from QED
                assert info.loc[n, "theorem_name"] == mine["theorem_name"]
                assert info.loc[n, "remaining_depth"] > mine["remaining_depth"]
            else:  # the first states have no earlier state: backfilled from other theorems
                assert tier == EASY and info.loc[n, "theorem_name"] != mine["theorem_name"]
    last = int(np.flatnonzero(batch.remaining_depth == 1)[0])  # 4 earlier states exist
    assert (batch.tier[last] == MEDIUM).all()


def test_balance_theorems_draws_each_theorem_equally_often():
    from workbench.ebm.data import records_from_traces

    class Step:
        def __init__(self, depth, tactic="t"):
            self.depth, self.state_before, self.tactic = depth, f"h{depth} : p\n⊢ q{depth}", tactic

    class Thm:
        def __init__(self, name, n):
            self.full_name, self.steps = name, [Step(d) for d in range(n)]

    df = records_from_traces([Thm("long", 21)] + [Thm(f"short{i}", 3) for i in range(4)])
    df["state_pp"] = df["theorem_name"] + "|" + df["state_pp"]  # distinct rows per theorem
    table_states = df["state_pp"].tolist()

    class Table:
        states = table_states
        matrix = np.zeros((len(table_states), 2), np.float32)

    joined, _ = attach_embeddings(df, Table())
    theorem_of_row = dict(zip(joined["emb_row"], joined["theorem_name"]))
    counts = {}
    for balanced in (False, True):
        s = ContrastiveSampler(joined, SamplerConfig(k_negatives=2, balance_theorems=balanced, seed=0))
        drawn = pd.Series([theorem_of_row[r] for r in s.sample(5000).pos]).value_counts(normalize=True)
        counts[balanced] = drawn["long"]
    assert counts[False] == pytest.approx(20 / 28, abs=0.03)  # by positives: the long proof dominates
    assert counts[True] == pytest.approx(1 / 5, abs=0.03)  # by theorem
