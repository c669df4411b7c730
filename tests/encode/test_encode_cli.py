import argparse
import json

import pytest

from workbench.encode import read_embeddings
from workbench.encode.cache import CacheIdentityError
from workbench.encode.cli import configure, run
from workbench.trajectory import TrajectoryRecord, TrajectoryWriter


def _trajectory(path, states):
    with TrajectoryWriter(path, {"test": True}) as w:
        for i, s in enumerate(states):
            w.write(TrajectoryRecord(theorem_name="t", state_id=i, state_pp=s, tactic_applied="" if i == 0 else "simp",
                                     parent_state_id=None if i == 0 else 0, label="positive", depth_from_root=min(i, 1),
                                     remaining_depth=-1))


def test_encode_command_against_the_standin_sidecar(tmp_path, sidecar, capsys):
    _trajectory(tmp_path / "traj", ["⊢ a", "⊢ b", "⊢ a", "⊢ c"])
    parser = argparse.ArgumentParser()
    configure(parser)
    args = parser.parse_args(["--trajectories", str(tmp_path / "traj"), "--cache", str(tmp_path / "cache"),
                              "--encode-url", sidecar.url, "--hidden-size", "16", "--encoder-model", "standin",
                              "--no-progress", "--export", str(tmp_path / "all.parquet")])
    assert run(args) == 0
    summary = json.loads(capsys.readouterr().out)
    assert (summary["requested"], summary["unique"], summary["encoded"]) == (4, 3, 3)
    table = read_embeddings(tmp_path / "all.parquet")
    assert sorted(table.states) == ["⊢ a", "⊢ b", "⊢ c"] and table.identity.model == "standin"
    # a rerun is all hits
    assert run(args) == 0
    assert json.loads(capsys.readouterr().out)["hits"] == 3


def test_mixing_templates_fails_cleanly(tmp_path, sidecar):
    _trajectory(tmp_path / "traj", ["⊢ a"])
    parser = argparse.ArgumentParser()
    configure(parser)
    base = ["--trajectories", str(tmp_path / "traj"), "--cache", str(tmp_path / "cache"), "--encode-url", sidecar.url,
            "--hidden-size", "16", "--encoder-model", "standin", "--no-progress"]
    assert run(parser.parse_args(base)) == 0
    with pytest.raises(CacheIdentityError):  # `workbench encode` turns it into one line and exit 2 (bad input)
        run(parser.parse_args(base + ["--template", "plain"]))
