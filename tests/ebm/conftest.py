"""Fixtures for the energy-model tests: a small synthetic separable problem and its samplers."""

from __future__ import annotations

import pytest

from workbench.ebm.data import ContrastiveSampler, SamplerConfig, attach_embeddings, split_by_theorem
from workbench.ebm.synthetic import make_synthetic


@pytest.fixture()
def synthetic():
    """(records with emb_row, table) for 40 theorems x 4 steps x 3 negative siblings, 32-d."""
    df, table = make_synthetic(n_theorems=40, steps=4, siblings=3, dim=32, separation=2.0, seed=0)
    joined, missing = attach_embeddings(df, table)
    assert missing.count == 0
    return joined, table


@pytest.fixture()
def synthetic_split(synthetic):
    joined, table = synthetic
    train_df, val_df = split_by_theorem(joined, 0.25, seed=0)
    cfg = SamplerConfig(k_negatives=7, progress_negatives=False, parent_negatives=False, seed=0)  # siblings + other theorems
    return ContrastiveSampler(train_df, cfg), ContrastiveSampler(val_df, cfg), table


@pytest.fixture(autouse=True)
def _one_torch_thread():
    """The models here are tiny: one thread is faster, and immune to a busy shared machine."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
