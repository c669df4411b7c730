"""Every labelling rule on scripted Lean outcomes (no Lean, no policy server)."""

from __future__ import annotations

import asyncio

import pytest

from workbench.lean.protocol import LimitKind
from workbench.mining.labels import GroundTruthPath, Outcome, lean_error_kind, same_tactic
from workbench.mining.records import EndReason
from workbench.mining.walk import Status, WalkParams, walk_theorem
from workbench.states import canonical_state

from .fakes import FakePolicy, FakePool, FakeSession, cand, theorem

S0 = "a b : ℕ\n⊢ a + b = b + a"
S1 = "a b : ℕ\n⊢ b + a = b + a"
S2 = "a b : ℕ\n⊢ True"
OFF = "a b : ℕ\n⊢ False"
OFF2 = "a b : ℕ\nh : a = b\n⊢ False"
TACTICS = ["rw [Nat.add_comm]", "exact_mod_cast rfl_helper", "trivial"]


def gt_script(name_prefix: str = "") -> dict:
    return {
        (S0, TACTICS[0]): ("advance", S1),
        (S1, TACTICS[1]): ("advance", S2),
        (S2, TACTICS[2]): ("complete",),
    }


def run(thm, script, policy, params=WalkParams(), **kw):
    session = FakeSession(thm.full_name, thm.steps[0].state_before, script, **kw)
    result = asyncio.run(walk_theorem(thm, FakePool({thm.full_name: session}), policy, params, simulated=False))
    return result, session


def by_tactic(result):
    return {r.tactic_applied: r for r in result.records}


def check_tree(records):
    ids = [r.state_id for r in records]
    assert len(ids) == len(set(ids)), "state ids unique within the theorem"
    by_id = {r.state_id: r for r in records}
    roots = [r for r in records if r.parent_state_id is None]
    assert len(roots) == 1 and roots[0].depth_from_root == 0
    for r in records:
        if r.parent_state_id is not None:
            assert by_id[r.parent_state_id].depth_from_root + 1 == r.depth_from_root
        if r.label == "negative":
            assert r.remaining_depth == -1
        if r.is_proof_complete:
            assert r.remaining_depth == 0 and r.state_pp == "no goals"


THM = theorem("bar", [S0, S1, S2], TACTICS)


def test_ground_truth_nodes_are_positive_with_steps_left_to_qed():
    result, _ = run(THM, gt_script(), FakePolicy({}))
    assert result.status == Status.COMPLETED and result.reason == "qed"
    gt = [r for r in result.records if r.record_kind == "ground_truth"]
    assert [r.remaining_depth for r in gt] == [3, 2, 1, 0]
    assert [r.depth_from_root for r in gt] == [0, 1, 2, 3]
    assert [r.tactic_applied for r in gt] == ["", *TACTICS]
    assert gt[0].state_pp == canonical_state(S0) and gt[-1].is_proof_complete
    assert all(r.label == "positive" for r in gt)
    check_tree(result.records)


def test_alternative_proof_is_a_positive_terminal():
    script = {**gt_script(), (S0, "omega"): ("complete",)}
    result, _ = run(THM, script, FakePolicy({canonical_state(S0): [cand("omega")]}))
    r = by_tactic(result)["omega"]
    assert (r.label, r.record_kind, r.remaining_depth, r.is_proof_complete) == ("positive", "alternative_proof", 0, True)
    assert r.parent_state_id == 0 and r.depth_from_root == 1 and r.state_pp == "no goals"
    assert r.llm_log_prob == -1.0
    check_tree(result.records)


def test_reaching_the_next_or_a_later_ground_truth_state_is_positive():
    script = {**gt_script(), (S0, "simp only [Nat.add_comm]"): ("advance", S1), (S0, "norm_num"): ("advance", S2),
              (S1, "skip"): ("advance", S1)}
    policy = FakePolicy({canonical_state(S0): [cand("simp only [Nat.add_comm]"), cand("norm_num")],
                         canonical_state(S1): [cand("skip")]})
    result, _ = run(THM, script, policy)
    r = by_tactic(result)
    assert (r["simp only [Nat.add_comm]"].label, r["simp only [Nat.add_comm]"].record_kind) == ("positive", "same_state")
    assert r["simp only [Nat.add_comm]"].remaining_depth == 2
    assert r["norm_num"].remaining_depth == 1
    # a no-op leaves a provable state: positive with the current state's remaining depth, never a negative
    assert (r["skip"].label, r["skip"].remaining_depth) == ("positive", 2)
    # `norm_num` reached S2 before the walk did: judged divergent then, relabelled once Lean reached S2 (only
    # Lean's renderings of reached states are compared, never the trace's text).
    assert r["norm_num"].record_kind == "same_state" and r["norm_num"].label == "positive"
    assert result.counts.outcomes[Outcome.SAME_STATE] == 2 and result.counts.late_same_state == 1
    check_tree(result.records)


