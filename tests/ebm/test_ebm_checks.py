"""Sibling checks, baselines fitted on training data, made-up siblings as hard negatives (issue 25)."""

import json

import numpy as np
import pandas as pd
import pytest

from workbench.ebm.baselines import (STRUCTURAL_LOGISTIC, TFIDF_LOGISTIC, first_states, fit_baselines, position_energies,
                                     training_pairs)
from workbench.ebm.checks import (HELD_OUT, LENGTH_MATCHED, MINED, PARENT_CHILD, POSITION_MATCHED, TRAINED, UNTRAINED,
                                  check_pairs, kind_check, mined_sibling_pairs, pair_checks)
from workbench.ebm.perturb import PERTURBATION_KINDS
from workbench.ebm.data import ContrastiveSampler, SamplerConfig, attach_embeddings, records_from_traces, with_perturbations
from workbench.ebm.evaluate import MODEL, progress_evaluation, sibling_report
from workbench.ebm.records import made_up_mask
from workbench.ebm.perturb import perturb
from workbench.traces import TacticStep, Theorem


def _theorem(name, states, last="no goals"):
    """A proof whose i-th tactic turns states[i] into states[i + 1] (the last one into ``last``)."""
    after = [*states[1:], last]
    return Theorem(full_name=name, steps=tuple(TacticStep(depth=i, state_before=s, tactic=f"t{i}", state_after=a)
                                              for i, (s, a) in enumerate(zip(states, after))))


def _records(n=6):
    thms = [_theorem(f"T{t}", [f"x : ℕ\nh{t} : 0 < x\n⊢ x + {t} = {t} + x",
                               f"x : ℕ\nh{t} : 0 < x\ny : ℕ\n⊢ x + {t} = y",
                               f"x : ℕ\nh{t} : 0 < x\ny : ℕ\nhy : y = x\n⊢ y = {t}"]) for t in range(n)]
    return records_from_traces(thms)


def test_pairs_parent_to_child_from_state_after_and_no_progress_siblings():
    recs = _records(3)
    cp = check_pairs(recs, held_out=("rename_hyp",), trained=("true_hyp",), seed=0)
    p = cp.pairs
    pc = p[p["check"] == PARENT_CHILD]
    assert len(pc) == 3 * 2  # the last tactic's child is "no goals": not a check
    first = pc.iloc[0]
    assert cp.texts[first["better"]] == recs.loc[1, "state_pp"] and cp.texts[first["worse"]] == recs.loc[0, "state_pp"]
    junk = p[p["check"] == kind_check("true_hyp")].iloc[0]
    assert cp.texts[junk["worse"]] == perturb(recs.loc[0, "state_pp"], "true_hyp", 0)
    assert cp.texts[junk["better"]] == recs.loc[1, "state_pp"]
    others = tuple(kind_check(k) for k in PERTURBATION_KINDS if k not in ("rename_hyp", "true_hyp"))
    assert cp.groups == {HELD_OUT: (kind_check("rename_hyp"),), TRAINED: (kind_check("true_hyp"),), UNTRAINED: others}
    assert set(p["check"]) >= {kind_check(k) for k in PERTURBATION_KINDS if k != "reorder_hyps"}  # every kind, always
    assert cp.order[:4] == [PARENT_CHILD, HELD_OUT, TRAINED, UNTRAINED]


