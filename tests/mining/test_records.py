"""Mining's typed vocabulary (records.py): end reasons decide the status; the status line is JSON-ready."""

from __future__ import annotations

import json

from workbench.mining.records import EndReason, Status, TheoremResult, status_of


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
    assert (back["status"], back["reason"], back["step0"], back["incomplete"]) == ("skipped", "unaligned", "replayed", False)
    assert back["start"] == {"intro": "intro a", "problem": None}
