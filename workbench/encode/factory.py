"""Build an encoder from a user-facing spec: ``"local"``/``"minilm"``, ``"hf:MODEL"`` or the sidecar's URL."""

from __future__ import annotations

from typing import Any

from workbench.encode.identity import Encoder
from workbench.encode.text import DEFAULT_TEMPLATE

LOCAL_SPECS = ("local", "minilm")
HF_PREFIX = "hf:"


def make_encoder(spec: str, *, template: str = DEFAULT_TEMPLATE, hidden_size: int = 4096, model: str | None = None,
                 **options: Any) -> Encoder:
    """The one place that maps CLI/notebook encoder choices to encoder objects.

    ``options`` go to the encoder (``batch_size``; ``concurrency`` for the sidecar; for ``hf:MODEL`` the
    fields of ``HFEncoderConfig``: ``device``, ``dtype``, ``max_length``, ...).
    """
    if spec in LOCAL_SPECS:
        from workbench.encode.local import LocalEncoder

        options.pop("concurrency", None)  # the local model runs one batch at a time
        return LocalEncoder(template=template, **options)
    if spec.startswith(HF_PREFIX) and len(spec) > len(HF_PREFIX):
        import dataclasses

        from workbench.encode.hf import HFEncoder, HFEncoderConfig

        fields = {f.name for f in dataclasses.fields(HFEncoderConfig)}
        config = HFEncoderConfig(model=spec[len(HF_PREFIX):], **{k: v for k, v in options.items() if k in fields})
        return HFEncoder(config, template=template)
    if spec.startswith(("http://", "https://")):
        from workbench.encode.sidecar import SidecarEncoder

        return SidecarEncoder(spec, hidden_size, model=model, template=template, **options)
    raise ValueError(f"encoder must be 'local' (MiniLM), 'hf:MODEL' (a transformers model, e.g. hf:minilm) or the "
                     f"encoding sidecar's http(s) URL, got {spec!r}")