def test_other_states_are_divergent_negatives():
    script = {**gt_script(), (S0, "exfalso"): ("advance", OFF)}
    result, _ = run(THM, script, FakePolicy({canonical_state(S0): [cand("exfalso", score=-2.5)]}))
    r = by_tactic(result)["exfalso"]
    assert (r.label, r.record_kind, r.remaining_depth) == ("negative", "divergent", -1)
    assert r.state_pp == canonical_state(OFF) and r.parent_state_id == 0 and r.llm_log_prob == -2.5
    # siblings: the divergent node and the ground-truth child share the root as parent
    siblings = [x for x in result.records if x.parent_state_id == 0]
    assert {x.record_kind for x in siblings} == {"ground_truth", "divergent"}


def test_chain_that_completes_relabels_divergent_and_chain_nodes_positive():
    script = {**gt_script(), (S0, "exfalso"): ("advance", OFF), (OFF, "intro h"): ("advance", OFF2),
              (OFF2, "simp_all"): ("complete",)}
    result, _ = run(THM, script, FakePolicy({canonical_state(S0): [cand("exfalso", "intro h", "simp_all")]}))
    r = by_tactic(result)
    assert (r["exfalso"].label, r["exfalso"].remaining_depth, r["exfalso"].record_kind) == ("positive", 2, "divergent")
    assert (r["intro h"].label, r["intro h"].remaining_depth, r["intro h"].record_kind) == ("positive", 1, "chain")
    assert (r["simp_all"].label, r["simp_all"].remaining_depth, r["simp_all"].is_proof_complete) == ("positive", 0, True)
    assert r["intro h"].parent_state_id == r["exfalso"].state_id
    assert r["simp_all"].depth_from_root == 3
    assert result.counts.chain_rescued == 1
    check_tree(result.records)


def test_chain_that_reaches_a_ground_truth_state_is_rescued_with_that_depth():
    script = {**gt_script(), (S0, "exfalso"): ("advance", OFF), (OFF, "back"): ("advance", S2)}
    result, _ = run(THM, script, FakePolicy({canonical_state(S0): [cand("exfalso", "back")]}))
    r = by_tactic(result)
    assert (r["back"].label, r["back"].remaining_depth) == ("positive", 1)
    assert (r["exfalso"].label, r["exfalso"].remaining_depth) == ("positive", 2)


def test_chain_that_fails_keeps_negatives():
    script = {**gt_script(), (S0, "exfalso"): ("advance", OFF), (OFF, "intro h"): ("advance", OFF2),
              (OFF2, "linarith"): ("error", "linarith failed")}
    result, _ = run(THM, script, FakePolicy({canonical_state(S0): [cand("exfalso", "intro h", "linarith")]}))
    r = by_tactic(result)
    assert r["exfalso"].label == "negative" and r["intro h"].label == "negative"
    assert "linarith" not in r
    assert result.counts.chain_failed == 1
    assert sum(1 for x in result.records if x.label == "negative") == 2


def test_lean_errors_parse_errors_and_sorry_make_no_node_but_are_counted_and_logged():
    script = {**gt_script(), (S0, "bad"): ("error", "unknown identifier 'bad'"), (S0, "(("): ("parse", "unexpected end"),
              (S0, "exact foo"): ("sorry",)}
    policy = FakePolicy({canonical_state(S0): [cand("bad"), cand("(("), cand("exact foo")]})
    result, _ = run(THM, script, policy)
    assert {r.tactic_applied for r in result.records} == {"", *TACTICS}
    c = result.counts
    assert (c.outcomes[Outcome.LEAN_ERROR], c.outcomes[Outcome.PARSE_ERROR], c.outcomes[Outcome.REJECTED]) == (1, 1, 1)
    logged = {a.tactic: a for a in result.attempts if a.role == "candidate"}
    assert logged["bad"].error_kind == "unknown_identifier" and "unknown identifier" in logged["bad"].messages
    assert logged["exact foo"].outcome == "rejected" and "hasSorry" in logged["exact foo"].messages


