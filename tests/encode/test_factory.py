import pytest

from workbench.encode import PLAIN_TEMPLATE, SidecarEncoder
from workbench.encode.factory import make_encoder


def test_url_gives_sidecar_with_identity():
    enc = make_encoder("http://127.0.0.1:9/", template=PLAIN_TEMPLATE, hidden_size=8, model="prover-7b", batch_size=4)
    assert isinstance(enc, SidecarEncoder)
    assert (enc.identity.model, enc.identity.dim, enc.identity.template) == ("prover-7b", 8, PLAIN_TEMPLATE)


def test_unknown_spec_is_refused_with_the_choices():
    with pytest.raises(ValueError, match="'local'.*http"):
        make_encoder("bert")


def test_every_reader_of_a_spec_agrees_on_its_parts_and_kinds():
    """One parser (``spec_parts``/``spec_kind``) answers the template, the head width and what
    --finetune-encoder tunes, so a new hashed view or an ``hf:`` part is seen the same everywhere."""
    from workbench.ebm.settings import OFFLINE_HIDDEN, EbmSettings
    from workbench.encode.factory import spec_kind, spec_parts

    assert spec_parts(" local + hashed-fields ") == ["local", "hashed-fields"] and spec_parts(None) == []
    assert [spec_kind(p) for p in ("minilm", "hashed-set", "hf:org/m", "https://x/", "hf:", "bert")] == \
        ["local", "hashed", "hf", "sidecar", None, None]
    assert EbmSettings(encode="hashed-fields+local").resolved_template() == "plain"
    assert EbmSettings(encode="hashed+hf:org/m").resolved_template() == "deepseek"
    assert EbmSettings(encode="hashed-fields+local").default_hidden(8192) == OFFLINE_HIDDEN
    assert EbmSettings(encode="hashed+http://h:1/").default_hidden(8192) != OFFLINE_HIDDEN
    tuned = EbmSettings(encode="hashed + hf:org/m", finetune_encoder=True, output="/o")
    assert tuned.finetune_base() == "hf:org/m" and tuned.encoder_spec() == "hashed+hf:/o/encoder"
    # a '+' in a path is not a join: the run folder of bench/ebm_real.py's local-tuned+hashed-parent once split
    # the tuned model's path in two, and the run failed once its whole tuning was done
    assert spec_parts("hf:runs/a+b/encoder+hashed") == ["hf:runs/a+b/encoder", "hashed"]
    assert spec_parts("hf:/r/x+hashed-parent/encoder") == ["hf:/r/x+hashed-parent/encoder"]
    plus = EbmSettings(encode="local+hashed", finetune_encoder=True, output="/r/local-tuned+hashed-parent/seed0")
    assert spec_parts(plus.encoder_spec()) == ["hf:/r/local-tuned+hashed-parent/seed0/encoder", "hashed"]
    with pytest.raises(ValueError, match="choose an output folder"):
        EbmSettings(encode="local+hashed", finetune_encoder=True, output="/r/a+hashed+b")
