"""Features appended to the embedding, EnergyScorer.score_states (the one scoring path), RankNet,
EbmSettings. Tiny models and a deterministic fake encoder: no MiniLM here."""

import asyncio
import hashlib

import numpy as np
import pytest
import torch

from workbench.ebm.checkpoint import EncoderMismatchError, save_checkpoint
from workbench.ebm.scorer import EnergyScorer
from workbench.ebm.features import FEATURE_NAMES, state_features, with_features
from workbench.ebm.losses import contrastive_loss, ranknet
from workbench.ebm.model import EnergyHead, EnergyHeadConfig
from workbench.ebm.perturb import TRAIN_KINDS
from workbench.ebm.settings import OFFLINE_HIDDEN, SEED_HIDDEN, EbmSettings
from workbench.encode import EncoderIdentity, PLAIN_TEMPLATE, state_text

STATES = ["x : ℕ\n⊢ x = x", "a b : ℝ\nh : a < b\n⊢ a ≤ b", "⊢ True\n\n⊢ False", "p q : Prop\n⊢ p ∨ q → q ∨ p"]


class HashEncoder:
    """Deterministic 6-d encoder that records what it was asked to encode."""

    def __init__(self):
        self.identity = EncoderIdentity(model="hash", dim=6, pooling="none", dtype="float32", template=PLAIN_TEMPLATE)
        self.texts = []

    async def encode(self, texts):
        self.texts.extend(texts)
        return np.stack([np.random.default_rng(int(hashlib.sha256(t.encode()).hexdigest()[:8], 16)).standard_normal(6)
                         for t in texts]).astype(np.float32)


def _head(features=FEATURE_NAMES, d=6):
    torch.manual_seed(0)
    model = EnergyHead(EnergyHeadConfig(d_encoder=d, d_hidden1=8, d_hidden2=8, d_hidden3=4, features=tuple(features)))
    return model


def test_features_widen_the_input_and_are_standardised_with_stored_statistics(tmp_path):
    enc = HashEncoder()
    emb = np.asarray(asyncio.run(enc.encode([state_text(s, PLAIN_TEMPLATE) for s in STATES])))
    x = with_features(emb, STATES, FEATURE_NAMES)
    assert x.shape == (4, 6 + 4)
    np.testing.assert_allclose(x[:, 6:], np.log1p(state_features(STATES)))
    model = _head()
    assert model.config.d_input == 10 and model.net[0].in_features == 10
    model.set_input_statistics(torch.from_numpy(x))
    save_checkpoint(tmp_path, model, encoder_identity=enc.identity, step=1)
    scorer = EnergyScorer.from_checkpoint(tmp_path, encoder=HashEncoder())
    assert scorer.features == FEATURE_NAMES
    torch.testing.assert_close(scorer.model.input_std, model.input_std)  # statistics travel with the weights
    expected = model.eval()(torch.from_numpy(x)).detach().numpy()
    np.testing.assert_allclose(scorer.energies_of_states(STATES), expected, rtol=1e-5)
    np.testing.assert_allclose(scorer.score_states(STATES), -expected, rtol=1e-5)
    with pytest.raises(ValueError, match="pass the state texts"):
        scorer.energies(emb, enc.identity)


def test_score_states_goes_through_the_cache_and_refuses_other_encoders(tmp_path):
    model = _head()
    save_checkpoint(tmp_path / "ckpt", model, encoder_identity=HashEncoder().identity, step=1)
    enc = HashEncoder()
    scorer = EnergyScorer.from_checkpoint(tmp_path / "ckpt", encoder=enc, cache=tmp_path / "cache")
    first = scorer.score_states(STATES)
    assert len(enc.texts) == 4 and (tmp_path / "cache").is_dir()
    again = scorer.score_states(STATES[::-1])  # all cached now: nothing encoded, same scores
    assert len(enc.texts) == 4
    np.testing.assert_allclose(again, first[::-1], rtol=1e-6)
    other = HashEncoder()
    other.identity = EncoderIdentity(model="other", dim=6, pooling="none", dtype="float32", template=PLAIN_TEMPLATE)
    with pytest.raises(EncoderMismatchError):
        EnergyScorer.from_checkpoint(tmp_path / "ckpt", encoder=other).score_states(STATES)


def test_ranknet_hand_computed_and_is_the_default():
    e_pos = torch.tensor([0.0, 1.0])
    e_neg = torch.tensor([[1.0, 0.0], [1.0, 3.0]])
    expected = np.mean([np.log1p(np.exp(-1.0)), np.log(2), np.log(2), np.log1p(np.exp(-2.0))])
    assert ranknet(e_pos, e_neg).item() == pytest.approx(expected, rel=1e-6)
    parts = contrastive_loss(e_pos, e_neg, torch.tensor(0.1), depth_weight=0.0)
    assert parts.contrastive.item() == pytest.approx(expected, rel=1e-6)


def test_settings_defaults_resolve_by_encoder_and_reject_unknown_keys():
    s = EbmSettings()
    # the offline default chosen on the shared validation split (issue 25): hashed n-grams (4096-d) with the
    # offline head, made-up siblings and the parent as hard negatives
    assert s.encode == "hashed" and s.perturbations == TRAIN_KINDS and s.sampler_config().parent_negatives
    assert EbmSettings(parent_negatives=False).sampler_config().parent_negatives is False  # the setting reaches the sampler
    assert s.resolved_template() == "plain" and s.model_config(4096).d_hidden1 == OFFLINE_HIDDEN[0]
    assert EbmSettings(encode="local+hashed").model_config(4480).d_hidden1 == OFFLINE_HIDDEN[0]
    # the prover's own states (sidecar, hf:MODEL) get the seed architecture when wide, the offline one when narrow
    sidecar = EbmSettings(encode="http://localhost:30001")
    assert sidecar.model_config(4096).d_hidden1 == SEED_HIDDEN[0] and sidecar.model_config(384).d_hidden1 == OFFLINE_HIDDEN[0]
    assert EbmSettings(encode=None).model_config(4096).d_hidden1 == SEED_HIDDEN[0]  # cache only: by width
    assert s.model_config(4096).features == FEATURE_NAMES and sidecar.resolved_template() == "deepseek"
    assert s.train_config().warmup_steps == s.steps // 20 and s.sampler_config().progress_negatives
    t = EbmSettings.from_dict({"features": [], "hidden": [8, 4, 2], "eval_traces": "x.json"})
    assert t.features == () and t.hidden == (8, 4, 2) and t.eval_traces == ("x.json",)
    with pytest.raises(ValueError, match="unknown setting.*'stepz'"):
        EbmSettings.from_dict({"stepz": 3})
    with pytest.raises(ValueError, match="unknown structural feature"):
        EbmSettings(features=("colour",))
