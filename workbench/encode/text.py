"""The one string encoded for a proof state (pure).

Training, evaluation and search scoring must all encode exactly the same text for a state: the
reference implementation used three different strings and never noticed. Every caller goes through
``state_text``; the template is stored with the embeddings (``EncoderIdentity.template``) so a cache
built with one template is never mixed with another.
"""

from __future__ import annotations

STATE_PLACEHOLDER = "{state}"

# DeepSeek-Prover user message (SPEC §2): the state sits in a tactic-state comment inside a lean4 fence.
DEEPSEEK_PROVER_TEMPLATE = (
    "Complete the following Lean 4 code:\n\n```lean4\n/- tactic state:\n" + STATE_PLACEHOLDER + "\n-/\n```"
)
# The bare state, for encoders that gain nothing from the instruction text.
PLAIN_TEMPLATE = STATE_PLACEHOLDER

DEFAULT_TEMPLATE = DEEPSEEK_PROVER_TEMPLATE


def check_template(template: str) -> str:
    """Return ``template`` if it holds exactly one ``{state}`` placeholder, else raise ValueError."""
    count = template.count(STATE_PLACEHOLDER)
    if count != 1:
        raise ValueError(
            f"state template must contain {STATE_PLACEHOLDER!r} exactly once, found {count} in {template!r}"
        )
    return template


def state_text(state_pp: str, template: str = DEFAULT_TEMPLATE) -> str:
    """The string encoded for ``state_pp`` (canonical state text) under ``template``.

    Plain substitution rather than ``str.format``: states contain braces (set-builder notation,
    structure instances) and the template may too.
    """
    check_template(template)
    return template.replace(STATE_PLACEHOLDER, state_pp)
