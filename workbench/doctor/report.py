"""The doctor's report: one table (check, expected, found, verdict, what to do), its detail tables, and
``doctor.json`` (written atomically); the exit status is 3 when any check failed."""

from __future__ import annotations

import json
import os
import tempfile
import textwrap
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Sequence

from workbench.doctor.checks import Check, DetailTable, Verdict
from workbench.errors import EXIT_ENVIRONMENT, EXIT_OK, spell_settings

__all__ = ["DoctorReport", "render_table"]

_COLUMNS = (("check", 28), ("expected", 34), ("found", 40), ("verdict", 9), ("what to do", 46))


def _cells(check: Check, style: str) -> tuple[str, ...]:
    name = f"{check.system}: {check.name}" + (f" [{check.label}]" if check.label else "")
    verdict = str(check.verdict).upper() if check.verdict in (Verdict.FAIL, Verdict.WARN) else str(check.verdict)
    return name, check.expected, check.found, verdict, spell_settings(check.todo, style)


def render_table(columns: Sequence[tuple[str, int]], rows: Iterable[Sequence[Any]]) -> str:
    """A plain-text table whose cells wrap within their column's width."""
    def line(cells: Sequence[str]) -> list[str]:
        wrapped = [textwrap.wrap(str(c), w) or [""] for c, (_, w) in zip(cells, columns)]
        height = max(len(w) for w in wrapped)
        return ["  ".join((w[i] if i < len(w) else "").ljust(width) for w, (_, width) in zip(wrapped, columns)).rstrip()
                for i in range(height)]

    out = line([name for name, _ in columns])
    out.append("  ".join("-" * w for _, w in columns))
    for row in rows:
        out.extend(line([str(c) for c in row]))
    return "\n".join(out)


@dataclass(frozen=True)
class DoctorReport:
    checks: tuple[Check, ...]
    tables: tuple[DetailTable, ...] = ()
    configuration: dict[str, Any] = field(default_factory=dict)  # what was checked (commands, URLs)
    duration_s: float = 0.0
    style: str = "cli"  # advice names settings as CLI flags ("cli") or notebook parameters ("notebook")

    @property
    def failed(self) -> tuple[Check, ...]:
        return tuple(c for c in self.checks if c.verdict is Verdict.FAIL)

    @property
    def exit_status(self) -> int:
        return EXIT_ENVIRONMENT if self.failed else EXIT_OK

    def failure_lines(self) -> list[str]:
        return [f"{c.system}: {c.name}: found {c.found}; {spell_settings(c.todo, self.style)}" for c in self.failed]

    def counts(self) -> dict[str, int]:
        return {str(v): sum(c.verdict is v for c in self.checks) for v in Verdict if any(c.verdict is v for c in self.checks)}

    def text(self) -> str:
        """The table, then each detail table, then one verdict line."""
        parts = [render_table(_COLUMNS, (_cells(c, self.style) for c in self.checks))]
        for t in self.tables:
            widths = [max(len(str(x)) for x in [name, *(r[i] for r in t.rows)]) for i, name in enumerate(t.columns)]
            title = f"{t.system}: {t.title}" + (f" [{t.label}]" if t.label else "")
            parts.append(title + "\n" + render_table(list(zip(t.columns, (min(w, 60) for w in widths))), t.rows))
        summary = ", ".join(f"{n} {v}" for v, n in self.counts().items())
        verdict = (f"{len(self.failed)} check(s) failed: fix them before mining" if self.failed
                   else "no check failed")
        parts.append(f"doctor: {summary} ({self.duration_s:.0f} s): {verdict}")
        return "\n\n".join(parts)

    def as_dict(self) -> dict[str, Any]:
        return {"exit_status": self.exit_status, "counts": self.counts(), "duration_s": round(self.duration_s, 2),
                "configuration": self.configuration, "checks": [c.as_dict(self.style) for c in self.checks],
                "tables": [t.as_dict() for t in self.tables]}

    def frame(self) -> Any:
        """The table as a pandas DataFrame (notebooks)."""
        import pandas as pd

        return pd.DataFrame([dict(zip([n for n, _ in _COLUMNS], _cells(c, self.style))) for c in self.checks])

    def write(self, path: str | Path) -> Path:
        """``doctor.json``, atomically (a temporary file renamed into place)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                json.dump(self.as_dict(), f, indent=2, ensure_ascii=False, default=str)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return path
