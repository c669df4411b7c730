"""Notebook 04 executed headless by papermill on tiny parameters (the default hashed encoder, bundled sample)."""

import json
from pathlib import Path

from workbench.traces import bundled_sample_path


NOTEBOOK = Path(__file__).resolve().parents[2] / "notebooks" / "04_train_ebm.ipynb"


def test_notebook_04_is_committed_without_outputs():
    nb = json.loads(NOTEBOOK.read_text())
    assert all(not c.get("outputs") for c in nb["cells"] if c["cell_type"] == "code")
    assert any("parameters" in c["metadata"].get("tags", []) for c in nb["cells"])
    assert not any(line.lstrip().startswith("def ") for c in nb["cells"] for line in "".join(c["source"]).splitlines())


def test_notebook_04_runs_on_tiny_parameters(tmp_path, execute_notebook):
    out = tmp_path / "ebm"
    execute_notebook(
        NOTEBOOK, tmp_path / "04.ipynb",
        parameters={"overrides": {"steps": 20, "eval_every": 10, "batch_size": 16, "hidden": [32, 16, 8], "spectral_norm": True},
                    "output_dir": str(out), "eval_traces": [str(bundled_sample_path())]},
    )
    summary = json.loads((out / "summary.json").read_text())
    assert summary["simulated"] is False and summary["last_step"] == 20
    assert "Per-theorem progress accuracy" in summary["progress"]["verdict"]
    assert summary["model"]["spectral_norm"] is True and summary["model"]["d_hidden1"] == 32
    settings = json.loads((out / "settings.json").read_text())
    assert settings["loss"] == "ranknet" and settings["val_fraction"] == 0.1  # the train-ebm defaults
    assert "parent→child" in summary["checks"]["checks"] and summary["checks"]["held_out_kinds"]
    for name in ("curves.png", "energy_hist.png", "baselines.png", "progress_by_distance.png", "checks.png"):
        assert (out / name).stat().st_size > 0, name
    assert (out / "best" / "model.safetensors").exists()
    evaluated = json.loads((out / f"eval_{bundled_sample_path().stem}.json").read_text())
    assert evaluated["sibling_checks"]["checks"]["parent→child"]["n_pairs"] > 0  # the --eval-traces cell ran


def test_notebook_04_and_train_ebm_share_one_set_of_defaults():
    import argparse

    from workbench.ebm.cli import configure
    from workbench.ebm.settings import EbmSettings

    parser = argparse.ArgumentParser()
    configure(parser)
    from_cli = EbmSettings.from_flags(parser.parse_args([]))
    assert from_cli == EbmSettings()
    nb = json.loads(NOTEBOOK.read_text())
    params = next("".join(c["source"]) for c in nb["cells"] if "parameters" in c["metadata"].get("tags", []))
    # the notebook names only data paths and an explicit overrides dict: no second copy of any default
    names = {line.split("=")[0].split(":")[0].strip() for line in params.splitlines()
             if "=" in line and not line.startswith("#")}
    assert names == {"traces", "trajectories", "eval_traces", "output_dir", "overrides"}
