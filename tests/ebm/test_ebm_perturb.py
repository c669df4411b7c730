"""No-progress siblings (workbench.ebm.perturb): pure functions on canonical state text (issue 25).

Lean's goal display is the reference: a hypothesis introduced under a name already in the context shadows
it, and the shadowed one prints with ``✝`` -- the most recent ``x✝``, older ones ``x✝¹``, ``x✝²`` (as in
the real sample: ``inst✝¹ : Semiring R`` before ``inst✝ : Semiring S``); references to it follow."""

import pytest

from workbench.ebm.perturb import HELD_OUT_KINDS, PERTURBATION_KINDS, TRAIN_KINDS, perturb
from workbench.states import canonical_state, parse_state, rename_all, rename_in

STATE = """R : Type u
inst✝¹ : Semiring R
S : Type v
inst✝ : Semiring S
f✝ f : R →+* S
h : f.1 = Nat.f
⊢ (mapRingHom f) X = X

case inr
x : ℕ
⊢ x = x"""


def _main(text):
    return parse_state(text)[0]


def test_every_kind_keeps_the_targets_and_the_other_goals():
    for kind in PERTURBATION_KINDS:
        out = perturb(STATE, kind, seed=3)
        if out is None:
            assert kind == "reorder_hyps", kind  # in STATE a later hypothesis mentions every accessible one but the last
            continue
        assert out == canonical_state(out)  # canonical text in, canonical text out
        before, after = parse_state(STATE), parse_state(out)
        assert after[1:] == before[1:], kind  # only the main goal is touched
        if kind not in ("shadow_hyp", "rename_hyp"):  # those rename references in the target too (Lean does)
            assert after[0].target == before[0].target, kind


def test_have_kinds_append_this():
    true_hyp = _main(perturb(STATE, "true_hyp"))
    assert [(h.name, h.type) for h in true_hyp.hypotheses][-1] == ("this", "True")
    refl = _main(perturb(STATE, "refl_hyp", seed=1)).hypotheses[-1]
    name = refl.type.split(" = ")[0]
    assert refl.name == "this" and refl.type == f"{name} = {name}" and "✝" not in name  # a nameable hypothesis
    dup = _main(perturb(STATE, "duplicate_hyp", seed=2)).hypotheses
    assert dup[-1].name == "this" and dup[-1].type in {h.type for h in dup[:-1] if "✝" not in h.name}


def test_shadowing_renumbers_older_shadows_and_follows_references():
    text = "f✝ : ℕ\nf : ℕ → ℕ\nhf : f✝ = f 0\n⊢ f 1 = f✝"
    # the kind picks a hypothesis at random; find the seed that shadows f
    for seed in range(50):
        out = perturb(text, "shadow_hyp", seed)
        if out.endswith("f : ℕ → ℕ\n⊢ f✝ 1 = f✝¹"):
            break
    assert out == "f✝¹ : ℕ\nf✝ : ℕ → ℕ\nhf : f✝¹ = f✝ 0\nf : ℕ → ℕ\n⊢ f✝ 1 = f✝¹"


def test_shadowing_an_accessible_name_older_than_an_inaccessible_one_numbers_it_as_the_older():
    # `induction` leaves `n n✝ : ℕ` (the accessible n is the older); shadowing n makes it the older shadowed
    # one, n✝¹, while n✝ stays the most recent (lean.binders.sanitize_names, the rule the walk uses)
    text = "case succ\nn n✝ : ℕ\nh : succ n✝ ∈ divisors n\n⊢ 0 < succ n✝"
    outs = {perturb(text, "shadow_hyp", seed) for seed in range(50)}
    assert "case succ\nn✝¹ n✝ : ℕ\nh : succ n✝ ∈ divisors n✝¹\nn : ℕ\n⊢ 0 < succ n✝" in outs


def test_rename_all_renames_each_reference_once():
    assert rename_all("h✝ = h ∧ h' = h✝¹", {"h": "h✝", "h✝": "h✝¹"}) == "h✝¹ = h✝ ∧ h' = h✝¹"


def test_this_shadows_an_existing_this():
    out = perturb("this : 0 < 1\n⊢ True", "true_hyp")
    assert out == "this✝ : 0 < 1\nthis : True\n⊢ True"


def test_rename_follows_references_and_picks_a_fresh_name():
    for seed in range(50):
        out = perturb("x : ℕ\nhx : 0 < x\n⊢ x ≠ 0", "rename_hyp", seed)
        if out.startswith("x' : ℕ"):
            break
    assert out == "x' : ℕ\nhx : 0 < x'\n⊢ x' ≠ 0"
    assert rename_in("∀ y, x.1 + Nat.x = x' + xx + x✝ + x", "x", "z") == "∀ y, z.1 + Nat.x = x' + xx + x✝ + z"


def test_reorder_moves_a_hypothesis_nothing_later_depends_on():
    out = perturb("a b : ℕ\nh : a < b\nc : ℤ\n⊢ a < b", "reorder_hyps", seed=0)
    # a and b are used by h; h and c may move to the end (c is last already), so only h moves
    assert out == "a b : ℕ\nc : ℤ\nh : a < b\n⊢ a < b"
    assert perturb("a : ℕ\nh : a = a\n⊢ True", "reorder_hyps") is None  # h is last and a is used by h


def test_inapplicable_kinds_say_none_and_choice_is_seeded():
    assert perturb("⊢ True", "rename_hyp") is None and perturb("no goals", "true_hyp") is None
    assert perturb("inst✝ : Field α\n⊢ True", "duplicate_hyp") is None  # an inaccessible name cannot be referred to
    assert perturb(STATE, "rename_hyp", seed=5) == perturb(STATE, "rename_hyp", seed=5)
    assert len({perturb(STATE, "rename_hyp", seed=s) for s in range(20)}) > 1
    with pytest.raises(ValueError, match="unknown perturbation kind"):
        perturb(STATE, "clear_hyp")


def test_training_and_held_out_kinds_are_disjoint_and_share_no_mark():
    assert set(TRAIN_KINDS).isdisjoint(HELD_OUT_KINDS) and set(TRAIN_KINDS) | set(HELD_OUT_KINDS) == set(PERTURBATION_KINDS)
    text = "x : ℕ\nh : 0 < x\n⊢ x ≠ 0"
    assert all("this" in perturb(text, k) for k in TRAIN_KINDS)
    assert not any("this" in (perturb(text, k) or "") for k in HELD_OUT_KINDS)


def test_applies_to_most_real_states(shared_traces_dir):
    from workbench.ebm.data import records_from_traces
    from workbench.traces import load_traces

    states = records_from_traces(load_traces(shared_traces_dir / "random" / "val.json").theorems)["state_pp"].tolist()[:400]
    for kind in PERTURBATION_KINDS:
        outs = [perturb(s, kind) for s in states]
        assert sum(o is not None for o in outs) > 0.85 * len(states), kind
        assert all(o == canonical_state(o) for o in outs if o is not None)
