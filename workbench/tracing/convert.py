"""Tactic invocations of one processed file → the workbench's trace format (LeanDojo's), grouped by theorem.

Pure: the caller hands the file's bytes and the ``frontend.process`` units (with their invocations). Rules:

* a unit is one command; a theorem is a unit with invocations, named by the constant it defines
  (``newConstants``: constants new in the unit that have declaration ranges, Frontend/Elab.lean v0.3.4
  L185-195), the one matching the ``theorem``/``lemma`` name written in the unit when there are several;
* its steps are its invocations in order, states turned into canonical LeanDojo text
  (:func:`workbench.lean.protocol.state_from_invocation`); as LeanDojo does, steps whose state before is
  ``no goals`` or equals the state after are left out (ExtractData.lean v1.8.2 L301-302). Pantograph keeps
  nested tactics (every original, substantive TacticInfo: Frontend/Elab.lean v0.3.4 L78-86), as LeanDojo
  keeps the steps of nested tactic blocks; the walk's alignment already follows either;
* a unit with an error message did not elaborate in this Lean: its theorem is left out, counted and named.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Sequence

from workbench.lean.protocol import CompilationUnit, Severity, state_from_invocation
from workbench.states import NO_GOALS

__all__ = ["FileTrace", "file_trace", "position"]

_DECL = re.compile(r"(?:^|\s)(?:theorem|lemma)\s+([^\s:({\[⦃]+)")


@dataclass
class FileTrace:
    theorems: list[dict[str, Any]] = field(default_factory=list)  # LeanDojo theorem entries
    skipped: Counter = field(default_factory=Counter)  # reason -> theorems left out
    named: list[str] = field(default_factory=list)  # "<name>: <reason>" for the first few left out

    @property
    def steps(self) -> int:
        return sum(len(t["traced_tactics"]) for t in self.theorems)


def position(data: bytes, offset: int) -> list[int]:
    """[line, column] (1-based, columns in characters) of a byte offset, as LeanDojo's ``start``/``end``."""
    before = data[:offset]
    line_start = before.rfind(b"\n") + 1
    return [before.count(b"\n") + 1, len(before[line_start:].decode("utf-8", errors="replace")) + 1]


def _name(unit: CompilationUnit, source: str) -> str | None:
    constants = list(unit.new_constants or ())
    m = _DECL.search(source)
    if m:
        written = m.group(1).removeprefix("_root_.")
        matching = [c for c in constants if c == written or c.endswith("." + written)]
        if matching:
            return min(matching, key=len)
    return constants[0] if len(constants) == 1 else None


def file_trace(file_path: str, data: bytes, units: Sequence[CompilationUnit], *, url: str = "",
               commit: str = "", max_named: int = 20) -> FileTrace:
    """The theorems of one file (``file_path`` relative to the source root, as LeanDojo writes it)."""
    out = FileTrace()

    def skip(name: str, reason: str, detail: str = "") -> None:
        out.skipped[reason] += 1
        if len(out.named) < max_named:
            out.named.append(f"{file_path}: {name}: {reason}{': ' + detail if detail else ''}")

    for unit in units:
        if not unit.invocations:
            continue  # no tactic block: a term-mode proof, a namespace, an `open` ...
        start, end = unit.boundary
        source = data[start:end].decode("utf-8", errors="replace")
        name = _name(unit, source)
        if name is None:
            skip(f"bytes {start}-{end}", "unnamed")
            continue
        errors = [m for m in unit.messages if m.severity is Severity.ERROR]
        if errors:
            skip(name, "elab_error", (errors[0].data.splitlines() or [""])[0][:160])
            continue
        steps = []
        for inv in unit.invocations:
            before, after = state_from_invocation(inv.goal_before), state_from_invocation(inv.goal_after)
            if before == NO_GOALS or before == after:
                continue
            steps.append({"tactic": inv.tactic, "state_before": before, "state_after": after,
                          "used_constants": list(inv.used_constants)})
        if not steps:
            skip(name, "no_steps")
            continue
        stripped_end = start + len(data[start:end].rstrip())
        out.theorems.append({"url": url, "commit": commit, "file_path": file_path, "full_name": name,
                             "start": position(data, start), "end": position(data, stripped_end),
                             "traced_tactics": steps})
    return out
