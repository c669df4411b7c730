"""Fixtures for the encoder tests: the stand-in sidecar on a loopback port."""

from __future__ import annotations

from typing import Iterator

import pytest

from workbench.encode.standin_sidecar import StandinSidecar


@pytest.fixture
def sidecar() -> Iterator[StandinSidecar]:
    with StandinSidecar(hidden_size=16) as s:
        yield s


@pytest.fixture(scope="session")
def minilm_hf():
    """The bundled MiniLM weights loaded through AutoModel (the same path a 7B prover model takes)."""
    from workbench.encode.hf import HFEncoder, HFEncoderConfig

    encoder = HFEncoder(HFEncoderConfig(model="minilm", device="cpu", max_batch=8))
    encoder.load()
    return encoder