def test_mined_siblings_pair_each_positive_with_each_negative_of_one_parent():
    recs = pd.DataFrame({
        "theorem_name": ["A"] * 6 + ["B"] * 3,
        "parent_state_id": [None, 0, 0, 0, 0, 0, None, 0, 0],
        "label": ["positive", "positive", "negative", "negative", "negative", "unknown", "positive", "positive", "positive"],
        "record_kind": ["", "", "", "", "perturbation:true_hyp", "", "", "", ""],
        "state_pp": [f"s{i}" for i in range(9)],
    })
    cp = mined_sibling_pairs(recs)
    # A: child 1 (positive) vs children 2 and 3 (negative); the made-up sibling (4), the unlabelled child and the
    # root are no mined siblings; B has no negative child
    assert sorted(zip(cp.pairs["better"], cp.pairs["worse"])) == [(1, 2), (1, 3)]
    assert set(cp.pairs["check"]) == {MINED} and set(cp.pairs["theorem"]) == {"A"} and cp.texts[1] == "s1"
    report = pair_checks(cp, {MODEL: np.array([0, 0, 1, -1, 0, 0, 0, 0, 0], float)}, model=MODEL, seed=0, n_boot=50)
    assert report.value(MINED) == 0.5 and "mined siblings" in report.verdict


def test_length_matched_pairs_are_within_tolerance():
    thm = _theorem("L", ["a : ℕ\n⊢ a = 1", "b : ℕ\n⊢ b = 2", "a b : ℕ\nh : a = b\n⊢ a + b = b + a"])
    cp = check_pairs(records_from_traces([thm]), held_out=(), trained=())
    lm = cp.pairs[cp.pairs["check"] == LENGTH_MATCHED]
    assert len(lm) == 1 and cp.texts[lm.iloc[0]["better"]] == "b : ℕ\n⊢ b = 2"


def test_position_matched_pairs_are_later_states_at_nearly_the_same_distance_from_the_first():
    thm = _theorem("P", ["x y : ℕ\n⊢ x + y = y + x", "x y : ℕ\n⊢ y + x = y + x", "x y : ℕ\n⊢ x + y = x + y",
                         "x y : ℕ\nh : x = y\n⊢ x + y = y + x", "y x : ℕ\n⊢ y + x = x + y"])
    recs = records_from_traces([thm])
    cp = check_pairs(recs, held_out=(), trained=(), position_tolerance=0.2)
    assert np.allclose(cp.position, position_energies(cp.texts, cp.theorems, first_states(recs)))  # the baseline's cue
    at = {t: cp.texts.index(t) for t in recs["state_pp"]}
    depth = {at[t]: d for t, d in zip(recs["state_pp"], recs["remaining_depth"])}
    dist = -cp.position
    expected = {(j, i) for i in depth for j in depth
                if depth[j] < depth[i] and abs(dist[i] - dist[j]) <= 0.2 * max(dist[i], dist[j])}
    pm = cp.pairs[cp.pairs["check"] == POSITION_MATCHED]
    assert set(zip(pm["better"], pm["worse"])) == expected and expected  # some pair is matched, and only those
    report = pair_checks(cp, {MODEL: -np.arange(len(cp.texts), dtype=float)}, model=MODEL, n_boot=20)
    assert POSITION_MATCHED in cp.order and "position-matched progress pairs" in report.verdict


def test_pair_checks_macro_average_intervals_and_paired_p():
    recs = _records(40)
    cp = check_pairs(recs, held_out=("rename_hyp",), trained=("true_hyp",))
    depth = {s: d for s, d in zip(recs["state_pp"], recs["remaining_depth"])}
    good = np.array([depth.get(t, 99) for t in cp.texts], float)  # made-up siblings far from QED
    bad = -good
    report = pair_checks(cp, {MODEL: good, "inverted": bad}, model=MODEL, n_boot=200)
    assert report.value(PARENT_CHILD) == 1.0 and report.value(HELD_OUT) == 1.0
    assert report.value(PARENT_CHILD, "inverted") == 0.0
    assert report.p_above.loc[PARENT_CHILD, "inverted"] == 1.0
    t = report.table.loc[(PARENT_CHILD, MODEL)]
    assert t["n_theorems"] == 40 and t["n_pairs"] == 80 and t["lo"] <= t["value"] <= t["hi"]
    formatted = report.formatted()
    assert list(formatted.columns[:2]) == ["theorems", "pairs"] and formatted.loc[PARENT_CHILD, "theorems"] == 40
    d = json.loads(json.dumps(report.to_dict()))
    assert d["checks"][PARENT_CHILD]["n_pairs"] == 80 and d["held_out_kinds"] == ["rename_hyp"]
    assert "parent→child (40 theorems, 80 pairs): model 1.000" in report.verdict


