import math

import numpy as np
import pytest
import torch

from workbench.ebm.losses import contrastive_loss, depth_regression, info_nce, margin_ranking
from workbench.ebm.metrics import auroc, contrastive_metrics, health_warnings


def test_info_nce_hand_computed():
    # logits = -E / T = [0, -1]: loss = -log(e^0 / (e^0 + e^-1)) = log(1 + e^-1)
    loss = info_nce(torch.tensor([0.0]), torch.tensor([[1.0]]), torch.tensor(1.0))
    assert loss.item() == pytest.approx(math.log(1 + math.exp(-1)))
    # temperature 0.5 doubles the logits; two rows average
    loss = info_nce(torch.tensor([0.0, 2.0]), torch.tensor([[1.0, 1.0], [2.0, 2.0]]), torch.tensor(0.5))
    row1 = math.log(1 + 2 * math.exp(-2))
    row2 = math.log(3)
    assert loss.item() == pytest.approx((row1 + row2) / 2, rel=1e-6)


def test_uniform_energies_give_log_k_plus_one():
    loss = info_nce(torch.zeros(4), torch.zeros(4, 7), torch.tensor(0.1))
    assert loss.item() == pytest.approx(math.log(8), rel=1e-6)


def test_margin_ranking_hand_computed():
    # relu(1 + 0 - 0.5) = 0.5 and relu(1 + 0 - 2) = 0 -> mean 0.25
    assert margin_ranking(torch.tensor([0.0]), torch.tensor([[0.5, 2.0]]), 1.0).item() == pytest.approx(0.25)


def test_depth_regression_ignores_unknown_depth():
    e = torch.tensor([math.log(3.0), 5.0])
    assert depth_regression(e, torch.tensor([2, -1])).item() == pytest.approx(0.0, abs=1e-7)
    assert depth_regression(e, torch.tensor([-1, -1])).item() == 0.0
    # (0 - log1p(1))^2
    assert depth_regression(torch.tensor([0.0]), torch.tensor([1])).item() == pytest.approx(math.log(2) ** 2)


def test_combined_loss_weights_depth():
    e_pos, e_neg = torch.tensor([0.0]), torch.tensor([[1.0]])
    parts = contrastive_loss(e_pos, e_neg, torch.tensor(1.0), torch.tensor([1]), kind="infonce", depth_weight=0.3)
    assert parts.total.item() == pytest.approx(math.log(1 + math.exp(-1)) + 0.3 * math.log(2) ** 2)
    parts = contrastive_loss(e_pos, e_neg, torch.tensor(1.0), torch.tensor([1]), kind="margin", depth_weight=0.0)
    assert parts.total.item() == pytest.approx(0.0) and parts.depth.item() == 0.0
    with pytest.raises(ValueError, match="unknown loss"):
        contrastive_loss(e_pos, e_neg, torch.tensor(1.0), kind="hinge")


def test_metrics_hand_computed():
    e_pos = np.array([0.0, 1.0])
    e_neg = np.array([[1.0, 2.0], [0.5, 3.0]])
    m = contrastive_metrics(e_pos, e_neg)
    assert m["rank_acc"] == 0.5  # row 2 loses to 0.5
    assert m["pairwise_acc"] == 0.75
    assert m["energy_gap"] == pytest.approx(1.625 - 0.5)
    # scores -E: pos {0, -1}, neg {-1, -2, -0.5, -3}: wins 4 + 1.5(tie) + 0 ... computed by hand
    assert auroc(np.array([0.0, -1.0]), np.array([-1.0, -2.0, -0.5, -3.0])) == pytest.approx((4 + 2.5) / 8)


def test_health_warnings():
    assert health_warnings({"energy_std": 0.5, "energy_gap": 1.0}, step=10) == []
    w = health_warnings({"energy_std": 1e-7, "energy_gap": -0.2}, step=10, warmup_steps=5)
    assert any("collapse" in x for x in w) and any("inverted polarity" in x for x in w)
    assert not health_warnings({"energy_std": 1.0, "energy_gap": -0.2}, step=3, warmup_steps=5)
    assert any("NaN" in x for x in health_warnings({"loss": float("nan"), "energy_std": 1.0}, step=1))
