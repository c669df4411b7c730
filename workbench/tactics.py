"""Pure rules about tactic text, shared by the policy, the simulator and the miner."""

from __future__ import annotations


def normalize_tactic(tactic: str) -> str:
    """Whitespace-insensitive form used to compare, dedupe and recognise ground-truth tactics."""
    return " ".join(tactic.split())


def tactic_name(tactic: str) -> str:
    """The tactic's head word (``rw [foo] at h`` → ``rw``; a ``·`` bullet is skipped); ``""`` if empty."""
    words = tactic.replace("·", " ").split()
    return words[0] if words else ""
