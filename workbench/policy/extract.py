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

FORBIDDEN = ("sorry", "admit", "cheat")
_FORBIDDEN_RE = re.compile(r"(?<![\w.'])(sorry|admit|cheat)(?![\w'])")
_FENCE_RE = re.compile(r"^\s*```")
_HEADER_RE = re.compile(r"^\s*(?:@\[[^\]]*\]\s*)?(?:(?:private|protected|noncomputable|nonrec)\s+)*"
                        r"(?:theorem|lemma|example|def|instance)\b")
_PREAMBLE_RE = re.compile(r"^\s*(?:import|open|set_option|namespace|section|end|universe|variable)\b")
_BY_AT_END = re.compile(r":=\s*by\b(.*)$", re.S)
_OPEN = {"(": ")", "[": "]", "{": "}", "⟨": "⟩", "⦃": "⦄", "⟪": "⟫"}
_CLOSE = {v: k for k, v in _OPEN.items()}


def has_forbidden(tactic: str) -> bool:
    """True if the tactic uses sorry, admit or cheat (never sent to Lean)."""
    return _FORBIDDEN_RE.search(strip_comments(tactic)) is not None


def strip_comments(text: str) -> str:
    """Remove ``--`` line comments and (nested) ``/- … -/`` block comments, keeping line structure."""
    out: list[str] = []
    i, depth, n = 0, 0, len(text)
    in_string = False
    while i < n:
        two = text[i:i + 2]
        if depth == 0 and not in_string and text[i] == '"':
            in_string = True
            out.append(text[i])
        elif in_string:
            if text[i] == "\\" and i + 1 < n:
                out.append(text[i:i + 2])
                i += 2
                continue
            if text[i] == '"':
                in_string = False
            out.append(text[i])
        elif two == "/-":
            depth += 1
            i += 2
            continue
        elif two == "-/" and depth > 0:
            depth -= 1
            i += 2
            continue
        elif depth > 0:
            if text[i] == "\n":
                out.append("\n")
        elif two == "--":
            while i < n and text[i] != "\n":
                i += 1
            continue
        else:
            out.append(text[i])
        i += 1
    return "".join(out)


def _fenced_body(lines: list[str]) -> list[str]:
    """The lines of the proof, out of any code fence."""
    fences = [i for i, line in enumerate(lines) if _FENCE_RE.match(line)]
    if not fences:
        return lines
    first = fences[0]
    if any(line.strip() for line in lines[:first]):
        # content before the first fence: the prompt left the fence open, this one closes it
        return lines[:first]
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
