"""The hashed character n-gram encoder, concatenated encoders and their composite cache (issue 25)."""

import json

import numpy as np
import pytest

from workbench.encode import PLAIN_TEMPLATE, CacheIdentityError, EncoderIdentity, encode_states, read_embeddings
from workbench.encode.cache import cache_identity
from workbench.encode.concat import ConcatEncoder
from workbench.encode.factory import encoder_from_identity, make_encoder
from workbench.encode.hashed import HASHED_DIM, HashedEncoder, hashed_from_identity

from encode_fakes import FakeEncoder

STATES = [f"x : ℕ\nh : x ≠ {i}\n⊢ ∀ y, ∃ z, x + y = z + {i}" for i in range(12)]


def test_hashed_keeps_the_symbols_a_wordpiece_vocabulary_loses():
    enc = HashedEncoder(template=PLAIN_TEMPLATE)
    a, b, c = enc.encode_sync(["⊢ a ≠ b", "⊢ a = b", "⊢ a ≠ b"])
    assert enc.identity.dim == HASHED_DIM == a.shape[0]
    assert not np.allclose(a, b)  # MiniLM's tokenizer maps ≠ to =
    np.testing.assert_array_equal(a, c)  # deterministic
    assert np.linalg.norm(a) == pytest.approx(1.0, abs=1e-5)
    # whitespace layout is not content (canonical text collapses it too)
    np.testing.assert_array_equal(enc.encode_sync(["⊢ a  ≠\n b"])[0], a)


def test_hashed_identity_names_every_choice_and_rebuilds():
    enc = HashedEncoder(template=PLAIN_TEMPLATE, dim=512, ngrams=(2, 3))
    ident = enc.identity
    assert (ident.model, ident.dim, ident.pooling) == ("hashed-char-ngrams", 512, "char2-3,murmur3-signed,log1p,l2")
    again = hashed_from_identity(EncoderIdentity.from_json(ident.to_json()))
    np.testing.assert_array_equal(again.encode_sync(STATES[:2]), enc.encode_sync(STATES[:2]))
    assert encoder_from_identity(ident.to_dict()).identity == ident


def test_specs_build_single_and_concatenated_encoders():
    assert isinstance(make_encoder("hashed", template=PLAIN_TEMPLATE), HashedEncoder)
    both = make_encoder("local+hashed", template=PLAIN_TEMPLATE, batch_size=8)
    assert isinstance(both, ConcatEncoder) and both.identity.dim == 384 + HASHED_DIM
    assert [p.model for p in both.identity.parts] == ["sentence-transformers/all-MiniLM-L6-v2", "hashed-char-ngrams"]
    assert both.identity.model == "sentence-transformers/all-MiniLM-L6-v2 + hashed-char-ngrams"
    hf = make_encoder("hf:minilm+hashed", template=PLAIN_TEMPLATE, dtype="fp32", max_length=64)  # hf options reach hf only
    assert hf.parts[0].identity.max_length == 64 and isinstance(hf.parts[1], HashedEncoder)
    assert hf.identity.parts[0].compute_dtype == "float32"
    # a part takes every option its encoder takes: the local window in a join is the single encoder's
    short = make_encoder("local+hashed", template=PLAIN_TEMPLATE, max_seq_length=256, dtype="fp32")
    assert short.identity.parts[0] == make_encoder("local", template=PLAIN_TEMPLATE, max_seq_length=256).identity
    for bad in ("hashed+hashed", "local+", "+hashed"):
        with pytest.raises(ValueError, match="join two or more"):
            make_encoder(bad)


def test_composite_identity_round_trips_and_differs_from_its_parts():
    a, b = FakeEncoder(dim=4, template=PLAIN_TEMPLATE), HashedEncoder(template=PLAIN_TEMPLATE, dim=64)
    ident = ConcatEncoder([a, b]).identity
    assert ident.parts == (a.identity, b.identity) and ident.dim == 68
    assert EncoderIdentity.from_json(ident.to_json()) == ident
    assert EncoderIdentity.from_dict(json.loads(json.dumps(ident.to_dict()))) == ident
    assert ident != a.identity and ident.differences(a.identity)
    with pytest.raises(ValueError, match="share one state template"):
        EncoderIdentity.concatenated([a.identity, HashedEncoder(dim=64).identity])


async def test_composite_cache_encodes_each_part_once_and_joins_rows(tmp_path):
    fake = FakeEncoder(dim=4, template=PLAIN_TEMPLATE)
    await encode_states(STATES[:5], fake, tmp_path / "c" / "encoder-0", progress=False)  # an existing part cache
    fake.texts.clear()
    enc = ConcatEncoder([fake, HashedEncoder(template=PLAIN_TEMPLATE, dim=64)])
    report = await encode_states(STATES, enc, tmp_path / "c", progress=False)
    # no state had both parts before (the second part's cache was empty); every part has all 12 now
    assert (report.unique, report.hits, report.misses, report.encoded, report.failures) == (12, 0, 12, 12, 0)
    assert len(fake.texts) == 7  # the states the first part's cache already held were not encoded again
    table = read_embeddings(tmp_path / "c")
    assert table.identity == enc.identity and table.matrix.shape == (12, 68)
    row = table.get(STATES[7])
    np.testing.assert_allclose(row[:4], (await FakeEncoder(dim=4, template=PLAIN_TEMPLATE).encode([STATES[7]]))[0])
    np.testing.assert_allclose(row[4:], enc.parts[1].encode_sync([STATES[7]])[0])
    np.testing.assert_allclose(row, (await enc.encode([STATES[7]]))[0])  # the uncached path gives the same row
    assert cache_identity(tmp_path / "c") == enc.identity
    again = await encode_states(STATES[:3], enc, tmp_path / "c", progress=False)
    assert (again.hits, again.misses, again.encoded) == (3, 0, 0)
    assert read_embeddings(tmp_path / "c") is table  # nothing changed: the table read before is kept
    await encode_states(["⊢ True"], enc, tmp_path / "c", progress=False)  # a new part in each sub-cache
    assert len(read_embeddings(tmp_path / "c")) == 13


