from workbench.lean.protocol import goal_from_pantograph, goal_to_pantograph, state_from_pantograph
from workbench.states import (
    Goal,
    Hypothesis,
    canonical_state,
    parse_state,
    render_state,
    state_fields,
)
from workbench.traces import load_traces

LEANDOJO = (
    "case h\n"
    "α : Type u_1\n"
    "inst✝¹ : DecidableEq α\n"
    "inst✝ : Fintype α\n"
    "a b : α\n"
    "h :\n"
    "  Disjoint (Ico a b)\n"
    "    (Ico b a)\n"
    "hf : f = g := rfl\n"
    "⊢ a = b\n"
    "\n"
    "case inr\n"
    "⊢ b = a"
)

# The same state as Pantograph returns it: one entry per variable, its own line breaks.
PANTOGRAPH_GOALS = [
    {
        "name": "_uniq.10", "userName": "h", "fragment": "tactic",
        "target": {"pp": "a = b"},
        "vars": [
            {"name": "_uniq.1", "userName": "α", "isInaccessible": False, "type": {"pp": "Type u_1"}},
            {"name": "_uniq.2", "userName": "inst✝¹", "isInaccessible": True, "type": {"pp": "DecidableEq α"}},
            {"name": "_uniq.3", "userName": "inst✝", "isInaccessible": True, "type": {"pp": "Fintype α"}},
            {"name": "_uniq.4", "userName": "a", "isInaccessible": False, "type": {"pp": "α"}},
            {"name": "_uniq.5", "userName": "b", "isInaccessible": False, "type": {"pp": "α"}},
            {"name": "_uniq.6", "userName": "h", "isInaccessible": False, "type": {"pp": "Disjoint (Ico a b) (Ico b\n  a)"}},
            {"name": "_uniq.7", "userName": "hf", "isInaccessible": False, "type": {"pp": "f = g"}, "value": {"pp": "rfl"}},
        ],
    },
    {"name": "_uniq.11", "userName": "inr", "target": {"pp": "b = a"}, "vars": []},
]


def test_both_sources_give_one_canonical_text():
    assert canonical_state(LEANDOJO) == state_from_pantograph(PANTOGRAPH_GOALS)


def test_canonical_layout():
    text = canonical_state(LEANDOJO)
    assert text.split("\n\n")[0].splitlines() == [
        "case h",
        "α : Type u_1",
        "inst✝¹ : DecidableEq α",
        "inst✝ : Fintype α",
        "a b : α",
        "h : Disjoint (Ico a b) (Ico b a)",
        "hf : f = g := rfl",
        "⊢ a = b",
    ]
    assert text.split("\n\n")[1] == "case inr\n⊢ b = a"


def test_no_goals_and_empty():
    assert parse_state("no goals") == ()
    assert render_state(()) == "no goals"
    assert canonical_state("  no goals \n") == "no goals"


def test_fields_split_what_a_state_has_from_what_it_must_show():
    state = "case h\nx y : ℕ\nhx : 0 <\n  x\n⊢ ∀ z, z = x\n\nx : ℕ\n⊢ True"
    assert state_fields(state) == ("case h\nx y : ℕ\nhx : 0 < x\nx : ℕ", "⊢ ∀ z, z = x\n⊢ True")
    assert state_fields("no goals") == ("", "no goals")
    assert state_fields("not a state") == ("", "not a state")


def test_case_with_empty_context_is_one_goal():
    goals = parse_state("case inl\n\n⊢ x = 0\n\ncase inr\np : ℝ\n⊢ p = p")
    assert [g.case for g in goals] == ["inl", "inr"]
    assert goals[0].hypotheses == ()


def test_let_values_are_not_grouped():
    goals = parse_state("x : ℕ := 1\ny : ℕ := 1\n⊢ x = y")
    assert goals[0].hypotheses == (Hypothesis("x", "ℕ", "1"), Hypothesis("y", "ℕ", "1"))
    assert render_state(goals).splitlines()[:2] == ["x : ℕ := 1", "y : ℕ := 1"]


def test_inaccessible_name_gets_dagger():
    goal = goal_from_pantograph({"target": {"pp": "p"}, "vars": [{"userName": "h", "isInaccessible": True, "type": {"pp": "p"}}]})
    assert goal.hypotheses[0].name == "h✝"


def test_goal_without_turnstile_is_an_error():
    import pytest

    with pytest.raises(ValueError, match="no '⊢'"):
        parse_state("a : ℕ\nb : ℕ")


def test_real_sample_round_trips(shared_traces_dir):
    """Every state of the real sample: LeanDojo text and its Pantograph JSON give the same text."""
    trace_set = load_traces(shared_traces_dir)
    n = 0
    for thm in trace_set.theorems:
        for step in thm.steps:
            for text in (step.state_before, step.state_after):
                goals = parse_state(text)
                canonical = render_state(goals)
                as_json = [goal_to_pantograph(g, name=f"_uniq.{i}") for i, g in enumerate(goals)]
                assert state_from_pantograph(as_json) == canonical
                assert canonical_state(canonical) == canonical  # idempotent
                assert " ".join(canonical.split()).replace(" ", "") != "" or text.strip() == ""
                n += 1
    assert n == 2 * 5877


def test_real_sample_multi_goal_states_keep_every_goal(shared_traces_dir):
    trace_set = load_traces(shared_traces_dir)
    multi = [s.state_before for t in trace_set.theorems for s in t.steps if "\n\ncase " in s.state_before]
    assert multi, "the real sample has multi-goal states"
    for text in multi:
        goals = parse_state(text)
        assert len(goals) == text.count("⊢")
        assert all(isinstance(g, Goal) for g in goals)
