"""Pure rules of the Lean simulator: outcomes, divergent states, messages, latency.

Everything here is a deterministic function of (seed, canonical state text, tactic), so the same
tactic on the same state gives the same result on every simulator process and after a restart —
which is what lets the client replay a path on another process, as with the real REPL.
"""

from __future__ import annotations

import hashlib
import math
import re
from dataclasses import dataclass
from enum import StrEnum
from typing import Sequence

from workbench.states import Goal, Hypothesis, collapse
from workbench.tactics import normalize_tactic

__all__ = [
    "Outcome",
    "OutcomeRates",
    "LatencyModel",
    "DEFAULT_LATENCY_QUANTILES",
    "digest",
    "unit",
    "normalize_tactic",
    "split_open_prefix",
    "classify",
    "is_sorry",
    "parse_problem",
    "error_text",
    "divergent_goals",
    "first_identifier",
]


class Outcome(StrEnum):
    ERROR = "error"
    DIVERGENT = "divergent"
    COMPLETE = "complete"


@dataclass(frozen=True, slots=True)
class OutcomeRates:
    """Rates for tactics that are not the ground truth (normalised to sum to 1)."""

    error: float = 0.70
    divergent: float = 0.27
    complete: float = 0.03

    def __post_init__(self) -> None:
        if min(self.error, self.divergent, self.complete) < 0 or self.error + self.divergent + self.complete <= 0:
            raise ValueError(f"bad outcome rates {self}")


# (quantile, seconds): SPEC §2's Lean tactic latency, p50 22 ms / p95 300 ms / p99 2 s.
DEFAULT_LATENCY_QUANTILES: tuple[tuple[float, float], ...] = (
    (0.0, 0.002),
    (0.50, 0.022),
    (0.95, 0.300),
    (0.99, 2.000),
    (1.0, 6.000),
)


@dataclass(frozen=True, slots=True)
class LatencyModel:
    """Inverse CDF interpolated log-linearly between quantile knots, times ``scale``."""

    quantiles: tuple[tuple[float, float], ...] = DEFAULT_LATENCY_QUANTILES
    scale: float = 1.0

    def __post_init__(self) -> None:
        qs = [q for q, _ in self.quantiles]
        if qs != sorted(qs) or qs[0] != 0.0 or qs[-1] != 1.0 or any(s <= 0 for _, s in self.quantiles):
            raise ValueError(f"latency quantiles must rise from 0 to 1 with positive seconds: {self.quantiles}")

    def seconds(self, u: float) -> float:
        if self.scale <= 0:
            return 0.0
        for (q0, s0), (q1, s1) in zip(self.quantiles, self.quantiles[1:], strict=False):
            if u <= q1:
                f = 0.0 if q1 == q0 else (u - q0) / (q1 - q0)
                return self.scale * math.exp(math.log(s0) + f * (math.log(s1) - math.log(s0)))
        return self.scale * self.quantiles[-1][1]

    @staticmethod
    def parse(text: str) -> tuple[tuple[float, float], ...]:
        """``"0.5:0.022,0.95:0.3,0.99:2"`` → knots; 0 and 1 are added from the defaults if missing."""
        knots = dict(DEFAULT_LATENCY_QUANTILES[:1] + DEFAULT_LATENCY_QUANTILES[-1:])
        for part in text.split(","):
            q, _, s = part.partition(":")
            knots[float(q)] = float(s)
        return tuple(sorted(knots.items()))


def digest(*parts: object) -> bytes:
    h = hashlib.blake2b(digest_size=32)
    for p in parts:
        h.update(str(p).encode("utf-8"))
        h.update(b"\x00")
    return h.digest()


def unit(d: bytes, i: int) -> float:
    """The i-th independent uniform [0, 1) drawn from a digest (8 bytes each, i < 4)."""
    return int.from_bytes(d[8 * i : 8 * i + 8], "big") / 2**64


_OPEN_IN = re.compile(r"^open\s+((?:[^\s]+\s+)+?)in\s+(.*)$", re.DOTALL)


def split_open_prefix(tactic: str) -> tuple[tuple[str, ...], str]:
    """``open A A.B in t`` → (("A", "A.B"), "t"), on the normalised text; no prefix → ((), tactic)."""
    text = normalize_tactic(tactic)
    m = _OPEN_IN.match(text)
    if not m:
        return (), text
    return tuple(m.group(1).split()), m.group(2).strip()


