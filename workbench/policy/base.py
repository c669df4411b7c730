"""Candidate records, the Policy protocol, and turning raw completions into candidates (pure)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Protocol, runtime_checkable

from workbench.policy.extract import extract_tactics, has_forbidden, normalize_tactic, usable_chain

SCORE_KINDS = ("logprob", "similarity")


@dataclass(frozen=True, slots=True)
class Candidate:
    tactic: str                 # the first tactic, extracted
    tactics: tuple[str, ...]    # every tactic in order (for the chain walk); tactics[0] == tactic
    raw_text: str               # the model output (or the retrieved proof tail) it came from
    score: float                # summed log-probability, or similarity for the retrieval policy
    score_kind: str             # "logprob" | "similarity"
    num_tokens: int | None = None

    def __post_init__(self) -> None:
        if self.score_kind not in SCORE_KINDS:
            raise ValueError(f"score_kind must be one of {SCORE_KINDS}, got {self.score_kind!r}")
        if not self.tactics or self.tactics[0] != self.tactic:
            raise ValueError("Candidate.tactics must start with Candidate.tactic")


@runtime_checkable
class Policy(Protocol):
    async def candidates(self, state_pp: str, n: int, *, theorem: str) -> list[Candidate]: ...

    def provenance(self) -> dict: ...

    async def aclose(self) -> None: ...


@dataclass(frozen=True, slots=True)
class Completion:
    """One raw completion as the server returned it."""

    text: str
    logprob: float
    num_tokens: int | None = None
    finish_reason: str | None = None   # SGLang's meta_info.finish_reason.type: "stop" | "length" | "abort"


@dataclass(frozen=True, slots=True)
class CandidateFilterStats:
    completions: int
    truncated: int      # cut by max_new_tokens (finish_reason "length"): the tactic it was cut in never goes to Lean
    truncated_kept: int  # ... of which the complete tactics before the cut made a candidate
    no_tactic: int      # nothing extractable
    forbidden: int      # first tactic uses sorry/admit/cheat
    duplicates: int     # same first tactic (after whitespace normalisation) as a better one
    kept: int


def complete_tactics(cut_text: str) -> list[str]:
    """The tactics of a sample cut by ``max_new_tokens`` that were generated whole.

    Its last line is unfinished, so it is dropped; of what is left, a tactic is kept only while it reads
    the same with and without that line (a multi-line tactic whose continuation the cut line was, e.g.
    ``nlinarith [a,`` then ``  b, c``, is dropped with it). Prose after a closed fence changes nothing.
    """
    whole = extract_tactics(cut_text)
    kept = extract_tactics(cut_text[: cut_text.rfind("\n") + 1])
    out = []
    for a, b in zip(kept, whole):
        if a != b:
            break
        out.append(a)
    return out


def candidates_from_completions(completions: Iterable[Completion], *, score_kind: str = "logprob",
                                answer_prefix: str = "") -> tuple[list[Candidate], CandidateFilterStats]:
    """Extract, filter and dedupe: one candidate per distinct first tactic, the best-scored one, best first.

    A completion cut by ``length`` keeps its complete leading tactics (:func:`complete_tactics`), so a
    cut sample whose first tactic is the cut one gives nothing. A chain is cut before its first sorry/admit/cheat; a candidate whose
    first tactic uses one is dropped. ``answer_prefix`` is what the prompt left open on the answer's
    first line (see ``PromptFormat.answer_prefix``).
    """
    best: dict[str, Candidate] = {}
    total = truncated = truncated_kept = no_tactic = forbidden = duplicates = 0
    for c in completions:
        total += 1
        cut = c.finish_reason == "length"
        tactics = complete_tactics(answer_prefix + c.text) if cut else extract_tactics(answer_prefix + c.text)
        truncated += cut
        if not tactics:
            no_tactic += not cut
            continue
        if has_forbidden(tactics[0]):
            forbidden += 1
            continue
        truncated_kept += cut
        chain = tuple(usable_chain(tactics))
        cand = Candidate(tactic=chain[0], tactics=chain, raw_text=c.text, score=c.logprob,
                         score_kind=score_kind, num_tokens=c.num_tokens)
        key = normalize_tactic(chain[0])
        if key in best:
            duplicates += 1
            if cand.score <= best[key].score:
                continue
        best[key] = cand
    kept = sorted(best.values(), key=lambda c: -c.score)
    return kept, CandidateFilterStats(total, truncated, truncated_kept, no_tactic, forbidden, duplicates, len(kept))
