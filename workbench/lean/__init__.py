"""Lean backend: Pantograph wire protocol, one REPL process, a shared pool, and a simulator.

Layers: ``protocol`` (typed JSON) → ``process`` (one REPL, one request chokepoint) → ``pool``
(``LeanPool``, slots of processes) → ``session`` (``TheoremSession``, one theorem's states) →
``backend`` (``LeanBackend``: what mining needs; ``PantographBackend`` = pool + sessions).
``simulator`` is a separate program speaking the same protocol.
"""

from workbench.lean.backend import LeanBackend, LeanSession, PantographBackend
from workbench.lean.config import DEFAULT_MEMORY_LIMIT_BYTES, LeanConfig, simulator_command
from workbench.lean.errors import (
    LeanBackendError,
    LeanGarbage,
    LeanProcessDied,
    LeanProtocolError,
    LeanReplayError,
    LeanStartError,
    LeanTimeout,
)
from workbench.lean.pool import LeanPool, PoolStats, ProcessStats
from workbench.lean.session import TheoremSession
from workbench.lean.process import LeanProcess, repl_version
from workbench.lean.protocol import Message, Severity
from workbench.lean.results import (
    Advanced,
    LeanError,
    LeanLimit,
    Node,
    ParseError,
    ProofComplete,
    Rejected,
    TacticResult,
    TacticTimedOut,
)

__all__ = [
    "LeanBackend",
    "LeanSession",
    "PantographBackend",
    "DEFAULT_MEMORY_LIMIT_BYTES",
    "LeanConfig",
    "simulator_command",
    "LeanBackendError",
    "LeanGarbage",
    "LeanProcessDied",
    "LeanProtocolError",
    "LeanReplayError",
    "LeanStartError",
    "LeanTimeout",
    "LeanPool",
    "PoolStats",
    "ProcessStats",
    "TheoremSession",
    "LeanProcess",
    "repl_version",
    "Message",
    "Severity",
    "Advanced",
    "LeanError",
    "Node",
    "ParseError",
    "ProofComplete",
    "Rejected",
    "TacticResult",
    "LeanLimit",
    "TacticTimedOut",
]
