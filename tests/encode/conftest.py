"""Fixtures for the encoder tests: the stand-in sidecar on a loopback port."""

from __future__ import annotations

from typing import Iterator

import pytest

from workbench.encode.standin_sidecar import StandinSidecar


@pytest.fixture
def sidecar() -> Iterator[StandinSidecar]:
    with StandinSidecar(hidden_size=16) as s:
        yield s
