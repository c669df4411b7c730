import socket

import numpy as np
import pytest

from workbench.encode import (
    EncodeError,
    EncoderProtocolError,
    EncoderUnavailable,
    InvalidEmbeddingError,
    SidecarEncoder,
)
from workbench.encode.standin_sidecar import text_vector


@pytest.mark.parametrize("shape", ["sidecar", "sglang"])
async def test_both_answer_shapes_batches_and_order(sidecar, shape):
    sidecar.faults.shape = shape
    texts = [f"t{i}" for i in range(10)]
    async with SidecarEncoder(sidecar.url, hidden_size=16, batch_size=3, concurrency=2) as enc:
        m = await enc.encode(texts)
    assert m.shape == (10, 16) and m.dtype == np.float32
    np.testing.assert_allclose(m[7], text_vector("t7", 16))
    assert sidecar.counters.requests == 4            # ceil(10 / 3) batches


async def test_single_embedding_answer_is_accepted():
    from workbench.encode.sidecar import parse_encode_response

    assert parse_encode_response({"embedding": [1.0, 2.0]}, 1, endpoint="e") == [[1.0, 2.0]]
    with pytest.raises(EncoderProtocolError, match="sent 2 texts, got 1"):
        parse_encode_response({"embedding": [1.0]}, 2, endpoint="e")
    with pytest.raises(EncoderProtocolError, match="neither"):
        parse_encode_response({"vectors": []}, 0, endpoint="e")


async def test_5xx_is_retried_then_succeeds(sidecar):
    sidecar.faults.fail_next = 2
    async with SidecarEncoder(sidecar.url, hidden_size=16, retries=2, backoff_s=0.001) as enc:
        m = await enc.encode(["a"])
        assert m.shape == (1, 16)
        assert enc.stats.retries == 2 and enc.stats.failures == 0


async def test_persistent_5xx_raises_after_retries(sidecar):
    sidecar.faults.fail_next = 5
    async with SidecarEncoder(sidecar.url, hidden_size=16, retries=1, backoff_s=0.001) as enc:
        with pytest.raises(EncodeError, match="HTTP 500"):
            await enc.encode(["a"])
        assert enc.stats.failures == 1


async def test_malformed_json_names_the_endpoint(sidecar):
    sidecar.faults.malformed_next = 1
    async with SidecarEncoder(sidecar.url, hidden_size=16) as enc:
        with pytest.raises(EncoderProtocolError, match=r"/encode: malformed JSON"):
            await enc.encode(["a"])


async def test_dimension_mismatch_is_an_error(sidecar):
    async with SidecarEncoder(sidecar.url, hidden_size=32) as enc:
        # the stand-in honours the requested hidden_size, so break it explicitly
        sidecar.faults.wrong_dim = True
        with pytest.raises(EncoderProtocolError, match="dimension 31, expected hidden_size=32"):
            await enc.encode(["a", "b"])


@pytest.mark.parametrize("marker", ["nan", "zero"])
async def test_nan_and_zero_vectors_are_rejected_with_rows(sidecar, marker):
    setattr(sidecar.faults, f"{marker}_marker", "BAD")
    async with SidecarEncoder(sidecar.url, hidden_size=16) as enc:
        with pytest.raises(InvalidEmbeddingError, match="1 of 3") as info:
            await enc.encode(["ok", "BAD one", "fine"])
    assert info.value.bad == (1,)
    assert info.value.matrix.shape == (3, 16)


async def test_connection_refused_is_unavailable():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    async with SidecarEncoder(f"http://127.0.0.1:{port}", hidden_size=16, retries=1, backoff_s=0.001) as enc:
        with pytest.raises(EncoderUnavailable, match="unreachable after 2 attempts"):
            await enc.encode(["a"])


async def test_a_connection_the_server_closed_while_idle_is_not_a_failure():
    """`workbench serve-encoder` is uvicorn, which closes a connection idle 5 s (timeout_keep_alive, uvicorn 0.30.6
    config.py:212); the next batch must open a new connection, not fail or spend a retry."""
    import asyncio

    from workbench.encode.standin_sidecar import StandinSidecar

    with StandinSidecar(keep_alive_s=0.2) as server:
        async with SidecarEncoder(server.url, hidden_size=16, retries=0) as enc:
            await enc.encode(["a"])
            assert server._connections  # the encoder keeps its connection alive
            assert await asyncio.to_thread(server.wait_connections_closed)  # the server closed the idle one
            assert (await enc.encode(["b"])).shape == (1, 16)
            assert (enc.stats.retries, enc.stats.failures) == (0, 0)