def test_baseline_directions_are_fixed_on_training_data():
    # training: longer = closer; evaluation: the opposite. The baseline keeps the training direction.
    train = pd.DataFrame([{"theorem_name": f"T{t}", "state_id": d, "parent_state_id": d - 1 if d else None,
                           "state_pp": "x : ℕ\n⊢ " + "p ∧ " * d + "q", "label": "positive", "remaining_depth": 3 - d,
                           "depth_from_root": d} for t in range(30) for d in range(3)])
    fitted = fit_baselines(train, tfidf=True)
    assert fitted.directions["state_length"] is False  # higher = closer
    assert "state length: longer = closer" in fitted.trivial_names
    test = train.assign(remaining_depth=lambda r: r["depth_from_root"] + 1, depth_from_root=lambda r: 2 - r["depth_from_root"])
    energies = fitted.energies(test["state_pp"].tolist())
    assert set(energies) >= {"state length: longer = closer", STRUCTURAL_LOGISTIC, TFIDF_LOGISTIC}
    rep = progress_evaluation(test, -energies["state length: longer = closer"], baselines=energies,
                              trivial=fitted.trivial_names, n_boot=50)
    assert rep.table.loc["state length: longer = closer", "progress_accuracy"] == 0.0  # not flipped on test
    assert rep.directions_from_training and rep.best_baseline in fitted.trivial_names + ["random (mean of draws)"]
    assert {c.baseline for c in rep.comparisons} >= {STRUCTURAL_LOGISTIC, TFIDF_LOGISTIC}
    assert "fitted on training data" in rep.verdict
    # the logistic models order the training pairs
    tr = fitted.energies(train["state_pp"].tolist())
    assert progress_evaluation(train, tr[TFIDF_LOGISTIC], n_boot=20).table.loc[MODEL, "progress_accuracy"] > 0.9


def test_tfidf_energies_kept_between_calls_are_the_fitted_models_own():
    """A text scored once is not analysed again; what comes back is what the fitted model gives, in the order
    (and with the repeats) asked for."""
    train = pd.DataFrame([{"theorem_name": f"T{t}", "state_id": d, "parent_state_id": d - 1 if d else None,
                           "state_pp": f"x{t % 3} : ℕ\n⊢ " + "p ∧ " * d + "q", "label": "positive",
                           "remaining_depth": 3 - d, "depth_from_root": d} for t in range(12) for d in range(3)])
    fitted = fit_baselines(train, tfidf=True)
    vec, clf = fitted.tfidf
    first = ["x : ℕ\n⊢ p ∧ q", "⊢ q", "x : ℕ\n⊢ p ∧ q"]
    second = ["y : ℤ\n⊢ p", "⊢ q", "x : ℕ\n⊢ p ∧ q"]
    for texts in (first, second):
        fresh = -np.asarray(vec.transform(texts) @ clf.coef_.ravel()).ravel()
        np.testing.assert_allclose(fitted.energies(texts)[TFIDF_LOGISTIC], fresh, rtol=1e-12)
    assert len(fitted._tfidf_seen) == 3


