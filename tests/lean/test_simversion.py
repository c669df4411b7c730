"""Lean's binders from Pantograph's s-expression, and the simulator as a newer Lean than its traces.

Pinned upstream behaviour:

* ``printExprAST`` (lenianiva/Pantograph v0.3.4 ``Pantograph/Delate.lean`` L394-440): a binder is
  ``(:forall NAME TYPE BODY)`` with `` :i``/`` :si``/`` :ii`` for implicit/strict-implicit/instance, a let is
  ``(:let NAME TYPE VALUE BODY)``, names have their macro scopes erased; the strings below are Pantograph's own
  test expectations (``Test/Delate.lean`` v0.3.4 L33-38, L51).
* ``copyFrom`` gives the constant's type with an empty context (``Repl.lean`` v0.3.4 L374-377); a newer Lean
  abstracts only the section variables the statement uses, so the traces' first states (early-2024 Lean)
  show hypotheses the type lacks (SPEC §1: ``Set.Ioc_disjoint_Ioc``).
"""

from __future__ import annotations

import re
from collections import Counter

import pytest

from workbench.lean import protocol as P
from workbench.lean.binders import binders_of, forall_sexp, parse_sexp, plan_intro, telescope
from workbench.lean.printer import comparable, newer_printing, state_quality
from workbench.lean.simulator import SimConfig, Simulator, load_theorems, newer_theorem
from workbench.lean.simversion import dropped_variables
from workbench.states import parse_state, render_state

# Test/Delate.lean v0.3.4 L33-38 and L51 (test_sexp_of_symbol, test_sexp_of_elab)
NAT_ADD = "(:forall a (:c Nat) (:forall a (:c Nat) (:c Nat)))"
LE_OF_SUCC_LE = ("(:forall n (:c Nat) (:forall m (:c Nat) (:forall h ((:c LE.le) (:c Nat) (:c instLENat) "
                 "((:c Nat.succ) 1) 0) ((:c LE.le) (:c Nat) (:c instLENat) 2 1)) :i) :i)")
LIST = "(:forall α (:sort (+ u 1)) (:sort (+ u 1)))"
LAMBDA = "(:lambda α (:sort (+ u 1)) ((:c List) 0) :i)"


def test_telescope_reads_pantographs_sexp():
    assert [(b.name, b.info) for b in telescope(NAT_ADD)] == [("a", "default"), ("a", "default")]
    le = telescope(LE_OF_SUCC_LE)
    assert [(b.name, b.info) for b in le] == [("n", "implicit"), ("m", "implicit"), ("h", "default")]
    assert le[2].head == "LE.le" and le[2].mentions == ("n", "m")  # de Bruijn 1 and 0 under two binders
    assert telescope(LIST)[0].sort and telescope(LAMBDA) == ()  # a λ is no ∀ binder
    lets = telescope('(:let x (:c Nat) (:lit 5) (:forall «a b» ((:c F) (:lit "x)")) 0 :si))')
    assert [(b.name, b.info) for b in lets] == [("x", "let"), ("a b", "strict_implicit")]
    assert parse_sexp(NAT_ADD)[0] == ":forall"
    with pytest.raises(ValueError):
        telescope("(:forall a (:c Nat)")


def test_simulator_sexp_has_exact_binders_and_well_formed_types():
    """The simulator cannot elaborate types: its s-expression has Lean's binder names and kinds exactly, and
    types built from the text's identifiers (well-formed, not Lean's)."""
    goal = parse_state("α : Type u_1\ninst✝¹ : Field α\ninst✝ : DecidableEq α\na b : α\nh : a < b\n"
                       "x : α := a\n⊢ a + b = b + a")[0]
    sexp = forall_sexp(binders_of(goal), goal.target)
    assert sexp.startswith("(:forall α (:sort (+ u_1 1)) (:forall inst ((:c Field) 0) (:forall inst ((:c DecidableEq) 1)")
    got = [(b.name, b.info) for b in telescope(sexp)]
    assert got == [("α", "implicit"), ("inst", "instance"), ("inst", "instance"), ("a", "default"),
                   ("b", "default"), ("h", "default"), ("x", "let")]


@pytest.fixture(scope="module")
def real(shared_traces_dir):
    return load_theorems(str(shared_traces_dir / "random"))


def _start(s: Simulator, name: str):
    """The walk's start against the simulator: copyFrom, Lean's binders (printExprAST), intro named as the
    trace names them; returns (plan, reply to the intro)."""
    sid = s.handle("goal.start", {"copyFrom": name})["stateId"]
    assert s.handle("options.set", {"printExprAST": True}) == {}
    printed = s.handle("goal.print", {"stateId": sid, "goals": True})
    assert s.handle("options.set", {"printExprAST": False}) == {}
    assert "sexp" not in s.handle("goal.print", {"stateId": sid, "goals": True})["goals"][0]["target"]
    plan = plan_intro(telescope(P.parse_goal_print(printed).target_sexps[0]), parse_state(s.theorems[name].states[0])[0])
    reply = P.parse_goal_tactic(s.handle("goal.tactic", {"stateId": sid, "tactic": plan.tactic}))
    assert reply.outcome is P.TacticOutcome.ADVANCED, (name, plan, reply)
    return sid, printed["goals"][0]["target"]["pp"], plan, reply


