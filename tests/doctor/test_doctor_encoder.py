"""`workbench doctor`'s encoder checks against the stand-in sidecar and its broken variants (issue 22).

Pinned: ``workbench serve-encoder`` answers ``GET /info`` with its identity (workbench/encode/server.py), other
sidecars 404; DeepSeek-Prover's hidden size is 4096 (SPEC §2); the embedding cache keeps one vector per state
text (SPEC §3), so the same text must get the same vector in any batch.
"""

from __future__ import annotations

import asyncio

from doctor_helpers import by_name, dead_url

from workbench.doctor import Verdict
from workbench.doctor.checks import STAND_IN
from workbench.doctor.encoder import check_encoder
from workbench.encode.standin_sidecar import SidecarFaults, StandinSidecar


def _check(url, states, fast):
    return by_name(asyncio.run(check_encoder(url, states, fast)).checks)


def test_a_workbench_encoder_passes_and_says_it_is_a_stand_in(states, fast):
    with StandinSidecar(serve_info=True) as server:
        rows = _check(server.url, states, fast)
    assert all(c.label == STAND_IN for c in rows.values())
    assert [c.verdict for c in rows.values()] == [Verdict.PASS] * 4
    assert rows["/info identity"].details["dim"] == 4096 and "standin-sidecar" in rows["/info identity"].found
    assert rows["hidden size"].found == "4096"
    assert rows["one batch's latency"].details["states"] == fast.encode_batch
    assert rows["repeated text, same vector"].details["bit_identical"] is True


def test_a_sidecar_without_info_cannot_be_identified(states, fast):
    with StandinSidecar() as server:
        rows = _check(server.url, states, fast)
    assert rows["/info identity"].verdict is Verdict.UNKNOWN and "no /info" in rows["/info identity"].found
    assert rows["hidden size"].verdict is Verdict.PASS


def test_another_models_width_fails_by_its_identity(states, fast):
    with StandinSidecar(hidden_size=2048, serve_info=True) as server:
        rows = _check(server.url, states, fast)
    assert rows["/info identity"].verdict is Verdict.FAIL and "{encode_url}" in rows["/info identity"].todo
    assert rows["hidden size"].verdict is Verdict.FAIL and "2048" in rows["hidden size"].found


def test_vectors_of_the_wrong_width_fail(states, fast):
    with StandinSidecar(faults=SidecarFaults(wrong_dim=True)) as server:
        rows = _check(server.url, states, fast)
    width = rows["hidden size"]
    assert width.verdict is Verdict.FAIL and "dimension 4095" in width.found


def test_a_vector_that_depends_on_its_batch_fails(states, fast):
    with StandinSidecar(faults=SidecarFaults(pad_leak=True)) as server:
        rows = _check(server.url, states, fast)
    same = rows["repeated text, same vector"]
    assert same.verdict is Verdict.FAIL and same.details["min_cosine"] < 0.999 and "padding" in same.todo


def test_nan_vectors_fail_the_batch(states, fast):
    with StandinSidecar(faults=SidecarFaults(nan_marker="⊢")) as server:
        rows = _check(server.url, states, fast)
    assert rows["one batch"].verdict is Verdict.FAIL and "NaN" in rows["one batch"].found


def test_an_unreachable_encoder_fails_with_what_to_do(states, fast):
    rows = _check(dead_url(), states, fast)
    assert rows["/info identity"].verdict is Verdict.FAIL and "not reachable" in rows["/info identity"].found
    assert "{encode_url}" in rows["/info identity"].todo


def test_a_real_serve_encoder_passes_unlabelled(states, fast):
    """`workbench serve-encoder` with the bundled MiniLM (a real model, mean pooling under the attention mask):
    its vectors agree across batch shapes up to float rounding."""
    import dataclasses

    from workbench.encode.hf import HFEncoder, HFEncoderConfig
    from workbench.encode.server import BatcherConfig, create_app, serve_in_thread

    encoder = HFEncoder(HFEncoderConfig(model="minilm", device="cpu", max_batch=8))
    with serve_in_thread(create_app(encoder, BatcherConfig(linger_s=0.002, max_batch=8))) as url:
        rows = _check(url, states, dataclasses.replace(fast, hidden_size=384))
    assert all(c.label is None and c.verdict is Verdict.PASS for c in rows.values()), rows
    assert "attention_mask" in rows["/info identity"].found
    assert rows["repeated text, same vector"].details["min_cosine"] > 0.99999
