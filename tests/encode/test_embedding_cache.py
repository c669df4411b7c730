import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from workbench.encode import (
    PLAIN_TEMPLATE,
    CacheIdentityError,
    EncodeError,
    SidecarEncoder,
    encode_states,
    export_embeddings,
    read_embeddings,
    state_text,
)
from workbench.encode.cache import IDENTITY_KEY, TEMPLATE_KEY

from encode_fakes import FakeEncoder

STATES = [f"x : ℕ\n⊢ x + {i} = {i} + x" for i in range(20)]


async def test_encodes_distinct_misses_and_reads_back(tmp_path):
    enc = FakeEncoder()
    report = await encode_states(STATES + STATES[:5], enc, tmp_path / "c", batch_size=4, progress=False)
    assert (report.requested, report.unique, report.hits, report.misses, report.encoded, report.failures) == (
        25, 20, 0, 20, 20, 0)
    assert report.dedup_ratio == pytest.approx(25 / 20)
    # the encoder saw the templated state text, once per distinct state
    assert sorted(enc.texts) == sorted(state_text(s) for s in STATES)
    table = read_embeddings(tmp_path / "c")
    assert set(table.states) == set(STATES) and table.matrix.shape == (20, 8) and table.identity == enc.identity
    mat, missing = table.lookup([STATES[3], "nope", STATES[0]])
    assert missing == ["nope"]
    np.testing.assert_array_equal(mat, np.stack([table.get(STATES[3]), table.get(STATES[0])]))


async def test_a_cache_is_read_once_until_its_files_change(tmp_path, monkeypatch):
    """One training run reads its cache in five places: the table is kept while no part changes."""
    from workbench.encode import cache

    await encode_states(STATES[:10], FakeEncoder(), tmp_path / "c", progress=False)
    reads = []
    real = cache._read_part
    monkeypatch.setattr(cache, "_read_part", lambda p: reads.append(p.name) or real(p))
    first = read_embeddings(tmp_path / "c")
    assert read_embeddings(tmp_path / "c") is first and reads == ["part-00000.parquet"]
    with pytest.raises(ValueError, match="read-only"):
        first.matrix[0, 0] = 1.0  # shared with every later reader
    await encode_states(STATES, FakeEncoder(), tmp_path / "c", progress=False)  # a new part
    again = read_embeddings(tmp_path / "c")
    assert again is not first and len(again) == 20 and reads[1:] == ["part-00000.parquet", "part-00001.parquet"]
    (tmp_path / "c" / "part-00001.parquet").unlink()  # a part removed (e.g. a corrupt one, as advised)
    assert len(read_embeddings(tmp_path / "c")) == 10


async def test_parquet_layout_and_provenance(tmp_path):
    enc = FakeEncoder()
    await encode_states(STATES[:3], enc, tmp_path / "c", progress=False)
    (part,) = sorted((tmp_path / "c").glob("part-*.parquet"))
    schema = pq.read_schema(part)
    assert schema.names == ["state_pp", "embedding"]
    assert schema.field(0).type == pa.string() and schema.field(1).type == pa.list_(pa.float32())
    assert IDENTITY_KEY in schema.metadata and schema.metadata[TEMPLATE_KEY].decode() == enc.identity.template


async def test_second_run_encodes_only_new_states(tmp_path):
    await encode_states(STATES[:10], FakeEncoder(), tmp_path / "c", progress=False)
    enc = FakeEncoder()
    report = await encode_states(STATES, enc, tmp_path / "c", progress=False)
    assert (report.hits, report.misses, report.encoded) == (10, 10, 10)
    assert len(enc.texts) == 10
    assert len(read_embeddings(tmp_path / "c")) == 20


async def test_interrupted_run_resumes_from_checkpoints(tmp_path):
    # calls 0-2 succeed (12 states, checkpointed every 4), then the encoder dies
    dying = FakeEncoder(fail_calls=range(3, 100))
    with pytest.raises(EncodeError, match="in a row failed"):
        await encode_states(STATES, dying, tmp_path / "c", batch_size=4, concurrency=1, checkpoint_every=4,
                            max_consecutive_failures=2, progress=False)
    assert len(read_embeddings(tmp_path / "c")) == 12
    fresh = FakeEncoder()
    report = await encode_states(STATES, fresh, tmp_path / "c", batch_size=4, progress=False)
    assert (report.hits, report.encoded) == (12, 8)
    assert len(fresh.texts) == 8


async def test_failed_batches_and_invalid_vectors_are_counted(tmp_path):
    enc = FakeEncoder(fail_calls=[1], zero_marker="⊢ x + 0 =")
    report = await encode_states(STATES[:8], enc, tmp_path / "c", batch_size=2, concurrency=1, progress=False)
    # call 1 (2 states) failed, one state got a zero vector
    assert (report.misses, report.encoded, report.failures) == (8, 5, 3)
    assert STATES[0] not in read_embeddings(tmp_path / "c")


