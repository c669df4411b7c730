import pytest

from workbench.policy.extract import (
    extract_first_tactic,
    extract_tactics,
    has_forbidden,
    normalize_tactic,
    split_tactics,
    strip_comments,
    tactic_name,
    usable_chain,
)


@pytest.mark.parametrize("raw, expected", [
    ("intro n\nsimp", ["intro n", "simp"]),
    ("  rw [h]\n  exact le_refl _\n", ["rw [h]", "exact le_refl _"]),
    # fenced answer repeating the tactic-state comment, prose after the fence
    ("```lean4\n/- tactic state:\nn : ℕ\n⊢ n = n\n-/\nintro n\n-- now simp\nsimp\n```\nThis works because…",
     ["intro n", "simp"]),
    # continuation of an open fence: the first fence closes it
    ("  omega\n```\n\nExplanation: omega decides linear arithmetic.", ["omega"]),
    # a whole declaration with a multi-line signature
    ("theorem foo (n : ℕ) :\n    n + 0 = n := by\n  simp\n  rfl", ["simp", "rfl"]),
    ("theorem foo : True := by trivial", ["trivial"]),
    ("lemma bar : 1 = 1 := by\n  rfl", ["rfl"]),
    ("import Mathlib\nopen Real\n\ntheorem t : x = x := by\n  rfl", ["rfl"]),
    ("example : 2 = 2 := rfl", []),  # term mode: no tactic
    ("", []),
    ("```lean4\n```", []),
    ("-- only a comment\n/- and a block -/", []),
])
def test_extract_tactics_shapes(raw, expected):
    assert extract_tactics(raw) == expected


def test_indented_block_stays_together():
    raw = "have h : 0 < 1 := by\n    norm_num\nlinarith"
    assert extract_tactics(raw) == ["have h : 0 < 1 := by\n    norm_num", "linarith"]


def test_bracket_balanced_multiline_tactic_stays_together():
    raw = "nlinarith [sq_nonneg (a - b),\nsq_nonneg (a + b),\n  mul_pos ha hb]\nlinarith"
    tactics = extract_tactics(raw)
    assert len(tactics) == 2
    assert normalize_tactic(tactics[0]) == "nlinarith [sq_nonneg (a - b), sq_nonneg (a + b), mul_pos ha hb]"


def test_match_alternatives_and_combinators_and_open_in_stay_together():
    raw = ("induction n with\n| zero => rfl\n| succ n ih =>\n  simp [ih]\n"
           "constructor <;>\nsimp\nopen Real in\nsimp [pi_pos]")
    assert [tactic_name(t) for t in extract_tactics(raw)] == ["induction", "constructor", "open"]


def test_focus_dots_are_separate_tactics():
    assert extract_tactics("· simp\n  ring\n· omega") == ["· simp\n  ring", "· omega"]


def test_comments_removed_but_strings_kept():
    assert strip_comments('simp -- done\n/- a /- nested -/ b -/exact "--x"') == 'simp \nexact "--x"'


def _strip_comments_reference(text: str) -> str:
    """Character-by-character specification (the former implementation) for the fuzz test below."""
    out, i, depth, in_string, n = [], 0, 0, False, len(text)
    while i < n:
        c, two = text[i], text[i:i + 2]
        if in_string:
            if c == "\\" and i + 1 < n:
                out.append(two)
                i += 2
                continue
            in_string = c != '"'
            out.append(c)
        elif depth == 0 and c == '"':
            in_string = True
            out.append(c)
        elif two == "/-" or (two == "-/" and depth > 0):
            depth += 1 if two == "/-" else -1
            i += 2
            continue
        elif depth > 0:
            out.append("\n" if c == "\n" else "")
        elif two == "--":
            while i < n and text[i] != "\n":
                i += 1
            continue
        else:
            out.append(c)
        i += 1
    return "".join(out)


def test_strip_comments_matches_the_character_scan_on_random_text():
    import random

    rng = random.Random(0)
    for _ in range(5000):
        text = "".join(rng.choice('-/"\\\na x') for _ in range(rng.randint(0, 16)))
        assert strip_comments(text) == _strip_comments_reference(text), repr(text)


def test_first_tactic():
    assert extract_first_tactic("```lean4\nintro x\nsimp\n```") == "intro x"
    assert extract_first_tactic("  ") is None


def test_forbidden_words():
    assert has_forbidden("sorry") and has_forbidden("exact (by admit)") and has_forbidden("cheat")
    assert not has_forbidden("exact sorry_lemma") and not has_forbidden("apply Nat.admits")
    assert not has_forbidden("simp -- no sorry here")
    assert usable_chain(["intro n", "sorry", "simp"]) == ["intro n"]


def test_the_whole_sorry_family_is_filtered_before_lean():
    """Audit: `exact sorryAx _ false` passed the filter and became a positive."""
    for tactic in ("exact sorryAx _ false", "exact Lean.sorryAx _ false", "exact @sorryAx Nat true",
                   "refine ⟨sorryAx _, ?_⟩", "exact _root_.sorryAx _ false"):
        assert has_forbidden(tactic), tactic
    assert not has_forbidden("exact sorryAx_lemma") and not has_forbidden("exact Foo.sorryAx")
    assert usable_chain(["intro n", "exact sorryAx _ false"]) == ["intro n"]


def test_normalisation_and_names():
    assert normalize_tactic("rw  [a,\n   b]\tat h") == "rw [a, b] at h"
    assert tactic_name("  rw [foo] at h") == "rw" and tactic_name("") == ""


def test_split_stops_when_dedented_past_block():
    assert split_tactics("  simp\n  ring\nnot part of it") == ["simp", "ring"]
