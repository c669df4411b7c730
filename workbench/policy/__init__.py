"""Tactic generation: SGLang client, tactic extraction, offline retrieval (kNN) policy, stand-in server."""

from workbench.policy.base import Candidate, Completion, Policy, candidates_from_completions
from workbench.policy.extract import (
    extract_first_tactic,
    extract_tactics,
    has_forbidden,
    normalize_tactic,
    tactic_name,
)
from workbench.policy.prompt import (
    DEEPSEEK_CHAT,
    DEEPSEEK_PREFILL,
    PROMPT_FORMATS,
    RAW_CHAT,
    PromptFormat,
    build_prompt,
    prompt_format,
)
from workbench.policy.retrieval import RetrievalPolicy, TacticPair, pairs_from_theorems
from workbench.policy.errors import (
    CircuitBreakerOpen,
    PolicyError,
    PolicyProtocolError,
    PolicyRequestRejected,
    PolicyUnavailable,
)
from workbench.policy.sglang import PolicyStats, SGLangConfig, SGLangPolicy

__all__ = [
    "Candidate", "Completion", "Policy", "candidates_from_completions", "extract_first_tactic",
    "extract_tactics", "has_forbidden", "normalize_tactic", "tactic_name", "DEEPSEEK_CHAT", "DEEPSEEK_PREFILL",
    "PROMPT_FORMATS", "RAW_CHAT", "PromptFormat", "build_prompt", "prompt_format", "RetrievalPolicy", "TacticPair",
    "pairs_from_theorems", "CircuitBreakerOpen", "PolicyError", "PolicyProtocolError", "PolicyRequestRejected",
    "PolicyStats", "PolicyUnavailable", "SGLangConfig", "SGLangPolicy",
]
