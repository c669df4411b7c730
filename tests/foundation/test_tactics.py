from workbench.tactics import normalize_tactic, tactic_name


def test_normalize_tactic_ignores_whitespace_only():
    assert normalize_tactic("rw  [a,\n   b]\tat h") == "rw [a, b] at h"
    assert normalize_tactic("simp [a]") != normalize_tactic("simp [b]")


def test_tactic_name():
    assert tactic_name("rw [foo] at h") == "rw"
    assert tactic_name("· simp") == "simp"
    assert tactic_name("  ") == ""
