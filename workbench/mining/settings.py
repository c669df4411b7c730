"""``MineSettings``: every parameter of a mining run, with the one set of defaults.

The CLI (``workbench mine``) and notebook 02 build it through :func:`workbench.mining.flags.settings_from_flags`;
nothing here reads the environment except :meth:`MineSettings.with_env`, when a caller hands it a mapping.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

from workbench.checks import require_finite
from workbench.mining.walk import WalkParams
from workbench.traces import bundled_sample_path

__all__ = ["MineSettings", "offline_demo_settings"]


@dataclass(frozen=True)
class MineSettings:
    """Every parameter of a mining run (the CLI options, one to one, plus a few simulator knobs)."""

    traces: str | None = None  # LeanDojo JSON / tactic-pairs JSONL / folder; None = bundled sample
    output: str = "runs/mine"
    num_theorems: int | None = None
    min_steps: int = 1
    seed: int = 0
    candidates_per_step: int = 8
    target_negatives: int = 15
    temperature: float = 1.0
    pantograph_cmd: str | None = None
    imports: tuple[str, ...] = ("Init", "Mathlib")
    lean_workers: int = 2
    concurrency: int | None = None  # theorems in flight; None = 8 per Lean worker
    tactic_timeout_s: float = 30.0
    theorem_timeout_s: float = 120.0
    infra_grace_s: float = 1800.0  # a theorem's clock stops while it waits on infrastructure, at most this long
    server_url: str | None = None  # SGLang; None = the offline retrieval policy
    prompt_format: str = "deepseek-prefill"  # SGLang prompt: deepseek-prefill | deepseek-chat | a template file
    server_wait_s: float = 600.0  # wait this long for SGLang to finish loading (/health 503)
    encode_url: str | None = None  # encoding sidecar: encode the mined states afterwards
    lean: str = "pantograph"  # a registered backend (mining.executor.LEAN_BACKENDS) or auto (simulated without a command)
    mode: str = "new"  # new | resume | overwrite
    simulator_args: tuple[str, ...] = ()  # extra `python -m workbench.lean.simulator` flags (faults, latency)
    simulator_lean_version: str = "newer"  # the simulator plays a newer Lean than the traces (as every accepted
    #                                        Pantograph is), or "same": the traces' own Lean
    source_root: str | None = None  # the traced project's sources: start each theorem in its file's scope
    simulator_traces: str | None = None  # the traces the simulator's Lean knows (its "Mathlib"); None: `traces`
    traces_lean_version: str | None = None  # the traces' Lean toolchain (v4.7.0); None: metadata.json or unknown
    wrap_candidates: bool = True
    overlap_generation: bool = True  # False = the reference's sequential walk (benchmark baseline)
    time_budget_s: float | None = None  # stop after this long: walks in flight are dropped (resume redoes them)
    flush_every_theorems: int = 20
    seal_every_s: float = 2.0  # a finished theorem is on disk (sealed) at most this long after it ends
    retry_infra: int = 2  # --resume mines a theorem ended by infrastructure again, at most this many times
    retry_incomplete: bool = False  # --resume also redoes theorems that lost candidates to transient failures
    strict: bool = False  # a malformed trace entry stops the run (default: skipped, counted, named in the summary)
    progress: bool = True  # the live bar on a terminal; elsewhere a log line every progress_every_s
    progress_every_s: float = 30.0
    ray_address: str | None = None  # mine on a Ray cluster: an address, "auto" or "local" (workbench.mining.ray_backend)

    def __post_init__(self) -> None:
        if isinstance(self.imports, str):
            object.__setattr__(self, "imports", tuple(i for i in self.imports.split(",") if i))
        object.__setattr__(self, "imports", tuple(self.imports))
        object.__setattr__(self, "simulator_args", tuple(self.simulator_args))
        if not self.lean:
            raise ValueError("lean must name a Lean backend (pantograph, simulated) or auto")
        if self.simulator_lean_version not in ("newer", "same"):
            raise ValueError(f"simulator_lean_version must be newer or same, got {self.simulator_lean_version!r}")
        if self.mode not in ("new", "resume", "overwrite"):
            raise ValueError(f"mode must be new, resume or overwrite, got {self.mode!r}")
        for name in ("candidates_per_step", "lean_workers", "min_steps"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.num_theorems is not None and self.num_theorems < 1:
            raise ValueError(f"num_theorems must be >= 1 (or None for all), got {self.num_theorems}")
        if self.retry_infra < 0 or self.seal_every_s < 0 or self.infra_grace_s < 0:
            raise ValueError("retry_infra, seal_every_s and infra_grace_s must be >= 0")
        if self.concurrency is not None and self.concurrency < 1:
            raise ValueError(f"concurrency must be >= 1, got {self.concurrency}")
        require_finite(self)  # NaN passes every comparison below; inf never fires
        if self.target_negatives < 1 or self.tactic_timeout_s <= 0 or self.theorem_timeout_s <= 0:
            raise ValueError("target_negatives and the timeouts must be positive")
        for name in ("server_wait_s", "progress_every_s", "temperature"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")
        if self.time_budget_s is not None and self.time_budget_s <= 0:
            raise ValueError(f"time_budget_s must be positive (or None for no budget), got {self.time_budget_s}")

    def with_env(self, env: Mapping[str, str]) -> "MineSettings":
        """Fill unset URLs / the Pantograph command from PANTOGRAPH_REPL, SGLANG_URL, ENCODE_URL."""
        return dataclasses.replace(
            self,
            pantograph_cmd=self.pantograph_cmd or env.get("PANTOGRAPH_REPL") or None,
            server_url=self.server_url or env.get("SGLANG_URL") or None,
            encode_url=self.encode_url or env.get("ENCODE_URL") or None,
        )

    @property
    def simulated(self) -> bool:
        return self.lean == "simulated" or (self.lean == "auto" and not self.pantograph_cmd)

    @property
    def backend(self) -> str:
        """The Lean backend's registered name (``auto`` resolved)."""
        if self.lean == "auto":
            return "pantograph" if self.pantograph_cmd else "simulated"
        return self.lean

    @property
    def theorems_in_flight(self) -> int:
        return self.concurrency or 8 * self.lean_workers

    @property
    def traces_path(self) -> Path:
        return Path(self.traces) if self.traces else bundled_sample_path()

    def walk_params(self) -> WalkParams:
        return WalkParams(candidates_per_step=self.candidates_per_step, target_negatives=self.target_negatives,
                          theorem_timeout_s=self.theorem_timeout_s, infra_grace_s=self.infra_grace_s,
                          wrap_candidates=self.wrap_candidates, source_root=self.source_root,
                          overlap_generation=self.overlap_generation)

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self) | {"simulated": self.simulated, "theorems_in_flight": self.theorems_in_flight}


def offline_demo_settings(output: str | Path, **overrides: Any) -> MineSettings:
    """The quick offline run: bundled sample, simulator (fast latencies), retrieval policy."""
    base = dict(output=str(output), lean="simulated", mode="overwrite", lean_workers=2, concurrency=16,
                simulator_args=("--latency-scale", "0.05"), tactic_timeout_s=10.0, theorem_timeout_s=60.0,
                progress=False)
    return MineSettings(**(base | overrides))
