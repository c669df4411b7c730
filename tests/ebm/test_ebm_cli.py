import json

import numpy as np
import pandas as pd

from workbench.cli import main
from workbench.ebm.baselines import POSITION
from workbench.ebm.synthetic import make_synthetic
from workbench.encode import EncoderIdentity, PLAIN_TEMPLATE
from workbench.encode.cache import write_part
from workbench.trajectory import TrajectoryRecord, TrajectoryWriter

SMALL = ["--hidden", "32", "16", "8", "--batch-size", "16", "--eval-every", "10", "--no-progress", "--encode", "none"]


def _identity(dim):
    return EncoderIdentity(model="synthetic", dim=dim, pooling="none", dtype="float32", template=PLAIN_TEMPLATE)


def test_train_ebm_on_mined_trajectories(tmp_path):
    df, table = make_synthetic(n_theorems=12, steps=3, siblings=2, dim=16, separation=2.0)
    with TrajectoryWriter(tmp_path / "traj", {"simulated": True}) as w:
        for r in df.itertuples(index=False):
            w.write(TrajectoryRecord(
                theorem_name=r.theorem_name, state_id=int(r.state_id), state_pp=r.state_pp, tactic_applied="t",
                parent_state_id=None if pd.isna(r.parent_state_id) else int(r.parent_state_id),
                label=r.label, depth_from_root=int(r.depth_from_root), remaining_depth=int(r.remaining_depth),
                llm_log_prob=float(r.llm_log_prob), record_kind=r.record_kind, simulated=True,
            ))
    write_part(tmp_path / "emb", table.states, table.matrix, _identity(16))
    out = tmp_path / "run"
    rc = main(["train-ebm", "--trajectories", str(tmp_path / "traj"), "--embeddings", str(tmp_path / "emb"),
               "--output", str(out), "--steps", "30", "--val-fraction", "0.25", *SMALL])
    assert rc == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["simulated"] is True
    assert "Rank-1 among siblings" in summary["siblings"]["verdict"]
    mined = summary["mined_siblings"]["checks"]["mined siblings (positive vs negative child of one parent)"]
    assert mined["n_theorems"] == 3 and mined["n_pairs"] > 0  # 25 % of 12 theorems held out
    lo, hi = mined["methods"]["energy (model)"]["interval"]
    assert lo <= mined["methods"]["energy (model)"]["value"] <= hi and "p_model_above" in mined
    assert "Per-theorem progress accuracy" in summary["progress"]["verdict"]
    assert (out / "best" / "model.safetensors").exists()
    cfg = json.loads((out / "best" / "config.json").read_text())
    assert cfg["encoder_identity"]["model"] == "synthetic" and cfg["model"]["d_encoder"] == 16


def test_train_ebm_on_traces_reports_missing_embeddings(tmp_path, sample_traces_path, caplog):
    from workbench.ebm.data import records_from_traces
    from workbench.traces import load_traces

    states = sorted(set(records_from_traces(load_traces(sample_traces_path).theorems)["state_pp"]))
    kept = states[:-3]  # three states deliberately left out of the cache
    rng = np.random.default_rng(0)
    write_part(tmp_path / "emb", kept, rng.standard_normal((len(kept), 8)).astype(np.float32), _identity(8))
    out = tmp_path / "run"
    rc = main(["train-ebm", "--traces", str(sample_traces_path), "--embeddings", str(tmp_path / "emb"), "--no-standardize-inputs",
               "--output", str(out), "--steps", "20", "--perturbations", *SMALL])  # no made-up siblings: the cache has none
    assert rc == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["missing_embeddings"]["distinct_states"] == 3
    assert summary["simulated"] is False and "siblings" not in summary
    assert "energy (model)" in summary["progress"]["methods"]
    assert summary["model"]["standardize_inputs"] is False


def _sample_cache(tmp_path, sample_traces_path, dim=8):
    from workbench.ebm.data import records_from_traces
    from workbench.traces import load_traces

    states = sorted(set(records_from_traces(load_traces(sample_traces_path).theorems)["state_pp"]))
    rng = np.random.default_rng(0)
    write_part(tmp_path / "emb", states, rng.standard_normal((len(states), dim)).astype(np.float32), _identity(dim))
    return tmp_path / "emb"


