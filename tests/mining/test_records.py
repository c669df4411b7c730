"""Mining's typed vocabulary (records.py): end reasons decide the status; the status line is JSON-ready."""

from __future__ import annotations

import json

from workbench.lean.protocol import LimitKind
from workbench.mining.labels import Outcome
from workbench.mining.records import EndReason, Status, TheoremResult, WalkCounts, status_of


def test_end_reasons_decide_the_status():
    assert status_of(EndReason.QED) is Status.COMPLETED
    assert status_of(EndReason.TRACE_EXHAUSTED) is Status.COMPLETED
    for reason in (EndReason.GT_FAILED, EndReason.UNALIGNED, EndReason.START_FAILED, EndReason.NO_STEPS):
        assert status_of(reason) is Status.SKIPPED
    assert status_of(EndReason.THEOREM_TIMEOUT, timed_out=True) is Status.TIMED_OUT


def test_status_line_is_plain_json():
    line = TheoremResult("t", Status.SKIPPED, EndReason.UNALIGNED, start={"intro": "intro a", "problem": None},
                         step0="replayed").status_line()
    back = json.loads(json.dumps(line))
    assert (back["status"], back["reason"], back["step0"]) == ("skipped", "unaligned", "replayed")
    assert back["start"] == {"intro": "intro a", "problem": None}


# The status-line spelling of the counters as earlier versions wrote it (theorems.jsonl of existing runs).
OLD_LINE_COUNTS = {"gt.steps": 4, "gt.failed_plain": 1, "gt.rescued_by_open": 1, "gt.failed_limit.heartbeats": 1,
                   "start.matched": 1, "align.other_goal": 2, "align.unaligned.goal_not_found": 1,
                   "infra.rebinds": 3, "infra.timeout": 1, "policy_errors": 2, "steps_without_candidates": 1,
                   "outcome.divergent": 5, "outcome.lean_error": 7, "chain.rescued": 1, "chain.rescued_nodes": 2}


def test_counters_read_and_write_the_status_line_spelling():
    counts = WalkCounts.from_dict(OLD_LINE_COUNTS)
    assert (counts.gt_steps, counts.gt_failed_plain, counts.align_other_goal) == (4, 1, 2)
    assert counts.align_unaligned == {"goal_not_found": 1}  # the reason family reads the old key
    assert counts.outcomes[Outcome.DIVERGENT] == 5 and counts.gt_failed_limit[LimitKind.HEARTBEATS] == 1
    assert counts.infra_events == 4 and counts.steps_without_candidates == 1
    assert counts.to_dict() == OLD_LINE_COUNTS  # written back as it was read
    assert counts.alignment() == {"other_goal": 2, "unaligned.goal_not_found": 1}
    assert counts.candidate_outcomes() == {"divergent": 5, "lean_error": 7}


def test_unknown_counters_are_kept_and_totals_add_up():
    newer = WalkCounts.from_dict({"gt.steps": 1, "someday.new_counter": 2})
    assert newer.to_dict() == {"gt.steps": 1, "someday.new_counter": 2}  # never dropped
    total = WalkCounts.total([WalkCounts.from_dict(OLD_LINE_COUNTS), newer])
    assert total.gt_steps == 5 and total.other["someday.new_counter"] == 2 and total.outcomes[Outcome.LEAN_ERROR] == 7


def test_no_module_but_records_spells_a_counter():
    """Issue 23: counters are read through WalkCounts, never by their spelling elsewhere."""
    import re
    from pathlib import Path

    spelled = re.compile(r"""["'](?:gt|align|infra|chain|outcome|start|binders|labels)\.[a-z_]+""")
    package = Path(__file__).resolve().parents[2] / "workbench"
    offenders = [str(p.relative_to(package)) for p in package.rglob("*.py")
                 if p.name != "records.py" and spelled.search(p.read_text(encoding="utf-8"))]
    assert offenders == []
