"""Breaks in the trace chain (focus / nested / other) and first tactics that name a binder."""

from __future__ import annotations

from workbench.trace_breaks import break_counts, classify_breaks, first_tactic_names_binder
from workbench.traces import TacticStep, Theorem, load_traces

A = "x : ℕ\n⊢ x = x ∧ True"
L, R = "case left\nx : ℕ\n⊢ x = x", "case right\nx : ℕ\n⊢ True"


def thm(*steps: tuple[str, str, str]) -> Theorem:
    return Theorem("t", tuple(TacticStep(i, b, t, a) for i, (b, t, a) in enumerate(steps)))


def test_focus_nested_and_chain():
    focus = thm((A, "constructor", f"{L}\n\n{R}"), (L, "rfl", "no goals"), (R, "trivial", "no goals"))
    assert [(b.index, b.kind) for b in classify_breaks(focus)] == [(0, "focus"), (1, "focus")]
    nested = thm((A, "have h : x = x := by rfl", "x : ℕ\nh : x = x\n⊢ x = x ∧ True"), ("x : ℕ\n⊢ x = x", "rfl", "no goals"),
                 ("x : ℕ\nh : x = x\n⊢ x = x ∧ True", "exact ⟨h, trivial⟩", "no goals"))
    assert [b.kind for b in classify_breaks(nested)] == ["nested", "focus"]
    assert first_tactic_names_binder(thm((A, "exact ⟨rfl, trivial⟩", "no goals"))) is None
    assert first_tactic_names_binder(thm((A, "cases x", "no goals"))) == "x"


def test_real_sample_breaks(shared_traces_dir):
    """The issue's measurement on the val split: 639 of 1,999 pairs break, in 222 of 542 multi-step theorems."""
    counts = break_counts(load_traces(shared_traces_dir / "random" / "val.json", skip_bad=True).theorems)
    assert (counts["step_pairs"], counts["breaks"], counts["multi_step_theorems"], counts["theorems_with_breaks"]) == (
        1999, 639, 542, 222)
    assert counts["breaks_focus"] > counts["breaks_nested"] > counts["breaks_other"]
