import pytest

from workbench.encode.text import state_text
from workbench.policy import Candidate, Completion, PromptFormat, build_prompt, candidates_from_completions
from workbench.policy.prompt import RAW_CHAT, state_from_prompt


def test_prompt_is_state_text_in_the_chat_wrapper():
    state = "n : ℕ\n⊢ n + 0 = n"
    prompt = build_prompt(state)
    assert prompt == "<｜User｜>" + state_text(state) + "<｜Assistant｜>"
    assert "Complete the following Lean 4 code:\n\n```lean4\n/- tactic state:\n" in prompt
    assert state_from_prompt(prompt) == state
    assert build_prompt(state, PromptFormat(chat=RAW_CHAT)) == state_text(state)
    with pytest.raises(ValueError):
        PromptFormat(chat="no placeholder")


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
    assert (stats.completions, stats.no_tactic, stats.forbidden, stats.duplicates, stats.kept) == (5, 1, 1, 1, 2)


def test_candidate_validation():
    with pytest.raises(ValueError):
        Candidate("a", ("b",), "a", 0.0, "logprob")
    with pytest.raises(ValueError):
        Candidate("a", ("a",), "a", 0.0, "probability")
