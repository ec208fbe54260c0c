"""The electrode box, and the error every microstructure stage raises."""

from __future__ import annotations

import math
from dataclasses import dataclass


class MicrostructureError(ValueError):
    """Bad microstructure input; the message names the offending field."""


@dataclass(frozen=True)
class Box:
    """The electrode box.

    Attributes:
        size: ``(width, height)`` in 2D or ``(width, depth, height)`` in 3D, in µm.
        periodic: lateral sides periodic (particles wrap across them); otherwise walls.
    """

    size: tuple[float, ...]
    periodic: bool = True

    def __post_init__(self):
        try:
            object.__setattr__(self, "size", tuple(float(s) for s in self.size))
        except (TypeError, ValueError, OverflowError):
            raise MicrostructureError(
                f"box.size: must be lengths in µm, got {self.size!r}"
            ) from None
        if len(self.size) not in (2, 3):
            raise MicrostructureError(f"box.size: need 2 or 3 lengths, got {len(self.size)}")
        for name, s in zip(self.axis_names, self.size, strict=True):
            if not (math.isfinite(s) and s > 0):
                raise MicrostructureError(f"box.{name}: must be a positive length in µm, got {s}")

    @property
    def dim(self) -> int:
        return len(self.size)

    @property
    def axis_names(self) -> tuple[str, ...]:
        return ("width", "height") if len(self.size) == 2 else ("width", "depth", "height")

    @property
    def height(self) -> float:
        """Through-plane thickness H (µm)."""
        return self.size[-1]

    @property
    def lateral(self) -> tuple[float, ...]:
        """In-plane lengths (µm)."""
        return self.size[:-1]

    @property
    def volume(self) -> float:
        """Box volume (µm³; µm² in 2D); inf past the float range (no numpy warning)."""
        return float(math.prod(self.size))

    @property
    def area(self) -> float:
        """Footprint area (µm²; µm in 2D, per unit depth)."""
        return float(math.prod(self.lateral))
