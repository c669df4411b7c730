"""Prompt formats for the tactic generator (pure): the text sent to ``/generate`` and its stop strings.

The user message is ``state_text(state, template)`` — the same function the encoders use, so the
text the policy reads and the text the EBM embeds cannot drift apart. ``chat`` is the whole prompt
around it: ``{message}`` is the user message, ``{state}`` the bare state (for an assistant turn
pre-filled with the tactic state). No begin-of-sentence token: SGLang's tokenizer adds one itself
when it encodes ``/generate`` text, so writing it here too would double it (SPEC §2).

Named formats (SPEC §2, the reference's two assistant-turn variants):

* ``deepseek-prefill`` (default): the assistant turn is pre-filled with the fenced tactic state and
  ``example := by`` plus a two-space indent, and generation stops at a closing fence or a blank
  line, so the model writes only the next tactic(s).
* ``deepseek-chat``: nothing after ``<｜Assistant｜>``, no stop strings: the model answers a whole
  fenced proof (the February generate-negatives form; every sample runs long).

Other models: a template file (:func:`prompt_format_from_file`).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

from workbench.encode.text import DEFAULT_TEMPLATE, STATE_PLACEHOLDER, check_template, state_text

MESSAGE_PLACEHOLDER = "{message}"
TACTIC_STATE_OPEN = "/- tactic state:\n"
TACTIC_STATE_CLOSE = "\n-/"
DEEPSEEK_CHAT = "<｜User｜>" + MESSAGE_PLACEHOLDER + "<｜Assistant｜>"
DEEPSEEK_PREFILL = (DEEPSEEK_CHAT + "```lean4\n" + TACTIC_STATE_OPEN + STATE_PLACEHOLDER + TACTIC_STATE_CLOSE
                    + "\nexample := by\n  ")
RAW_CHAT = MESSAGE_PLACEHOLDER
PREFILL_STOP = ("```", "\n\n")
_PLACEHOLDER_RE = re.compile(re.escape(MESSAGE_PLACEHOLDER) + "|" + re.escape(STATE_PLACEHOLDER))


@dataclass(frozen=True, slots=True)
class PromptFormat:
    name: str = "deepseek-prefill"
    template: str = DEFAULT_TEMPLATE   # user message around the state (see workbench.encode.text)
    chat: str = DEEPSEEK_PREFILL       # the whole prompt: {message} and/or {state}
    stop: tuple[str, ...] = PREFILL_STOP
    source: str | None = None          # the template file it was read from, if any

    def __post_init__(self) -> None:
        check_template(self.template)
        object.__setattr__(self, "stop", tuple(self.stop))
        if self.chat.count(MESSAGE_PLACEHOLDER) > 1 or not _PLACEHOLDER_RE.search(self.chat):
            raise ValueError(f"prompt format {self.name!r}: the prompt must contain {MESSAGE_PLACEHOLDER!r} at most "
                             f"once and {MESSAGE_PLACEHOLDER!r} or {STATE_PLACEHOLDER!r} at least once: {self.chat!r}")
        if any(not isinstance(s, str) or not s for s in self.stop):
            raise ValueError(f"prompt format {self.name!r}: stop strings must be non-empty strings, got {self.stop!r}")

    def build(self, state_pp: str) -> str:
        # One pass, so a state that happens to contain "{message}" is not substituted again.
        message = state_text(state_pp, self.template)
        return _PLACEHOLDER_RE.sub(lambda m: message if m.group(0) == MESSAGE_PLACEHOLDER else state_pp, self.chat)

    @property
    def answer_prefix(self) -> str:
        """The indentation the prompt leaves open (a pre-filled ``:= by`` line's next-line indent).

        The model's first line continues it, so extraction reads ``answer_prefix + text``: without it the
        first tactic would sit at column 0 and the following ones (indented) would look like its body.
        """
        tail = _PLACEHOLDER_RE.split(self.chat)[-1]
        last_line = tail[tail.rfind("\n") + 1:] if "\n" in tail else ""
        return last_line if last_line and not last_line.strip() else ""

    def provenance(self) -> dict:
        return {"name": self.name, "chat": self.chat, "template": self.template, "stop": list(self.stop),
                "source": self.source}


PROMPT_FORMATS: dict[str, PromptFormat] = {
    "deepseek-prefill": PromptFormat(),
    "deepseek-chat": PromptFormat(name="deepseek-chat", chat=DEEPSEEK_CHAT, stop=()),
}
DEFAULT_PROMPT_FORMAT = "deepseek-prefill"


def prompt_format_from_file(path: str | Path) -> PromptFormat:
    """A user prompt format: a text file holding the whole prompt, or a JSON file with stop strings.

    Text: the file's content is the prompt, with ``{state}`` (the bare state) and/or ``{message}``
    (the DeepSeek-Prover user message); no stop strings. JSON: ``{"prompt": "...", "stop": [...],
    "name": "..."}`` (``stop`` and ``name`` optional).
    """
    p = Path(path)
    raw = p.read_text(encoding="utf-8")
    if p.suffix == ".json":
        try:
            obj = json.loads(raw)
        except json.JSONDecodeError as e:
            raise ValueError(f"{p}: line {e.lineno}: not valid JSON ({e.msg})") from e
        if not isinstance(obj, dict) or not isinstance(obj.get("prompt"), str):
            raise ValueError(f"{p}: expected an object with a string field 'prompt'")
        unknown = set(obj) - {"prompt", "stop", "name"}
        if unknown:
            raise ValueError(f"{p}: unknown field(s) {sorted(unknown)}; expected prompt, stop, name")
        stop = obj.get("stop", [])
        if not isinstance(stop, list):
            raise ValueError(f"{p}: field 'stop' must be a list of strings")
        chat, name = obj["prompt"], str(obj.get("name") or p.stem)
    else:
        chat, stop, name = raw, [], p.stem
    try:
        return PromptFormat(name=name, chat=chat, stop=tuple(stop), source=str(p))
    except ValueError as e:
        raise ValueError(f"{p}: {e}") from e


def prompt_format(spec: str | PromptFormat | None) -> PromptFormat:
    """A named format (``deepseek-prefill``, ``deepseek-chat``) or a template file's path."""
    if isinstance(spec, PromptFormat):
        return spec
    spec = spec or DEFAULT_PROMPT_FORMAT
    if spec in PROMPT_FORMATS:
        return PROMPT_FORMATS[spec]
    if Path(spec).is_file():
        return prompt_format_from_file(spec)
    raise ValueError(f"prompt format {spec!r} is neither one of {sorted(PROMPT_FORMATS)} nor an existing template file")


def build_prompt(state_pp: str, fmt: PromptFormat = PromptFormat()) -> str:
    """The prompt sent to the model for ``state_pp``."""
    return fmt.build(state_pp)


def state_from_prompt(prompt: str) -> str | None:
    """Recover the state from a prompt built with a tactic-state comment (used by the stand-in server)."""
    start = prompt.find(TACTIC_STATE_OPEN)
    if start < 0:
        return None
    start += len(TACTIC_STATE_OPEN)
    end = prompt.find(TACTIC_STATE_CLOSE, start)  # the first comment: a pre-filled turn repeats it
    return prompt[start:end] if end >= 0 else None