async def test_mixing_encoders_or_templates_is_refused(tmp_path):
    await encode_states(STATES[:2], FakeEncoder(), tmp_path / "c", progress=False)
    with pytest.raises(CacheIdentityError, match="template"):
        await encode_states(STATES, FakeEncoder(template=PLAIN_TEMPLATE), tmp_path / "c", progress=False)
    with pytest.raises(CacheIdentityError, match="model"):
        await encode_states(STATES, FakeEncoder(model="other"), tmp_path / "c", progress=False)


async def test_export_single_file_and_foreign_file(tmp_path):
    await encode_states(STATES[:5], FakeEncoder(), tmp_path / "c", batch_size=2, checkpoint_every=2, progress=False)
    out = export_embeddings(tmp_path / "c", tmp_path / "all.parquet")
    t = read_embeddings(out)
    assert len(t) == 5 and t.identity is not None
    # a file without provenance (e.g. from the reference implementation) needs an explicit opt-in
    pq.write_table(pa.table({"state_pp": ["a"], "embedding": pa.array([[1.0, 2.0]], pa.list_(pa.float32()))}),
                   tmp_path / "foreign.parquet")
    with pytest.raises(CacheIdentityError, match="no encoder identity"):
        read_embeddings(tmp_path / "foreign.parquet")
    foreign = read_embeddings(tmp_path / "foreign.parquet", allow_unknown_identity=True)
    assert foreign.identity is None and foreign.matrix.shape == (1, 2)


async def test_cache_through_the_standin_sidecar(tmp_path, sidecar):
    async with SidecarEncoder(sidecar.url, hidden_size=16, batch_size=4) as enc:
        report = await encode_states(STATES, enc, tmp_path / "c", batch_size=4, progress=False)
    assert report.encoded == 20 and sidecar.counters.texts == 20
    assert read_embeddings(tmp_path / "c").matrix.shape == (20, 16)


def test_a_cache_file_path_is_refused(tmp_path):
    import asyncio

    (tmp_path / "f.parquet").write_bytes(b"")
    with pytest.raises(NotADirectoryError):
        asyncio.run(encode_states(["a"], FakeEncoder(), tmp_path / "f.parquet", progress=False))
    (tmp_path / "moved").symlink_to(tmp_path / "gone")  # a copied cache link whose target was not copied
    with pytest.raises(NotADirectoryError, match="gone, which does not exist"):
        asyncio.run(encode_states(["a"], FakeEncoder(), tmp_path / "moved", progress=False))


async def test_cancelled_run_keeps_finished_batches(tmp_path):
    import asyncio

    from workbench.encode import DEFAULT_TEMPLATE, EncoderIdentity

    class Stalls:
        """Encodes the first two calls, then blocks until cancelled."""

        identity = EncoderIdentity(model="stall", dim=8, pooling="mean", dtype="float32", template=DEFAULT_TEMPLATE)

        def __init__(self):
            self.calls = 0
            self.stalled = asyncio.Event()

        async def encode(self, texts):
            self.calls += 1
            if self.calls > 2:
                self.stalled.set()
                await asyncio.Event().wait()
            return np.ones((len(texts), 8), np.float32)

    enc = Stalls()
    task = asyncio.create_task(encode_states(STATES, enc, tmp_path / "c", batch_size=4, concurrency=1,
                                             checkpoint_every=1000, progress=False))
    await enc.stalled.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert len(read_embeddings(tmp_path / "c")) == 8   # the two finished batches were checkpointed
    report = await encode_states(STATES, FakeEncoder(model="stall"), tmp_path / "c", progress=False)
    assert (report.hits, report.encoded) == (8, 12)


async def test_encoder_answers_are_checked_before_they_enter_the_cache(tmp_path):
    class Sloppy:
        """An encoder that validates nothing: wrong width on call 0, a NaN row on call 1."""

        identity = FakeEncoder().identity

        def __init__(self):
            self.calls = 0

        async def encode(self, texts):
            self.calls += 1
            if self.calls == 1:
                return np.ones((len(texts), 7), np.float32)
            m = np.ones((len(texts), 8), np.float32)
            m[0, 0] = np.nan
            return m

    report = await encode_states(STATES[:4], Sloppy(), tmp_path / "c", batch_size=2, concurrency=1, progress=False)
    assert (report.encoded, report.failures) == (1, 3)
    table = read_embeddings(tmp_path / "c")
    assert np.isfinite(table.matrix).all() and table.matrix.shape == (1, 8)
