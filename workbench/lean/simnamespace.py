"""The simulator's namespace rule, from LeanDojo's annotated references (pure; no I/O).

Pantograph runs tactics with ``openDecls := []`` and ``currNamespace := Aniva`` (Pantograph/Library.lean,
``createCoreContext``, lenianiva/Pantograph at 013cb8bb): none of the source file's ``namespace`` / ``open``
directives apply, so a short name that Lean resolved through a namespace fails with
``unknown identifier '<short name>'`` unless the tactic opens that namespace (``open A.B in tac``).
LeanDojo annotates every ident that elaborated to a constant (v1.8.2, ``TracedTactic.get_annotated_tactic``),
which is more than the short names looked up in a namespace: field notation (``h.symm``), the tags of
``induction``/``cases``/``match`` alternatives (``| zero =>``, ``| inl h =>``; dropped when the traces are
read, :func:`workbench.traces._references`), private and instance names, and Lean core's root exports
(``true``, ``some``, ``min``: :data:`workbench.namespaces.ROOT_EXPORTS`) never fail here
(:func:`workbench.namespaces.namespaced_references` drops them). Limitation: a name Mathlib ``export``s to
the root (``mul_zero``) also resolves in Lean; its annotation cannot tell, so it fails here.
"""

from __future__ import annotations

from typing import Iterable, Sequence

from workbench.namespaces import namespaced_references

__all__ = ["unresolved_short_name"]


def unresolved_short_name(theorem: str, references: Iterable[tuple[str, str]], opened: Sequence[str]) -> str | None:
    """The first short name of a tactic that resolves only inside a namespace not in ``opened``, else None.

    ``references``: (name as written, full name) pairs of the tactic's annotations; ``opened``: the
    namespaces of the tactic's ``open ... in`` prefix (the REPL itself opens none).
    """
    opened_set = set(opened)
    for ref in namespaced_references(theorem, references):
        if ref.namespace not in opened_set:
            return ref.written
    return None
