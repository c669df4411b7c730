import pytest

from workbench.encode.text import state_text
from workbench.policy import (
    PROMPT_FORMATS,
    Candidate,
    Completion,
    PromptFormat,
    build_prompt,
    candidates_from_completions,
)
from workbench.policy.prompt import RAW_CHAT, state_from_prompt


def test_default_prompt_is_the_prefilled_turn_with_stops():
    """SPEC §2: the reference's late-February form (assistant turn pre-filled, stopped on a fence or a blank line)."""
    state = "n : ℕ\n⊢ n + 0 = n"
    prompt = build_prompt(state)
    assert prompt == ("<｜User｜>" + state_text(state) + "<｜Assistant｜>"
                      + "```lean4\n/- tactic state:\n" + state + "\n-/\nexample := by\n  ")
    assert "<｜begin▁of▁sentence｜>" not in prompt   # SGLang's tokenizer adds the BOS itself
    assert PromptFormat().stop == ("```", "\n\n") and PromptFormat().answer_prefix == "  "
    assert state_from_prompt(prompt) == state   # the first tactic-state comment, not both


def test_chat_prompt_ends_at_the_assistant_marker_without_stops():
    state = "n : ℕ\n⊢ n + 0 = n"
    chat = PROMPT_FORMATS["deepseek-chat"]
    prompt = build_prompt(state, chat)
    assert prompt == "<｜User｜>" + state_text(state) + "<｜Assistant｜>"
    assert "Complete the following Lean 4 code:\n\n```lean4\n/- tactic state:\n" in prompt
    assert chat.stop == () and chat.answer_prefix == ""
    assert state_from_prompt(prompt) == state
    assert build_prompt(state, PromptFormat(chat=RAW_CHAT)) == state_text(state)
    with pytest.raises(ValueError):
        PromptFormat(chat="no placeholder")
    with pytest.raises(ValueError):
        PromptFormat(chat="{message}{message}")
    # a state holding a placeholder's text is not substituted again
    odd = "s : Set ℕ := {message}\n⊢ True"
    assert build_prompt(odd, chat).count("{message}") == 1


def test_candidates_dedupe_keep_best_filter_forbidden():
    comps = [
        Completion("intro n\nsimp", -3.0, 5),
        Completion("```lean4\nintro  n\nring\n```", -1.0, 7),   # same first tactic, better score
        Completion("sorry", -0.5, 1),
        Completion("simp\nsorry\nrfl", -2.0, 4),                # chain cut before sorry
        Completion("-- nothing", -0.1, 2),
    ]
    cands, stats = candidates_from_completions(comps)
    assert [c.tactic for c in cands] == ["intro  n", "simp"]
    assert cands[0].tactics == ("intro  n", "ring") and cands[0].score == -1.0 and cands[0].num_tokens == 7
    assert cands[1].tactics == ("simp",)
    assert (stats.completions, stats.truncated, stats.no_tactic, stats.forbidden, stats.duplicates, stats.kept) == \
        (5, 0, 1, 1, 1, 2)


def test_a_cut_tactic_is_never_a_candidate():
    comps = [Completion("nlinarith [sq_nonneg (a - b),\n  sq_nonn", -0.1, 128, "length"),
             Completion("positivity", -2.0, 3, "stop")]
    cands, stats = candidates_from_completions(comps, answer_prefix="  ")
    assert [c.tactic for c in cands] == ["positivity"]
    assert (stats.truncated, stats.truncated_kept, stats.no_tactic) == (1, 0, 0)


def test_a_cut_sample_keeps_its_complete_leading_tactics():
    """Issue 20 (moved from 19): a sample cut by max_new_tokens (SGLang finish_reason
    {"type": "length"}, SPEC §2) loses only the tactic the cut fell in; the tactics before it are whole."""
    comps = [
        # pre-filled turn: "  " is the open indent; the cut falls inside the third line
        Completion("intro x\n  simp at h\n  exact h.tra", -0.3, 128, "length"),
        # a multi-line tactic cut in its continuation line: the whole bracket is dropped, not just the line
        Completion("constructor\n  nlinarith [sq_nonneg (a - b),\n    sq_nonneg (a +", -0.2, 128, "length"),
        # cut inside its first (and only) tactic: nothing is left
        Completion("field_simp [mul_comm, mul_ass", -0.1, 128, "length"),
    ]
    cands, stats = candidates_from_completions(comps, answer_prefix="  ")
    assert {c.tactic: c.tactics for c in cands} == {"intro x": ("intro x", "simp at h"), "constructor": ("constructor",)}
    assert (stats.completions, stats.truncated, stats.truncated_kept, stats.no_tactic, stats.kept) == (3, 3, 2, 0, 2)


def test_candidate_validation():
    with pytest.raises(ValueError):
        Candidate("a", ("b",), "a", 0.0, "logprob")
    with pytest.raises(ValueError):
        Candidate("a", ("a",), "a", 0.0, "probability")
