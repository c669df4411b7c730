"""Run identity: a folder mined from one source refuses a resume from another (issue 12, item 1)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from workbench.mining.identity import (IDENTITY, IdentityMismatch, check_resume, differences, identity_slug,
                                       legacy_identity, traces_fingerprint, write_identity)
from workbench.mining.flags import settings_from_flags
from workbench.mining.run import MineSettings, mine
from workbench.traces import bundled_sample_path

REPO = Path(__file__).resolve().parents[2]


def _other_traces(tmp_path: Path) -> Path:
    """The bundled sample minus its first theorem: same format, other content."""
    data = json.loads(bundled_sample_path().read_text())
    other = tmp_path / "test.json"
    other.write_text(json.dumps(data[1:]))
    return other


def _settings(out: Path, **flags) -> MineSettings:
    base = {"output": str(out), "lean": "simulated", "num_theorems": 3, "simulator_latency_scale": 0.0,
            "candidates_per_step": 2, "progress": False}
    return settings_from_flags(base | flags, env={})


def test_fingerprint_follows_content_not_name(tmp_path):
    a = tmp_path / "a.json"
    a.write_text(bundled_sample_path().read_text())
    assert traces_fingerprint(a)[1] == traces_fingerprint(bundled_sample_path())[1]
    assert traces_fingerprint(_other_traces(tmp_path))[1] != traces_fingerprint(a)[1]
    assert traces_fingerprint(bundled_sample_path())[0] == "bundled sample"


def test_differences_name_only_differing_fields_and_skip_unknown_old_fields():
    old = {"traces": "bundled sample", "seed": 0, "lean_backend": "simulator"}
    new = {"traces": "test.json", "seed": 0, "lean_backend": "simulator", "candidates_per_step": 8}
    assert differences(old, new) == {"traces": ("bundled sample", "test.json")}


def test_resume_with_other_traces_or_seed_is_refused_naming_the_fields(tmp_path):
    out = tmp_path / "run"
    mine(_settings(out))
    stored = json.loads((out / IDENTITY).read_text())
    assert stored["lean_backend"] == "simulator" and stored["traces"] == "bundled sample"
    assert stored["lean_version"] and stored["policy"] == "retrieval"
    before = (out / "theorems.jsonl").read_text()

    with pytest.raises(IdentityMismatch) as e:
        mine(_settings(out, traces=str(_other_traces(tmp_path)), resume=True))
    assert set(e.value.diffs) == {"traces", "traces_sha256"}
    assert "--output" in str(e.value) and str(e.value.suggestion) != str(out)
    with pytest.raises(IdentityMismatch, match="seed"):
        mine(_settings(out, seed=1, resume=True))
    with pytest.raises(IdentityMismatch, match="candidates_per_step"):
        mine(_settings(out, candidates_per_step=3, resume=True))
    assert (out / "theorems.jsonl").read_text() == before, "a refused resume writes nothing"
    assert json.loads((out / IDENTITY).read_text()) == stored

    resumed = mine(_settings(out, num_theorems=5, resume=True))  # same identity, more theorems: allowed
    assert resumed.this_run["already_finished"] == 3
    assert json.loads((out / IDENTITY).read_text()) == stored


def test_legacy_folder_without_identity_compares_what_its_run_config_says(tmp_path):
    legacy = legacy_identity({"simulated": True, "parameters": {"traces": None, "seed": 0, "candidates_per_step": 8}})
    assert legacy == {"lean_backend": "simulator", "traces": "bundled sample", "seed": 0, "candidates_per_step": 8}
    new = {"lean_backend": "simulator", "traces": "test.json", "seed": 0, "candidates_per_step": 8}
    with pytest.raises(IdentityMismatch, match="traces"):
        check_resume(tmp_path, new, legacy=legacy)
    write_identity(tmp_path, new)
    check_resume(tmp_path, new, legacy=legacy)  # identity.json wins over the legacy fields


def test_default_output_follows_the_identity():
    a = settings_from_flags({"lean": "auto"}, env={}, output_root="runs/mine")
    b = settings_from_flags({"lean": "auto", "seed": 1}, env={}, output_root="runs/mine")
    c = settings_from_flags({"lean": "auto", "num_theorems": 5}, env={}, output_root="runs/mine")
    assert a.output != b.output and a.output == c.output and a.output.startswith("runs/mine/simulator-")
    assert identity_slug({"traces": "x", "traces_sha256": "0", "lean_backend": "simulator", "policy": "retrieval",
                          "prompt_format": None, "seed": 0, "candidates_per_step": 8, "imports": []}).startswith("simulator-x-")


def test_cli_resume_with_other_traces_names_the_fields_and_suggests_an_output(tmp_path):
    out = tmp_path / "run"
    base = [sys.executable, "-m", "workbench.cli", "mine", "--output", str(out), "--lean", "simulated",
            "--num-theorems", "2", "--simulator-latency-scale", "0", "--candidates-per-step", "2"]
    env = {"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"}
    r = subprocess.run(base, capture_output=True, text=True, env=env, timeout=300)
    assert r.returncode == 0, r.stderr
    r = subprocess.run(base + ["--resume", "--traces", str(_other_traces(tmp_path))], capture_output=True, text=True,
                       env=env, timeout=300)
    assert r.returncode == 2
    assert "traces_sha256" in r.stderr and "--output" in r.stderr and "Traceback" not in r.stderr


def test_a_runtime_difference_in_the_identity_folder_suggests_another_name(tmp_path):
    declared = {"traces": "x", "traces_sha256": "0", "lean_backend": "pantograph", "policy": "retrieval",
                "prompt_format": None, "seed": 0, "candidates_per_step": 8, "imports": ["Mathlib"]}
    folder = tmp_path / identity_slug(declared)
    write_identity(folder, declared | {"lean_version": "0.3.1", "policy_model": "retrieval", "prompt_template": None})
    with pytest.raises(IdentityMismatch) as e:
        check_resume(folder, declared | {"lean_version": "0.3.2", "policy_model": "retrieval", "prompt_template": None})
    assert set(e.value.diffs) == {"lean_version"} and e.value.suggestion != folder


def test_target_negatives_and_temperature_are_part_of_the_identity(tmp_path):
    """Issue 20, item 7: --target-negatives and --temperature changed silently on resume, mixing theorems
    mined to another stopping rule or sampled at another temperature in one dataset."""
    from workbench.mining.identity import declared_identity

    out = tmp_path / "run"
    mine(_settings(out))
    with pytest.raises(IdentityMismatch, match="target_negatives: folder has 15, this run has 3"):
        mine(_settings(out, target_negatives=3, resume=True))
    sglang = MineSettings(server_url="http://127.0.0.1:1", temperature=1.0)
    assert differences(declared_identity(sglang), declared_identity(MineSettings(server_url="http://127.0.0.1:1",
                                                                                 temperature=0.6))) == \
        {"temperature": (1.0, 0.6)}
    assert declared_identity(MineSettings(temperature=0.6))["temperature"] is None  # the retrieval policy: no sampling
