"""The simulator's rules and state machine (in-process), and its command line (subprocess)."""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter

import pytest

from workbench.lean import protocol as P
from workbench.lean.simrules import (
    LatencyModel,
    Outcome,
    OutcomeRates,
    classify,
    digest,
    first_identifier,
    is_sorry,
    parse_problem,
    split_open_prefix,
    unit,
)
from workbench.lean.simulator import SimConfig, Simulator, load_theorems, simulator_version
from workbench.lean.binders import intro_tactic
from workbench.states import canonical_state, parse_state, render_state


@pytest.fixture(scope="module")
def theorems(sample_traces_path):
    return load_theorems(str(sample_traces_path))


def sim(theorems, **kw) -> Simulator:
    return Simulator(theorems, SimConfig(**kw))


def tactic(s: Simulator, state_id: int, text: str, goal_id: int | None = None) -> P.GoalTacticReply:
    payload = {"stateId": state_id, "tactic": text}
    if goal_id is not None:
        payload["goalId"] = goal_id
    return P.parse_goal_tactic(P.decode_reply(json.dumps(s.handle("goal.tactic", payload)), command="goal.tactic"))


def start(s: Simulator, name: str) -> tuple[int, str]:
    """copyFrom: the constant's ∀-root."""
    sid = P.parse_goal_start(s.handle("goal.start", {"copyFrom": name})).state_id
    printed = P.parse_goal_print(s.handle("goal.print", {"stateId": sid, "goals": True}))
    return sid, render_state(printed.goals)


def start_at_trace(s: Simulator, thm) -> tuple[int, str]:
    """copyFrom, then the walk's `intro` of the trace's first-state hypotheses."""
    sid, text = start(s, thm.name)
    goals = parse_state(thm.states[0])
    intro = intro_tactic(goals[0]) if goals else None
    if intro is None:
        return sid, text
    r = tactic(s, sid, intro)
    assert r.outcome is P.TacticOutcome.ADVANCED, (thm.name, intro, r)
    return r.next_state_id, r.state_text


def test_latency_model_hits_the_spec_quantiles():
    m = LatencyModel()
    assert m.seconds(0.5) == pytest.approx(0.022)
    assert m.seconds(0.95) == pytest.approx(0.300)
    assert m.seconds(0.99) == pytest.approx(2.0)
    assert LatencyModel(scale=0.0).seconds(0.99) == 0.0
    assert LatencyModel(scale=0.5).seconds(0.5) == pytest.approx(0.011)
    assert LatencyModel.parse("0.5:0.01,0.9:0.1")[1] == (0.5, 0.01)


def test_outcome_rates_from_hashes():
    counts = Counter(classify(unit(digest(0, "state", f"tac{i}"), 0), OutcomeRates()) for i in range(20_000))
    assert counts[Outcome.ERROR] / 20_000 == pytest.approx(0.70, abs=0.015)
    assert counts[Outcome.DIVERGENT] / 20_000 == pytest.approx(0.27, abs=0.015)
    assert counts[Outcome.COMPLETE] / 20_000 == pytest.approx(0.03, abs=0.006)


def test_small_rules():
    assert split_open_prefix("open Nat Nat.Prime in\n  simp\n  ring") == (("Nat", "Nat.Prime"), "simp ring")
    assert split_open_prefix("simp  [foo]") == ((), "simp [foo]")
    assert is_sorry("exact sorry") and is_sorry("admit") and not is_sorry("exact sorry_lemma")
    # Pantograph's hasSorry is `parentExpr.hasSorry` (Repl.lean, goal.tactic): the axiom by name counts too.
    assert is_sorry("exact sorryAx _ false") and is_sorry("exact Lean.sorryAx _ true") and not is_sorry("exact sorryAx_x")
    assert parse_problem("exact (foo") and parse_problem("exact ⟨a, b⟩") is None
    assert first_identifier("exact succ_le_of_lt h") == "succ_le_of_lt"


def test_ground_truth_walk_reaches_the_traced_states(theorems):
    # The traces' own Lean: the states are the trace's text (newer Lean: tests/lean/test_simversion.py).
    s = sim(theorems, namespace_references=False, lean_version="same")  # namespaces: test_simnamespace.py
    for thm in theorems.values():
        sid, text = start_at_trace(s, thm)
        assert text == canonical_state(thm.states[0])
        for depth, tac in enumerate(thm.tactics):
            r = tactic(s, sid, tac)
            assert r.state_text == canonical_state(thm.states[depth + 1]), (thm.name, depth)
            sid = r.next_state_id
        assert r.outcome is P.TacticOutcome.COMPLETE


