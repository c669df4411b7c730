"""Checkpoints are replaced whole: a kill mid-save leaves the old or the new one, a resume refuses pieces
from different saves and a model of another shape or encoder width, by name (not torch's size mismatch)."""

from __future__ import annotations

import os
import shutil

import pytest
import torch

from workbench.ebm import checkpoint as ck
from workbench.ebm.checkpoint import CheckpointMismatchError, load_model, load_training_state, read_meta, save_checkpoint
from workbench.ebm.model import EnergyHead, EnergyHeadConfig
from workbench.ebm.train import TrainConfig, train
from workbench.encode import PLAIN_TEMPLATE, EncoderIdentity

SMALL = dict(d_encoder=32, d_hidden1=64, d_hidden2=32, d_hidden3=16)


def identity(dim=32):
    return EncoderIdentity(model="synthetic", dim=dim, pooling="none", dtype="float32", template=PLAIN_TEMPLATE)


def save(directory, step, seed):
    torch.manual_seed(seed)
    model = EnergyHead(EnergyHeadConfig(**SMALL))
    save_checkpoint(directory, model, encoder_identity=identity(), step=step, training_state={"step_marker": step})
    return model


def test_a_kill_between_the_pieces_leaves_the_previous_checkpoint(tmp_path, monkeypatch):
    last = tmp_path / "last"
    old = save(last, 200, 0)
    real_replace = os.replace

    def killed(src, dst):  # the kill: the new checkpoint is complete but never renamed into place
        if str(dst) == str(last):
            raise KeyboardInterrupt
        return real_replace(src, dst)

    monkeypatch.setattr(ck.os, "replace", killed)
    with pytest.raises(KeyboardInterrupt):
        save(last, 300, 1)
    monkeypatch.undo()
    assert not last.exists()  # moved aside, new one not yet in: the next reader puts the old one back
    model, meta = load_model(last)
    assert meta.step == 200 and load_training_state(last)["step_marker"] == 200
    for k, v in old.state_dict().items():
        assert torch.equal(model.state_dict()[k], v)
    assert not (tmp_path / "last.tmp").exists() and not (tmp_path / "last.old").exists()


def test_a_kill_after_the_new_checkpoint_landed_keeps_the_new_one(tmp_path):
    last = tmp_path / "last"
    save(last, 200, 0)
    shutil.copytree(last, tmp_path / "last.old")  # the old one not deleted yet
    save(tmp_path / "x", 300, 1)
    shutil.rmtree(last)
    os.rename(tmp_path / "x", last)
    assert read_meta(last).step == 300 and not (tmp_path / "last.old").exists()


def test_pieces_of_different_saves_are_refused(tmp_path):
    """Audit: step-300 weights with step-200 optimiser state resumed silently."""
    a, b = tmp_path / "a", tmp_path / "b"
    save(a, 200, 0)
    save(b, 300, 1)
    shutil.copy(b / "model.safetensors", a / "model.safetensors")
    shutil.copy(b / "config.json", a / "config.json")
    with pytest.raises(CheckpointMismatchError, match="different saves"):
        load_training_state(a)


def test_resume_on_another_encoder_is_refused_by_name(synthetic, tmp_path):
    """Audit: --resume with another encoder width gave torch's raw `size mismatch`."""
    from workbench.ebm.data import ContrastiveSampler, SamplerConfig

    joined, table = synthetic
    cfg = TrainConfig(steps=10, batch_size=16, lr=1e-3, warmup_steps=2, eval_every=5, patience=0)
    train(EnergyHeadConfig(**SMALL), cfg, ContrastiveSampler(joined, SamplerConfig(seed=0)), None, table.matrix,
          encoder_identity=identity(), output_dir=tmp_path, progress=False, until_step=5)
    with pytest.raises(CheckpointMismatchError, match="encoder width: checkpoint 32, these embeddings 16"):
        train(EnergyHeadConfig(**{**SMALL, "d_encoder": 16}), cfg, ContrastiveSampler(joined, SamplerConfig(seed=0)),
              None, table.matrix[:, :16], encoder_identity=identity(16), output_dir=tmp_path, progress=False, resume=True)


def test_resume_after_a_kill_mid_save_recovers_the_checkpoint_first(synthetic, tmp_path, caplog):
    """Issue 20, item 6: killed between moving `last` aside and renaming the new one in, --resume said
    "nothing to resume" and silently retrained from step 0."""
    import logging

    from workbench.ebm.data import ContrastiveSampler, SamplerConfig

    joined, table = synthetic
    cfg = TrainConfig(steps=10, batch_size=16, lr=1e-3, warmup_steps=2, eval_every=5, patience=0)

    def run(out, **kw):
        return train(EnergyHeadConfig(**SMALL), cfg, ContrastiveSampler(joined, SamplerConfig(seed=0)), None,
                     table.matrix, encoder_identity=identity(), output_dir=out, progress=False, **kw)

    run(tmp_path / "a", until_step=5)
    os.replace(tmp_path / "a" / "last", tmp_path / "a" / "last.old")  # the kill's leftovers
    with caplog.at_level(logging.INFO, logger="workbench.ebm.train"):
        resumed = run(tmp_path / "a", resume=True)
    assert "resumed from" in caplog.text and "nothing to resume" not in caplog.text
    assert resumed.history[0]["step"] == 5 and resumed.last_step == 10
    straight = run(tmp_path / "b")
    a, _ = load_model(tmp_path / "a" / "last")
    b, _ = load_model(tmp_path / "b" / "last")
    for k, v in b.state_dict().items():
        assert torch.equal(a.state_dict()[k], v), k


class _Planted:
    """What a hostile or foreign training_state.pt may hold: unpickling it runs code (here: writes a file)."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


def test_training_state_is_loaded_without_unpickling_code(tmp_path):
    """Issue 20, item 6: torch.load(weights_only=False) ran on training_state.pt before any id check."""
    last = tmp_path / "last"
    save(last, 200, 0)
    marker = tmp_path / "unpickled"
    torch.save({"optimizer": _Planted(marker), "checkpoint_id": "x"}, last / "training_state.pt")
    with pytest.raises(CheckpointMismatchError, match=r"holds \S*open, not only tensors and plain values"):
        load_training_state(last)
    assert not marker.exists(), "loading the training state ran code from the file"


def test_the_training_state_round_trips_numpy_state_as_tensors(tmp_path):
    import numpy as np

    last = tmp_path / "last"
    torch.manual_seed(0)
    rng = np.random.default_rng(3)
    state = {"sampler": {"rng": rng.bit_generator.state, "order": np.arange(5), "cursor": np.int64(2)},
             "history": [{"loss": np.float64(0.5)}]}
    save_checkpoint(last, EnergyHead(EnergyHeadConfig(**SMALL)), encoder_identity=identity(), step=1,
                    training_state=state)
    back = load_training_state(last)
    assert back["sampler"]["rng"] == rng.bit_generator.state and back["sampler"]["cursor"] == 2
    assert np.array_equal(np.asarray(back["sampler"]["order"]), np.arange(5)) and back["history"] == [{"loss": 0.5}]