def test_position_cue_is_the_distance_from_the_theorems_first_state():
    """Nothing fitted: a theorem's first state is where its proof starts (energy 0, the worst), a state that moved
    away from it scores better the farther it moved, and a theorem without a first state gets no signal."""
    records = pd.DataFrame([{"theorem_name": "T", "state_pp": s, "label": "positive", "remaining_depth": 2 - d,
                             "depth_from_root": d} for d, s in enumerate(
                                 ["x : ℕ\n⊢ x + 0 = x", "x : ℕ\n⊢ x = x", "x y z : ℤ\nh : y < z\n⊢ 0 < z - y"])])
    first = first_states(records.iloc[::-1])  # the lowest depth, whatever the order
    assert first == {"T": "x : ℕ\n⊢ x + 0 = x"}
    e = position_energies([*records["state_pp"], "⊢ True"], ["T", "T", "T", "U"], first)
    assert e[0] == pytest.approx(0.0, abs=1e-6) and e[0] > e[1] > e[2] and e[3] == 0.0
    # the vectors come from the run's cache when it holds the same encoder's, and from nowhere else
    from workbench.encode.cache import EmbeddingTable
    from workbench.encode.hashed import HashedEncoder
    from workbench.encode.text import PLAIN_TEMPLATE

    texts = records["state_pp"].tolist()
    same = HashedEncoder(template=PLAIN_TEMPLATE)
    kept = EmbeddingTable(texts, same.encode_sync(texts), same.identity)
    np.testing.assert_allclose(position_energies(texts, ["T"] * 3, first, table=kept), e[:3], atol=1e-6)
    read = EmbeddingTable(texts, np.repeat(kept.matrix[:1], 3, axis=0), same.identity)  # every row the first state's
    np.testing.assert_allclose(position_energies(texts, ["T"] * 3, first, table=read), 0.0, atol=1e-6)
    other = HashedEncoder(template="state: {state}")
    wrong = EmbeddingTable(texts, np.ones((3, 4096), np.float32), other.identity)
    np.testing.assert_allclose(position_energies(texts, ["T"] * 3, first, table=wrong), e[:3], atol=1e-6)


def test_check_pairs_score_a_shared_text_once_per_theorem():
    """A state text two theorems share is a state of each: a baseline relative to the theorem (the position cue)
    gets one row per theorem."""
    rows = [{"theorem_name": t, "state_id": d, "parent_state_id": d - 1 if d else None, "label": "positive",
             "state_pp": s, "remaining_depth": 1 - d, "depth_from_root": d}
            for t, states in (("A", ["a : ℕ\n⊢ a = a", "⊢ True"]), ("B", ["b : ℤ\n⊢ b ≤ b", "⊢ True"]))
            for d, s in enumerate(states)]
    cp = check_pairs(pd.DataFrame(rows), held_out=(), trained=())
    assert all(isinstance(x, str) for x in cp.texts)  # no state_after: the last state has no child, and no pair
    shared = [(t, i) for i, (t, x) in enumerate(zip(cp.theorems, cp.texts)) if x == "⊢ True"]
    assert sorted(t for t, _ in shared) == ["A", "B"] and len(cp.theorems) == len(cp.texts)
    for t, i in shared:
        assert set(cp.pairs.loc[cp.pairs["better"] == i, "theorem"]) == {t}


def test_training_pairs_are_progress_and_sibling_pairs():
    recs = with_perturbations(_records(2), ["true_hyp"], both_sides=False)
    pairs = training_pairs(recs)
    r = recs.reset_index(drop=True)
    for b, w in zip(pairs["better"], pairs["worse"]):
        if r.loc[w, "label"] == "negative":
            assert r.loc[w, "parent_state_id"] == r.loc[b, "parent_state_id"]
        else:
            assert r.loc[b, "remaining_depth"] < r.loc[w, "remaining_depth"]
    assert len(pairs) == 2 * (3 + 2)  # per theorem: 3 progress pairs, 2 (child, junk parent) pairs


def _sampler(recs, **cfg):
    from workbench.ebm.synthetic import SyntheticIdentity, SyntheticTable

    states = list(dict.fromkeys(recs["state_pp"]))
    table = SyntheticTable(states, np.eye(len(states), dtype=np.float32), SyntheticIdentity(dim=len(states)))
    joined, _ = attach_embeddings(recs, table)
    return ContrastiveSampler(joined, SamplerConfig(**{"k_negatives": 4, "progress_negatives": True, **cfg})), joined


