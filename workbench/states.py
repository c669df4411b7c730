"""One canonical text for a Lean proof state.

Records written by the project all use :func:`render_state`, whether the state came from a LeanDojo
trace (`state_before`, Lean's pretty-printed goal list) or from Pantograph's goal JSON. The two
sources differ in layout only: LeanDojo groups binders (``a b : ℝ``) and breaks long lines where the
printer width ran out, Pantograph prints one variable per entry and breaks lines inside each
expression. Parsing either into :class:`Goal` records and rendering those back removes the
difference, so a model cannot learn the source instead of provability (SPEC §4). Pantograph's goal JSON is
read and written by ``workbench.lean.protocol``, the one module that knows its spelling.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Iterable, Mapping, Sequence

NO_GOALS = "no goals"
TURNSTILE = "⊢"
INACCESSIBLE_MARK = "✝"


@dataclass(frozen=True, slots=True)
class Hypothesis:
    name: str
    type: str
    value: str | None = None  # let-bound value

    def __str__(self) -> str:
        return _hyp_line((self.name,), self.type, self.value)


@dataclass(frozen=True, slots=True)
class Goal:
    target: str
    hypotheses: tuple[Hypothesis, ...] = ()
    case: str | None = None  # case tag, e.g. "h" or "cons.refine_1"

    def __str__(self) -> str:
        return render_state((self,))


def collapse(text: str) -> str:
    """Collapse every whitespace run to one space (line breaking depends on the printer width)."""
    return " ".join(text.split())


def _hyp_line(names: Sequence[str], type_: str, value: str | None) -> str:
    joined = " ".join(names)
    line = f"{joined} : {collapse(type_)}" if joined else collapse(type_)
    if value is not None:
        line += f" := {collapse(value)}"
    return line


def _render_goal(goal: Goal) -> str:
    lines: list[str] = []
    if goal.case:
        lines.append(f"case {goal.case}")
    # Group consecutive value-free hypotheses of identical type, as Lean's goal printer does.
    group_names: list[str] = []
    group_type: str | None = None
    for hyp in goal.hypotheses:
        type_text = collapse(hyp.type)
        if hyp.value is None and hyp.name and group_type == type_text:
            group_names.append(hyp.name)
            continue
        if group_names:
            lines.append(_hyp_line(group_names, group_type or "", None))
            group_names, group_type = [], None
        if hyp.value is None and hyp.name:
            group_names, group_type = [hyp.name], type_text
        else:
            lines.append(_hyp_line((hyp.name,) if hyp.name else (), hyp.type, hyp.value))
    if group_names:
        lines.append(_hyp_line(group_names, group_type or "", None))
    lines.append(f"{TURNSTILE} {collapse(goal.target)}")
    return "\n".join(lines)


def render_state(goals: Iterable[Goal]) -> str:
    """The canonical text of a proof state: goals separated by a blank line, ``no goals`` if none."""
    rendered = [_render_goal(g) for g in goals]
    return "\n\n".join(rendered) if rendered else NO_GOALS


def _split_hypothesis(entry: str) -> list[Hypothesis]:
    head, sep, rest = entry.partition(" : ")
    if not sep:
        # "h :" with the type on following lines collapses to "h : T"; anything else is kept verbatim.
        return [Hypothesis(name="", type=entry)]
    type_, vsep, value = rest.partition(" := ")
    names = head.split()
    if vsep:
        return [Hypothesis(name=n, type=type_, value=value) for n in names]
    return [Hypothesis(name=n, type=rest) for n in names]


def _parse_goal(block: str) -> Goal:
    lines = block.split("\n")
    case = None
    if lines and lines[0].startswith("case "):
        case = lines[0][len("case "):].strip() or None
        lines = lines[1:]
    # An entry starts at column 0; indented lines continue the previous entry.
    entries: list[str] = []
    for line in lines:
        if entries and (line[:1].isspace() or not line):
            entries[-1] += "\n" + line
        else:
            entries.append(line)
    hyps: list[Hypothesis] = []
    target: str | None = None
    for entry in entries:
        text = collapse(entry)
        if not text:
            continue
        if text.startswith(TURNSTILE):
            target = text[len(TURNSTILE):].strip()
        elif target is None:
            hyps.extend(_split_hypothesis(text))
        else:  # text after the target that is not indented: keep it as part of the target
            target += " " + text
    if target is None:
        raise ValueError(f"proof state goal has no '{TURNSTILE}' line: {block[:200]!r}")
    return Goal(target=target, hypotheses=tuple(hyps), case=case)


def parse_state(text: str) -> tuple[Goal, ...]:
    """Parse Lean's pretty-printed goal list (LeanDojo ``state_before``/``state_after``)."""
    stripped = text.strip()
    if not stripped or stripped == NO_GOALS:
        return ()
    blocks: list[str] = []
    pending_case = ""
    for block in stripped.replace("\r\n", "\n").split("\n\n"):
        if not block.strip():
            continue
        # Lean prints a tagged goal with an empty context as "case inl", a blank line, then "⊢ ...".
        if "\n" not in block.strip() and block.startswith("case ") and TURNSTILE not in block:
            pending_case = block.strip() + "\n"
            continue
        blocks.append(pending_case + block)
        pending_case = ""
    return tuple(_parse_goal(b) for b in blocks)


