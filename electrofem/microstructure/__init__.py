"""Particle microstructures: pure numpy + Cython kernels, no dolfinx.

>>> from electrofem.microstructure import preset, generate, summarize
>>> parts = generate(preset("L-S", dim=2, width=50, height=146, porosity=0.4, seed=1))
>>> summarize(parts)["porosity"]  # doctest: +SKIP
0.40...
"""

from .distributions import Fixed, LogNormal, Mixture, SizeDistribution, fill_volume
from .layers import (
    LARGE_DIAMETER_UM,
    SMALL_DIAMETER_UM,
    Electrode,
    Layer,
    Population,
    generate,
    preset,
    summarize,
)
from .measure import phase_profile, union_porosity, union_volume
from .packing import ContactModel, UnreachablePorosity, calender, jam
from .particles import Box, MicrostructureError, Particles, ball_volume
from .resources import check_resources, estimate_resources

__all__ = [
    "Box",
    "ContactModel",
    "Electrode",
    "Fixed",
    "LARGE_DIAMETER_UM",
    "Layer",
    "LogNormal",
    "MicrostructureError",
    "Mixture",
    "Particles",
    "Population",
    "SMALL_DIAMETER_UM",
    "SizeDistribution",
    "UnreachablePorosity",
    "ball_volume",
    "calender",
    "check_resources",
    "estimate_resources",
    "fill_volume",
    "generate",
    "jam",
    "phase_profile",
    "preset",
    "summarize",
    "union_porosity",
    "union_volume",
]