async def test_a_composite_and_a_single_encoder_never_share_a_cache(tmp_path):
    single = FakeEncoder(dim=4, template=PLAIN_TEMPLATE)
    both = ConcatEncoder([single, HashedEncoder(template=PLAIN_TEMPLATE, dim=64)])
    await encode_states(STATES[:2], single, tmp_path / "one", progress=False)
    with pytest.raises(CacheIdentityError, match="refusing to mix"):
        await encode_states(STATES[:2], both, tmp_path / "one", progress=False)
    await encode_states(STATES[:2], both, tmp_path / "two", progress=False)
    with pytest.raises(CacheIdentityError, match="refusing to mix"):
        await encode_states(STATES[:2], single, tmp_path / "two", progress=False)
    other = ConcatEncoder([single, HashedEncoder(template=PLAIN_TEMPLATE, dim=32)])
    with pytest.raises(CacheIdentityError, match="refusing to mix"):
        await encode_states(STATES[:2], other, tmp_path / "two", progress=False)


def test_anonymous_view_ignores_the_names_hypotheses_were_given():
    from workbench.encode.text import DEEPSEEK_PROVER_TEMPLATE, state_text

    for template in (PLAIN_TEMPLATE, DEEPSEEK_PROVER_TEMPLATE):
        anon = make_encoder("hashed-anon", template=template)
        a, b, c = anon.encode_sync([state_text(s, template) for s in
                                    ("x : ℕ\nhx : 0 < x\n⊢ x ≠ 0", "y : ℕ\nh✝ : 0 < y\n⊢ y ≠ 0", "x : ℕ\nhx : 0 < x\n⊢ x = 0")])
        np.testing.assert_array_equal(a, b)
        assert not np.allclose(a, c)
        assert anon.identity.pooling.endswith(",anonymous-names")
        assert encoder_from_identity(anon.identity).view == "anonymous"
    plain = make_encoder("hashed", template=PLAIN_TEMPLATE)
    assert plain.identity != make_encoder("hashed-anon", template=PLAIN_TEMPLATE).identity


def test_set_view_also_ignores_order_and_repeats_of_hypotheses():
    """The held-out no-progress kinds (a shadowed, renamed or moved hypothesis) leave the view unchanged; the
    trained ``this : True`` does not, and neither does a real step."""
    from workbench.ebm.perturb import perturb

    parent = "case succ\nn : ℕ\nih : 0 < n + 1\nh : n ≠ 0\n⊢ 0 < n + 1 + 1"
    child = "case succ\nn : ℕ\nih : 0 < n + 1\nh : n ≠ 0\n⊢ 0 < n + 1 + 1 ∨ False"
    encoder = make_encoder("hashed-set", template=PLAIN_TEMPLATE)
    same = [perturb(parent, kind, seed=0) for kind in ("shadow_hyp", "rename_hyp", "reorder_hyps", "duplicate_hyp")]
    assert all(s is not None and s != parent for s in same)
    vectors = encoder.encode_sync([parent, *same, perturb(parent, "true_hyp", seed=0), child])
    for v in vectors[1:5]:
        np.testing.assert_array_equal(v, vectors[0])
    assert not np.allclose(vectors[5], vectors[0]) and not np.allclose(vectors[6], vectors[0])
    assert encoder.identity.pooling.endswith(",hypothesis-set") and encoder_from_identity(encoder.identity).view == "set"
    assert len({make_encoder(s, template=PLAIN_TEMPLATE).identity for s in ("hashed", "hashed-anon", "hashed-set")}) == 3


def test_fields_view_hashes_hypotheses_and_targets_apart():
    """The same text as a hypothesis or as a target lands in different halves; each half carries half the
    norm, and a state with no hypotheses leaves the first half empty."""
    from workbench.encode.text import DEEPSEEK_PROVER_TEMPLATE, state_text

    for template in (PLAIN_TEMPLATE, DEEPSEEK_PROVER_TEMPLATE):
        encoder = make_encoder("hashed-fields", template=template)
        assumed, to_show, bare = encoder.encode_sync([state_text(s, template) for s in (
            "h : ∀ x : ℕ, 0 ≤ x\n⊢ True", "h : True\n⊢ ∀ x : ℕ, 0 ≤ x", "⊢ ∀ x : ℕ, 0 ≤ x")])
        half = encoder.identity.dim // 2
        assert not np.allclose(assumed, to_show)
        np.testing.assert_allclose(to_show[half:], bare[half:])  # the targets' half ignores the hypotheses
        assert not bare[:half].any()
        np.testing.assert_allclose([np.linalg.norm(to_show[:half]), np.linalg.norm(to_show[half:])], [0.5 ** 0.5] * 2,
                                   rtol=1e-5)
        assert encoder_from_identity(encoder.identity).view == "fields"