def _step0(s: Simulator, name: str, reply) -> P.GoalTacticReply:
    return P.parse_goal_tactic(s.handle("goal.tactic", {"stateId": reply.next_state_id,
                                                         "tactic": s.theorems[name].tactics[0]}))


def test_start_shape_unused_section_variables(real):
    """SPEC §1's example: `variable {ι : Sort u} {α : Type v} {β : Type w}`; the type abstracts six binders."""
    s = Simulator(real, SimConfig(namespace_references=False, gone_lemma_rate=0))
    _, root, plan, reply = _start(s, "Set.Ioc_disjoint_Ioc")
    assert root == "∀ {α : Type v} [inst : LinearOrder α] (a₁ a₂ b₁ b₂ : α), Disjoint (Ioc a₁ a₂) (Ioc b₁ b₂) ↔ min a₂ b₂ ≤ max a₁ b₁"
    assert plan.tactic == "intro α _ a₁ a₂ b₁ b₂" and [h.name for h in plan.dropped] == ["ι", "β"]
    assert reply.state_text == "α : Type v\ninst✝ : LinearOrder α\na₁ a₂ b₁ b₂ : α\n⊢ Disjoint (Ioc a₁ a₂) (Ioc b₁ b₂) ↔ min a₂ b₂ ≤ max a₁ b₁"
    assert state_quality(reply.goals, parse_state(real["Set.Ioc_disjoint_Ioc"].states[0]), plan.dropped) == "normalised"
    assert _step0(s, "Set.Ioc_disjoint_Ioc", reply).outcome is not P.TacticOutcome.LEAN_ERROR


def test_start_shape_instance_binders_pair_by_type(real):
    """Several `inst✝` of which some are dropped: the binders' types (head constant, mentioned binders) say
    which; the instances on dropped `M'`, `M₁` go, those on `M` stay."""
    s = Simulator(real, SimConfig(namespace_references=False, gone_lemma_rate=0))
    name = "LinearIndependent.fintype_card_le_finrank"
    _, _, plan, reply = _start(s, name)
    assert plan.tactic == "intro R M _ _ _ _ _ ι _ b h"
    assert {h.type for h in plan.dropped} == {"Type v", "Type v'", "Type w", "AddCommGroup M'", "AddCommGroup M₁",
                                              "Module R M'", "Module R M₁"}
    assert [h.name for h in reply.goals[0].hypotheses][2:7] == ["inst✝⁵", "inst✝⁴", "inst✝³", "inst✝²", "inst✝¹"]
    assert state_quality(reply.goals, parse_state(real[name].states[0]), plan.dropped) == "normalised"
    assert _step0(s, name, reply).outcome is P.TacticOutcome.COMPLETE


def test_start_shape_shadowed_variable(real):
    """`m n✝ n : ℕ`: the section's `n` is shadowed by the theorem's; the root has one `n` (the issue's
    `ℕ → ∀ (n n : ℕ)` came from building the root from every trace hypothesis)."""
    s = Simulator(real, SimConfig(namespace_references=False, gone_lemma_rate=0))
    _, root, plan, reply = _start(s, "Fin.find_eq_none_iff")
    assert root.startswith("ℕ → ∀ (n : ℕ) (p : Fin n → Prop) [inst : DecidablePred p], ")
    assert plan.tactic == "intro m n p _" and [h.name for h in plan.dropped] == ["n✝"]
    assert reply.state_text.startswith("m n : ℕ\np : Fin n → Prop\n")


def test_start_shape_let(real):
    """A let-bound first-state hypothesis is a `(:let …)` binder; `intro` names it and keeps its value."""
    s = Simulator(real, SimConfig(namespace_references=False, gone_lemma_rate=0))
    _, root, plan, reply = _start(s, "Polynomial.degree_monomial_le")
    assert "let this := Classical.decEq R;" in root
    assert plan.names[-2:] == ("this", "h") and {h.name for h in plan.dropped} == {"S", "a✝", "n✝"}
    assert "this : DecidableEq R := Classical.decEq R" in reply.state_text.split("\n")


def test_start_shape_case_tag(real):
    """A trace that begins inside a `case` block: Lean's introduced goal is untagged (normalised match), and
    the ground-truth tactic applies to it."""
    s = Simulator(real, SimConfig(namespace_references=False, gone_lemma_rate=0))
    name = "Matrix.SpecialLinearGroup.isCoprime_row"
    _, _, plan, reply = _start(s, name)
    first = parse_state(real[name].states[0])
    assert first[0].case == "refine_2" and reply.goals[0].case is None
    assert state_quality(reply.goals, first, plan.dropped) == "normalised"
    assert _step0(s, name, reply).outcome is P.TacticOutcome.ADVANCED