def canonical_state(text: str) -> str:
    """Canonical text of a LeanDojo/Lean pretty-printed state."""
    return render_state(parse_state(text))



# -- local names -------------------------------------------------------------------------------------
# Characters that continue a Lean identifier as it is printed (letters of any script, digits, _, ', !, ?,
# subscripts, the inaccessible mark and its superscript index).
_IDENT_CHAR = r"[\w'!?₀-₉ₐ-ₜ✝⁰¹²³⁴⁵⁶⁷⁸⁹]"


@lru_cache(maxsize=4096)
def name_pattern(name: str) -> re.Pattern[str]:
    """A reference to the local name ``name``: not preceded by an identifier character or a '.' (``Nat.h``
    is another name), not followed by an identifier character (``h'`` and ``h✝`` are other names)."""
    return re.compile(_reference(re.escape(name)))


def _reference(names: str) -> str:
    """A regex matching any of the alternatives ``names`` as a whole local name (see ``name_pattern``)."""
    return rf"(?<!{_IDENT_CHAR})(?<!\.)(?:{names})(?!{_IDENT_CHAR})"


def rename_in(text: str, old: str, new: str) -> str:
    """Every reference to the local name ``old`` in ``text`` renamed to ``new`` (whole names only)."""
    return name_pattern(old).sub(lambda _: new, text)


def rename_all(text: str, renames: Mapping[str, str]) -> str:
    """Every reference to each local name in ``renames`` renamed at once (whole names only), so that
    ``{"h": "h✝", "h✝": "h✝¹"}`` renames each reference once."""
    if not renames:
        return text
    names = "|".join(re.escape(n) for n in sorted(renames, key=len, reverse=True))
    return re.compile(_reference(names)).sub(lambda m: renames[m.group(0)], text)


ANONYMOUS = "•"


def anonymize(text: str, mark: str = ANONYMOUS) -> str:
    """The canonical text with every hypothesis name, and every reference to it, replaced by ``mark``: what
    the state says without the names it was given (α-equivalent states get one text). Not a state
    text (names collide); a view for encoders. Text that does not parse is returned unchanged."""
    try:
        goals = parse_state(text)
    except ValueError:
        return text
    out = []
    for goal in goals:
        renames = {h.name: mark for h in goal.hypotheses if h.name}

        def anon(t: str) -> str:
            return rename_all(t, renames)

        out.append(Goal(target=anon(goal.target), case=goal.case, hypotheses=tuple(
            Hypothesis(mark if h.name else "", anon(h.type), None if h.value is None else anon(h.value))
            for h in goal.hypotheses)))
    return render_state(out)


def hypothesis_set(text: str, mark: str = ANONYMOUS) -> str:
    """What the state says as sets: :func:`anonymize`, then each goal's hypotheses sorted with duplicates
    dropped, case tags dropped; goals keep their order (the first is the one tactics act on). Names, the
    order of hypotheses and a repeated hypothesis change nothing provable, so states that differ only
    in those get one text (``have h := h``, ``rename' h => h'``, ``revert h; intro h``). A view for encoders."""
    try:
        goals = parse_state(anonymize(text, mark))
    except ValueError:
        return text
    def key(h: Hypothesis) -> tuple[str, str, str]:
        return h.type, h.value or "", h.name

    return render_state(Goal(target=g.target, hypotheses=tuple(sorted(set(g.hypotheses), key=key))) for g in goals)


def state_fields(text: str) -> tuple[str, str]:
    """The state as (what it has, what it must show): every goal's case tag and hypothesis lines, then
    every goal's ``⊢`` line, each part in goal order. The same symbol means opposite things in the two
    (a ``∀`` still to introduce vs one already assumed), which one bag of the whole text cannot tell
    apart. A view for encoders. Text that does not parse is all target."""
    try:
        goals = parse_state(text)
    except ValueError:
        return "", text
    if not goals:
        return "", NO_GOALS
    have, show = [], []
    for goal in goals:
        lines = _render_goal(goal).split("\n")
        have.extend(lines[:-1])
        show.append(lines[-1])
    return "\n".join(have), "\n".join(show)