def test_eval_traces_writes_model_and_baselines_with_intervals(tmp_path, sample_traces_path):
    emb = _sample_cache(tmp_path, sample_traces_path)
    out = tmp_path / "run"
    rc = main(["train-ebm", "--traces", str(sample_traces_path), "--embeddings", str(emb), "--output", str(out),
               "--steps", "10", "--eval-traces", str(sample_traces_path), *SMALL])
    assert rc == 0
    result = json.loads((out / f"eval_{sample_traces_path.stem}.json").read_text())
    methods = result["methods"]
    # one direction per feature, fixed on the training split, and the pairwise logistic models fitted there
    assert result["baseline_directions"] == "fixed on the training split"
    assert len([m for m in methods if m.startswith("hypotheses:")]) == 1
    assert {"energy (model)", "pairwise logistic: structural features", "pairwise logistic: TF-IDF char n-grams",
            "random (mean of draws)"} <= set(methods)
    directions = result["baselines"]["directions"]
    assert f"state length: {'shorter' if directions['state_length'].startswith('lower') else 'longer'} = closer" in methods
    assert result["sibling_checks"] is None  # cache only (--encode none): the made-up siblings cannot be encoded
    for entry in methods.values():
        lo, hi = entry["interval"]
        assert lo <= entry["progress_accuracy"] <= hi
        assert set(entry["adjacent_accuracy"]) == {"value", "interval"}
    assert result["traces"] == str(sample_traces_path) and result["features"] == ["state_length", "hypotheses", "goals", "target_length"]
    assert "best trivial baseline" in result["verdict"] and result["n_theorems"] > 0
    # the position cue is in every table, compared with by name, never as a trivial or fitted baseline
    assert POSITION in methods and f"Against '{POSITION}' (nothing fitted)" in result["verdict"]
    assert result["best_baseline"] != POSITION
    settings = json.loads((out / "settings.json").read_text())
    assert settings["eval_traces"] == [str(sample_traces_path)] and settings["loss"] == "ranknet"


def test_resume_keeps_the_checkpoint_architecture(tmp_path, sample_traces_path, caplog):
    emb = _sample_cache(tmp_path, sample_traces_path)
    out = tmp_path / "run"
    base = ["train-ebm", "--traces", str(sample_traces_path), "--embeddings", str(emb), "--output", str(out), *SMALL]
    assert main([*base, "--steps", "10"]) == 0
    # different widths and no features on resume: the checkpoint's architecture wins, with a warning
    assert main([*base, "--steps", "20", "--resume", "--hidden", "64", "32", "16", "--features"]) == 0
    cfg = json.loads((out / "last" / "config.json").read_text())
    assert cfg["step"] == 20 and cfg["model"]["d_hidden1"] == 32 and len(cfg["model"]["features"]) == 4
    assert "keeping the checkpoint's architecture" in caplog.text


def test_eval_traces_reports_sibling_checks_first_with_intervals(tmp_path, sample_traces_path, caplog):
    # the offline hashed encoder encodes the made-up siblings, so --eval-traces reports the sibling checks
    caplog.set_level("INFO")
    out = tmp_path / "run"
    flags = [f for f in SMALL if f not in ("--encode", "none")]
    rc = main(["train-ebm", "--traces", str(sample_traces_path), "--encode", "hashed", "--output", str(out),
               "--steps", "10", "--eval-traces", str(sample_traces_path), *flags])
    assert rc == 0
    result = json.loads((out / f"eval_{sample_traces_path.stem}.json").read_text())
    checks = result["sibling_checks"]
    assert checks["held_out_kinds"] and checks["training_kinds"]
    for name in ("parent→child", "no-progress siblings, held-out kinds"):
        entry = checks["checks"][name]
        assert entry["n_theorems"] > 0 and entry["n_pairs"] >= entry["n_theorems"]
        assert "state length: longer = closer" in entry["methods"] or "state length: shorter = closer" in entry["methods"]
        assert POSITION in entry["methods"]
        for m in entry["methods"].values():
            lo, hi = m["interval"]
            assert lo <= m["value"] <= hi
    # the evaluation's log line and the run's summary put the sibling checks before the progress headline
    line = next(r.getMessage() for r in caplog.records if f"eval_{sample_traces_path.stem}.json" in r.getMessage())
    assert line.index("Sibling checks: parent→child") < line.index("Per-theorem progress accuracy")
    summary = next(r.getMessage() for r in caplog.records if r.getMessage().startswith("best "))
    assert summary.index("Sibling checks:") < summary.index("Per-theorem progress accuracy")
    # traces alone hold no mined siblings: the made-up ones are the sibling checks', never a "mined siblings" report
    written = json.loads((out / "summary.json").read_text())
    assert "siblings" not in written and "mined_siblings" not in written
