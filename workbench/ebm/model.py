"""The energy head: an MLP from a state embedding to one scalar energy.

Lower energy = more provable. ``score = -energy`` is what a search ranks by.

Pure torch, no I/O: configuration, layers, forward pass. Checkpoints live in ``checkpoint.py``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm


@dataclass(frozen=True, slots=True)
class EnergyHeadConfig:
    d_encoder: int = 4096  # embedding width: 4096 for DeepSeek-Prover, 384 for local MiniLM
    d_hidden1: int = 2048
    d_hidden2: int = 1024
    d_hidden3: int = 512
    dropout: float = 0.1  # after every hidden layer
    spectral_norm: bool = False  # Lipschitz-1 linear layers (torch parametrisation)
    log_temp_init: float = -2.3  # exp(-2.3) ~ 0.1: the temperature that unstalled spectral-norm InfoNCE
    log_temp_min: float = -5.0
    log_temp_max: float = 2.0
    # (x - mean) / std per input dimension, with the training embeddings' statistics (buffers saved
    # with the weights, not parameters). Encoder embeddings sit in a narrow cone with a few large
    # dimensions; without this the first layer sees nearly identical inputs.
    standardize_inputs: bool = True
    # Structural features (``workbench.ebm.features``) appended to the embedding, in this order. They
    # are always standardised with the training statistics (counts and lengths have wild scales).
    features: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        from workbench.ebm.features import check_feature_names

        object.__setattr__(self, "features", check_feature_names(tuple(self.features)))
        for name in ("d_encoder", "d_hidden1", "d_hidden2", "d_hidden3"):
            if getattr(self, name) < 1:
                raise ValueError(f"EnergyHeadConfig.{name} must be >= 1, got {getattr(self, name)}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"EnergyHeadConfig.dropout must be in [0, 1), got {self.dropout}")
        if not self.log_temp_min <= self.log_temp_init <= self.log_temp_max:
            raise ValueError(
                f"EnergyHeadConfig.log_temp_init {self.log_temp_init} outside "
                f"[{self.log_temp_min}, {self.log_temp_max}]"
            )

    @property
    def d_input(self) -> int:
        """Width of the head's input: the embedding plus the structural features."""
        return self.d_encoder + len(self.features)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["features"] = list(self.features)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> EnergyHeadConfig:
        known = set(cls.__dataclass_fields__)
        unknown = sorted(set(d) - known)
        if unknown:
            raise ValueError(f"EnergyHeadConfig: unknown field(s) {unknown}")
        return cls(**d)


def _linear(d_in: int, d_out: int, *, bias: bool, sn: bool) -> nn.Module:
    layer = nn.Linear(d_in, d_out, bias=bias)
    # The parametrisation keeps its power-iteration vectors u, v as buffers: they are saved in the
    # state dict and only updated in training mode, so eval-mode energies are deterministic.
    return spectral_norm(layer) if sn else layer


class EnergyHead(nn.Module):
    """d_encoder -> h1 -> h2 -> h3 -> 1, SiLU + dropout after each hidden layer, no final bias.

    The final bias is dropped because InfoNCE and margin losses only see energy differences.
    """

    def __init__(self, config: EnergyHeadConfig) -> None:
        super().__init__()
        self.config = config
        c = config
        self.net = nn.Sequential(
            _linear(c.d_input, c.d_hidden1, bias=True, sn=c.spectral_norm),
            nn.SiLU(),
            nn.Dropout(c.dropout),
            _linear(c.d_hidden1, c.d_hidden2, bias=True, sn=c.spectral_norm),
            nn.SiLU(),
            nn.Dropout(c.dropout),
            _linear(c.d_hidden2, c.d_hidden3, bias=True, sn=c.spectral_norm),
            nn.SiLU(),
            nn.Dropout(c.dropout),
            _linear(c.d_hidden3, 1, bias=False, sn=c.spectral_norm),
        )
        # Learnable log-temperature for the contrastive logits (clamped when read).
        self.log_temperature = nn.Parameter(torch.tensor(float(c.log_temp_init)))
        # Input statistics: identity until set_input_statistics is called (by the trainer).
        self.register_buffer("input_mean", torch.zeros(c.d_input))  # [d_input]
        self.register_buffer("input_std", torch.ones(c.d_input))  # [d_input]

    @torch.no_grad()
    def set_input_statistics(self, x: torch.Tensor) -> None:
        """x: [n, d_input] training inputs -> per-dimension mean and std (floored at 1e-6).

        Without ``standardize_inputs`` the embedding part stays raw (mean 0, std 1); features are
        standardised either way.
        """
        self.input_mean.copy_(x.mean(dim=0))
        self.input_std.copy_(x.std(dim=0, unbiased=False).clamp_min(1e-6))
        if not self.config.standardize_inputs:
            self.input_mean[: self.config.d_encoder] = 0.0
            self.input_std[: self.config.d_encoder] = 1.0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # x: [..., d_input] (embedding, then features) -> energy: [...]
        if x.shape[-1] != self.config.d_input:
            raise ValueError(
                f"EnergyHead expects inputs of width {self.config.d_input} (embedding {self.config.d_encoder}"
                f" + {len(self.config.features)} features), got {x.shape[-1]}"
            )
        x = (x - self.input_mean) / self.input_std  # identity until set_input_statistics
        return self.net(x).squeeze(-1)  # [..., 1] -> [...]

    def score(self, x: torch.Tensor) -> torch.Tensor:
        """Higher = more provable: ``-energy``."""
        return -self.forward(x)

    @property
    def temperature(self) -> torch.Tensor:
        # scalar; clamping the log keeps the logits finite whatever the optimiser does
        c = self.config
        return self.log_temperature.clamp(c.log_temp_min, c.log_temp_max).exp()

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())


def expected_num_parameters(c: EnergyHeadConfig) -> int:
    """Closed form of ``EnergyHead(c).num_parameters()`` (weights + biases + log-temperature)."""
    return (
        c.d_input * c.d_hidden1 + c.d_hidden1
        + c.d_hidden1 * c.d_hidden2 + c.d_hidden2
        + c.d_hidden2 * c.d_hidden3 + c.d_hidden3
        + c.d_hidden3  # last layer: no bias
        + 1  # log-temperature
    )


__all__ = ["EnergyHead", "EnergyHeadConfig", "expected_num_parameters"]
