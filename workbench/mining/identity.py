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
from pathlib import Path
from typing import Any, Mapping

from workbench.mining.settings import MineSettings
from workbench.traces import bundled_sample_path, input_files

__all__ = ["IDENTITY", "IdentityMismatch", "traces_fingerprint", "declared_identity", "run_identity",
           "identity_slug", "differences", "check_resume", "legacy_identity", "read_identity", "write_identity"]

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
    return {
        "traces": name,
        "traces_sha256": sha,
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
                             "prompt_template": policy_provenance.get("prompt_template")}


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
