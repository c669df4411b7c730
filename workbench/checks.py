"""Checks every settings object shares (pure)."""

from __future__ import annotations

import dataclasses
import math
from typing import Any

__all__ = ["require_finite"]


def require_finite(settings: Any, *, owner: str | None = None) -> None:
    """Raise ValueError naming the first float field (or float in a tuple field) of the dataclass
    ``settings`` that is NaN or infinite: ``float("nan")`` passes every ``< 0`` check, so a NaN timeout or
    scale would otherwise reach the run (a NaN deadline never fires; inf waits for ever)."""
    name = owner or type(settings).__name__
    for f in dataclasses.fields(settings):
        value = getattr(settings, f.name)
        for x in value if isinstance(value, tuple) else (value,):
            if isinstance(x, float) and not math.isfinite(x):
                raise ValueError(f"{name}.{f.name} must be a finite number, got {x!r}")