def test_made_up_siblings_are_hard_negatives_of_their_sibling_only():
    recs = with_perturbations(_records(3), ["true_hyp", "duplicate_hyp"], both_sides=True)
    kinds = recs["record_kind"].value_counts()
    assert kinds["perturbation:true_hyp"] == 3 * 2 * 2  # a junk parent (negative) and a junk child (positive) per step
    junk_children = recs[(recs["record_kind"] != "ground_truth") & (recs["label"] == "positive")]
    assert (junk_children["remaining_depth"] >= 0).all()
    sampler, joined = _sampler(recs)
    assert sampler.perturbation_negatives == 3 * 2 * 2 and not sampler.has_labelled_negatives
    assert sampler.easy_source == "none"  # made-up siblings never become other theorems' easy negatives
    rng = np.random.default_rng(0)
    seen = 0
    for i in sampler.pos_idx:
        idx, tier = sampler.negatives_for(int(i), rng)
        for j, k in zip(idx, tier):
            if str(joined.loc[j, "record_kind"]).startswith("perturbation:") and joined.loc[j, "label"] == "negative":
                # the hard tier, or the backfill that redraws the positive's own pools when k is not reached
                assert joined.loc[j, "parent_state_id"] == joined.loc[i, "parent_state_id"]
                assert joined.loc[j, "theorem_name"] == joined.loc[i, "theorem_name"]
                seen += 1
    assert seen > 0


def test_parent_negatives_put_the_parent_in_the_hard_tier():
    recs = _records(2)
    sampler, joined = _sampler(recs, parent_negatives=True)
    rng = np.random.default_rng(0)
    child = int(joined.index[(joined["theorem_name"] == "T0") & (joined["state_id"] == 2)][0])
    idx, tier = sampler.negatives_for(child, rng)
    parent = int(joined.index[(joined["theorem_name"] == "T0") & (joined["state_id"] == 1)][0])
    assert parent in idx[tier == 0]
    plain, _ = _sampler(recs, parent_negatives=False)
    idx, tier = plain.negatives_for(child, rng)
    assert (tier == 0).sum() == 0


def test_the_parent_as_a_hard_negative_is_not_drawn_again_as_a_medium_one():
    # k = 2: one hard draw (the parent), one medium draw among the earlier states, no backfill
    recs = _records(2)
    sampler, joined = _sampler(recs, parent_negatives=True, k_negatives=2)
    child = int(joined.index[(joined["theorem_name"] == "T0") & (joined["state_id"] == 2)][0])
    parent = int(joined.index[(joined["theorem_name"] == "T0") & (joined["state_id"] == 1)][0])
    rng = np.random.default_rng(0)
    draws = [sampler.negatives_for(child, rng) for _ in range(20)]
    assert all(list(idx[tier == 0]) == [parent] for idx, tier in draws)
    assert not any(parent in idx[tier == 1] for idx, tier in draws)


def test_made_up_states_are_never_progress_pairs_of_the_baselines_nor_mined_siblings():
    recs = with_perturbations(_records(2), ["true_hyp"], both_sides=True).reset_index(drop=True)
    made_up = made_up_mask(recs)
    assert made_up.any()
    pairs = training_pairs(recs)
    involved = pairs[made_up[pairs["better"]] | made_up[pairs["worse"]]]
    assert len(involved) > 0  # junk child vs junk parent: sibling pairs, with one parent
    parent = recs["parent_state_id"].to_numpy()
    assert (parent[involved["better"]] == parent[involved["worse"]]).all()
    # a run on traces alone: its made-up negatives make no "mined siblings" group
    assert sibling_report(recs, np.zeros(len(recs))).n_groups == 0
    assert mined_sibling_pairs(recs).pairs.empty
