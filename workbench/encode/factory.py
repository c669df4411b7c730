"""Build an encoder from a user-facing spec: ``"local"``/``"minilm"``, ``"hashed"``, ``"hf:MODEL"``, the
sidecar's URL, or several joined by ``+`` (``local+hashed``, ``hf:MODEL+hashed``: vectors concatenated)."""

from __future__ import annotations

from typing import Any

from workbench.encode.identity import Encoder, EncoderIdentity
from workbench.encode.text import DEFAULT_TEMPLATE

LOCAL_SPECS = ("local", "minilm")
# spec -> the hashed view (workbench.encode.hashed.VIEWS)
HASHED_SPECS = {"hashed": "text", "hashed-anon": "anonymous", "hashed-set": "set", "hashed-fields": "fields"}
HF_PREFIX = "hf:"
CONCAT = "+"
SERVED_PREFIXES = ("http://", "https://")


def spec_parts(spec: str | None) -> list[str]:
    """The encoders a spec names, in order (``local+hashed`` -> ``["local", "hashed"]``); none for no spec.

    A ``+`` starts a new part only where what follows names an encoder: a path may hold a ``+`` too
    (``hf:runs/a+b/encoder+hashed`` is the folder ``runs/a+b/encoder`` and ``hashed``), and
    ``--finetune-encoder`` writes its tuned model under the run folder, whatever that is named."""
    if not spec:
        return []
    parts: list[str] = []
    for piece in spec.split(CONCAT):
        if parts and piece.strip() and spec_kind(piece.strip()) is None:  # an empty part stays one: "local+" is refused
            parts[-1] += CONCAT + piece
        else:
            parts.append(piece)
    return [p.strip() for p in parts]


def spec_kind(part: str) -> str | None:
    """What one encoder of a spec is: 'local' (MiniLM), 'hashed', 'hf' (a transformers model), 'sidecar'
    (a served model), or None when it names none of them."""
    if part in LOCAL_SPECS:
        return "local"
    if part in HASHED_SPECS:
        return "hashed"
    if part.startswith(HF_PREFIX) and len(part) > len(HF_PREFIX):
        return "hf"
    if part.startswith(SERVED_PREFIXES):
        return "sidecar"
    return None



def make_encoder(spec: str, *, template: str = DEFAULT_TEMPLATE, hidden_size: int = 4096, model: str | None = None,
                 **options: Any) -> Encoder:
    """The one place that maps CLI/notebook encoder choices to encoder objects.

    ``options`` go to the encoder (``batch_size``; ``concurrency`` for the sidecar; for ``hf:MODEL`` the
    fields of ``HFEncoderConfig``: ``device``, ``dtype``, ``max_length``, ...). In a ``+`` spec every part
    gets the same template; options go to the parts that take them.
    """
    names = spec_parts(spec)
    if len(names) > 1:
        from workbench.encode.concat import ConcatEncoder

        if not all(names) or len(set(names)) != len(names):
            raise ValueError(f"encoder spec {spec!r}: join two or more different encoders with '+', e.g. local+hashed")
        return ConcatEncoder([make_encoder(n, template=template, hidden_size=hidden_size, model=model,
                                           **(_only_accepted(n, options))) for n in names])
    kind = spec_kind(spec)
    if kind == "local":
        from workbench.encode.local import LocalEncoder

        options.pop("concurrency", None)  # the local model runs one batch at a time
        return LocalEncoder(template=template, **options)
    if kind == "hashed":
        from workbench.encode.hashed import HashedEncoder

        return HashedEncoder(template=template, view=HASHED_SPECS[spec])
    if kind == "hf":
        import dataclasses

        from workbench.encode.hf import HFEncoder, HFEncoderConfig

        fields = {f.name for f in dataclasses.fields(HFEncoderConfig)}
        config = HFEncoderConfig(model=spec[len(HF_PREFIX):], **{k: v for k, v in options.items() if k in fields})
        return HFEncoder(config, template=template)
    if kind == "sidecar":
        from workbench.encode.sidecar import SidecarEncoder

        return SidecarEncoder(spec, hidden_size, model=model, template=template, **options)
    raise ValueError(f"encoder must be 'local' (MiniLM), 'hashed' (character n-grams; 'hashed-anon' without hypothesis "
                     f"names, 'hashed-set' also without their order and repeats, 'hashed-fields' hypotheses and "
                     f"targets apart), 'hf:MODEL' (a transformers "
                     f"model, e.g. hf:minilm), the encoding sidecar's http(s) URL, or several joined by '+' "
                     f"(local+hashed), got {spec!r}")


def _only_accepted(spec: str, options: dict[str, Any]) -> dict[str, Any]:
    """The options one part of a ``+`` spec takes (hf's dtype means nothing to MiniLM or the hashed view)."""
    if spec_kind(spec) == "hashed":
        return {}
    if spec_kind(spec) == "local":
        import inspect

        from workbench.encode.local import LocalEncoder

        return {k: v for k, v in options.items() if k in inspect.signature(LocalEncoder).parameters}
    return options


def encoder_from_identity(identity: EncoderIdentity | dict) -> Encoder:
    """Rebuild the encoder an identity describes, where the identity alone says how: the local MiniLM, the
    hashed n-grams, and concatenations of those. A served or ``hf:`` model is not rebuilt from a name: pass
    its encoder (``make_encoder(URL or "hf:MODEL", template=...)``)."""
    ident = identity if isinstance(identity, EncoderIdentity) else EncoderIdentity.from_dict(identity)
    if ident.parts is not None:
        from workbench.encode.concat import ConcatEncoder

        return ConcatEncoder([encoder_from_identity(p) for p in ident.parts])
    from workbench.encode.hashed import HASHED_MODEL, hashed_from_identity

    if ident.model == HASHED_MODEL:
        return hashed_from_identity(ident)
    from workbench.encode.local import encoder_for_identity

    return encoder_for_identity(ident)  # MiniLM; anything else is refused there
