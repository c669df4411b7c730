import json

import numpy as np
import pytest
import torch

from workbench.ebm.scorer import EnergyScorer
from workbench.ebm.checkpoint import (
    EncoderMismatchError,
    load_model,
    load_training_state,
    read_meta,
    save_checkpoint,
)
from workbench.ebm.model import EnergyHead, EnergyHeadConfig
from workbench.ebm.train import TrainConfig, lr_at, train
from workbench.encode import EncoderIdentity, PLAIN_TEMPLATE

SMALL = dict(d_encoder=32, d_hidden1=64, d_hidden2=32, d_hidden3=16)


def _identity(dim=32, **kw):
    return EncoderIdentity(**{"model": "synthetic", "dim": dim, "pooling": "none", "dtype": "float32", "template": PLAIN_TEMPLATE, **kw})


@pytest.mark.parametrize(("spectral_norm", "loss"), [(False, "ranknet"), (False, "infonce"), (True, "infonce"), (False, "margin")])
def test_learns_synthetic_separable_problem(synthetic_split, tmp_path, spectral_norm, loss):
    train_s, val_s, table = synthetic_split
    cfg = TrainConfig(steps=150, batch_size=32, lr=3e-3, warmup_steps=10, eval_every=50, patience=0, metric="val_rank_acc", loss=loss)
    result = train(EnergyHeadConfig(**SMALL, spectral_norm=spectral_norm), cfg, train_s, val_s, table.matrix,
                   encoder_identity=_identity(), output_dir=tmp_path, progress=False)
    final = result.history[-1]
    assert final["val_rank_acc"] > 0.8, final
    assert final["val_auroc"] > 0.95 and final["val_energy_gap"] > 0
    assert result.best_metric >= final["val_rank_acc"]
    assert not result.warnings
    assert (tmp_path / "best" / "model.safetensors").exists()
    assert len((tmp_path / "history.jsonl").read_text().splitlines()) == 3


def test_resume_gives_identical_weights(synthetic, tmp_path):
    from workbench.ebm.data import ContrastiveSampler, SamplerConfig

    joined, table = synthetic
    cfg = TrainConfig(steps=20, batch_size=16, lr=1e-3, warmup_steps=4, eval_every=5, patience=0)
    model_cfg = EnergyHeadConfig(**SMALL, spectral_norm=True)  # u/v and dropout RNG must resume too

    def run(out, **kw):
        sampler = ContrastiveSampler(joined, SamplerConfig(seed=0))
        return train(model_cfg, cfg, sampler, None, table.matrix, encoder_identity=_identity(), output_dir=out, progress=False, **kw)

    run(tmp_path / "straight")
    partial = run(tmp_path / "resumed", until_step=10)
    assert partial.last_step == 10
    resumed = run(tmp_path / "resumed", resume=True)
    assert resumed.last_step == 20
    a, _ = load_model(tmp_path / "straight" / "last")
    b, meta = load_model(tmp_path / "resumed" / "last")
    assert meta.step == 20
    sa, sb = a.state_dict(), b.state_dict()
    assert sa.keys() == sb.keys()
    for k in sa:
        assert torch.equal(sa[k], sb[k]), k
    assert [r["step"] for r in resumed.history] == [5, 10, 15, 20]


def test_checkpoint_round_trip_and_identity_refusal(tmp_path):
    torch.manual_seed(0)
    model = EnergyHead(EnergyHeadConfig(**SMALL, spectral_norm=True))
    model.train()
    model(torch.randn(8, 32))  # move u/v away from their initial draw
    model.eval()
    ident = _identity()
    save_checkpoint(tmp_path, model, encoder_identity=ident, step=7, best_metric=0.5, best_step=5,
                    metric_name="val_loss", training_state={"x": 1})
    meta = read_meta(tmp_path)
    assert meta.step == 7 and meta.best_metric == 0.5 and meta.model == model.config
    assert meta.template == PLAIN_TEMPLATE
    assert load_training_state(tmp_path) == {"x": 1}
    cfg_json = json.loads((tmp_path / "config.json").read_text())
    assert cfg_json["encoder_identity"]["model"] == "synthetic" and cfg_json["state_text_template"] == PLAIN_TEMPLATE

    scorer = EnergyScorer.from_checkpoint(tmp_path)
    x = np.random.default_rng(0).standard_normal((5, 32)).astype(np.float32)
    with torch.no_grad():
        expected = model(torch.from_numpy(x)).numpy()
    np.testing.assert_array_equal(scorer.energies(x, ident), expected)
    np.testing.assert_array_equal(scorer.scores(x, ident), -expected)

    with pytest.raises(EncoderMismatchError, match="model: trained on 'synthetic', got 'other'"):
        scorer.energies(x, _identity(model="other"))
    with pytest.raises(EncoderMismatchError, match="template"):
        scorer.energies(x, _identity(template="Complete: {state}"))


