import numpy as np
import pytest

from workbench.encode import DEFAULT_TEMPLATE, PLAIN_TEMPLATE, EncoderIdentity, InvalidEmbeddingError, state_text
from workbench.encode.identity import EncoderProtocolError, validate_embeddings


def test_default_template_is_the_deepseek_prover_prompt():
    text = state_text("n : ℕ\n⊢ n + 0 = n")
    assert text == ("Complete the following Lean 4 code:\n\n```lean4\n/- tactic state:\n"
                    "n : ℕ\n⊢ n + 0 = n\n-/\n```")
    assert DEFAULT_TEMPLATE.count("{state}") == 1


def test_state_text_keeps_braces_and_placeholder_like_text_verbatim():
    state = "s : Set ℕ\n⊢ s = {x | x ∈ s} ∧ \"{state}\" = \"{state}\""
    assert state_text(state, PLAIN_TEMPLATE) == state
    assert state in state_text(state)


@pytest.mark.parametrize("bad", ["no placeholder", "{state} twice {state}"])
def test_bad_templates_are_refused(bad):
    with pytest.raises(ValueError, match="exactly once"):
        state_text("⊢ True", bad)


def test_identity_round_trips_and_lists_differences():
    a = EncoderIdentity(model="m", dim=4, pooling="mean", dtype="float32", template=DEFAULT_TEMPLATE)
    assert EncoderIdentity.from_dict(a.to_dict()) == a
    assert EncoderIdentity.from_json(a.to_json()) == a
    b = EncoderIdentity(model="m", dim=4, pooling="mean", dtype="float32", template=PLAIN_TEMPLATE)
    assert a != b
    assert [d.split(":")[0] for d in a.differences(b)] == ["template"]
    with pytest.raises(ValueError, match="missing"):
        EncoderIdentity.from_dict({"model": "m"})
    with pytest.raises(ValueError, match="dim"):
        EncoderIdentity(model="m", dim=0, pooling="mean", dtype="float32", template=PLAIN_TEMPLATE)


def test_validate_embeddings_names_bad_rows():
    m = np.ones((4, 3), dtype=np.float32)
    m[1, 0] = np.nan
    m[3] = 0
    with pytest.raises(InvalidEmbeddingError, match="2 of 4") as info:
        validate_embeddings(m, 3, source="here")
    assert info.value.bad == (1, 3)
    with pytest.raises(EncoderProtocolError, match=r"\[n, 5\]"):
        validate_embeddings(m, 5, source="here")
