"""A source file's scope at a declaration, as Lean commands to re-create it (pure; ``mine --source-root``).

Pantograph runs every command in the REPL's one stored scope (``currNamespace``, ``openDecls``, options:
Repl.lean v0.3.4 L45-58 ``runCoreM``; level names and ``noncomputable`` L88-98), empty by default (L21).
``frontend.process`` with ``inheritEnv`` replaces that scope with the innermost scope open at the end of
the processed text (L231-235). The *prelude* built here is the file's scope-forming commands before the
declaration — ``namespace``/``section`` (those still open), ``open`` (not ``open … in``), ``variable``,
``universe``, ``set_option``, local ``notation``/``infix``/``macro``/``instance``/``attribute [local …]`` —
without its declarations, which the REPL's imported environment already has (the REPL imports the project),
so processing it on top of the REPL's environment (``readHeader`` false) re-creates the file's scope.

Like Lean, a command starts at column 0 and indented lines continue it. This is a reading of the text, not
Lean's parser: ``open … in`` and commands inside block comments are skipped; a prelude that Lean rejects is
reported by the caller (who then starts without it).
"""

from __future__ import annotations

import re

__all__ = ["file_scope", "declaration_line"]

_SCOPE_WORDS = ("open", "variable", "universe", "set_option", "namespace", "section", "end", "noncomputable section",
                "local notation", "local infix", "local infixl", "local infixr", "local prefix", "local postfix",
                "local macro", "local instance", "scoped", "attribute [local", "local attribute", "notation3",
                "local notation3", "open scoped")
_DECL = re.compile(r"^(?:@\[[^\]]*\]\s*)?(?:(?:private|protected|noncomputable|nonrec)\s+)*(?:theorem|lemma)\s+(\S+)")


def _commands(lines: list[str]) -> list[tuple[int, list[str]]]:
    """(first line index, lines) of each column-0 command, block comments and ``--`` lines left out."""
    out: list[tuple[int, list[str]]] = []
    in_comment = False
    for i, line in enumerate(lines):
        if in_comment:
            in_comment = "-/" not in line
            continue
        k = line.find("/-")
        if k == 0 and "-/" not in line[2:]:
            in_comment = True
            continue
        if not line.strip() or line.startswith("--") or line.startswith("/-"):
            continue
        if line[:1].isspace() and out:
            out[-1][1].append(line)
        else:
            out.append((i, [line]))
    return out


def _names(written: str, full_name: str) -> bool:
    written = written.removeprefix("_root_.")
    return full_name == written or full_name.endswith("." + written)


def declaration_line(text: str, full_name: str, hint: int | None = None) -> int | None:
    """1-based line of the ``theorem``/``lemma`` declaring ``full_name`` (its written name is a suffix):
    ``hint`` (the trace's ``start`` line) when that line declares it, else the first such line; None: none."""
    lines = text.splitlines()
    if hint is not None and 0 < hint <= len(lines):
        m = _DECL.match(lines[hint - 1])
        if m and _names(m.group(1), full_name):
            return hint
    for i, line in enumerate(lines):
        m = _DECL.match(line)
        if m and _names(m.group(1), full_name):
            return i + 1
    return None


def file_scope(text: str, line: int) -> str:
    """The prelude re-creating the file's scope at 1-based ``line`` ("" when the file opens nothing there)."""
    lines = text.splitlines()[: max(0, line - 1)]
    kept: list[tuple[str, list[str]]] = []  # (kind, command lines), scopes still open
    for _, cmd in _commands(lines):
        head = " ".join(cmd[0].split())
        word = head.split(" ", 1)[0]
        if word == "import" or not any(head == w or head.startswith(w + " ") or head.startswith(w) and w.endswith("[local")
                                       for w in _SCOPE_WORDS):
            continue
        if word == "open" and re.search(r"\sin$", " ".join(" ".join(cmd).split())):
            continue  # `open Foo in <command>`: scopes that one command
        if word == "end":
            # drop everything since the matching namespace/section opened (its scope is closed)
            for j in range(len(kept) - 1, -1, -1):
                if kept[j][0] == "open_scope":
                    del kept[j:]
                    break
            continue
        kind = "open_scope" if word in ("namespace", "section") or head.startswith("noncomputable section") else "cmd"
        kept.append((kind, cmd))
    return "".join(line + "\n" for _, cmd in kept for line in cmd)
