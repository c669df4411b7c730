import pytest

from workbench.namespaces import infer_open_namespace, open_prefixes, wrap_open


@pytest.mark.parametrize(
    "name, expected",
    [
        ("Polynomial.natDegree_cyclotomic'", "Polynomial"),
        ("MeasureTheory.hahn_decomposition", "MeasureTheory"),
        ("Nat.add_comm", "Nat"),
        ("simple_name", None),
        ("A.B.c", "A.B"),
    ],
)
def test_infer_open_namespace(name, expected):
    assert infer_open_namespace(name) == expected


def test_open_prefixes():
    assert open_prefixes("A.B.c") == ["A", "A.B"]
    assert open_prefixes("Nat.add_comm") == ["Nat"]
    assert open_prefixes("simple") == []


def test_wrap_open_single_line():
    assert wrap_open("exact succ_le_of_lt h", ["Nat"]) == "open Nat in exact succ_le_of_lt h"
    assert wrap_open("simp", ["A", "A.B"]) == "open A A.B in simp"
    assert wrap_open("simp", []) == "simp"


def test_wrap_open_multi_line_keeps_block_columns():
    tactic = "constructor\n· simp\n· exact foo\n  rfl"
    wrapped = wrap_open(tactic, ["Nat"])
    lines = wrapped.split("\n")
    assert lines[0] == "open Nat in"
    assert lines[1:] == ["  constructor", "  · simp", "  · exact foo", "    rfl"]


def test_namespaced_references_split_fixable_from_file_opens():
    from workbench.namespaces import namespaced_references

    refs = [("succ_le_of_lt", "Nat.succ_le_of_lt"), ("Nat.le_refl", "Nat.le_refl"), ("toDual", "OrderDual.toDual"), ("h.le", "LT.lt.le")]
    out = namespaced_references("Nat.foo_bar", refs)
    assert [(r.written, r.namespace, r.fixed_by_open_retry) for r in out] == [
        ("succ_le_of_lt", "Nat", True),
        ("toDual", "OrderDual", False),
    ]


def test_references_come_from_annotated_tactics(shared_traces_dir):
    from workbench.trace_stats import namespace_table
    from workbench.traces import load_traces

    ts = load_traces(shared_traces_dir)
    thm = next(t for t in ts.theorems if t.full_name == "Set.Ioc_disjoint_Ioc")
    assert ("Ico_disjoint_Ico", "Set.Ico_disjoint_Ico") in thm.steps[0].references
    table = namespace_table(ts.theorems)
    row = table.set_index("theorem").loc["Set.Ioc_disjoint_Ioc"]
    assert row["open_prefix"] == "Set" and "Ico_disjoint_Ico" in row["theorem_ns_refs"]
    assert 0.3 < table["likely_mismatch"].mean() < 0.9
