"""Notebook 03's drill-down and candidate-failure table (issue 12, item 4) on a small simulated mining run."""

from __future__ import annotations

import pytest

from workbench.mining import drilldown, report
from workbench.mining.run import mine, offline_demo_settings


@pytest.fixture(scope="module")
def mined(tmp_path_factory):
    out = tmp_path_factory.mktemp("drill") / "out"
    mine(offline_demo_settings(out, num_theorems=6, simulator_args=("--latency-scale", "0")))
    return report.load_mined(out)


def test_normalise_message_folds_metavariables_and_keeps_the_first_line():
    assert drilldown.normalise_message("type mismatch\n  h\nhas type\n  ?m.1775 : Prop") == "type mismatch"
    assert drilldown.normalise_message("unknown identifier 'x'") == "unknown identifier 'x'"
    assert drilldown.normalise_message("expected ?m.12 got ?u.3") == "expected ?m got ?m"
    assert drilldown.normalise_message("") == "(no message)"


def test_candidate_failures_count_every_rejected_candidate(mined):
    table = drilldown.candidate_failures(mined.attempts, top=1000)
    att = mined.attempts
    rejected = att[att.role.isin(["candidate", "chain"]) & (att.outcome == "lean_error")]
    assert table.attempts.sum() == len(rejected) > 0
    assert list(table.attempts) == sorted(table.attempts, reverse=True)
    assert {"message", "error_kind", "theorems", "example_tactic"} <= set(table.columns)


def test_theorem_view_shows_the_ground_truth_path_every_attempt_and_the_tree(mined):
    name = drilldown.theorems_by_interest(mined)[0]
    view = drilldown.theorem_view(mined, name)
    sent = mined.attempts[mined.attempts.theorem == name]
    assert len(view.attempts) == len(sent)
    assert set(view.ground_truth.role) <= {"ground_truth", "ground_truth_open"} and len(view.ground_truth)
    records = mined.records[mined.records.theorem_name == name]
    assert len(view.tree.splitlines()) == len(records)  # every mined state appears once
    assert view.tree.splitlines()[0].startswith("[positive ground_truth]")  # the root, not indented
    with pytest.raises(KeyError):
        drilldown.theorem_view(mined, "no_such_theorem")


def test_widget_lists_theorems_and_renders_the_picked_one(mined):
    pytest.importorskip("ipywidgets")
    box = drilldown.drilldown_widget(mined)
    pick, out = box.children
    assert list(pick.options) == drilldown.theorems_by_interest(mined)
    pick.value = pick.options[-1]  # re-renders without error
    assert pick.value == drilldown.theorems_by_interest(mined)[-1]
