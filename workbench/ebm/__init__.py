"""Energy-based value model: energy head, contrastive sampler, losses, trainer, evaluation.

Lower energy = more provable; ``score = -energy``.
"""

from workbench.ebm.model import EnergyHead, EnergyHeadConfig

__all__ = ["EnergyHead", "EnergyHeadConfig"]
