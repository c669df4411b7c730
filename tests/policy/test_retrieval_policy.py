import numpy as np
import pytest

from workbench.policy import RetrievalPolicy, normalize_tactic
from workbench.policy.knn import TfidfStateIndex
from workbench.policy.retrieval import pairs_from_theorems
from workbench.policy.standin_server import RetrievalCompleter, StandinSGLang
from workbench.traces import TacticStep, Theorem


def _thm(name, steps):
    return Theorem(full_name=name, steps=tuple(TacticStep(i, s, t) for i, (s, t) in enumerate(steps)))


THEOREMS = [
    _thm("A.one", [("n : ℕ\n⊢ n + 0 = n", "simp"), ("n : ℕ\n⊢ n = n", "rfl")]),
    _thm("A.two", [("m : ℕ\n⊢ m + 0 = m", "omega")]),
    _thm("B.three", [("x y : ℝ\nh : 0 < x\n⊢ 0 < x * x", "positivity")]),
    _thm("B.four", [("x : ℝ\nh : 0 < x\n⊢ 0 < x * x * x", "positivity"), ("⊢ True", "trivial")]),
    _thm("C.bad", [("⊢ False", "sorry")]),
]


async def test_proposes_tactics_of_similar_states_scored_by_similarity():
    policy = await RetrievalPolicy.build(THEOREMS, fill_frequent=0)
    cands = await policy.candidates("k : ℕ\n⊢ k + 0 = k", 3, theorem="Other.thm")
    assert cands[0].tactic in ("simp", "omega")
    assert {c.tactic for c in cands[:2]} == {"simp", "omega"}
    assert all(c.score_kind == "similarity" and -1e-6 <= c.score <= 1 + 1e-6 for c in cands)
    assert [c.score for c in cands] == sorted((c.score for c in cands), reverse=True)
    assert policy.provenance()["policy"] == "retrieval"


async def test_never_proposes_the_query_theorems_own_steps():
    policy = await RetrievalPolicy.build(THEOREMS)
    cands = await policy.candidates("n : ℕ\n⊢ n + 0 = n", 10, theorem="A.one")
    assert "simp" not in [c.tactic for c in cands] and "rfl" not in [c.tactic for c in cands]
    assert cands[0].tactic == "omega"


async def test_frequent_tactics_fill_the_last_slots_but_never_leak():
    policy = await RetrievalPolicy.build(THEOREMS, fill_frequent=1)
    cands = await policy.candidates("k : ℕ\n⊢ k + 0 = k", 3, theorem="Other")
    assert cands[-1].tactic == "positivity" and cands[-1].score == 0.0   # the most frequent training tactic
    assert [c.tactic for c in cands[:2]] in (["simp", "omega"], ["omega", "simp"])
    # a tactic the query theorem shares with another theorem is still proposed ...
    own = await policy.candidates("⊢ True", 8, theorem="B.four")
    assert "positivity" in [c.tactic for c in own]
    # ... but a tactic only the query theorem uses is never filled in
    policy = await RetrievalPolicy.build(THEOREMS[:1], fill_frequent=8)
    assert await policy.candidates("⊢ anything", 8, theorem="A.one") == []


async def test_dedupes_and_chains_and_drops_sorry():
    policy = await RetrievalPolicy.build(THEOREMS)
    cands = await policy.candidates("x : ℝ\nh : 0 < x\n⊢ 0 < x * x", 10, theorem="Other")
    tactics = [normalize_tactic(c.tactic) for c in cands]
    assert tactics.count("positivity") == 1 and "sorry" not in tactics
    four = next(c for c in cands if c.tactic == "positivity")
    assert four.tactics[0] == "positivity"
    chained = [c for c in cands if c.tactics == ("simp", "rfl")]
    assert chained and chained[0].raw_text == "simp\nrfl"


def test_pairs_use_canonical_state_text():
    pairs = pairs_from_theorems([_thm("T", [("x  y : ℝ\n⊢ x +\n    y = y + x", "ring")])])
    assert pairs[0].state == "x y : ℝ\n⊢ x + y = y + x"


async def test_tfidf_index_ranks_identical_state_first():
    index = TfidfStateIndex()
    await index.fit(["⊢ a = a", "h : p ∧ q\n⊢ q ∧ p", "⊢ 1 + 1 = 2"])
    idx, sims = await index.query("h : p ∧ q\n⊢ q ∧ p", 2)
    assert idx[0] == 1 and sims[0] == pytest.approx(1.0, abs=1e-5) and sims[0] >= sims[1]


async def test_embedding_index_with_a_fake_encoder():
    from workbench.encode.identity import EncoderIdentity
    from workbench.policy.knn import EmbeddingStateIndex

    class CharCounts:
        identity = EncoderIdentity(model="chars", dim=64, pooling="none", dtype="float32", template="{state}")

        async def encode(self, texts):
            m = np.zeros((len(texts), 64), np.float32)
            for i, t in enumerate(texts):
                for ch in t:
                    m[i, ord(ch) % 64] += 1
            return m

    policy = await RetrievalPolicy.build(THEOREMS, index=EmbeddingStateIndex(CharCounts()))
    cands = await policy.candidates("x : ℝ\nh : 0 < x\n⊢ 0 < x * x", 2, theorem="B.three")
    assert cands[0].tactic == "positivity"


async def test_retrieval_backed_standin_server_feeds_the_sglang_client():
    from workbench.policy import SGLangConfig, SGLangPolicy

    with StandinSGLang(RetrievalCompleter(THEOREMS)) as server:
        async with SGLangPolicy(SGLangConfig(url=server.url)) as policy:
            cands = await policy.candidates("k : ℕ\n⊢ k + 0 = k", 4, theorem="x")
    assert {"simp", "omega"} <= {c.tactic for c in cands}


async def test_real_sample_traces(sample_traces_path):
    from workbench.traces import load_traces

    theorems = load_traces(sample_traces_path).theorems
    policy = await RetrievalPolicy.build(theorems)
    t = theorems[0]
    cands = await policy.candidates(t.steps[0].state_before, 8, theorem=t.full_name)
    assert 0 < len(cands) <= 8
    own = {normalize_tactic(s.tactic) for s in t.steps}
    others = {normalize_tactic(s.tactic) for u in theorems if u.full_name != t.full_name for s in u.steps}
    assert all(normalize_tactic(c.tactic) in others for c in cands)
    assert own  # the query theorem had steps to leak