def test_whitespace_insensitive_and_deterministic(theorems):
    s1, s2 = sim(theorems, seed=3), sim(theorems, seed=3)
    name = "Nat.Prime.two_le_foo"
    a, _ = start(s1, name)
    b, _ = start(s2, name)
    assert tactic(s1, a, "by_contra   h").outcome is P.TacticOutcome.ADVANCED
    outcomes1 = [tactic(s1, a, f"simp [lemma_{i}]") for i in range(40)]
    outcomes2 = [tactic(s2, b, f"simp [lemma_{i}]") for i in range(40)]
    assert [(r.outcome, r.state_text, r.messages) for r in outcomes1] == [
        (r.outcome, r.state_text, r.messages) for r in outcomes2
    ]
    kinds = {r.outcome for r in outcomes1}
    assert P.TacticOutcome.LEAN_ERROR in kinds and P.TacticOutcome.ADVANCED in kinds
    errors = [r for r in outcomes1 if r.outcome is P.TacticOutcome.LEAN_ERROR]
    assert all(r.messages and r.messages[0].data for r in errors)


def test_sorry_parse_error_and_errors(theorems):
    s = sim(theorems)
    sid, _ = start(s, "Nat.exists_gt_foo")
    r = tactic(s, sid, "sorry")
    assert r.outcome is P.TacticOutcome.REJECTED and r.has_sorry and r.goals == ()
    r = tactic(s, sid, "exact sorryAx _ false")  # the audit's positive: Lean flags it like `sorry`
    assert r.outcome is P.TacticOutcome.REJECTED and r.has_sorry
    assert tactic(s, sid, "exact (foo").outcome is P.TacticOutcome.PARSE_ERROR
    bad_state = s.handle("goal.tactic", {"stateId": 99, "tactic": "simp"})
    assert bad_state == {"error": "index", "desc": "Invalid state index 99"}
    assert s.handle("goal.tactic", {"stateId": sid, "goalId": 5, "tactic": "simp"})["error"] == "index"
    assert s.handle("goal.start", {"copyFrom": "No.such"})["error"] == "index"
    assert s.handle("goal.start", {})["error"] == "arguments"
    assert s.handle("goal.nope", {})["error"] == "command"


def test_namespace_mismatch_needs_open(theorems):
    s = sim(theorems, namespace_mismatch_rate=1.0)
    sid, _ = start_at_trace(s, theorems["Nat.succ_le_of_lt_foo"])
    r = tactic(s, sid, "exact succ_le_of_lt h")
    assert r.outcome is P.TacticOutcome.LEAN_ERROR
    assert r.messages[0].data == "unknown identifier 'succ_le_of_lt'"
    assert tactic(s, sid, "open Nat in exact succ_le_of_lt h").outcome is P.TacticOutcome.COMPLETE
    # A theorem without a namespace cannot be mismatched.
    sid, _ = start_at_trace(s, theorems["and_swap_foo"])
    assert tactic(s, sid, "intro h").outcome is P.TacticOutcome.ADVANCED


def test_expr_start_delete_reset_stat(theorems):
    s = sim(theorems)
    sid = s.handle("goal.start", {"expr": "∀ (n : Nat), n = n"})["stateId"]
    printed = P.parse_goal_print(s.handle("goal.print", {"stateId": sid, "goals": True}))
    assert render_state(printed.goals) == "⊢ ∀ (n : Nat), n = n"
    assert s.handle("goal.print", {"stateId": sid})["goals"] == []  # without "goals": true
    assert tactic(s, sid, "sorry").next_state_id is not None
    assert s.handle("stat", {}) == {"nGoals": 2}
    assert s.handle("goal.delete", {"stateIds": [sid]}) == {}
    assert s.handle("stat", {}) == {"nGoals": 1}
    assert s.handle("reset", {}) == {"nGoals": 1}
    assert s.handle("stat", {}) == {"nGoals": 0}


def test_pantograph_timeout_option_interrupts(theorems):
    s = sim(theorems, latency=LatencyModel())  # in-process: the delay is reported, not slept
    sid, _ = start(s, "Nat.exists_gt_foo")
    assert s.handle("options.set", {"timeout": 1}) == {}
    # Some tactic among these is slower than 1 ms under the default latency model.
    replies = [s.handle("goal.tactic", {"stateId": sid, "tactic": f"omega_{i}"}) for i in range(30)]
    assert {"error": "internal", "desc": "interrupt"} in replies


def run_cli(*args: str, stdin: str = "") -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "workbench.lean.simulator", *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_cli_version_is_not_pantograph(sample_traces_path):
    out = run_cli("--traces", str(sample_traces_path), "--version")
    assert out.returncode == 0 and out.stdout.strip() == simulator_version("newer")
    assert "simulat" in out.stdout and "not Lean" in out.stdout and "newer Lean than its traces" in out.stdout
    same = run_cli("--traces", str(sample_traces_path), "--lean-version", "same", "--version")
    assert same.stdout.strip() == simulator_version("same") != out.stdout.strip()