def test_candidate_equal_to_ground_truth_after_whitespace_normalisation_is_skipped():
    policy = FakePolicy({canonical_state(S0): [cand("rw  [Nat.add_comm] "), cand("rw [Nat.add_comm]\n")]})
    result, session = run(THM, gt_script(), policy)
    assert result.counts.outcomes[Outcome.SKIPPED_GROUND_TRUTH] == 2
    assert session.calls.count((canonical_state(S0), TACTICS[0])) == 1  # only the ground-truth advance
    assert same_tactic("rw  [a]\n", "rw [a]") and not same_tactic("rw [a]", "rw [b]")


def test_duplicate_candidates_are_tried_once():
    script = {**gt_script(), (S0, "exfalso"): ("advance", OFF)}
    result, session = run(THM, script, FakePolicy({canonical_state(S0): [cand("exfalso"), cand("exfalso ")]}))
    assert result.counts.outcomes[Outcome.DUPLICATE] == 1
    assert sum(1 for r in result.records if r.tactic_applied == "exfalso") == 1


NS = theorem("Foo.Bar.baz", [S0, S1, S2], TACTICS)


def test_ground_truth_lean_failure_is_retried_inside_open_prefixes():
    wrapped = "open Foo Foo.Bar in " + TACTICS[0]
    script = {**gt_script(), (S0, TACTICS[0]): ("error", "unknown identifier 'Nat.add_comm'"), (S0, wrapped): ("advance", S1)}
    result, _ = run(NS, script, FakePolicy({}))
    assert result.status == Status.COMPLETED and result.reason == "qed"
    gt1 = next(r for r in result.records if r.tactic_applied == TACTICS[0])
    assert gt1.open_prefix == "Foo Foo.Bar" and gt1.label == "positive" and gt1.remaining_depth == 2
    c = result.counts
    assert (c.gt_failed_plain, c.gt_step0_failed_plain, c.gt_rescued_by_open, c.gt_failed) == (1, 1, 1, 0)
    roles = [(a.role, a.outcome) for a in result.attempts if a.step == 0]
    assert roles == [("intro", "intro"), ("ground_truth", "ground_truth_failed"), ("ground_truth_open", "ground_truth")]
    assert result.step0 == "namespace"
    assert result.start == {"intro": "intro a b", "problem": None, "binders": "lean", "dropped": [], "unnamed": 0,
                            "left_in_target": 0, "quality": "exact"}


def test_ground_truth_failure_stops_the_walk_and_keeps_what_was_recorded():
    wrapped_off = "open Foo Foo.Bar in exfalso"
    script = {**gt_script(), (S1, TACTICS[1]): ("error", "type mismatch"), (S0, wrapped_off): ("advance", OFF)}
    result, _ = run(NS, script, FakePolicy({canonical_state(S0): [cand("exfalso")]}))
    assert result.status == Status.SKIPPED and result.reason == "gt_failed"
    assert "step 1" in result.message and "type mismatch" in result.message
    kinds = sorted(r.record_kind for r in result.records)
    assert kinds == ["divergent", "ground_truth", "ground_truth"]
    neg = next(r for r in result.records if r.record_kind == "divergent")
    assert neg.open_prefix == "Foo Foo.Bar" and neg.tactic_applied == "exfalso"  # recorded unwrapped
    assert result.counts.gt_failed == 1 and result.counts.gt_step0_failed == 0


def test_walk_stops_early_at_target_negatives():
    offs = [f"a b : ℕ\n⊢ False ∨ {i} = {i}" for i in range(5)]
    script = {**gt_script(), **{(S0, f"t{i}"): ("advance", offs[i]) for i in range(5)}}
    policy = FakePolicy({canonical_state(S0): [cand(f"t{i}") for i in range(5)]})
    result, session = run(THM, script, policy, WalkParams(target_negatives=3))
    assert result.reason == "target_negatives" and result.status == Status.COMPLETED
    assert sum(1 for r in result.records if r.label == "negative") == 3
    assert not any(t == "t3" for _, t in session.calls)


