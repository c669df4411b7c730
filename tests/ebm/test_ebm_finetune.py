"""--finetune-encoder: the local MiniLM tuned as a pairwise ranker on a tiny config, then used as an hf: encoder
whose identity names the base model and the tuned weights (issue 25)."""

import json

import numpy as np
import pytest

from workbench.ebm.data import records_from_traces
from workbench.ebm.finetune import FinetuneConfig, base_model, finetune_encoder
from workbench.encode import PLAIN_TEMPLATE
from workbench.encode.factory import make_encoder
from workbench.encode.local import MINILM_MODEL
from workbench.traces import load_traces

TINY = FinetuneConfig(steps=3, batch_size=2, max_length=32, lr=1e-3, seed=0, device="cpu")


def test_base_model_names_what_is_tuned():
    assert base_model("local")[1] == MINILM_MODEL
    assert base_model("hf:some/model") == ("some/model", "some/model")
    with pytest.raises(ValueError, match="tunes 'local' or 'hf:MODEL'"):
        base_model("hashed")


def test_tuned_minilm_is_an_hf_encoder_with_its_own_identity(tmp_path, sample_traces_path):
    records = records_from_traces(load_traces(sample_traces_path).theorems[:6])
    out = finetune_encoder("local", records, tmp_path / "encoder", TINY, template=PLAIN_TEMPLATE)
    meta = json.loads((out / "workbench_encoder.json").read_text())
    assert meta["base"] == MINILM_MODEL and meta["config"]["steps"] == 3 and meta["pairs"] > 0
    enc = make_encoder(f"hf:{out}", template=PLAIN_TEMPLATE, device="cpu")
    ident = enc.identity
    assert ident.model == f"{MINILM_MODEL} [ranker-finetuned]" and ident.revision == meta["revision"]
    assert ident.dim == 384
    base = make_encoder("hf:minilm", template=PLAIN_TEMPLATE, device="cpu")
    texts = records["state_pp"].tolist()[:3]
    import asyncio

    tuned_vecs, base_vecs = asyncio.run(enc.encode(texts)), asyncio.run(base.encode(texts))
    assert not np.allclose(tuned_vecs, base_vecs)  # the weights moved
    assert ident != base.identity


def test_train_ebm_finetunes_then_trains_the_head_on_the_tuned_encoder(tmp_path, sample_traces_path):
    from workbench.cli import main

    out = tmp_path / "local+hashed" / "run"  # a '+' in the run folder is not an encoder join (factory.spec_parts)
    rc = main(["train-ebm", "--traces", str(sample_traces_path), "--num-theorems", "10", "--output", str(out),
               "--encode", "local+hashed", "--finetune-encoder", "--finetune-steps", "2", "--finetune-batch-size", "2",
               "--finetune-max-length", "32", "--perturbations", "true_hyp", "--held-out-perturbations", "rename_hyp",
               "--steps", "10", "--eval-every", "5", "--batch-size", "8", "--hidden", "16", "8", "4", "--no-progress",
               "--device", "cpu", "--val-fraction", "0.3"])
    assert rc == 0
    cfg = json.loads((out / "best" / "config.json").read_text())
    ident = cfg["encoder_identity"]
    assert [p["model"] for p in ident["parts"]] == [f"{MINILM_MODEL} [ranker-finetuned]", "hashed-char-ngrams"]
    assert (out / "encoder" / "embeddings" / "composite.json").is_file()
    summary = json.loads((out / "summary.json").read_text())
    assert summary["checks"]["held_out_kinds"] == ["rename_hyp"]
