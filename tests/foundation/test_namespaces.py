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