def test_printing_drift_known_differences():
    assert newer_printing("∑ x in s, f x = ∏ i in range n, g i") == "∑ x ∈ s, f x = ∏ i ∈ range n, g i"
    assert newer_printing("f (Nat.succ n) = Nat.succ (n + 1)") == "f (n + 1) = n + 1 + 1"
    assert newer_printing("2 * Nat.succ n ≤ succ (succ m) * k") == "2 * (n + 1) ≤ (m + 1 + 1) * k"
    assert newer_printing("Nat.succ_le_iff ∧ StrictMono Nat.succ") == "Nat.succ_le_iff ∧ StrictMono Nat.succ"
    # the walk's normal form also reads `n.succ` (generalised field notation: Pantograph v0.3.4
    # Test/Integration.lean L56 prints `Nat.add_one` as `∀ (n : Nat), n + 1 = n.succ`)
    a, b = parse_state("n : ℕ\n⊢ f n.succ = 0")[0], parse_state("n : ℕ\n⊢ f (Nat.succ n) = 0")[0]
    assert comparable(a) == comparable(b)


def test_newer_lean_prints_states_as_a_current_lean(real):
    """Every state of a theorem is rewritten once: dropped variables gone from each goal, `✝` renumbered,
    the newer printing; the ground truth still leads from state to state."""
    name = next(n for n, t in real.items() if re.search(r"∑ \S+ in ", t.states[0]) and dropped_variables(parse_state(t.states[0])[0]))
    thm, newer = real[name], newer_theorem(real[name])
    assert not re.search(r"∑ \S+ in ", " ".join(newer.states)) and re.search(r"∑ \S+ ∈ ", newer.states[0])
    s = Simulator(real, SimConfig(namespace_references=False, gone_lemma_rate=0))
    sid, _, plan, reply = _start(s, name)
    assert reply.state_text == newer.states[0] != thm.states[0]
    for k, tactic in enumerate(thm.tactics):
        reply = P.parse_goal_tactic(s.handle("goal.tactic", {"stateId": reply.next_state_id, "tactic": tactic}))
        assert reply.state_text == render_state(parse_state(newer.afters[k])), (name, k)
    assert reply.outcome is P.TacticOutcome.COMPLETE


def test_gone_lemmas_fail_as_lean_does_and_only_in_newer_mode(real):
    name = next(n for n, t in real.items() if t.references and t.references[0])
    s = Simulator(real, SimConfig(namespace_references=False, gone_lemma_rate=1.0))
    _, _, _, reply = _start(s, name)
    failed = _step0(s, name, reply)
    assert failed.outcome is P.TacticOutcome.LEAN_ERROR
    assert failed.messages[0].data == f"unknown identifier '{real[name].references[0][0][0]}'"
    same = Simulator(real, SimConfig(namespace_references=False, gone_lemma_rate=1.0, lean_version="same"))
    _, _, _, reply = _start(same, name)
    assert _step0(same, name, reply).outcome is not P.TacticOutcome.LEAN_ERROR


def test_same_mode_keeps_the_traces_own_lean(real):
    """`--lean-version same`: the root from every trace hypothesis (unused ones as arrows), the trace's text."""
    s = Simulator(real, SimConfig(lean_version="same"))
    sid = s.handle("goal.start", {"copyFrom": "Set.Ioc_disjoint_Ioc"})["stateId"]
    root = P.parse_goal_print(s.handle("goal.print", {"stateId": sid, "goals": True})).goals[0].target
    assert root.startswith("Sort u → ∀ {α : Type v}, Type w → ∀ [inst : LinearOrder α]")


def test_shared_sample_rates(real):
    """What docs/SIMULATOR.md reports (measured here): theorems whose first state has hypotheses the newer
    root lacks, and theorems whose states print differently in a current Lean."""
    tally: Counter = Counter()
    for thm in real.values():
        first = parse_state(thm.states[0])
        tally["theorems"] += 1
        dropped = dropped_variables(first[0]) if first else ()
        tally["with_dropped_variables"] += bool(dropped)
        tally["dropped_variables"] += len(dropped)
        text = " ".join(thm.states + thm.afters)
        tally["big_operator_in"] += bool(re.search(r"[∑∏] \S+ in ", text))
        tally["nat_succ"] += bool(re.search(r"(?<![\w.])(?:Nat\.)?succ\s+[\w(]", text))
        tally["scoped_notation"] += any(x in text for x in ("𝓝 ", "ℝ≥0"))
        tally["prints_differently"] += newer_theorem(thm).states != tuple(render_state(parse_state(x)) for x in thm.states)
    assert tally["theorems"] == 1855
    assert tally["with_dropped_variables"] == 1262 and tally["dropped_variables"] == 5001, tally
    assert (tally["big_operator_in"], tally["nat_succ"], tally["scoped_notation"]) == (60, 72, 103), tally
    assert tally["prints_differently"] == 1322, tally  # 71 %: dropped variables or a printer difference


def test_simulator_accepts_levels_with_expr_as_pantograph_does(real):
    """`levels` is an optional array of universe names (Protocol.lean v0.3.4 GoalStart `levels?`)."""
    s = Simulator(real, SimConfig())
    assert "stateId" in s.handle("goal.start", {"expr": "∀ {α : Sort u}, α → α", "levels": ["u"]})
    assert s.handle("goal.start", {"expr": "True", "levels": "u"})["error"] == "command"