def test_checkpoint_refuses_identity_of_other_width(tmp_path):
    model = EnergyHead(EnergyHeadConfig(**SMALL))
    with pytest.raises(ValueError, match="dim 384"):
        save_checkpoint(tmp_path, model, encoder_identity=_identity(dim=384), step=0)


def test_load_errors_name_the_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="config.json"):
        read_meta(tmp_path)
    (tmp_path / "config.json").write_text("{not json")
    with pytest.raises(ValueError, match="line 1"):
        read_meta(tmp_path)


def test_lr_schedule_shape():
    cfg = TrainConfig(steps=100, warmup_steps=10, min_lr_ratio=0.1)
    assert lr_at(0, cfg) == pytest.approx(0.1)
    assert lr_at(9, cfg) == pytest.approx(1.0)
    assert lr_at(10, cfg) == pytest.approx(1.0)
    assert lr_at(99, cfg) == pytest.approx(0.1, abs=1e-3)
    assert lr_at(55, cfg) == pytest.approx(0.55, abs=1e-2)


def test_early_stopping_without_progress(synthetic_split, tmp_path):
    train_s, val_s, table = synthetic_split
    cfg = TrainConfig(steps=100, batch_size=8, lr=0.0, warmup_steps=1, eval_every=5, patience=2, metric="val_auroc")
    result = train(EnergyHeadConfig(**SMALL, dropout=0.0), cfg, train_s, val_s, table.matrix,
                   encoder_identity=_identity(), output_dir=tmp_path, progress=False)
    assert result.stopped_early and result.last_step == 15 and result.best_step == 5


def test_no_validation_split_falls_back_to_training_metric(synthetic, tmp_path):
    from workbench.ebm.data import ContrastiveSampler, SamplerConfig

    joined, table = synthetic
    cfg = TrainConfig(steps=10, batch_size=8, eval_every=5, patience=1, metric="val_rank_acc")
    result = train(EnergyHeadConfig(**SMALL), cfg, ContrastiveSampler(joined, SamplerConfig()), None, table.matrix,
                   encoder_identity=_identity(), output_dir=tmp_path, progress=False)
    assert result.best_step is not None and (tmp_path / "best" / "config.json").exists()


def test_input_statistics_come_from_the_training_split_only(synthetic_split, tmp_path):
    train_s, val_s, table = synthetic_split
    cfg = TrainConfig(steps=2, batch_size=4, eval_every=2, lr=0.0)
    train(EnergyHeadConfig(**SMALL), cfg, train_s, val_s, table.matrix, encoder_identity=_identity(),
          output_dir=tmp_path, progress=False)
    model, _ = load_model(tmp_path / "last")
    rows = train_s.embedding_rows()
    np.testing.assert_allclose(model.input_mean.numpy(), table.matrix[rows].mean(0), rtol=1e-5, atol=1e-6)
    assert not np.allclose(model.input_mean.numpy(), table.matrix.mean(0))


def test_device_selection(synthetic_split, tmp_path):
    from workbench.ebm.train import resolve_device

    assert resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    assert resolve_device("cpu") == torch.device("cpu")
    train_s, val_s, table = synthetic_split
    cfg = TrainConfig(steps=5, batch_size=8, eval_every=5, patience=0, device="cpu")
    result = train(EnergyHeadConfig(**SMALL), cfg, train_s, val_s, table.matrix, encoder_identity=_identity(),
                   output_dir=tmp_path, progress=False)
    assert result.last_step == 5 and load_model(tmp_path / "last")[1].step == 5