def test_infrastructure_errors_retry_or_skip_the_candidate_without_losing_records():
    script = {**gt_script(),
              (S0, TACTICS[0]): [("died",), ("advance", S1)],          # ground truth: crash, then fine
              (S0, "exfalso"): [("died",), ("advance", OFF)],          # candidate: crash, retried
              (S0, "loop"): ("timeout",),                              # hang: skipped, not retried
              (S0, "slow"): ("interrupt",),                            # Pantograph's own timeout
              (S0, "cursed"): ("died",)}                               # dies every time: skipped
    policy = FakePolicy({canonical_state(S0): [cand("exfalso"), cand("loop"), cand("slow"), cand("cursed")]})
    result, session = run(THM, script, policy)
    assert result.reason == "qed"
    assert by_tactic(result)["exfalso"].label == "negative"
    c = result.counts
    assert (c.outcomes[Outcome.TIMEOUT], c.outcomes[Outcome.INFRA_ERROR]) == (2, 1)
    assert session.calls.count((canonical_state(S0), "loop")) == 1
    assert session.calls.count((canonical_state(S0), "cursed")) == 2


def test_generation_failure_is_retried_then_the_theorem_is_left_unfinished():
    """Issue 20 item 1: a step whose generation failed every retry is not a step with zero candidates."""
    script = {**gt_script(), (S0, "exfalso"): ("advance", OFF)}
    result, _ = run(THM, script, FakePolicy({canonical_state(S0): [cand("exfalso")]}, fail_times=1))
    assert result.counts.policy_errors == 1 and "exfalso" in by_tactic(result)
    result, _ = run(THM, script, FakePolicy({canonical_state(S0): [cand("exfalso")]}, fail_times=2))
    assert result.reason == EndReason.GENERATION_FAILED and result.status == Status.UNFINISHED
    assert result.counts.steps_without_candidates == 0  # never sealed as a finished step without candidates


class BlockingPolicy(FakePolicy):
    """Hangs forever at one state (to trigger the per-theorem timeout)."""

    def __init__(self, by_state, block_at: str) -> None:
        super().__init__(by_state)
        self.block_at = block_at

    async def candidates(self, state_pp, n, *, theorem):
        if state_pp == self.block_at:
            await asyncio.Event().wait()
        return await super().candidates(state_pp, n, theorem=theorem)


def test_theorem_timeout_keeps_what_was_produced():
    script = {**gt_script(), (S0, "exfalso"): ("advance", OFF)}
    policy = BlockingPolicy({canonical_state(S0): [cand("exfalso")]}, block_at=canonical_state(S1))
    result, _ = run(THM, script, policy, WalkParams(theorem_timeout_s=0.2))
    assert result.status == Status.TIMED_OUT and result.reason == "theorem_timeout"
    assert {r.tactic_applied for r in result.records} >= {"", "exfalso", TACTICS[0]}
    check_tree(result.records)


def test_start_failure_is_a_skip_with_leans_message():
    from workbench.lean.errors import LeanProtocolError

    result, _ = run(THM, gt_script(), FakePolicy({}), start_error=LeanProtocolError("index", "Symbol not found: bar"))
    assert (result.status, result.reason) == (Status.SKIPPED, "start_failed")
    assert "Symbol not found" in result.message and result.records == []


def test_ground_truth_path_matching_uses_leans_text_only():
    """The traces come from an older Lean: a state matches a ground-truth state only as Lean printed it."""
    gt = GroundTruthPath.from_states([S0, S1, S2])
    assert gt.match(canonical_state(S1)) is None and gt.remaining(1) == 2  # the trace's text: never
    gt.reached(1, canonical_state(S1))
    gt.reached(2, "a b : ℕ\n⊢ True ∧ True")
    assert gt.match(canonical_state(S1)) == 1 and gt.match("a b : ℕ\n⊢ True ∧ True") == 2
    assert gt.match("⊢ nothing") is None


