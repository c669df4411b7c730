"""`workbench doctor`'s encoder checks: the sidecar mining and training will encode with, through the client
they use (:class:`~workbench.encode.sidecar.SidecarEncoder`: ``GET /info``, then batches of ``POST /encode``).

Expectations: ``workbench serve-encoder`` answers ``/info`` with its identity (encode/server.py); DeepSeek-Prover
models have hidden size 4096 (SPEC §2); the embedding cache keeps one vector per state text (SPEC §3), so a
text must get the same vector whatever batch it is encoded in (padding must not leak into the mean pooling).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from workbench.doctor.checks import STAND_IN, Check, DoctorOptions, Verdict, advice
from workbench.encode.identity import EncodeError, EncoderMismatchError, EncoderUnavailable
from workbench.encode.sidecar import SidecarEncoder
from workbench.encode.text import state_text

__all__ = ["EncoderFindings", "check_encoder"]

SYSTEM = "encoder"


@dataclass(frozen=True)
class EncoderFindings:
    checks: tuple[Check, ...]


def _identity_check(encoder: SidecarEncoder, label: str | None) -> Check:
    """``GET /info`` answers ``{"server", "identity": {model, dim, pooling, dtype, revision, compute_dtype,
    max_length}}`` on ``workbench serve-encoder`` (encode/server.py ``info``); other sidecars answer 404 and are
    trusted as configured (encode/sidecar.py ``connect``)."""
    expected = "GET /info: the server's model, width and pooling"
    source = "workbench/encode/server.py (/info); workbench/encode/sidecar.py (connect)"
    if encoder.server_info is None:
        return Check(SYSTEM, "/info identity", expected, f"no /info at {encoder.url}: identity taken as configured "
                     f"({encoder.identity.model})", Verdict.UNKNOWN,
                     "the cache cannot tell two models behind this URL apart: serve the model with `workbench "
                     "serve-encoder`, or never point this URL at another model", label, source)
    ident = encoder.identity
    found = (f"{ident.model}" + (f"@{ident.revision}" if ident.revision else "") + f", dim {ident.dim}, "
             f"{ident.pooling} pooling, {ident.compute_dtype or ident.dtype}")
    return Check(SYSTEM, "/info identity", expected, found, Verdict.PASS, "", label, source, ident.to_dict())


def _cosine(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.dot(a, b) / (np.linalg.norm(a) * np.linalg.norm(b)))


async def check_encoder(url: str, states: Sequence[str], opts: DoctorOptions = DoctorOptions()) -> EncoderFindings:
    """Identity, hidden size, one batch's latency and a repeated text's vector, in that order."""
    if len(states) < 2:
        raise ValueError("check_encoder needs at least two states")
    checks: list[Check] = []
    width_expected = f"{opts.hidden_size} (DeepSeek-Prover: 4096, SPEC §2)"
    async with SidecarEncoder(url, hidden_size=opts.hidden_size, batch_size=opts.encode_batch,
                              timeout_s=opts.request_timeout_s, retries=0) as encoder:
        try:
            await encoder.connect()
        except EncoderMismatchError as e:
            found = str(e)
            checks.append(Check(SYSTEM, "/info identity", "the configured encoder", found, Verdict.FAIL,
                                "this URL serves another model: point {encode_url} at the prover's encoder", None,
                                "workbench/encode/sidecar.py (connect)"))
            checks.append(Check(SYSTEM, "hidden size", width_expected, found, Verdict.FAIL,
                                f"embeddings must be {opts.hidden_size} wide for the prover's energy head", None, "SPEC §2"))
            return EncoderFindings(tuple(checks))
        except EncodeError as e:
            found, todo = advice(e)
            checks.append(Check(SYSTEM, "/info identity", "an answer", found, Verdict.FAIL, todo, None,
                                "workbench/encode/sidecar.py (connect)"))
            return EncoderFindings(tuple(checks))
        label = STAND_IN if (encoder.server_info or {}).get("standin") else None
        checks.append(_identity_check(encoder, label))
        texts = [state_text(s, encoder.identity.template) for s in states[:opts.encode_batch]]
        t0 = time.monotonic()
        try:
            batch = await encoder.encode(texts)
        except EncoderUnavailable as e:
            found, todo = advice(e)
            checks.append(Check(SYSTEM, "one batch", "an answer", found, Verdict.FAIL, todo, label))
            return EncoderFindings(tuple(checks))
        except EncodeError as e:  # a wrong width, NaN/zero vectors, a malformed answer
            found = str(e)
            wrong_width = "dimension" in found or "shape" in found
            checks.append(Check(SYSTEM, "hidden size" if wrong_width else "one batch", width_expected if wrong_width
                                else "finite, non-zero vectors", found[:400], Verdict.FAIL,
                                "the server does not encode with the prover's hidden layer: check its model"
                                if wrong_width else "the server answers unusable vectors: check its model and dtype",
                                label, "SPEC §2; workbench/encode/identity.py validate_embeddings"))
            return EncoderFindings(tuple(checks))
        elapsed = time.monotonic() - t0
        checks.append(Check(SYSTEM, "hidden size", width_expected, f"{batch.shape[1]}", Verdict.PASS, "", label,
                            "SPEC §2"))
        checks.append(Check(SYSTEM, "one batch's latency", "reference: ~86 states/s batched (SPEC §2)",
                            f"{len(texts)} states in {elapsed:.2f} s ({len(texts) / elapsed:.0f} states/s)",
                            Verdict.PASS, "", label, "SPEC §2 reference encoding rates",
                            {"states": len(texts), "seconds": round(elapsed, 4)}))
        # The same text alone and beside a longer one: padding differs, the vector must not.
        alone = (await encoder.encode([texts[0]]))[0]
        longest = max(texts[1:], key=len)
        paired = (await encoder.encode([longest, texts[0]]))[1]
        worst = min(_cosine(batch[0], alone), _cosine(batch[0], paired))
        identical = np.array_equal(batch[0], alone) and np.array_equal(batch[0], paired)
        diff = float(max(np.abs(batch[0] - alone).max(), np.abs(batch[0] - paired).max()))
        expected = "the same vector for the same text in any batch (the cache keeps one per state, SPEC §3)"
        found = ("bit-identical in 3 batches" if identical else
                 f"cosine >= {worst:.7f}, max |difference| {diff:.2g} across 3 batches")
        if identical or worst >= 0.99999:  # float rounding: another batch shape sums in another order
            verdict, todo = Verdict.PASS, ""
        elif worst >= 0.999:
            verdict, todo = Verdict.WARN, ("small differences between batch shapes (reduced-precision kernels): "
                                           "harmless for ranking, but cached and search-time vectors differ slightly")
        else:
            verdict, todo = Verdict.FAIL, ("a text's vector depends on its batch: padding leaks into the pooling "
                                           "(mask it) or the model is non-deterministic; cached and search-time "
                                           "vectors would disagree")
        checks.append(Check(SYSTEM, "repeated text, same vector", expected, found, verdict, todo, label,
                            "SPEC §3 embedding cache",
                            {"min_cosine": worst, "max_abs_difference": diff, "bit_identical": identical}))
    return EncoderFindings(tuple(checks))
