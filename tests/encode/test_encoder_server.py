"""``serve-encoder``: the HF encoder behind SPEC §2's /encode, on a loopback port (MiniLM via AutoModel)."""

from __future__ import annotations

import asyncio

import httpx
import numpy as np
import pytest
import torch
from hf_models import STATES

from workbench.cli import build_parser
from workbench.encode import EncoderMismatchError, SidecarEncoder, encode_states, read_embeddings
from workbench.encode.hf import HFEncoder, HFEncoderConfig
from workbench.encode.server import BatcherConfig, MicroBatcher, create_app, serve_in_thread, server_identity
from workbench.encode.text import state_text

TEXTS = [state_text(s) for s in STATES]


@pytest.fixture(scope="module")
def served(minilm_hf):
    with serve_in_thread(create_app(minilm_hf, BatcherConfig(linger_s=0.002, max_batch=8))) as url:
        yield url


async def test_served_vectors_equal_in_process_vectors(served, minilm_hf):
    async with SidecarEncoder(served, hidden_size=384, batch_size=len(TEXTS)) as client:
        got = await client.encode(TEXTS)
    # one request is batched exactly as in process: the same forwards, bit for bit
    assert np.array_equal(got, minilm_hf.encode_sync(TEXTS))
    assert client.identity == minilm_hf.identity  # adopted from /info, template kept


async def test_concurrent_requests_are_batched_without_changing_vectors(served, minilm_hf):
    async with SidecarEncoder(served, hidden_size=384, batch_size=1, concurrency=5) as client:
        got = await client.encode(TEXTS)
    np.testing.assert_allclose(got, minilm_hf.encode_sync(TEXTS), atol=1e-5)


async def test_single_form_info_health_and_width_check(served, minilm_hf):
    async with httpx.AsyncClient(base_url=served) as http:
        one = (await http.post("/encode", json={"text": TEXTS[1]})).json()
        assert list(one) == ["embedding"] and len(one["embedding"]) == 384
        np.testing.assert_array_equal(np.asarray(one["embedding"], dtype=np.float32), minilm_hf.encode_sync([TEXTS[1]])[0])
        assert (await http.post("/encode", json={"text": []})).json() == {"embeddings": []}
        assert (await http.get("/health")).status_code == 200
        info = (await http.get("/info")).json()
        assert info["identity"] == server_identity(minilm_hf) and "template" not in info["identity"]
        assert info["stats"]["forwards"] >= 1
        wrong = await http.post("/encode", json={"text": ["x"], "hidden_size": 4096})
        assert wrong.status_code == 400 and "384" in wrong.json()["error"]
        assert (await http.post("/encode", json={"texts": ["x"]})).status_code == 422


async def test_client_refuses_a_server_with_another_identity(served, minilm_hf):
    other = HFEncoder(HFEncoderConfig(model="minilm", device="cpu", max_length=64)).identity
    cases = [SidecarEncoder(served, hidden_size=4096),                              # width
             SidecarEncoder(served, hidden_size=384, model="deepseek-ai/DeepSeek-Prover-V2-7B"),  # named model
             SidecarEncoder(served, hidden_size=384, expect=other)]                # full identity (max_length)
    for client in cases:
        async with client:
            with pytest.raises(EncoderMismatchError, match="serves another encoder"):
                await client.encode(TEXTS[:1])
    async with SidecarEncoder(served, hidden_size=384, expect=minilm_hf.identity) as client:
        assert (await client.encode(TEXTS[:1])).shape == (1, 384)


async def test_a_cache_started_in_process_continues_through_the_server(served, minilm_hf, tmp_path):
    cache = tmp_path / "cache"
    await encode_states(STATES[:2], minilm_hf, cache, progress=False)
    async with SidecarEncoder(served, hidden_size=384) as client:
        report = await encode_states(STATES, client, cache, progress=False)
    assert (report.hits, report.encoded) == (2, len(STATES) - 2)
    table = read_embeddings(cache)
    np.testing.assert_allclose(table.matrix[[table.index[s] for s in STATES]], minilm_hf.encode_sync(TEXTS), atol=1e-5)