def test_cli_speaks_the_protocol(sample_traces_path):
    lines = [
        '{"cmd": "goal.start", "payload": {"copyFrom": "Int.emod_two_eq_foo"}}',
        'goal.tactic {"stateId": 0, "tactic": "intro n"}',  # Pantograph's line mode
        'goal.tactic {"stateId": 1, "tactic": "omega"}',
        "not json {",
        '{"cmd": "stat", "payload": {}}',
        "",  # an empty line ends the REPL
        '{"cmd": "stat", "payload": {}}',
    ]
    out = run_cli("--traces", str(sample_traces_path), "--latency-scale", "0", "Init", "--pp.all=false",
                  stdin="\n".join(lines) + "\n")
    assert out.returncode == 0, out.stderr
    replies = out.stdout.splitlines()
    assert replies[0] == "ready."
    assert json.loads(replies[1]) == {"stateId": 0, "root": "_uniq.1"}
    assert json.loads(replies[2])["goals"][0]["vars"][0]["userName"] == "n"
    assert json.loads(replies[3])["goals"] == []
    assert json.loads(replies[4])["error"] == "command"
    assert json.loads(replies[5]) == {"nGoals": 3}
    assert len(replies) == 6  # nothing after the empty line


def test_cli_start_failure(sample_traces_path):
    out = run_cli("--traces", str(sample_traces_path), "--fail-start", "json", "Mathlib")
    assert out.returncode == 1 and json.loads(out.stdout)["error"] == "io" and "Mathlib" in out.stderr


def _is_chain(thm) -> bool:
    afters = thm.afters
    return all(canonical_state(afters[k]) == canonical_state(thm.states[k + 1]) for k in range(len(thm.tactics) - 1))


def test_real_chain_traces_round_trip_through_goal_json(shared_traces_dir):
    """Every ground-truth state of the real sample's chain traces (each state_after is the next
    state_before), sent as Pantograph Goal JSON, reads back as the trace's canonical text (the traces'
    own Lean; a newer one prints them otherwise: test_simversion.py)."""
    checked = 0
    for split in ("val", "test"):
        theorems = load_theorems(str(shared_traces_dir / "random" / f"{split}.json"))
        s = sim(theorems, namespace_references=False, lean_version="same")
        for thm in theorems.values():
            sid, text = start_at_trace(s, thm)
            if text != canonical_state(thm.states[0]):
                # The few traces that begin inside a `case` block: Lean's introduced goal has no tag.
                assert parse_state(thm.states[0])[0].case, thm.name
                continue
            if not _is_chain(thm):
                continue
            checked += 1
            for depth, tac in enumerate(thm.tactics):
                r = tactic(s, sid, tac)
                assert r.state_text == canonical_state(thm.afters[depth]), (thm.name, depth)
                sid = r.next_state_id
            s.handle("reset", {})
    assert checked > 1000


def test_goal_lists_are_kept_as_lean_keeps_them(shared_traces_dir):
    """A focus trace (`constructor` then `·` blocks): the tactic acts on the main goal or the goalId one,
    its traced successors replace that goal, the other goals stay after them in order (Pantograph's
    automatic mode, Repl.lean @0528a15 goal_tactic: resume (nextGoalState.goals ++ goalState.goals))."""
    from workbench.trace_breaks import classify_breaks
    from workbench.traces import load_traces

    traces = load_traces(shared_traces_dir / "random" / "val.json", skip_bad=True).theorems
    theorems = load_theorems(str(shared_traces_dir / "random" / "val.json"))
    # goal structure only, on the trace's own text; namespaces: test_simnamespace.py
    s = sim(theorems, namespace_references=False, lean_version="same")
    for t in traces:
        kinds = [b.kind for b in classify_breaks(t)]
        if kinds[:1] != ["focus"] or len(parse_state(t.steps[kinds and classify_breaks(t)[0].index].state_after)) < 2:
            continue
        thm = theorems[t.full_name]
        k = classify_breaks(t)[0].index  # step k leaves several goals; step k + 1 shows only one of them
        sid, _ = start_at_trace(s, thm)
        for depth in range(k + 1):
            r = tactic(s, sid, thm.tactics[depth])
            sid = r.next_state_id
        full = parse_state(r.state_text)
        assert len(full) >= 2 and r.state_text == canonical_state(thm.afters[k])
        second = render_state(full[1:2])
        # Acting on goal 1 (goalId) leaves goal 0 first, then what replaced goal 1, then the rest.
        idx = next((j for j in range(k + 1, len(thm.tactics))
                    if render_state(parse_state(thm.states[j])[:1]) == second), None)
        if idx is None:
            continue
        r2 = tactic(s, sid, thm.tactics[idx], goal_id=1)
        after = parse_state(r2.state_text)
        assert render_state(after[:1]) == render_state(full[:1]), t.full_name
        assert render_state(after[-(len(full) - 2) or len(after):]) == render_state(full[2:]) or len(full) == 2
        return
    pytest.fail("no focus trace with a second goal found in the sample")
