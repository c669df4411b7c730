"""Both prompt formats end to end through HTTP: the stand-in ends each scripted generation as SGLang does
(stop strings trimmed, ``length`` past ``max_new_tokens``), the client extracts the tactics.

The raw generations below are what a DeepSeek-Prover model writes for each shape: after the pre-filled
``example := by\\n  `` a continuation whose later lines carry the two-space indent; in the chat form a whole
fenced proof, often with a ``theorem … := by`` header.
"""

import json

import pytest

from workbench.policy import PROMPT_FORMATS, SGLangConfig, SGLangPolicy, prompt_format
from workbench.policy.prompt import prompt_format_from_file
from workbench.policy.standin_server import ScriptedCompleter, StandinSGLang

STATE = "a b : ℝ\nh₀ : 0 < a ∧ 0 < b\n⊢ a * b ≤ (a + b) ^ 2 / 4"

PREFILL_GENERATIONS = {
    # raw generation -> the chain of tactics the client must extract
    "nlinarith [sq_nonneg (a - b), sq_nonneg (a + b)]\n```\n\nThis closes the goal.":
        ["nlinarith [sq_nonneg (a - b), sq_nonneg (a + b)]"],
    "obtain ⟨ha, hb⟩ := h₀\n  have h : 0 ≤ (a - b) ^ 2 := by\n    positivity\n  nlinarith [h]\n```":
        ["obtain ⟨ha, hb⟩ := h₀", "have h : 0 ≤ (a - b) ^ 2 := by\n  positivity", "nlinarith [h]"],
    "calc a * b = ((a + b) ^ 2 - (a - b) ^ 2) / 4 := by ring\n    _ ≤ (a + b) ^ 2 / 4 := by\n      "
    "nlinarith [sq_nonneg (a - b)]\n\n```":
        ["calc a * b = ((a + b) ^ 2 - (a - b) ^ 2) / 4 := by ring\n  _ ≤ (a + b) ^ 2 / 4 := by\n"
         "    nlinarith [sq_nonneg (a - b)]"],
    "cases' h₀ with ha hb <;>\n    nlinarith [sq_nonneg (a - b), mul_pos ha hb]\n  <;> linarith\n```":
        ["cases' h₀ with ha hb <;>\n  nlinarith [sq_nonneg (a - b), mul_pos ha hb]\n<;> linarith"],
    "induction' n with k ih\n  · simp\n  · rw [pow_succ]\n    omega\n\n":
        ["induction' n with k ih", "· simp", "· rw [pow_succ]\n  omega"],
}

CHAT_GENERATIONS = {
    "```lean4\ntheorem amgm (a b : ℝ) (h₀ : 0 < a ∧ 0 < b) :\n    a * b ≤ (a + b) ^ 2 / 4 := by\n"
    "  have h₁ : 0 ≤ (a - b) ^ 2 := sq_nonneg _\n  nlinarith [h₁]\n```":
        ["have h₁ : 0 ≤ (a - b) ^ 2 := sq_nonneg _", "nlinarith [h₁]"],
    "To prove the inequality we expand a square.\n\n```lean4\nimport Mathlib\nopen Real\n\n"
    "theorem t (a b : ℝ) (h₀ : 0 < a ∧ 0 < b) : a * b ≤ (a + b) ^ 2 / 4 := by\n"
    "  calc a * b = ((a + b) ^ 2 - (a - b) ^ 2) / 4 := by ring\n    _ ≤ (a + b) ^ 2 / 4 := by\n"
    "      nlinarith [sq_nonneg (a - b)]\n```\nThe `calc` block ...":
        ["calc a * b = ((a + b) ^ 2 - (a - b) ^ 2) / 4 := by ring\n  _ ≤ (a + b) ^ 2 / 4 := by\n"
         "    nlinarith [sq_nonneg (a - b)]"],
    "```lean4\n/- tactic state:\na b : ℝ\n-/\nexample : a * b ≤ (a + b) ^ 2 / 4 := by\n"
    "  rcases h₀ with ⟨ha, hb⟩\n  constructor <;> intro h <;>\n    simp_all\n  positivity\n```":
        ["rcases h₀ with ⟨ha, hb⟩", "constructor <;> intro h <;>\n  simp_all", "positivity"],
}


def _config(url, fmt, **kw):
    return SGLangConfig(url=url, prompt=fmt, backoff_s=0.001, startup_wait_s=1.0, startup_poll_s=0.01, **kw)


async def _chains(generations, fmt, **kw):
    with StandinSGLang(ScriptedCompleter({STATE: list(generations)})) as server:
        async with SGLangPolicy(_config(server.url, fmt, **kw)) as policy:
            cands = await policy.candidates(STATE, len(generations), theorem="amgm")
            stats = policy.provenance()["stats"]
        return {c.raw_text: list(c.tactics) for c in cands}, server.requests, stats


