"""Proof-state handles and tactic outcomes (values, not exceptions)."""

from __future__ import annotations

from dataclasses import dataclass

from workbench.lean.protocol import Message
from workbench.states import Goal, render_state

__all__ = ["Step", "Node", "Advanced", "ProofComplete", "LeanError", "ParseError", "Rejected", "LeanLimit",
           "TacticTimedOut", "TacticResult"]

Step = tuple[str, int | None]  # (tactic, goal_id) as sent to goal.tactic


@dataclass(frozen=True, slots=True)
class Node:
    """A logical proof state of one theorem session.

    Identified by the tactic path from the root, not by a Pantograph state id: state ids die with
    their process, and the session re-derives the state on a live process by replaying ``path``.
    Two nodes with the same path are the same state. ``goals`` is what Lean returned when the node
    was first reached; ``str(node)`` is the canonical state text.
    """

    theorem: str
    path: tuple[Step, ...]
    goals: tuple[Goal, ...]

    @property
    def depth(self) -> int:
        return len(self.path)

    @property
    def is_complete(self) -> bool:
        return not self.goals

    @property
    def state_text(self) -> str:
        return render_state(self.goals)

    def __str__(self) -> str:
        return self.state_text


def _text(messages: tuple[Message, ...]) -> str:
    return "\n".join(m.data for m in messages)


@dataclass(frozen=True, slots=True)
class Advanced:
    """The tactic succeeded and goals remain."""

    node: Node
    goals: tuple[Goal, ...]
    messages: tuple[Message, ...] = ()


@dataclass(frozen=True, slots=True)
class ProofComplete:
    """The tactic closed every goal, without ``sorry`` or unsafe code."""

    node: Node
    messages: tuple[Message, ...] = ()


@dataclass(frozen=True, slots=True)
class LeanError:
    """Lean rejected the tactic; ``text`` is the messages' ``data`` joined."""

    messages: tuple[Message, ...]

    @property
    def text(self) -> str:
        return _text(self.messages)


@dataclass(frozen=True, slots=True)
class ParseError:
    message: str


@dataclass(frozen=True, slots=True)
class Rejected:
    """The step used ``sorry`` or unsafe code: never a proof, never a usable state."""

    has_sorry: bool
    has_unsafe: bool
    messages: tuple[Message, ...] = ()


@dataclass(frozen=True, slots=True)
class LeanLimit:
    """Lean gave up on the tactic (``kind``: heartbeats or max_recursion). The process is fine; retrying
    the same tactic on the same state gives the same verdict."""

    kind: str
    text: str


@dataclass(frozen=True, slots=True)
class TacticTimedOut:
    """Pantograph's own per-tactic timeout (``options.set {"timeout": ms}``) interrupted the tactic."""

    text: str = "interrupt"
    kind: str = "interrupt"


TacticResult = Advanced | ProofComplete | LeanError | ParseError | Rejected | LeanLimit | TacticTimedOut
