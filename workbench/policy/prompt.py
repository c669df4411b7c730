"""Prompt building for DeepSeek-Prover-style models (pure).

The user message is ``state_text(state, template)`` — the same function the encoders use, so the
text the policy reads and the text the EBM embeds cannot drift apart. ``chat`` wraps the message in
the model's chat format. The default is DeepSeek-Prover-V2's turn markers without the
begin-of-sentence token, which SGLang's tokenizer adds itself when it encodes ``/generate`` text
(writing it here too would double it). Use ``RAW_CHAT`` for base models that continue plain text.
"""

from __future__ import annotations

from dataclasses import dataclass

from workbench.encode.text import DEFAULT_TEMPLATE, check_template, state_text

MESSAGE_PLACEHOLDER = "{message}"
DEEPSEEK_CHAT = "<｜User｜>" + MESSAGE_PLACEHOLDER + "<｜Assistant｜>"
RAW_CHAT = MESSAGE_PLACEHOLDER
TACTIC_STATE_OPEN = "/- tactic state:\n"
TACTIC_STATE_CLOSE = "\n-/"


@dataclass(frozen=True, slots=True)
class PromptFormat:
    template: str = DEFAULT_TEMPLATE   # user message around the state (see workbench.encode.text)
    chat: str = DEEPSEEK_CHAT          # chat wrapper around the message

    def __post_init__(self) -> None:
        check_template(self.template)
        if self.chat.count(MESSAGE_PLACEHOLDER) != 1:
            raise ValueError(f"chat format must contain {MESSAGE_PLACEHOLDER!r} exactly once: {self.chat!r}")

    def build(self, state_pp: str) -> str:
        return self.chat.replace(MESSAGE_PLACEHOLDER, state_text(state_pp, self.template))


def build_prompt(state_pp: str, fmt: PromptFormat = PromptFormat()) -> str:
    """The prompt sent to the model for ``state_pp``."""
    return fmt.build(state_pp)


def state_from_prompt(prompt: str) -> str | None:
    """Recover the state from a prompt built with a tactic-state comment (used by the stand-in server)."""
    start = prompt.find(TACTIC_STATE_OPEN)
    if start < 0:
        return None
    start += len(TACTIC_STATE_OPEN)
    end = prompt.rfind(TACTIC_STATE_CLOSE)
    return prompt[start:end] if end >= start else None
