"""From user-facing flags (``workbench mine`` options, notebook 02 parameters) to one :class:`MineSettings`,
and the plan a run announces before it starts.

The CLI and the notebook pass the same names with the same meaning, so the same inputs give the same
run: renames (``tactic_timeout`` -> ``tactic_timeout_s``), the comma-separated imports, the mode from
``resume`` / ``overwrite``, the simulator's latency scale, the environment fallbacks, and the output
folder named after the run's identity when none is given.
"""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path
from typing import Any, Mapping

from workbench.mining.identity import declared_identity, identity_slug, plan_versions
from workbench.mining.settings import MineSettings
from workbench.traces import bundled_sample_path, load_traces

__all__ = ["FLAGS", "settings_from_flags", "describe_plan", "format_plan"]

# flag name -> MineSettings field (None: handled below)
FLAGS: dict[str, str | None] = {
    "traces": "traces", "output": "output", "num_theorems": "num_theorems", "min_steps": "min_steps",
    "seed": "seed", "candidates_per_step": "candidates_per_step", "target_negatives": "target_negatives",
    "temperature": "temperature", "pantograph_cmd": "pantograph_cmd", "imports": None,
    "lean_workers": "lean_workers", "concurrency": "concurrency", "tactic_timeout": "tactic_timeout_s",
    "theorem_timeout": "theorem_timeout_s", "infra_grace": "infra_grace_s", "server_url": "server_url", "encode_url": "encode_url",
    "lean": "lean", "resume": None, "overwrite": None, "simulator_latency_scale": None, "progress": "progress",
    "progress_every": "progress_every_s", "prompt_format": "prompt_format", "server_wait": "server_wait_s",
    "ray_address": "ray_address", "traces_lean_version": "traces_lean_version",
    "simulator_lean_version": "simulator_lean_version", "simulator_traces": "simulator_traces",
    "source_root": "source_root",
    "retry_infra": "retry_infra", "retry_incomplete": "retry_incomplete", "strict": "strict",
}


def settings_from_flags(flags: Mapping[str, Any], env: Mapping[str, str] | None = None,
                        output_root: str | Path = "runs") -> MineSettings:
    """Settings from the flags present in ``flags``; other keys of the mapping are ignored (a notebook
    passes ``globals()``), absent flags keep the dataclass defaults. ``env`` fills unset URLs and the
    Pantograph command; without ``output`` the folder is named after the run's identity."""
    fields = {f.name for f in dataclasses.fields(MineSettings)}
    kw: dict[str, Any] = {}
    for flag, field in FLAGS.items():
        if field and field in fields and flag in flags and flags[flag] is not None:
            kw[field] = flags[flag]
    if flags.get("imports") is not None:
        imports = flags["imports"]
        kw["imports"] = tuple(i.strip() for i in (imports.split(",") if isinstance(imports, str) else imports) if i.strip())
    if flags.get("resume") and flags.get("overwrite"):
        raise ValueError("resume and overwrite are exclusive: pick one")
    kw["mode"] = "overwrite" if flags.get("overwrite") else "resume" if flags.get("resume") else "new"
    scale = flags.get("simulator_latency_scale")
    if scale is not None:
        if not math.isfinite(float(scale)) or float(scale) < 0:
            raise ValueError(f"simulator_latency_scale must be a finite number >= 0, got {scale}")
        kw["simulator_args"] = ("--latency-scale", str(float(scale)))
    kw.setdefault("output", "")
    settings = MineSettings(**kw)
    if env is not None:
        settings = settings.with_env(env)
    if not settings.output:
        # Same identity, same folder: a second command with other traces/backend/policy never lands here.
        settings = dataclasses.replace(settings, output=str(Path(output_root) / identity_slug(declared_identity(settings))))
    return settings


def describe_plan(settings: MineSettings, available: int | None = None) -> dict[str, Any]:
    """What a run will actually use, said up front: backend, policy, traces, requested vs available.

    ``available``: usable theorems in the traces; mining passes the count from its own (single) read of
    the traces (``mine(settings, on_plan=...)``); without it this preview reads them itself.
    """
    if available is None:
        available = len(load_traces(settings.traces_path, min_steps=settings.min_steps, skip_bad=True).theorems)
    bundled = settings.traces_path.resolve() == bundled_sample_path().resolve()
    if settings.simulated:
        why = " (no pantograph_cmd / PANTOGRAPH_REPL configured)" if settings.lean == "auto" else ""
        backend = f"SIMULATOR{why}: labels are not Lean's"
    else:
        backend = f"Pantograph: {settings.pantograph_cmd or 'NOT CONFIGURED'}"
    plan = {
        "lean": backend,
        "policy": f"SGLang at {settings.server_url}" if settings.server_url
        else "retrieval (offline kNN over the traces; no SGLANG_URL / server_url configured)",
        "traces": (f"bundled sample ({available} hand-written theorems, not Mathlib)" if bundled
                   else f"{settings.traces_path} ({available} theorems with >= {settings.min_steps} steps)"),
        "theorems": (f"{settings.num_theorems} requested, {available} available"
                     if settings.num_theorems is not None and settings.num_theorems > available
                     else f"{min(settings.num_theorems or available, available)} of {available}"),
        "output": f"{settings.output} ({settings.mode})",
    }
    plan["versions"], differ = plan_versions(settings)
    warnings = []
    if differ:
        warnings.append(differ)
    if settings.simulated:
        warnings.append("Lean backend is the SIMULATOR")
    if bundled:
        warnings.append(f"traces are the bundled {available}-theorem sample")
    if settings.num_theorems is not None and settings.num_theorems > available:
        warnings.append(plan["theorems"])
    plan["warnings"] = warnings
    return plan


def format_plan(plan: Mapping[str, Any]) -> str:
    lines = [f"{k:>8}: {v}" for k, v in plan.items() if k != "warnings"]
    if plan.get("warnings"):
        lines.insert(0, "WARNING: " + "; ".join(plan["warnings"]))
    return "\n".join(lines)
