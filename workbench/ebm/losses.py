"""Contrastive losses over (1 positive, k negatives) energies. Pure torch.

Convention everywhere: lower energy = more provable, so the contrastive logits are ``-energy / T``
and the positive sits at index 0.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F

LossKind = Literal["ranknet", "infonce", "margin"]
LOSS_KINDS: tuple[str, ...] = ("ranknet", "infonce", "margin")


@dataclass(frozen=True, slots=True)
class LossParts:
    total: torch.Tensor  # scalar, what is back-propagated
    contrastive: torch.Tensor  # scalar, InfoNCE or margin ranking
    depth: torch.Tensor  # scalar, 0 when the depth term is off or no positive has a known depth

    def as_floats(self) -> dict[str, float]:
        return {
            "loss": float(self.total.detach()),
            "loss_contrastive": float(self.contrastive.detach()),
            "loss_depth": float(self.depth.detach()),
        }


def info_nce(e_pos: torch.Tensor, e_neg: torch.Tensor, temperature: torch.Tensor) -> torch.Tensor:
    """Cross-entropy of picking the positive among 1 + k candidates.

    e_pos: [B], e_neg: [B, k], temperature: scalar > 0 -> scalar.
    """
    logits = -torch.cat([e_pos.unsqueeze(1), e_neg], dim=1) / temperature  # [B, 1 + k]
    target = torch.zeros(logits.shape[0], dtype=torch.long, device=logits.device)
    return F.cross_entropy(logits, target)


def margin_ranking(e_pos: torch.Tensor, e_neg: torch.Tensor, margin: float = 1.0) -> torch.Tensor:
    """mean over (b, j) of max(0, margin + E_pos[b] - E_neg[b, j]). e_pos: [B], e_neg: [B, k]."""
    return F.relu(margin + e_pos.unsqueeze(1) - e_neg).mean()


def ranknet(e_pos: torch.Tensor, e_neg: torch.Tensor) -> torch.Tensor:
    """Pairwise logistic (RankNet) loss: mean over (b, j) of -log sigmoid(E_neg[b, j] - E_pos[b]).

    Each (positive, negative) pair is one ranking judgement -- with traces, (later, earlier) states
    of one proof; with mined trees also (positive, negative) siblings. Unlike InfoNCE it does not ask
    the positive to beat all k at once, so pairs that are hard to tell apart do not drown the rest.
    e_pos: [B], e_neg: [B, k] -> scalar.
    """
    return F.softplus(e_pos.unsqueeze(1) - e_neg).mean()


def depth_target(remaining_depth: torch.Tensor) -> torch.Tensor:
    # log1p compresses long proofs: one more step matters more near the end than at step 30
    return torch.log1p(remaining_depth.clamp(min=0).to(torch.float32))


def depth_regression(e_pos: torch.Tensor, remaining_depth: torch.Tensor) -> torch.Tensor:
    """MSE between positive energies and log1p(remaining depth), over positives with depth >= 0.

    e_pos: [B], remaining_depth: [B] (int, -1 = unknown) -> scalar (0 when nothing is known).
    """
    known = remaining_depth >= 0
    if not bool(known.any()):
        return e_pos.new_zeros(())
    return F.mse_loss(e_pos[known], depth_target(remaining_depth[known]))


def contrastive_loss(
    e_pos: torch.Tensor,
    e_neg: torch.Tensor,
    temperature: torch.Tensor,
    remaining_depth: torch.Tensor | None = None,
    *,
    kind: LossKind = "ranknet",
    depth_weight: float = 0.3,
    margin: float = 1.0,
) -> LossParts:
    if kind == "ranknet":
        main = ranknet(e_pos, e_neg)
    elif kind == "infonce":
        main = info_nce(e_pos, e_neg, temperature)
    elif kind == "margin":
        main = margin_ranking(e_pos, e_neg, margin)
    else:
        raise ValueError(f"unknown loss kind {kind!r} (expected one of {LOSS_KINDS})")
    if depth_weight > 0 and remaining_depth is not None:
        depth = depth_regression(e_pos, remaining_depth)
    else:
        depth = e_pos.new_zeros(())
    return LossParts(total=main + depth_weight * depth, contrastive=main, depth=depth)