@pytest.mark.parametrize("text,kind", [
    ("unknown identifier 'foo'", "unknown_identifier"), ("unknown constant 'Nat.x'", "unknown_identifier"),
    ("type mismatch\n  h\nhas type", "type_mismatch"), ("linarith failed to find a contradiction", "tactic_failed"),
    ("unsolved goals\n⊢ x", "unsolved_goals"), ("failed to synthesize\n  Foo", "failed_to_synthesize"),
    ("something odd", "other"),
])
def test_lean_error_kinds(text, kind):
    assert lean_error_kind(text) == kind


def test_heartbeat_and_interrupt_are_leans_verdicts_on_candidates():
    """Heartbeat/recursion limits and Pantograph's interrupt are values: no record, never re-sent."""
    script = {**gt_script(), (S0, "heavy"): ("heartbeat",), (S0, "slow"): ("interrupt",)}
    policy = FakePolicy({canonical_state(S0): [cand("heavy"), cand("slow")]})
    result, session = run(THM, script, policy)
    assert result.reason == "qed"
    c = result.counts
    assert (c.outcomes[Outcome.HEARTBEAT], c.outcomes[Outcome.TIMEOUT], c.infra_protocol_error) == (1, 1, 0)
    assert session.calls.count((canonical_state(S0), "heavy")) == 1
    assert {r.tactic_applied for r in result.records}.isdisjoint({"heavy", "slow"})
    kinds = {a.tactic: a.error_kind for a in result.attempts if a.role == "candidate"}
    assert kinds == {"heavy": "heartbeats", "slow": "interrupt"}


def test_heartbeat_on_a_ground_truth_step_fails_it_without_retry():
    script = {**gt_script("open Foo Foo.Bar in "), (S0, TACTICS[0]): ("heartbeat",)}
    result, session = run(NS, script, FakePolicy({}))
    assert (result.status, result.reason) == (Status.SKIPPED, "gt_failed")
    assert "[heartbeats]" in result.message and result.step0 == "heartbeats"
    assert result.counts.gt_failed_limit[LimitKind.HEARTBEATS] == 1 and result.counts.gt_infra_failed == 0
    # Neither re-sent nor retried inside `open … in`: Lean's verdict would be the same.
    assert [t for _, t in session.calls if TACTICS[0] in t] == [TACTICS[0]]


def test_policy_unavailable_propagates_and_transient_failures_leave_the_theorem_unfinished():
    from workbench.policy import PolicyUnavailable

    class DeadPolicy(FakePolicy):
        async def candidates(self, state_pp, n, *, theorem):
            raise PolicyUnavailable("circuit breaker tripped")

    with pytest.raises(PolicyUnavailable):
        run(THM, gt_script(), DeadPolicy({}))
    result, _ = run(THM, gt_script(), FakePolicy({}, fail_times=2))  # one step got no answer (issue 20)
    assert result.status == Status.UNFINISHED and result.counts.steps_generation_failed == 1
    assert run(THM, gt_script(), FakePolicy({}))[0].status == Status.COMPLETED


def test_a_refused_generation_request_is_not_retried_and_does_not_leave_the_theorem_unfinished():
    from workbench.policy.errors import PolicyRequestRejected

    class RefusingPolicy(FakePolicy):
        calls = 0

        async def candidates(self, state_pp, n, *, theorem):
            RefusingPolicy.calls += 1
            raise PolicyRequestRejected("400: prompt too long", status=400, server_message="too long")

    result, _ = run(THM, gt_script(), RefusingPolicy({}))
    assert RefusingPolicy.calls == result.steps_walked  # one call per step: the same request gets the same 4xx
    assert result.counts.policy_rejected == RefusingPolicy.calls
    assert result.status == Status.COMPLETED and result.counts.steps_generation_failed == 0


def test_without_an_s_expression_the_walk_introduces_the_traces_names():
    """A server that prints no `sexp` (printExprAST unsupported): the trace's own list, said in `start`."""

    class NoAst(FakeSession):
        async def root_ast(self):
            return None

    session = NoAst(THM.full_name, THM.steps[0].state_before, gt_script())
    result = asyncio.run(walk_theorem(THM, FakePool({THM.full_name: session}), FakePolicy({}), WalkParams(),
                                      simulated=False))
    assert result.reason == "qed" and result.start["binders"] == "trace" and result.start["intro"] == "intro a b"
    assert result.counts.binders_from_trace == 1 and result.counts.binders_from_lean == 0
