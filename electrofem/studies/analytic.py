"""Analytic "jobs" for demonstrating and testing studies without a solver (``job =
"python:electrofem.studies.analytic:peak2d"``): each takes the case's config dict and its folder
and returns a metrics dict, like a job's JSON."""

from __future__ import annotations

import math
from pathlib import Path

#: Where :func:`peak2d` has its maximum (value 1).
PEAK2D_OPTIMUM = {"x": 0.3, "y": -0.2}


def peak2d(config: dict, folder: Path) -> dict:
    """A smooth 2D peak on [-1, 1]², maximum 1 at ``x = 0.3, y = -0.2``, plus a shallow
    second bump at (-0.6, 0.6) (value ≈ 0.5): ``{"f": ..., "distance": ...}``."""
    x, y = float(config["x"]), float(config["y"])
    r2 = (x - 0.3) ** 2 + (y + 0.2) ** 2
    bump = 0.5 * math.exp(-((x + 0.6) ** 2 + (y - 0.6) ** 2) / 0.05)
    return {"f": math.exp(-r2 / 0.18) + bump, "distance": math.sqrt(r2)}
