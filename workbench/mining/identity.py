"""A mining output folder's identity: what its records were mined *from* and *with*.

A folder holds one identity (trace files and their content hash, Lean backend and version, policy and
prompt format, sampling temperature, sampling seed, candidates per step, negatives per theorem, imports). Resuming with another identity would mix
sources in one dataset, so :func:`check_resume` refuses it and names the differing fields.

The identity is written once, to ``identity.json``, when a folder is first mined, and never rewritten.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from pathlib import Path
from typing import Any, Mapping

from workbench.lean.protocol import MIN_VERSION, PANTOGRAPH_TOOLCHAINS, lean_toolchain
from workbench.lean.simulator import VERSION_MODES
from workbench.mining.settings import MineSettings
from workbench.traces import bundled_sample_path, input_files, traces_lean

__all__ = ["IDENTITY", "IdentityMismatch", "traces_fingerprint", "declared_identity", "run_identity",
           "identity_slug", "differences", "check_resume", "legacy_identity", "read_identity", "write_identity",
           "versions_meet", "simulator_lean_version"]

IDENTITY = "identity.json"

# Fields fixed before any process starts (they also name notebook 02's default folder) ...
DECLARED_FIELDS = ("traces", "traces_sha256", "lean_backend", "policy", "prompt_format", "seed",
                   "candidates_per_step", "imports", "target_negatives", "temperature")
# ... and fields only known once Lean and the policy answered.
RUNTIME_FIELDS = ("lean_version", "policy_model", "prompt_template")


class IdentityMismatch(ValueError):
    """Resuming a folder with settings that would mix two sources of data."""

    def __init__(self, output: Path, diffs: dict[str, tuple[Any, Any]], suggestion: Path) -> None:
        self.output, self.diffs, self.suggestion = output, diffs, suggestion
        lines = [f"  {k}: folder has {old!r}, this run has {new!r}" for k, (old, new) in diffs.items()]
        super().__init__(
            f"{output} was mined with a different identity; resuming it would mix sources in one dataset.\n"
            + "\n".join(lines)
            + f"\nDiffering fields: {', '.join(diffs)}. Mine into a new folder instead, "
            f"e.g. --output {suggestion} (notebook 02: output=\"{suggestion}\")")


def traces_fingerprint(path: Path) -> tuple[str, str]:
    """(display name, sha256 over the contents of the trace files the loader reads, in order)."""
    digest = hashlib.sha256()
    files = input_files(path)
    for file in files:
        if len(files) > 1:  # which split is which; a single file's name is the "traces" field
            digest.update(file.name.encode() + b"\0")
        with file.open("rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
    name = "bundled sample" if path.resolve() == bundled_sample_path().resolve() else os.path.basename(
        os.path.normpath(str(path)))
    return name, digest.hexdigest()


def declared_identity(settings: MineSettings) -> dict[str, Any]:
    """The identity fields known from ``settings`` alone."""
    name, sha = traces_fingerprint(settings.traces_path)
    if settings.simulated:
        backend = "simulator"
    else:
        backend = "pantograph"
    lean = traces_lean(settings.traces_path, settings.traces_lean_version)
    return {
        "traces": name,
        "traces_sha256": sha,
        # What is known of the traces' Lean (informative: not compared on resume, not in the folder's name).
        "traces_lean": {"toolchain": lean.toolchain, "source": lean.source, "detail": lean.detail,
                        "repl_version": lean.repl_version},
        "lean_backend": backend,
        "policy": "sglang" if settings.server_url else "retrieval",  # the URL may change between sessions
        "prompt_format": settings.prompt_format if settings.server_url else None,
        "seed": settings.seed,
        "candidates_per_step": settings.candidates_per_step,
        "imports": list(settings.imports) if not settings.simulated else [],
        # both change what a theorem's records are: where its walk stops, how the policy samples
        "target_negatives": settings.target_negatives,
        "temperature": settings.temperature if settings.server_url else None,  # the retrieval policy has none
    }


def run_identity(declared: Mapping[str, Any], lean_version: str | None, policy_provenance: Mapping[str, Any]) -> dict[str, Any]:
    """The full identity once the pool and policy are open."""
    model = (policy_provenance.get("model_info") or {}).get("model_path") or policy_provenance.get("policy")
    return dict(declared) | {"lean_version": lean_version, "policy_model": model,
                             "prompt_template": policy_provenance.get("prompt_template"),
                             "versions": versions_meet(declared.get("traces_lean") or {}, lean_version)}


_OLDEST_SERVED = PANTOGRAPH_TOOLCHAINS[MIN_VERSION]  # every Pantograph the pool accepts is this Lean or newer


def _toolchain_key(toolchain: str) -> tuple[int, ...]:
    return tuple(int(x) for x in re.findall(r"\d+", toolchain)[:3])


def simulator_lean_version(lean_version: str | None) -> str | None:
    """Which Lean a simulator plays (``newer`` / ``same``), from its ``--version`` line; None: not the simulator."""
    for mode, said in VERSION_MODES.items():
        if lean_version and lean_version.endswith(said):
            return mode
    return None


def versions_meet(traces: Mapping[str, Any], lean_version: str | None) -> dict[str, Any]:
    """Which Lean printed the traces, which one answers, and whether they are the same: ``same``, ``differ`` or
    ``unknown``, with a sentence saying so (identity.json, the summary, the plan)."""
    said = (traces.get("toolchain") and f"Lean {traces['toolchain']}") or "an unknown Lean"
    detail = f" ({traces['detail']})" if traces.get("detail") else ""
    if traces.get("repl_version") and traces.get("repl_version") == lean_version:
        # `workbench trace` made them with this very REPL: same Lean, same printing, by construction.
        lean = "simulator" if simulator_lean_version(lean_version) else lean_toolchain(lean_version or "")
        return {"traces": traces.get("toolchain"), "lean": lean, "meet": "same",
                "note": f"traces made by workbench trace with this REPL ({lean_version}): same Lean"}
    mode = simulator_lean_version(lean_version)
    if mode is not None:
        meet = "differ" if mode == "newer" else "same"
        note = (f"traces from {said}{detail}; the SIMULATOR plays "
                + ("a newer Lean than its traces" if mode == "newer" else "the traces' own Lean"))
        return {"traces": traces.get("toolchain"), "lean": "simulator", "meet": meet, "note": note}
    served = lean_toolchain(lean_version or "")
    ours = served or f"≥ {_OLDEST_SERVED}"
    known = traces.get("toolchain")
    if known and served:
        meet = "same" if _toolchain_key(known) == _toolchain_key(served) else "differ"
    elif known and _toolchain_key(known) < _toolchain_key(_OLDEST_SERVED):
        meet = "differ"
    else:
        meet = "unknown"
    note = {"same": f"traces and REPL are both Lean {served}",
            "differ": f"traces from {said}{detail}, REPL (Pantograph {lean_version}) is Lean {ours}: the walk follows "
                      "Lean's states, the trace's text is a hint",
            "unknown": f"traces from {said}{detail}, REPL (Pantograph {lean_version}) is Lean {ours}: treated as "
                       "different (LeanDojo's traces predate every Pantograph accepted); pass --traces-lean-version"}[meet]
    return {"traces": known, "lean": served, "meet": meet, "note": note}


def identity_slug(declared: Mapping[str, Any]) -> str:
    """A short folder name for an identity: ``<backend>-<traces>-<hash8>`` (same identity, same name)."""
    canon = json.dumps({k: declared.get(k) for k in DECLARED_FIELDS}, sort_keys=True)
    stem = "".join(c if c.isalnum() else "_" for c in str(declared.get("traces")).removesuffix(".json"))[:24]
    return f"{declared.get('lean_backend')}-{stem}-{hashlib.sha256(canon.encode()).hexdigest()[:8]}"


def differences(old: Mapping[str, Any], new: Mapping[str, Any]) -> dict[str, tuple[Any, Any]]:
    """Fields whose values differ; a field either side lacks is not compared (older outputs; runtime
    fields before Lean and the policy started)."""
    return {k: (old[k], new[k]) for k in (*DECLARED_FIELDS, *RUNTIME_FIELDS) if k in old and k in new and old[k] != new[k]}


def read_identity(output: Path) -> dict[str, Any] | None:
    file = output / IDENTITY
    if not file.exists():
        return None
    try:
        return json.loads(file.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise ValueError(f"{file}: not valid JSON (line {e.lineno}): {e.msg}") from e


def write_identity(output: Path, identity: Mapping[str, Any]) -> None:
    output.mkdir(parents=True, exist_ok=True)
    tmp = output / (IDENTITY + ".tmp")
    tmp.write_text(json.dumps(dict(identity), indent=1, sort_keys=True), encoding="utf-8")
    os.replace(tmp, output / IDENTITY)


def check_resume(output: Path, identity: Mapping[str, Any], *, legacy: Mapping[str, Any] | None = None) -> None:
    """Raise :class:`IdentityMismatch` when ``output`` was mined with another identity.

    ``legacy``: for folders mined before identity.json existed, the fields recoverable from their
    manifest (at least ``lean_backend``); those are compared instead.
    """
    old = read_identity(output)
    if old is None:
        old = dict(legacy or {})
    diffs = differences(old, identity)
    if diffs:
        suggestion = output.parent / identity_slug(identity)
        if suggestion.resolve() == output.resolve():  # same declared identity, other Lean version / model
            suggestion = output.with_name(output.name + "-" + str(identity.get("lean_version") or "new").split()[0])
        raise IdentityMismatch(output, diffs, suggestion)


def legacy_identity(run_config: Mapping[str, Any]) -> dict[str, Any]:
    """What an output mined before identity.json existed still tells (from its run_config / manifest)."""
    out: dict[str, Any] = {}
    if "simulated" in run_config:
        out["lean_backend"] = "simulator" if run_config["simulated"] else "pantograph"
    params = run_config.get("parameters") or {}
    if "traces" in params:
        out["traces"] = "bundled sample" if params["traces"] is None else os.path.basename(os.path.normpath(params["traces"]))
    for key in ("seed", "candidates_per_step"):
        if key in params:
            out[key] = params[key]
    return out


def plan_versions(settings: MineSettings) -> tuple[str, str | None]:
    """The plan's line on which Lean printed the traces and which one will answer, and a warning when they
    differ (or may: the REPL's own version is read when it starts and recorded in identity.json)."""
    traces = traces_lean(settings.traces_path, settings.traces_lean_version)
    if settings.simulated:
        mode = settings.simulator_lean_version
        if "--lean-version" in settings.simulator_args:
            mode = settings.simulator_args[list(settings.simulator_args).index("--lean-version") + 1]
        if mode == "same":
            return f"traces: {traces.describe()}; the simulator plays the traces' own Lean", None
        return (f"traces: {traces.describe()}; the simulator plays a newer Lean than its traces",
                "Lean and the traces differ (simulated): the walk follows Lean's states")
    known = traces.toolchain
    text = f"traces: {traces.describe()}; REPL: Pantograph ≥ {'.'.join(map(str, MIN_VERSION))} (Lean ≥ {_OLDEST_SERVED}), read at start"
    if known and _toolchain_key(known) >= _toolchain_key(_OLDEST_SERVED):
        return text, None
    why = "older than" if known else "of unknown version, and LeanDojo's traces predate"
    return text, f"traces are {why} every accepted Pantograph: the walk follows Lean's states, the trace's text is a hint"
