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

    #: Smallest share of the distribution the truncation may keep (rejection sampling).
    MIN_MASS = 1e-6

    def __post_init__(self):
        if not (math.isfinite(self.mean) and self.mean > 0):
            raise MicrostructureError(f"size.mean: must be > 0 µm, got {self.mean}")
        if not (math.isfinite(self.std) and self.std >= 0):
            raise MicrostructureError(f"size.std: must be >= 0 µm, got {self.std}")
        for name in ("lower", "upper"):
            v = getattr(self, name)
            if v is not None and not (math.isfinite(v) and v > 0):
                raise MicrostructureError(f"size.{name}: must be > 0 µm, got {v}")
        if self.std == 0:
            if not self.r_min <= self.mean <= self.r_max:
                raise MicrostructureError(
                    f"size.lower/upper: [{self.r_min:.4g}, {self.r_max:.4g}] µm excludes the "
                    f"mean {self.mean:.4g} µm (std 0), got lower {self.lower}, upper {self.upper}"
                )
            return
        if self.r_min >= self.r_max:
            raise MicrostructureError(
                f"size.lower/upper: empty truncation interval [{self.r_min}, {self.r_max}]"
            )
        mass = self.window_mass()
        if not mass >= self.MIN_MASS:  # rejection sampling would (nearly) never end
            window = f"[{self.r_min:.4g}, {self.r_max:.4g}] µm keeps a fraction {mass:.2g}"
            if self.lower is None and self.upper is None:
                raise MicrostructureError(
                    f"size.std: too large for the mean {self.mean:.4g} µm ({window} of the "
                    f"lognormal), got {self.std}"
                )
            raise MicrostructureError(
                f"size.lower/upper: {window} of the lognormal (mean {self.mean:.4g}, std "
                f"{self.std:.4g} µm); widen it, got lower {self.lower}, upper {self.upper}"
            )

    def log_params(self) -> tuple[float, float]:
        """``(mu, sigma)`` of ``log r`` (for any finite spread: no overflow)."""
        cv = self.std / self.mean
        s2 = math.log(1 + cv**2) if cv < 1e150 else 2 * math.log(cv)
        return math.log(self.mean) - 0.5 * s2, math.sqrt(s2)

    def window_mass(self) -> float:
        """The share of the untruncated lognormal inside ``[r_min, r_max]``."""
        if self.std == 0:
            return 1.0
        mu, sigma = self.log_params()

        def cdf(r):
            return 0.5 * math.erfc(-(math.log(r) - mu) / (sigma * math.sqrt(2)))

        return cdf(self.r_max) - cdf(self.r_min)

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
        mu, sigma = self.log_params()
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
