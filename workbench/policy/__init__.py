"""Tactic generation: SGLang client, tactic extraction, offline retrieval (kNN) policy, stand-in server."""

from workbench.policy.base import Candidate, Completion, Policy, candidates_from_completions
from workbench.policy.extract import (
    extract_first_tactic,
    extract_tactics,
    has_forbidden,
    normalize_tactic,
    tactic_name,
)
from workbench.policy.prompt import DEEPSEEK_CHAT, RAW_CHAT, PromptFormat, build_prompt
from workbench.policy.retrieval import RetrievalPolicy, TacticPair, pairs_from_theorems
from workbench.policy.sglang import (
    PolicyError,
    PolicyProtocolError,
    PolicyStats,
    PolicyUnavailable,
    SGLangConfig,
    SGLangPolicy,
)

__all__ = [
    "Candidate", "Completion", "Policy", "candidates_from_completions", "extract_first_tactic",
    "extract_tactics", "has_forbidden", "normalize_tactic", "tactic_name", "DEEPSEEK_CHAT", "RAW_CHAT",
    "PromptFormat", "build_prompt", "RetrievalPolicy", "TacticPair", "pairs_from_theorems", "PolicyError",
    "PolicyProtocolError", "PolicyStats", "PolicyUnavailable", "SGLangConfig", "SGLangPolicy",
]
