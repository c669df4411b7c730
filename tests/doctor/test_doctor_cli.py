"""`workbench doctor`: one table, doctor.json, exit 0 / 3, --only, and notebook 02's doctor cell (issue 22)."""

from __future__ import annotations

import json

import pytest
from workbench.cli import main
from workbench.doctor import DoctorOptions, Verdict, configured_systems, doctor, doctor_configured
from workbench.encode.standin_sidecar import StandinSidecar
from workbench.errors import EXIT_ENVIRONMENT, EXIT_OK, EnvironmentFailure
from workbench.mining.settings import MineSettings
from workbench.policy.standin_server import GenerateFaults, RetrievalCompleter, StandinSGLang


@pytest.fixture(autouse=True)
def no_environment(monkeypatch):
    for var in ("PANTOGRAPH_REPL", "SGLANG_URL", "ENCODE_URL"):
        monkeypatch.delenv(var, raising=False)


@pytest.fixture(scope="module")
def sglang(theorems):
    with StandinSGLang(completer=RetrievalCompleter(theorems)) as server:
        yield server


def _report(path):
    return json.loads(path.read_text())


def test_every_system_on_its_stand_in_exits_0_with_one_table_and_doctor_json(sglang, tmp_path, capsys):
    out = tmp_path / "checkup" / "doctor.json"
    with StandinSidecar(serve_info=True) as encoder:
        status = main(["doctor", "--lean", "simulated", "--server-url", sglang.url, "--encode-url", encoder.url,
                       "--ramp-budget", "5", "--output", str(out)])
    text = capsys.readouterr().out
    assert status == EXIT_OK
    assert text.splitlines()[0].split() == ["check", "expected", "found", "verdict", "what", "to", "do"]
    assert "[SIMULATED]" in text and "[STAND-IN]" in text and "no check failed" in text
    report = _report(out)
    assert report["exit_status"] == 0 and {c["system"] for c in report["checks"]} == {"lean", "sglang", "encoder"}
    assert {t["title"] for t in report["tables"]} >= {"traces walked one step: start and alignment"}
    assert [p.name for p in out.parent.iterdir()] == ["doctor.json"]  # written atomically: no temporary left


def test_a_failed_check_exits_3_and_only_checks_what_it_is_told(tmp_path, capsys):
    with StandinSGLang(server_version="0.3.0") as old:
        status = main(["doctor", "--only", "sglang", "--server-url", old.url, "--output", str(tmp_path / "d.json")])
    assert status == EXIT_ENVIRONMENT
    report = _report(tmp_path / "d.json")
    assert {c["system"] for c in report["checks"]} == {"sglang"}
    failed = [c for c in report["checks"] if c["verdict"] == "fail"]
    assert [c["check"] for c in failed] == ["finish_reason"] and "FAIL" in capsys.readouterr().out


def test_only_a_system_that_is_not_configured_fails_naming_the_flag(tmp_path, capsys):
    status = main(["doctor", "--only", "encoder", "--output", str(tmp_path / "d.json")])
    assert status == EXIT_ENVIRONMENT
    (row,) = _report(tmp_path / "d.json")["checks"]
    assert row["check"] == "configured" and row["verdict"] == "fail" and "--encode-url" in row["what_to_do"]


def test_nothing_configured_is_not_a_pass(tmp_path):
    assert main(["doctor", "--output", str(tmp_path / "d.json")]) == EXIT_ENVIRONMENT
    checks = _report(tmp_path / "d.json")["checks"]
    assert [c["verdict"] for c in checks] == ["skip", "skip", "skip", "fail"]


def test_unconfigured_systems_are_skipped_without_only(sglang):
    report = doctor(MineSettings(lean="auto", server_url=sglang.url), options=DoctorOptions(ramp_budget_s=2))
    lean = [c for c in report.checks if c.system == "lean"]
    assert [(c.name, c.verdict) for c in lean] == [("configured", Verdict.SKIP)]
    assert report.exit_status == EXIT_OK


def test_the_notebook_cell_is_a_no_op_on_a_dry_run():
    settings = MineSettings(lean="auto", output="runs/mine/x")
    assert configured_systems(settings) == () and doctor_configured(settings) is None


def test_the_notebook_cell_checks_the_real_servers_and_speaks_in_parameters(sglang, tmp_path):
    settings = MineSettings(lean="simulated", server_url=sglang.url, output=str(tmp_path / "runs" / "x"))
    assert configured_systems(settings) == ("sglang",)
    report = doctor_configured(settings, options=DoctorOptions(ramp_budget_s=2))
    assert report is not None and {c.system for c in report.checks} == {"sglang"}
    assert (tmp_path / "runs" / "doctor.json").exists() and report.style == "notebook"

    with StandinSGLang(faults=GenerateFaults(loading_health_checks=10**9)) as stuck:
        stuck_settings = MineSettings(lean="simulated", server_url=stuck.url, server_wait_s=0.3,
                                      output=str(tmp_path / "runs" / "y"))
        with pytest.raises(EnvironmentFailure) as e:
            doctor_configured(stuck_settings, options=DoctorOptions(poll_s=0.05))
    message = str(e.value)
    assert "/health during loading" in message and "server_wait" in message and "--server" not in message


def test_environment_failures_inside_a_check_are_rows_not_tracebacks(tmp_path):
    """A REPL command that does not exist: the version row fails with the install advice, the rest is not run."""
    settings = MineSettings(lean="pantograph", pantograph_cmd=str(tmp_path / "no-such-repl"), output="x")
    report = doctor(settings, only=["lean"])
    (row, floor) = report.checks
    assert row.verdict is Verdict.FAIL and "{pantograph_cmd}" in row.todo and floor.verdict is Verdict.SKIP
    assert "--pantograph-cmd" in report.text()  # the table spells the setting as a flag
