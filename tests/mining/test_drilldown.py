"""Notebook 03's drill-down (issue 12 item 4, issue 24 items 1 and 4) on the simulated bundled sample: the
namespace questions first (what still fails after ``open … in``), filters, a state tree of goals with
siblings side by side, complete scrollable tables, multi-line tactics as written, no widget that makes a
headless runner hang."""

from __future__ import annotations

import re

import pandas as pd
import pytest

from workbench.mining import drilldown, report
from workbench.mining.run import mine, offline_demo_settings


@pytest.fixture(scope="module")
def mined(tmp_path_factory):
    out = tmp_path_factory.mktemp("drill") / "out"
    mine(offline_demo_settings(out, simulator_args=("--latency-scale", "0")))
    return report.load_mined(out)


def _attempt(theorem, step, role, outcome, messages="", tactic="t"):
    return {"run": "r", "theorem": theorem, "step": step, "role": role, "outcome": outcome, "messages": messages,
            "tactic": tactic, "sent": tactic}


def test_still_failing_identifiers_count_steps_and_theorems_after_the_open_retry():
    rows = [
        # A.x step 0: fails as written and with `open A in`: the name Lean does not know
        _attempt("A.x", 0, "ground_truth", "ground_truth_failed", "unknown identifier 'le_succ'", "exact le_succ _"),
        _attempt("A.x", 0, "ground_truth_open", "ground_truth_failed", "unknown identifier 'le_succ'"),
        # B.y step 2: the same name, no retry possible (no namespace), plain message kept
        _attempt("B.y", 2, "ground_truth", "ground_truth_failed", "unknown identifier 'le_succ'"),
        # A.z: rescued by `open A in`: not in the table
        _attempt("A.z", 0, "ground_truth", "ground_truth_failed", "unknown identifier 'foo'"),
        _attempt("A.z", 0, "ground_truth_open", "ground_truth"),
        # C.w: still failing, but not for a name: counted by ground_truth_failures, not listed here
        _attempt("C.w", 1, "ground_truth", "ground_truth_failed", "type mismatch\n  h"),
        _attempt("C.w", 1, "ground_truth_open", "ground_truth_failed", "unsolved goals\n⊢ False"),
        _attempt("C.w", 0, "ground_truth", "ground_truth"),
    ]
    attempts = pd.DataFrame(rows)
    failures = drilldown.ground_truth_failures(attempts)
    assert len(failures) == 4 and failures.rescued.sum() == 1
    assert failures.set_index("theorem").loc["C.w", "message"] == "unsolved goals\n⊢ False"  # the retry's word
    table = drilldown.still_failing_identifiers(attempts)
    assert table.to_dict("records") == [{"identifier": "le_succ", "steps": 2, "theorems": 2,
                                         "example_theorems": "A.x, B.y", "example_tactic": "exact le_succ _"}]


def test_the_simulated_sample_names_its_file_level_open_and_the_picker_filters(mined):
    table = drilldown.still_failing_identifiers(mined.attempts)
    assert table.identifier.tolist() == ["le_succ"]  # `open Nat` at file level: the retry cannot help
    assert table.example_theorems.tolist() == ["Finset.card_insert_le_foo"]
    theorems = drilldown.theorem_table(mined)
    assert drilldown.filter_theorems(theorems, "ground truth still failing after open … in") == ["Finset.card_insert_le_foo"]
    rescued = drilldown.filter_theorems(theorems, "ground truth rescued by open … in")
    assert "Nat.succ_le_of_lt_foo" in rescued and "and_swap_foo" not in rescued
    in_nat = drilldown.filter_theorems(theorems, "all theorems", namespace="Nat")
    assert in_nat and all(n.startswith("Nat.") for n in in_nat) and "Nat.Coprime.symm_foo" in in_nat
    assert drilldown.filter_theorems(theorems, namespace="Nat.Coprime") == ["Nat.Coprime.symm_foo"]
    assert drilldown.filter_theorems(theorems, search="COPRIME") == ["Nat.Coprime.symm_foo"]
    assert ("Nat (" in label for label, _ in drilldown.namespace_options(theorems))
    everything = drilldown.theorems_by_interest(mined)
    assert everything[0] == "Finset.card_insert_le_foo" and len(everything) == len(theorems) == 32


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


def test_theorem_view_shows_the_ground_truth_path_every_attempt_and_a_tree_of_goals(mined):
    name = drilldown.theorems_by_interest(mined)[0]
    view = drilldown.theorem_view(mined, name)
    sent = mined.attempts[mined.attempts.theorem == name]
    assert len(view.attempts) == len(sent)
    assert set(view.ground_truth.role) <= {"ground_truth", "ground_truth_open"} and len(view.ground_truth)
    records = mined.records[mined.records.theorem_name == name]
    assert len(view.tree.splitlines()) == len(records)  # every mined state appears once
    assert view.tree.splitlines()[0].startswith("[positive ground_truth] ⊢ ")  # the root's goal, not its hypotheses
    with pytest.raises(KeyError):
        drilldown.theorem_view(mined, "no_such_theorem")


def _rows(html: str, section: str) -> int:
    table = html.split(section, 1)[1].split("</table>", 1)[0]
    return table.count("<tr>") - 1  # minus the header row


def test_view_html_keeps_every_row_multiline_tactics_and_puts_siblings_side_by_side(mined):
    view = drilldown.theorem_view(mined, "Int.lt_add_of_abs_sub_lt_foo")  # its candidates include a `calc` block
    html = str(drilldown.view_html(view))
    assert _rows(html, "Every tactic sent") == len(view.attempts) > 20  # every row, none cut
    assert _rows(html, "Ground-truth path") == len(view.ground_truth)
    assert html.count("overflow:auto") >= 3  # both tables and the tree scroll inside a bounded box
    calc = next(s for s in view.attempts.sent if "\n" in s and "calc" in s)
    assert calc.split("\n")[1] in html.replace("&gt;", ">").replace("&lt;", "<")  # a line of the block, as written
    assert "white-space:pre-wrap" in html
    assert "\\n" not in html  # a newline is a line break, never the two characters \n
    # the root's children (the ground-truth step and the siblings the policy proposed) in one flex row
    records = view.records
    root = records[records.parent_state_id.isna()].state_id.iloc[0]
    assert (records.parent_state_id == root).sum() >= 2
    assert re.search(r"display:flex;gap:6px", html)
    assert html.count("⊢") >= len(records)  # every state shows its goal


def _descendants(widget):
    yield widget
    for child in getattr(widget, "children", ()):
        yield from _descendants(child)


def test_widget_has_no_output_widget_and_its_filters_drive_the_picker(mined):
    widgets = pytest.importorskip("ipywidgets")
    box = drilldown.drilldown_widget(mined)
    parts = list(_descendants(box))
    # an Output widget's captured displays make nbclient send on the shell socket it polls (the headless hang)
    assert not any(isinstance(w, widgets.Output) for w in parts)
    filters, count, pick, view = box.children
    which, namespace, search = filters.children
    assert list(pick.options) == drilldown.theorems_by_interest(mined)
    assert "Finset.card_insert_le_foo" in view.value and "32 of 32" in count.value
    which.value = "ground truth rescued by open … in"
    namespace.value = "Nat"
    assert pick.options and all(n.startswith("Nat.") for n in pick.options)
    assert pick.value in view.value and f"{len(pick.options)} of 32" in count.value
    search.value = "no such theorem"
    assert pick.value is None and "No theorem matches" in view.value
