"""Tactic extraction from raw model output (pure).

Model output comes in several shapes: a bare tactic block, a ```lean4 fence (possibly repeating the
``/- tactic state: -/`` comment), a whole ``theorem … := by`` declaration, or the continuation of an
open fence that ends with a closing fence. ``extract_tactics`` returns every tactic of the proof in
order; a tactic is one line at the block's base indentation together with its more-indented
continuation lines (``have … := by`` blocks, ``calc`` steps), ``|`` alternatives and ``<;>``
continuations, and every line needed to balance brackets.
"""

from __future__ import annotations

import re

from workbench.tactics import normalize_tactic, tactic_name  # noqa: F401  (re-exported)

FORBIDDEN = ("sorry", "admit", "cheat", "sorryAx")
# The sorry family: the `sorry` term/tactic, `admit`, and the axiom they elaborate to (`sorryAx`, also written
# `Lean.sorryAx` / `@sorryAx`), which Pantograph reports as hasSorry (Repl.lean: `hasSorry := parentExpr.hasSorry`).
_FORBIDDEN_RE = re.compile(r"(?<![\w.'])(?:_root_\.)?(?:Lean\.)?(sorry|admit|cheat|sorryAx)(?![\w'])")
_FENCE_RE = re.compile(r"^\s*```")
_HEADER_RE = re.compile(r"^\s*(?:@\[[^\]]*\]\s*)?(?:(?:private|protected|noncomputable|nonrec)\s+)*"
                        r"(?:theorem|lemma|example|def|instance)\b")
_PREAMBLE_RE = re.compile(r"^\s*(?:import|open|set_option|namespace|section|end|universe|variable)\b")
_BY_AT_END = re.compile(r":=\s*by\b(.*)$", re.S)
_OPEN = {"(": ")", "[": "]", "{": "}", "⟨": "⟩", "⦃": "⦄", "⟪": "⟫"}
_CLOSE = {v: k for k, v in _OPEN.items()}


def has_forbidden(tactic: str) -> bool:
    """True if the tactic uses sorry, admit, cheat or sorryAx (never sent to Lean)."""
    return _FORBIDDEN_RE.search(strip_comments(tactic)) is not None


_COMMENT_OR_STRING = re.compile(r'--|/-|"')
_BLOCK_MARK = re.compile(r"/-|-/")
_STRING_BODY = re.compile(r'(?:[^"\\]|\\.)*"?', re.S)  # after the opening quote: escapes, then the close


def strip_comments(text: str) -> str:
    """Remove ``--`` line comments and (nested) ``/- … -/`` block comments, keeping line structure.

    Jumps from marker to marker with regexes (this runs on every candidate and every model output);
    text without a comment opener is returned as is.
    """
    if "--" not in text and "/-" not in text:
        return text
    out: list[str] = []
    i, n = 0, len(text)
    while (m := _COMMENT_OR_STRING.search(text, i)) is not None:
        out.append(text[i:m.start()])
        if m.group() == '"':  # a string literal: kept verbatim, comment markers inside it are text
            j = _STRING_BODY.match(text, m.end()).end()
            out.append(text[m.start():j])
        elif m.group() == "--":  # line comment: up to (not including) the newline
            j = text.find("\n", m.end())
            j = n if j < 0 else j
        else:  # block comment, nested: keep only its newlines
            j, depth = m.end(), 1
            while depth and (b := _BLOCK_MARK.search(text, j)) is not None:
                depth += 1 if b.group() == "/-" else -1
                j = b.end()
            j = n if depth else j
            out.append("\n" * text.count("\n", m.end(), j))
        i = j
    out.append(text[i:])
    return "".join(out)


def _fenced_body(lines: list[str]) -> list[str]:
    """The lines of the proof, out of any code fence."""
    fences = [i for i, line in enumerate(lines) if _FENCE_RE.match(line)]
    if not fences:
        return lines
    first = fences[0]
    if any(line.strip() for line in lines[:first]):
        if lines[first].strip() == "```":
            # a bare fence after content: the prompt left the fence open (a pre-filled turn), this one closes it
            return lines[:first]
        # prose, then an opening ```lean4 fence (a chat answer): the code block is the proof
    end = fences[1] if len(fences) > 1 else len(lines)
    return lines[first + 1:end]


def _drop_header(lines: list[str]) -> tuple[str | None, list[str]]:
    """Drop a ``theorem … := by`` declaration (and the preamble before it).

    Returns (tactic written on the ``:= by`` line itself, if any; the lines after the header).
    """
    start = next((i for i, line in enumerate(lines) if _HEADER_RE.match(line)), None)
    if start is not None:
        for j in range(start, len(lines)):
            m = _BY_AT_END.search(lines[j])
            if m:
                rest = m.group(1).strip()
                return (rest or None), lines[j + 1:]
        return None, []  # a term-mode declaration: no tactics
    # No header: drop leading file-level lines (`import`, `open Foo` without `in`, ...) and a bare `by`.
    k = 0
    while k < len(lines):
        line = lines[k].strip()
        if not line or line == "by" or (_PREAMBLE_RE.match(line) and not re.search(r"\bin\b", line)):
            k += 1
        else:
            break
    return None, lines[k:]


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip(" \t"))


def _bracket_depth(text: str, depth: int) -> int:
    for ch in text:
        if ch in _OPEN:
            depth += 1
        elif ch in _CLOSE:
            depth = max(0, depth - 1)
    return depth


def _dedent(block: list[str]) -> str:
    base = min((_indent(line) for line in block if line.strip()), default=0)
    return "\n".join(line[base:] if _indent(line) >= base else line.lstrip() for line in block).strip()


def split_tactics(body: str) -> list[str]:
    """Split a tactic block (no comments, no fences) into top-level tactics."""
    lines = [line.rstrip() for line in body.split("\n")]
    lines = [line for line in lines if line.strip()]
    if not lines:
        return []
    base = _indent(lines[0])
    tactics: list[list[str]] = []
    depth = 0
    for line in lines:
        stripped = line.strip()
        continues = tactics and (
            depth > 0                                  # inside an unclosed bracket
            or _indent(line) > base                    # indented block / continuation
            or stripped.startswith(("|", "<;>"))       # match alternatives, combinator continuation
            or tactics[-1][-1].rstrip().endswith((" in", "<;>"))  # `open Foo in` / `t <;>` then the tactic
        )
        if _indent(line) < base and depth == 0 and tactics:
            break  # dedented past the block: the proof is over (e.g. trailing prose)
        if continues:
            tactics[-1].append(line)
        else:
            tactics.append([line])
        depth = _bracket_depth(stripped, depth)
    return [_dedent(block) for block in tactics]


def extract_tactics(raw_text: str) -> list[str]:
    """Every tactic of the model's proof, in order (for the chain walk); may be empty."""
    text = raw_text.replace("\r\n", "\n").replace("\t", "  ")
    lines = _fenced_body(text.split("\n"))
    lines = strip_comments("\n".join(lines)).split("\n")
    inline, lines = _drop_header(lines)
    tactics = ([inline] if inline else []) + split_tactics("\n".join(lines))
    return [t for t in tactics if t and t not in ("by", ":= by")]


def extract_first_tactic(raw_text: str) -> str | None:
    """The first tactic of the model's output, or None if there is none."""
    tactics = extract_tactics(raw_text)
    return tactics[0] if tactics else None


def usable_chain(tactics: list[str]) -> list[str]:
    """The tactics up to (not including) the first that uses sorry/admit/cheat."""
    out: list[str] = []
    for t in tactics:
        if has_forbidden(t):
            break
        out.append(t)
    return out
