"""The simulator's namespace failures follow LeanDojo's annotated references (issue 12, item 4).

Modelled on Pantograph's own context: Pantograph/Library.lean, ``createCoreContext`` (lenianiva/Pantograph
at 013cb8bb) runs every command with ``currNamespace := Aniva`` and ``openDecls := []`` ("No 'open'
directives needed"), so none of the source file's ``namespace`` / ``open`` is in effect; in Lean 4 a short
name then resolves only when its namespace is opened (``open A.B in tac``).
"""

from __future__ import annotations

import pytest

from workbench.lean import protocol as P
from workbench.lean.binders import intro_tactic
from workbench.lean.simnamespace import unresolved_short_name
from workbench.lean.simulator import SimConfig, Simulator, load_theorems
from workbench.namespaces import is_notation_or_instance, namespaced_references, open_prefixes, wrap_open
from workbench.states import parse_state
from workbench.traces import _references


@pytest.fixture(scope="module")
def theorems(sample_traces_path):
    return load_theorems(str(sample_traces_path))


def test_unresolved_short_name_needs_exactly_its_namespace_open():
    refs = [("succ_le_of_lt", "Nat.succ_le_of_lt")]
    assert unresolved_short_name("Nat.foo", refs, ()) == "succ_le_of_lt"
    assert unresolved_short_name("Nat.foo", refs, ("Nat",)) is None
    assert unresolved_short_name("Nat.foo", [("Nat.le_refl", "Nat.le_refl")], ()) is None  # written in full
    assert unresolved_short_name("Finset.foo", [("le_succ", "Nat.le_succ")], ("Finset",)) == "le_succ"  # file-level open
    partly = [("Prime.two_le", "Nat.Prime.two_le")]
    assert unresolved_short_name("x", partly, ("Nat.Prime",)) == "Prime.two_le"
    assert unresolved_short_name("x", partly, ("Nat",)) is None


def test_notation_instances_private_and_field_notation_are_not_namespace_lookups():
    assert is_notation_or_instance("LE.le.trans") and is_notation_or_instance("LT.lt.le")
    assert is_notation_or_instance("_private.Mathlib.Foo.0.Nat.bar") and is_notation_or_instance("Nat.instAddNat")
    assert not is_notation_or_instance("Set.mem_singleton_iff") and not is_notation_or_instance("Eq.symm")
    # LeanDojo annotates `(foo).<a>symm</a>`: field notation, dropped when the traces are read
    refs = _references(["exact (<a>if_pos</a> <a>rfl</a>).<a>symm</a>",
                        [{"full_name": "if_pos"}, {"full_name": "rfl"}, {"full_name": "Eq.symm"}]])
    assert refs == (("if_pos", "if_pos"), ("rfl", "rfl"))


def test_simulator_fails_the_annotated_short_name_and_the_open_retry_fixes_own_namespaces(theorems):
    s = Simulator(theorems, SimConfig(lean_version="same"))  # the namespace rule alone (no gone lemmas)
    failing, fixed, still = [], [], []
    for thm in theorems.values():
        for depth, tactic in enumerate(thm.tactics):
            short = unresolved_short_name(thm.name, thm.references[depth], ())
            if short is None:
                continue
            sid = s.handle("goal.start", {"copyFrom": thm.name})["stateId"]
            first = parse_state(thm.states[0])
            intro = intro_tactic(first[0]) if first else None
            if intro is not None:  # the walk's setup: the trace's first-state binders into the context
                sid = s.handle("goal.tactic", {"stateId": sid, "tactic": intro})["nextStateId"]
            for d in range(depth):  # walk the ground truth up to this step, every namespace it needs opened
                opens = sorted(set(open_prefixes(thm.name)) | {r.namespace for r in namespaced_references(thm.name, thm.references[d])})
                sid = s.handle("goal.tactic", {"stateId": sid, "tactic": wrap_open(thm.tactics[d], opens)})["nextStateId"]
            reply = P.parse_goal_tactic(s.handle("goal.tactic", {"stateId": sid, "tactic": tactic}))
            assert reply.outcome is P.TacticOutcome.LEAN_ERROR
            assert reply.messages[0].data == f"unknown identifier '{short}'"
            failing.append((thm.name, short))
            retry = P.parse_goal_tactic(
                s.handle("goal.tactic", {"stateId": sid, "tactic": wrap_open(tactic, open_prefixes(thm.name))}))
            (fixed if retry.outcome is not P.TacticOutcome.LEAN_ERROR else still).append((thm.name, short))
    assert ("Nat.succ_le_of_lt_foo", "succ_le_of_lt") in fixed
    assert still == [("Finset.card_insert_le_foo", "le_succ")]  # `open Nat` at file level: the retry cannot help
    assert not any(short in ("one_lt", "mul_right", "mpr") for _, short in failing)  # field notation never fails
    assert len(fixed) >= 10


def test_theorems_without_annotations_never_fail_by_default(theorems):
    s = Simulator(theorems, SimConfig())
    sid = s.handle("goal.start", {"copyFrom": "and_swap_foo"})["stateId"]
    assert "nextStateId" in s.handle("goal.tactic", {"stateId": sid, "tactic": "intro h"})


def test_error_messages_name_the_wrapped_tactic_never_the_open_prefix():
    from workbench.lean.simrules import digest, error_text

    for i in range(60):
        text = error_text("open Nat Nat.Prime in constructor", (), digest(i, "t"))
        assert "'Nat'" not in text and "'open'" not in text and "unknown identifier" not in text, text