async def test_prefill_shape_end_to_end():
    fmt = PROMPT_FORMATS["deepseek-prefill"]
    got, requests, stats = await _chains(PREFILL_GENERATIONS, fmt)
    (payload,) = requests
    assert payload["text"].endswith("-/\nexample := by\n  ")
    assert payload["sampling_params"]["stop"] == ["```", "\n\n"]
    # the stand-in trimmed every text at its first stop string; the client saw only the tactic part
    assert sorted(got.values()) == sorted(PREFILL_GENERATIONS.values())
    assert all("```" not in raw and "\n\n" not in raw for raw in got)
    assert stats["truncated"] == 0 and stats["candidates"] == len(PREFILL_GENERATIONS)


async def test_chat_shape_end_to_end():
    fmt = PROMPT_FORMATS["deepseek-chat"]
    got, requests, _ = await _chains(CHAT_GENERATIONS, fmt, max_new_tokens=512)
    (payload,) = requests
    assert payload["text"].endswith("<｜Assistant｜>") and "stop" not in payload["sampling_params"]
    assert sorted(got.values()) == sorted(CHAT_GENERATIONS.values())
    assert set(got) == set(CHAT_GENERATIONS)   # no stop strings: the whole answer comes back


async def test_chat_answers_run_long_and_are_truncated_where_prefill_stops():
    """The point of the prefill form: the same model budget, fewer tokens, no truncated samples."""
    first = next(iter(CHAT_GENERATIONS))
    long_chat = first + "\n\n" + "Explanation: " + "we expand the square. " * 20
    got, _, chat = await _chains([long_chat], PROMPT_FORMATS["deepseek-chat"], max_new_tokens=64)
    # cut by length inside the prose after the closed fence: the proof before it is whole and kept
    assert chat["truncated"] == 1 and chat["truncated_kept"] == 1 and list(got.values()) == [CHAT_GENERATIONS[first]]
    got, _, cut = await _chains([first], PROMPT_FORMATS["deepseek-chat"], max_new_tokens=36)  # cut in `nlinarith`
    assert cut["truncated"] == 1 and cut["truncated_kept"] == 1
    assert list(got.values()) == [CHAT_GENERATIONS[first][:1]]  # the `have` before it, not the cut `nlinarith`
    _, _, prefill = await _chains(list(PREFILL_GENERATIONS), PROMPT_FORMATS["deepseek-prefill"], max_new_tokens=64)
    assert prefill["truncated"] == 0
    assert prefill["completion_tokens_per_sample"] < chat["completion_tokens_per_sample"]


async def test_template_files(tmp_path):
    text = tmp_path / "plain.txt"
    text.write_text("Goal:\n{state}\nProof:\n  ", encoding="utf-8")
    fmt = prompt_format(str(text))
    assert fmt.name == "plain" and fmt.stop == () and fmt.answer_prefix == "  " and fmt.source == str(text)
    js = tmp_path / "qwen.json"
    js.write_text(json.dumps({"prompt": "<|im_start|>user\n{message}<|im_end|>\n<|im_start|>assistant\n",
                              "stop": ["<|im_end|>"], "name": "qwen"}), encoding="utf-8")
    fmt = prompt_format(str(js))
    with StandinSGLang(ScriptedCompleter(["```lean4\nsimp\n```<|im_end|>"])) as server:
        async with SGLangPolicy(_config(server.url, fmt)) as policy:
            cands = await policy.candidates(STATE, 1, theorem="t")
            prov = policy.provenance()["prompt_format"]
    assert [c.tactic for c in cands] == ["simp"]
    assert server.requests[0]["text"].startswith("<|im_start|>user\nComplete the following Lean 4 code:")
    assert server.requests[0]["sampling_params"]["stop"] == ["<|im_end|>"]
    assert prov == {"name": "qwen", "chat": fmt.chat, "template": fmt.template, "stop": ["<|im_end|>"],
                    "source": str(js)}


@pytest.mark.parametrize("content, match", [
    ('{"prompt": "no placeholder"}', "must contain"),
    ('{"prompt": "{state}", "stops": []}', r"unknown field\(s\) \['stops'\]"),
    ('{"prompt": "{state}",\n "stop": "```"}', "'stop' must be a list"),
    ('{"prompt": "{state}",\n', "line 2: not valid JSON"),
])
def test_bad_template_file_names_the_file(tmp_path, content, match):
    path = tmp_path / "bad.json"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(ValueError, match=match) as e:
        prompt_format_from_file(path)
    assert str(path) in str(e.value)


def test_unknown_format_lists_the_names():
    with pytest.raises(ValueError, match=r"neither one of \['deepseek-chat', 'deepseek-prefill'\]"):
        prompt_format("deepseek-v3")