async def test_micro_batcher_joins_concurrent_requests_in_one_forward(minilm_hf):
    ids = minilm_hf.tokenize(TEXTS)
    first, second = ids[:2], ids[2:]
    # the round starts once both requests' texts fill a forward (the linger window is far longer than the test)
    batcher = MicroBatcher(minilm_hf, BatcherConfig(linger_s=60.0, max_batch=len(ids)))
    loop_task = asyncio.create_task(batcher.run())
    try:
        a, b = await asyncio.gather(batcher.submit(first), batcher.submit(second))
    finally:
        loop_task.cancel()
    assert (batcher.stats.rounds, batcher.stats.forwards, batcher.stats.requests) == (1, 1, 2)
    assert np.array_equal(np.concatenate([a, b]), minilm_hf.encode_tokenized(ids))


async def test_out_of_memory_in_the_server_is_split_and_counted(monkeypatch):
    enc = HFEncoder(HFEncoderConfig(model="minilm", device="cpu"))
    real = enc.run_model

    def tight_memory(**kwargs):
        if kwargs["input_ids"].shape[0] > 1:
            raise torch.OutOfMemoryError("CUDA out of memory (injected)")
        return real(**kwargs)

    monkeypatch.setattr(enc, "run_model", tight_memory)
    with serve_in_thread(create_app(enc)) as url:
        async with SidecarEncoder(url, hidden_size=384, batch_size=len(TEXTS)) as client:
            got = await client.encode(TEXTS)
        async with httpx.AsyncClient(base_url=url) as http:
            info = (await http.get("/info")).json()
    assert info["encoder_stats"]["oom_splits"] == len(TEXTS) - 1
    monkeypatch.undo()
    np.testing.assert_allclose(got, np.concatenate([enc.encode_sync([t]) for t in TEXTS]), atol=1e-5)


def test_serve_encoder_command_line():
    args = build_parser(["serve-encoder"]).parse_args(
        ["serve-encoder", "--model", "deepseek-ai/DeepSeek-Prover-V2-7B", "--port", "30001", "--dtype", "bf16",
         "--load-in-4bit", "--linger-ms", "10", "--token-budget", "8192"])
    assert (args.model, args.port, args.dtype, args.load_in_4bit, args.linger_ms, args.token_budget) == \
        ("deepseek-ai/DeepSeek-Prover-V2-7B", 30001, "bf16", True, 10.0, 8192)


async def test_request_size_is_limited_with_413_naming_the_limit(minilm_hf):
    """Issue 20, item 8: a 30 MB request took 140 s and 9.7 GB; 119 MB reached 16 GB with no answer."""
    from workbench.encode.server import RequestLimits

    limits = RequestLimits(max_body_bytes=4096, max_text_chars=1000)
    with serve_in_thread(create_app(minilm_hf, BatcherConfig(linger_s=0.002), limits)) as url:
        async with httpx.AsyncClient(base_url=url) as http:
            big = await http.post("/encode", json={"text": ["x" * 500] * 20})  # 10 KB body, Content-Length
            assert big.status_code == 413 and "limit of 4096 bytes" in big.json()["error"]
            assert "--max-body-mb" in big.json()["error"]

            async def chunks():  # no Content-Length: the limit holds while the body streams in
                yield b'{"text": ["'
                for _ in range(10):
                    yield b"y" * 1000
                yield b'"]}'

            streamed = await http.post("/encode", content=chunks())
            assert streamed.status_code == 413 and "limit of 4096 bytes" in streamed.json()["error"]
            long = await http.post("/encode", json={"text": ["ok", "z" * 1001]})
            assert long.status_code == 413 and "text 1 has 1001 characters" in long.json()["error"]
            assert "--max-text-chars" in long.json()["error"]
            fine = await http.post("/encode", json={"text": [TEXTS[0]]})
            assert fine.status_code == 200 and len(fine.json()["embeddings"]) == 1
            info = (await http.get("/info")).json()
    assert info["limits"] == {"max_body_bytes": 4096, "max_text_chars": 1000}
    assert info["stats"]["rejected_too_large"] == 1


async def test_default_limits_refuse_a_text_no_tokenizer_window_needs(served):
    async with httpx.AsyncClient(base_url=served) as http:
        answer = await http.post("/encode", json={"text": "a" * 150_000})
    assert answer.status_code == 413 and "limit of 100000" in answer.json()["error"]
