"""Particle size distributions (radii in µm), sampled reproducibly from a numpy Generator.

Each distribution can *fill* a target solid volume: it draws particles until their total
volume reaches the target, which is how a layer's particle count follows from its porosity.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .particles import MicrostructureError, ball_volume


@dataclass(frozen=True)
class Fixed:
    """All particles have the same radius (µm)."""

    radius: float

    def __post_init__(self):
        if not (math.isfinite(self.radius) and self.radius > 0):
            raise MicrostructureError(f"size.radius: must be > 0 µm, got {self.radius}")

    @property
    def r_min(self) -> float:
        return self.radius

    @property
    def r_max(self) -> float:
        return self.radius

    def sample(self, rng: np.random.Generator, n: int) -> np.ndarray:
        return np.full(n, self.radius)


@dataclass(frozen=True)
class LogNormal:
    """Lognormal radius distribution with the given mean and standard deviation (µm),
    truncated to ``[lower, upper]`` (defaults: mean ∓ 3 std, clipped at 0.2·mean)."""

    mean: float
    std: float
    lower: float | None = None
    upper: float | None = None

    def __post_init__(self):
        if not (self.mean > 0):
            raise MicrostructureError(f"size.mean: must be > 0 µm, got {self.mean}")
        if not (self.std >= 0):
            raise MicrostructureError(f"size.std: must be >= 0 µm, got {self.std}")
        if self.r_min >= self.r_max and self.std > 0:
            raise MicrostructureError(
                f"size.lower/upper: empty truncation interval [{self.r_min}, {self.r_max}]"
            )

    @property
    def r_min(self) -> float:
        lo = self.lower if self.lower is not None else self.mean - 3 * self.std
        return max(lo, 0.2 * self.mean)

    @property
    def r_max(self) -> float:
        return self.upper if self.upper is not None else self.mean + 3 * self.std

    def sample(self, rng: np.random.Generator, n: int) -> np.ndarray:
        if self.std == 0:
            return np.full(n, self.mean)
        s2 = math.log(1 + (self.std / self.mean) ** 2)
        mu, sigma = math.log(self.mean) - 0.5 * s2, math.sqrt(s2)
        out = np.empty(0)
        while len(out) < n:  # rejection sampling for the truncation
            draw = rng.lognormal(mu, sigma, size=max(2 * (n - len(out)), 16))
            draw = draw[(draw >= self.r_min) & (draw <= self.r_max)]
            out = np.concatenate([out, draw])
        return out[:n]


@dataclass(frozen=True)
class Mixture:
    """Discrete mixture of distributions, by *volume* fraction (fractions sum to 1)."""

    components: tuple[tuple[object, float], ...]

    def __post_init__(self):
        if not self.components:
            raise MicrostructureError("size.components: a mixture needs at least one component")
        total = sum(f for _, f in self.components)
        if any(f < 0 for _, f in self.components) or not math.isclose(total, 1.0, abs_tol=1e-6):
            raise MicrostructureError(
                f"size.components: volume fractions must be >= 0 and sum to 1, got {total:.6g}"
            )

    @property
    def r_min(self) -> float:
        return min(d.r_min for d, f in self.components if f > 0)

    @property
    def r_max(self) -> float:
        return max(d.r_max for d, f in self.components if f > 0)


SizeDistribution = Fixed | LogNormal | Mixture


def fill_volume(
    dist: SizeDistribution, rng: np.random.Generator, volume: float, dim: int
) -> np.ndarray:
    """Draw radii until their total volume reaches ``volume`` (µm³, µm² in 2D).

    The last draw is kept when it brings the total closer to the target; the caller rescales
    radii to hit the target exactly. Mixtures fill each component's share separately.
    """
    if isinstance(dist, Mixture):
        parts = [fill_volume(d, rng, f * volume, dim) for d, f in dist.components if f > 0]
        return np.concatenate(parts) if parts else np.zeros(0)
    radii: list[np.ndarray] = []
    total = 0.0
    while total < volume:
        # draw in batches sized from the mean volume, then cut where the target is reached
        batch = dist.sample(rng, 64)
        vols = ball_volume(batch, dim)
        cum = total + np.cumsum(vols)
        k = int(np.searchsorted(cum, volume))
        if k < len(batch):
            under = volume - (cum[k - 1] if k > 0 else total)
            keep = k + 1 if cum[k] - volume < under else k
            radii.append(batch[:keep])
            total = cum[keep - 1] if keep > 0 else total
            break
        radii.append(batch)
        total = cum[-1]
    return np.concatenate(radii) if radii else np.zeros(0)
