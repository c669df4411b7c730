"""The check-up: which systems to examine, built from the same settings mining uses, and the report.

Lean's command comes from ``mining.executor.lean_config`` and SGLang's client from ``sglang_config``, so the
doctor examines exactly what ``workbench mine`` / notebook 02 would start; the states it prompts and encodes
and the theorems it walks come from the run's traces.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from pathlib import Path
from typing import Sequence

from workbench.aio import sync_twin
from workbench.doctor.checks import SYSTEMS, Check, DoctorOptions, Verdict
from workbench.doctor.encoder import check_encoder
from workbench.doctor.lean import check_lean
from workbench.doctor.report import DoctorReport
from workbench.doctor.sglang import check_sglang
from workbench.errors import EnvironmentFailure
from workbench.lean.config import LeanConfig
from workbench.mining.executor import lean_config, sglang_config
from workbench.mining.settings import MineSettings
from workbench.traces import load_traces

__all__ = ["configured_systems", "doctor_async", "doctor", "doctor_configured"]

log = logging.getLogger(__name__)

_NOT_CONFIGURED = {
    "lean": ("a Pantograph command", "set {pantograph_cmd}; {simulated} checks the simulator"),
    "sglang": ("an SGLang URL", "set {server_url} (or env SGLANG_URL)"),
    "encoder": ("an encoder URL", "set {encode_url} (or env ENCODE_URL)"),
}


def configured_systems(settings: MineSettings) -> tuple[str, ...]:
    """The real systems a run would use: Lean unless it is the simulator, SGLang and the encoder when their URL
    is set."""
    return tuple(s for s, on in (("lean", not settings.simulated), ("sglang", bool(settings.server_url)),
                                 ("encoder", bool(settings.encode_url))) if on)


def _runnable(system: str, settings: MineSettings, lean: LeanConfig | None) -> bool:
    if system == "lean":  # the simulator only when asked for by name: `auto` without a command is a dry run
        return lean is not None or settings.lean == "simulated" or (
            settings.backend == "pantograph" and bool(settings.pantograph_cmd))
    return bool(settings.server_url if system == "sglang" else settings.encode_url)


def _states(theorems: Sequence, limit: int) -> list[str]:
    """Distinct proof states of the traces, first states first."""
    seen: dict[str, None] = {}
    for depth in range(max((len(t.steps) for t in theorems), default=0)):
        for t in theorems:
            if depth < len(t.steps):
                seen.setdefault(t.steps[depth].state_before)
                if len(seen) >= limit:
                    return list(seen)
    return list(seen)


async def doctor_async(settings: MineSettings, *, only: Sequence[str] | None = None,
                       options: DoctorOptions = DoctorOptions(), lean: LeanConfig | None = None,
                       style: str = "cli") -> DoctorReport:
    """Check each system in ``only`` (default: each one the settings configure) against the workbench's assumptions.

    A system named in ``only`` that is not configured is a failed check; without ``only`` it is skipped. ``lean``
    replaces the Lean configuration mining would derive from the settings (tests: a memory cap on the simulator);
    ``style`` spells the advice's settings as CLI flags or notebook parameters.
    """
    unknown = sorted(set(only or ()) - set(SYSTEMS))
    if unknown:
        raise ValueError(f"--only: unknown system(s) {unknown}; choose from {', '.join(SYSTEMS)}")
    t0 = time.monotonic()
    traces = load_traces(settings.traces_path, min_steps=settings.min_steps, skip_bad=True, seed=settings.seed,
                         num_theorems=max(options.theorems, options.encode_batch))
    theorems = traces.theorems[:options.theorems]
    states = _states(traces.theorems, max(options.encode_batch, options.states))
    checks: list[Check] = []
    tables = []
    configuration: dict = {"traces": str(settings.traces_path), "theorems": [t.full_name for t in theorems]}
    for system in only or SYSTEMS:
        if not _runnable(system, settings, lean):
            what, todo = _NOT_CONFIGURED[system]
            checks.append(Check(system, "configured", what, "not configured",
                                Verdict.FAIL if only else Verdict.SKIP, todo if only else ""))
            continue
        log.info("doctor: checking %s", system)
        if system == "lean":
            config = lean or lean_config(settings)
            configuration["lean"] = {"command": config.argv(), "memory_limit_bytes": config.memory_limit_bytes}
            found = await check_lean(config, theorems, settings.traces_path, params=settings.walk_params(), opts=options)
            checks += found.checks
            tables += found.tables
        elif system == "sglang":
            config = sglang_config(settings)
            configuration["sglang"] = {"url": config.url, "prompt_format": config.prompt.name}
            found = await check_sglang(config, states[:options.states], options)
            checks += found.checks
            tables += found.tables
        else:
            configuration["encoder"] = {"url": settings.encode_url, "hidden_size": options.hidden_size}
            checks += (await check_encoder(settings.encode_url or "", states, options)).checks
    if all(c.verdict is Verdict.SKIP for c in checks):
        checks.append(Check("doctor", "something to check", "Lean, SGLang or an encoder configured",
                            "nothing configured", Verdict.FAIL,
                            "set {pantograph_cmd}, {server_url} or {encode_url}; {simulated} checks the simulator"))
    return DoctorReport(tuple(checks), tuple(tables), configuration, time.monotonic() - t0, style)


doctor = sync_twin(doctor_async)


def doctor_configured(settings: MineSettings, *, path: str | Path | None = None,
                      options: DoctorOptions = DoctorOptions()) -> DoctorReport | None:
    """Notebook 02's first check: the doctor on the real systems the settings configure (waiting for SGLang as
    long as mining would), its ``doctor.json`` written beside the run folder (or at ``path``). None when nothing
    real is configured (a dry run: nothing to check). Raises ``EnvironmentFailure`` naming the failed checks and
    the notebook parameters to change, so mining does not start on a broken assumption."""
    systems = configured_systems(settings)
    if not systems:
        return None
    options = dataclasses.replace(options, server_wait_s=settings.server_wait_s)
    report = doctor(settings, only=systems, options=options, style="notebook")
    written = report.write(path or Path(settings.output).parent / "doctor.json")
    if report.failed:
        lines = report.failure_lines()
        raise EnvironmentFailure(f"workbench doctor: {len(lines)} check(s) failed (all in {written}):\n"
                                 + "\n".join(lines))
    return dataclasses.replace(report, configuration=report.configuration | {"doctor_json": str(written)})