def classify(u: float, rates: OutcomeRates) -> Outcome:
    total = rates.error + rates.divergent + rates.complete
    if u < rates.error / total:
        return Outcome.ERROR
    if u < (rates.error + rates.divergent) / total:
        return Outcome.DIVERGENT
    return Outcome.COMPLETE


# Pantograph flags hasSorry when the new proof term contains sorryAx (Repl.lean, `parentExpr.hasSorry`); `sorry`
# and `admit` elaborate to it, and a tactic may name the axiom itself (`exact sorryAx _ false`).
_SORRY = re.compile(r"(?<![\w.'])(?:_root_\.)?(?:Lean\.)?(sorry|admit|sorryAx)(?![\w'])")


def is_sorry(tactic: str) -> bool:
    return bool(_SORRY.search(tactic))


_PAIRS = {")": "(", "]": "[", "}": "{", "⟩": "⟨"}


def parse_problem(tactic: str) -> str | None:
    """A Lean-style parse error for tactics no parser would accept (unbalanced brackets), else None."""
    stack: list[str] = []
    for col, ch in enumerate(tactic):
        if ch in "([{⟨":
            stack.append(ch)
        elif ch in _PAIRS:
            if not stack or stack[-1] != _PAIRS[ch]:
                return f"<Pantograph>:1:{col}: unexpected token '{ch}'; expected term"
            stack.pop()
    if stack:
        closing = {v: k for k, v in _PAIRS.items()}[stack[-1]]
        return f"<Pantograph>:1:{len(tactic)}: unexpected end of input; expected '{closing}'"
    return None


_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_.'!?₀-₉]*")
_KEYWORDS = frozenset(
    "at with using only in fun by from have show this exact apply rw simp intro intros refine use "
    "cases induction rcases obtain constructor omega linarith nlinarith norm_num ring field_simp "
    "positivity aesop decide trivial calc conv left right ext funext congr gcongr specialize "
    "unfold dsimp simpa tauto exists existsi push_neg contrapose by_contra by_cases split_ifs "
    "subst symm exfalso rfl infer_instance norm_cast push_cast exact_mod_cast rwa simp_all open".split()
)


def first_identifier(tactic: str) -> str:
    """The first name in a tactic that is not a tactic keyword (what 'unknown identifier' names)."""
    for m in _IDENT.finditer(tactic):
        if m.group(0) not in _KEYWORDS:
            return m.group(0)
    return "x"


def error_text(tactic: str, goals: Sequence[Goal], d: bytes) -> str:
    target = collapse(goals[0].target) if goals else "False"
    _, tactic = split_open_prefix(tactic)  # Lean reports on the wrapped tactic, never on `open ... in`
    head = tactic.split()[0] if tactic.split() else tactic
    named = any(m.group(0) not in _KEYWORDS for m in _IDENT.finditer(tactic))
    choices = (
        # only a tactic that names something can fail on that name
        *((f"unknown identifier '{first_identifier(tactic)}'",
           f"type mismatch\n  {first_identifier(tactic)}\nhas type\n  ?m.{d[5] * 7 + 11} : Prop\n"
           f"but is expected to have type\n  {target} : Prop") if named else ()),
        "linarith failed to find a contradiction",
        "simp made no progress",
        f"unsolved goals\n⊢ {target}",
        f"tactic '{head}' failed, did not find instance of the pattern in the target expression",
    )
    return choices[d[4] % len(choices)]


def divergent_goals(goals: Sequence[Goal], index: int, d: bytes) -> tuple[Goal, ...]:
    """A plausible but wrong successor: the acted-on goal is changed, the others stay after it."""
    g = goals[index]
    others = tuple(goals[:index]) + tuple(goals[index + 1 :])
    tag = d[6:8].hex()
    variant = d[8] % 3
    if variant == 0:  # a new hypothesis, as after a `have`/`intro`
        hyp_type = g.hypotheses[d[9] % len(g.hypotheses)].type if g.hypotheses else collapse(g.target)
        new = (Goal(g.target, g.hypotheses + (Hypothesis(f"h_{tag}", f"¬({collapse(hyp_type)})"),), g.case),)
    elif variant == 1:  # a split into two goals, as after `constructor`/`refine ⟨?_, ?_⟩`
        new = (
            Goal(f"{collapse(g.target)} ∨ False", g.hypotheses, "left"),
            Goal(f"0 < {d[9] + 1}", g.hypotheses, "right"),
        )
    else:  # a rewritten target, as after a `rw`/`simp` that went the wrong way
        new = (Goal(f"¬¬({collapse(g.target)}) ∧ {d[9]} = {d[9]}", g.hypotheses, g.case),)
    return new + others
