"""The copyFrom start state and the `intro` that reaches LeanDojo's first state.

Pinned behaviour (Pantograph source, lenianiva/Pantograph ``Repl.lean`` @0528a1592ec8, ``goal_start``):
``copyFrom`` builds ``GoalState.create cInfo.type`` — one goal, the constant's whole type, empty context.
Lean's ``intro x`` names a binder; ``intro _`` introduces it inaccessible (printed ``x✝``; SPEC §1).
"""

from __future__ import annotations

from collections import Counter

from workbench.lean import protocol as P
from workbench.lean.binders import binders_of, forall_target, intro_tactic, introduce, sanitize_names
from workbench.lean.simulator import SimConfig, Simulator, load_theorems
from workbench.states import canonical_state, parse_state, render_state

FIRST = "α : Type u_1\ninst✝¹ : Field α\ninst✝ : DecidableEq α\na b : α\nh : a < b\n⊢ a + b = b + a"


def reply(s: Simulator, cmd: str, payload: dict) -> dict:
    return s.handle(cmd, payload)


def printed(s: Simulator, sid: int) -> P.GoalPrintReply:
    return P.parse_goal_print(reply(s, "goal.print", {"stateId": sid, "goals": True}))


def test_forall_root_prints_binders_as_lean_does():
    goal = parse_state(FIRST)[0]
    text = forall_target(binders_of(goal), goal.target)
    assert text == "∀ {α : Type u_1} [inst : Field α] [inst : DecidableEq α] (a b : α), a < b → a + b = b + a"
    assert intro_tactic(goal) == "intro α _ _ a b h"
    assert intro_tactic(parse_state("⊢ True")[0]) is None


def test_intro_names_and_inaccessible_numbering():
    binders = binders_of(parse_state(FIRST)[0])
    entries, rest = introduce(binders, ["α", "_", "_"])
    assert [h.name for h in sanitize_names(entries)] == ["α", "inst✝¹", "inst✝"]
    assert [b.name for b in rest] == ["a", "b", "h"]
    # A later inaccessible `x✝` does not shadow an accessible `x`; a later accessible one does.
    assert [h.name for h in sanitize_names([("x", False, "ℕ", None), ("x", True, "ℕ", None)])] == ["x", "x✝"]
    assert [h.name for h in sanitize_names([("x", False, "ℕ", None), ("x", False, "ℕ", None)])] == ["x✝", "x"]


def test_simulator_copy_from_gives_the_forall_root(sample_traces_path):
    # (namespace failures are pinned in tests/lean/test_simnamespace.py)
    s = Simulator(load_theorems(str(sample_traces_path)), SimConfig(namespace_references=False))
    sid = reply(s, "goal.start", {"copyFrom": "Nat.succ_le_of_lt_foo"})["stateId"]
    goals = printed(s, sid).goals
    assert len(goals) == 1 and goals[0].hypotheses == ()
    assert render_state(goals) == "⊢ ∀ (m n : ℕ), m < n → m + 1 ≤ n"
    # The ground-truth tactic names `h`, still a binder of the target: Lean cannot see it.
    r = P.parse_goal_tactic(reply(s, "goal.tactic", {"stateId": sid, "tactic": "exact succ_le_of_lt h"}))
    assert r.outcome is P.TacticOutcome.LEAN_ERROR and r.messages[0].data == "unknown identifier 'h'"
    # intro with names moves binders into the context, one by one, as Lean does.
    r = P.parse_goal_tactic(reply(s, "goal.tactic", {"stateId": sid, "tactic": "intro m _"}))
    assert r.state_text.startswith("m n✝ : ℕ\n⊢ ")  # (the simulator does not rename n inside the target)
    r = P.parse_goal_tactic(reply(s, "goal.tactic", {"stateId": sid, "tactic": "intro m n h"}))
    assert r.state_text == "m n : ℕ\nh : m < n\n⊢ m + 1 ≤ n"
    done = P.parse_goal_tactic(reply(s, "goal.tactic", {"stateId": r.next_state_id, "tactic": "exact succ_le_of_lt h"}))
    assert done.outcome is P.TacticOutcome.COMPLETE  # on the trace's first state the ground truth works
    too_many = P.parse_goal_tactic(reply(s, "goal.tactic", {"stateId": sid, "tactic": "intro a b c d"}))
    assert too_many.outcome is P.TacticOutcome.LEAN_ERROR


def test_real_sample_intro_reaches_the_first_state_in_the_traces_own_lean(shared_traces_dir):
    """The traces' own Lean (``--lean-version same``): the trace's names reach the first state exactly; the
    exceptions are traces that begin inside a case. (A newer Lean: tests/lean/test_simversion.py.)"""
    thms = load_theorems(str(shared_traces_dir / "random"))
    s = Simulator(thms, SimConfig(lean_version="same"))
    tally: Counter = Counter()
    for thm in thms.values():
        sid = reply(s, "goal.start", {"copyFrom": thm.name})["stateId"]
        first = parse_state(thm.states[0])
        tac = intro_tactic(first[0]) if first else None
        tally["with_hypotheses"] += tac is not None
        if tac is not None:
            r = P.parse_goal_tactic(reply(s, "goal.tactic", {"stateId": sid, "tactic": tac}))
            text = r.state_text
        else:
            text = render_state(printed(s, sid).goals)
        if text == canonical_state(thm.states[0]):
            tally["matched"] += 1
        else:
            assert first[0].case, thm.name
            tally["begins_in_case"] += 1
        s.handle("reset", {})
    assert tally["matched"] >= 0.99 * len(thms)
    assert tally["with_hypotheses"] >= 0.95 * len(thms)
    assert tally["begins_in_case"] <= 10, tally
