"""The simulator's Lean source files: placeholder files for the theorems it holds, and how it splits a
file into commands as Lean's frontend does (pure; ``frontend.process`` in :mod:`workbench.lean.simulator`).

Real Lean parses a file into commands; each ``frontend.process`` unit is one command, from the command's
first byte to where the parser stopped after it, trailing whitespace and comments included
(Frontend/Basic.lean v0.3.4 L99-112: ``src := input.extract cmdPos parserState.pos``; boundaries are byte
offsets, Repl.lean v0.3.4 L205). With ``readHeader`` the header (``import`` lines) is parsed first and is no
unit (Frontend/Basic.lean L147-159: the first command starts at the parser position after the header).

The simulator is no parser: a command starts at a non-blank line at column 0 that is not a comment
(Mathlib indents every continuation line); ``namespace``/``section``/``end`` are tracked so a declared
``theorem``/``lemma`` gets its full name, and ``open`` lines are collected per scope.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Iterable, Sequence

__all__ = ["SourceCommand", "split_commands", "source_text", "scope_namespaces", "PLACEHOLDER_MARK"]

PLACEHOLDER_MARK = "-- workbench simulator source: a placeholder the SIMULATOR reads, not Mathlib"

_DECL = re.compile(r"^(?:@\[[^\]]*\]\s*)?(?:(?:private|protected|noncomputable|nonrec)\s+)*"
                   r"(theorem|lemma)\s+([^\s:({\[⦃]+)")
_IMPORT = re.compile(r"^import\s")


@dataclass(frozen=True, slots=True)
class SourceCommand:
    start: int  # UTF-8 byte offsets [start, end)
    end: int
    text: str
    kind: str  # theorem | namespace | section | end | open | import | other
    name: str | None = None  # theorem: its full name (the enclosing namespaces + the declared name)
    opens: tuple[str, ...] = ()  # namespaces opened in the enclosing scopes when the command starts
    namespace: str = ""  # the current namespace when the command starts
    opens_written: tuple[str, ...] = ()  # an `open` command: the namespaces it names


def _starts_command(line: str, in_comment: bool) -> bool:
    return bool(line) and not line[:1].isspace() and not in_comment and not line.startswith("--") \
        and not (line.startswith("/-") and not line.startswith("/-!"))


def split_commands(text: str, *, read_header: bool) -> list[SourceCommand]:
    """The file's commands in order. ``read_header``: leading ``import`` lines form the header (no unit);
    otherwise they are commands (Lean then reports them as errors)."""
    lines = text.splitlines(keepends=True)
    starts: list[int] = []  # line indexes where a command starts
    in_comment = False
    header_done = not read_header
    for i, line in enumerate(lines):
        if _starts_command(line.rstrip("\n"), in_comment):
            if not header_done and _IMPORT.match(line):
                continue
            header_done = True
            starts.append(i)
        # a block comment `/- ... -/` spanning lines hides column-0 text inside it
        if in_comment:
            in_comment = "-/" not in line
        else:
            k = line.rfind("/-")
            in_comment = k >= 0 and "-/" not in line[k + 2:]
    offsets = [0]
    for line in lines:
        offsets.append(offsets[-1] + len(line.encode("utf-8")))
    commands: list[SourceCommand] = []
    scopes: list[tuple[str, str, list[str]]] = [("", "", [])]  # (kind, name, opens) innermost last
    for n, i in enumerate(starts):
        j = starts[n + 1] if n + 1 < len(starts) else len(lines)
        body = "".join(lines[i:j])
        first = lines[i].strip()
        word = first.split(maxsplit=1)[0] if first else ""
        arg = first.split(maxsplit=1)[1].strip() if len(first.split(maxsplit=1)) > 1 else ""
        opens = tuple(o for _, _, os in scopes for o in os)
        namespace = ".".join(name for kind, name, _ in scopes if kind == "namespace" and name)
        kind, name = "other", None
        m = _DECL.match(first)
        if m:
            kind = "theorem"
            declared = m.group(2).removeprefix("_root_.")
            name = declared if m.group(2).startswith("_root_.") or not namespace else f"{namespace}.{declared}"
        elif word in ("namespace", "section"):
            kind = word
            scopes.append((word, arg.split()[0] if arg else "", []))
        elif word == "end":
            kind = "end"
            if len(scopes) > 1:
                scopes.pop()
        elif word == "open":
            kind = "open"
            named = tuple(w for w in arg.split() if w not in ("scoped", "in") and not w.startswith("("))
            if not re.search(r"\sin\s*$|\sin\s", first):  # `open Foo in <cmd>` scopes one command only
                scopes[-1][2].extend(named)
        elif word == "import":
            kind = "import"
        commands.append(SourceCommand(offsets[i], offsets[j], body, kind, name, opens, namespace,
                                      named if kind == "open" else ()))
    return commands


def scope_namespaces(text: str) -> tuple[str, ...]:
    """The namespaces a short name resolves through in the scope open at the end of ``text`` (what
    ``inheritEnv`` leaves the REPL, Repl.lean v0.3.4 L231-235): the ``open`` ones and the current namespace
    with its ancestors (Lean resolves ``succ_le`` to ``Nat.succ_le`` inside ``namespace Nat``)."""
    last = split_commands(text + "\nexample : True := trivial\n", read_header=False)[-1]
    parts = last.namespace.split(".") if last.namespace else []
    return tuple(dict.fromkeys((*last.opens, *(".".join(parts[:i]) for i in range(1, len(parts) + 1)))))


def source_text(theorems: Iterable[tuple[str, Sequence[str], str | None]], imports: Sequence[str] = ("Mathlib",),
                opens: Sequence[str] = ()) -> str:
    """A placeholder Lean file declaring ``(full name, tactics, statement)`` in order, each inside the
    namespace its name implies, after ``open`` of ``opens``: the scope a real file that compiles has (every
    short name its proofs write resolves in it)."""
    out = [f"import {m}" for m in imports] + ["", PLACEHOLDER_MARK, ""]
    if opens:
        out += [f"open {' '.join(opens)}", ""]
    current = ""
    for full_name, tactics, statement in theorems:
        namespace, _, short = full_name.rpartition(".")
        if namespace != current:
            if current:
                out += [f"end {current}", ""]
            if namespace:
                out += [f"namespace {namespace}", ""]
            current = namespace
        if statement:
            signature = re.sub(r"^(theorem|lemma)\s+\S+\s*", "", " ".join(statement.split()))
            signature = re.sub(r"\s*:=\s*(by)?\s*$", "", signature)
        else:
            out.append("-- the trace holds no statement: the simulator knows the theorem by its name")
            signature = ": _"
        out.append(f"theorem {short} {signature} := by")
        out += ["  " + line for t in tactics for line in t.splitlines()]
        out.append("")
    if current:
        out += [f"end {current}", ""]
    return "\n".join(out)
