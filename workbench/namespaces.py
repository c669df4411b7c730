"""Namespace rules for replaying LeanDojo tactics in Pantograph.

Pantograph's ``copyFrom`` elaborates a theorem's type outside the namespaces and ``open`` directives
of its source file, so ground-truth tactics that use short names (``exact succ_le_of_lt h`` inside
``namespace Nat``) fail. Wrapping them in ``open <prefixes> in`` recovers many of them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Sequence

__all__ = ["NamespacedReference", "ROOT_EXPORTS", "infer_open_namespace", "is_notation_or_instance",
           "namespaced_references", "open_prefixes", "wrap_open"]


def _segments(name: str) -> list[str]:
    # Names with guillemet-quoted segments («a.b») are rare in Mathlib; a plain split is what the
    # seed specifies and what the reference implementation did.
    return [s for s in name.strip().split(".") if s]


def infer_open_namespace(name: str) -> str | None:
    """All dot-separated segments but the last: ``"A.B.c"`` → ``"A.B"``; ``"c"`` → ``None``."""
    parts = _segments(name)
    return ".".join(parts[:-1]) if len(parts) > 1 else None


def open_prefixes(name: str) -> list[str]:
    """Every proper prefix of a theorem name: ``"A.B.c"`` → ``["A", "A.B"]``."""
    parts = _segments(name)
    return [".".join(parts[:i]) for i in range(1, len(parts))]


def wrap_open(tactic: str, namespaces: Sequence[str]) -> str:
    """``open A A.B in <tactic>``.

    A multi-line tactic goes on the next lines, every line indented by two more spaces: the tactic
    block's column then stays consistent, so bullets and ``calc`` steps remain one tactic sequence.
    """
    if not namespaces:
        return tactic
    head = "open " + " ".join(namespaces) + " in"
    body = tactic.strip("\n")
    if "\n" not in body:
        return f"{head} {body.strip()}"
    return head + "\n" + "\n".join(("  " + line) if line.strip() else line for line in body.split("\n"))


@dataclass(frozen=True, slots=True)
class NamespacedReference:
    written: str  # the name as the tactic spells it
    full_name: str  # what Lean resolved it to in the source file
    namespace: str  # the part the tactic left out
    fixed_by_open_retry: bool  # the namespace is one of the theorem's own prefixes


def is_notation_or_instance(full_name: str) -> bool:
    """Names no ``open`` decides: private declarations, instances, and names under a function's namespace
    (``LE.le.trans``, ``LT.lt.le``: reached by field notation on a proof, never written after an ``open``)."""
    parts = _segments(full_name)
    if not parts or full_name.startswith("_private") or any(p.startswith("inst") and p[4:5].isupper() for p in parts):
        return True
    namespace = parts[:-1]
    return bool(namespace) and namespace[-1][:1].islower()


# Lean core's `export` declarations (leanprover/lean4, src/Init/Prelude.lean: `export Bool (false true)`,
# `export Option (none some)`, `export Min (min)`, `export Max (max)`; src/Init/Core.lean:
# `export Insert (insert)`, `export Singleton (singleton)`): these constants resolve by their short name at
# the root, in any namespace and with nothing opened. `true` in `simp (config := { contextual := true })`
# is annotated `Bool.true` but is no namespace lookup. Mathlib's own exports (`export MulZeroClass
# (mul_zero zero_mul)`) are not listed: the annotation cannot tell them apart, and this list holds only what
# Lean core declares (the ones the shared traces use; not every core export).
ROOT_EXPORTS = frozenset({"Bool.false", "Bool.true", "Option.none", "Option.some", "Min.min", "Max.max",
                          "Insert.insert", "Singleton.singleton"})


def namespaced_references(theorem_name: str, references: Iterable[tuple[str, str]]) -> list[NamespacedReference]:
    """Names a ground-truth tactic writes short because the source file had a namespace open.

    Pantograph's ``copyFrom`` context has none of those, so these tactics are the likely
    namespace-mismatch failures. The theorem's own namespaces are recoverable with ``open ... in``;
    others came from a file-level ``open`` and are not.
    """
    prefixes = set(open_prefixes(theorem_name))
    out = []
    for written, full in references:
        if (written == full or not full.endswith("." + written) or is_notation_or_instance(full)
                or (full in ROOT_EXPORTS and written == full.rsplit(".", 1)[1])):
            continue
        namespace = full[: -len(written) - 1]
        out.append(NamespacedReference(written, full, namespace, namespace in prefixes))
    return out
