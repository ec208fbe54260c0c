"""Particles in a box: the data every later stage consumes.

All lengths are in micrometres (µm). The through-plane axis is the last coordinate: ``y`` in 2D,
``z`` in 3D. ``0`` is the current collector (bottom), ``H`` the separator side (top).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .. import tags


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


def ball_volume(radii: np.ndarray, dim: int) -> np.ndarray:
    """Volume of a sphere (3D) or area of a disk (2D) of the given radii."""
    radii = np.asarray(radii, dtype=float)
    return math.pi * radii**2 if dim == 2 else 4.0 / 3.0 * math.pi * radii**3


@dataclass
class Particles:
    """Disks (2D) or spheres (3D) with phase labels, in a :class:`Box`.

    Attributes:
        box: the box they live in.
        centers: ``(N, dim)`` centre coordinates, µm. With periodic lateral sides the lateral
            coordinates are wrapped into ``[0, L)``.
        radii: ``(N,)`` outer radii, µm.
        phase: ``(N,)`` solid phase id of the particle (core) (:mod:`electrofem.tags`).
        shell_thickness: ``(N,)`` thickness of an optional coating shell, µm (0: none).
        shell_phase: ``(N,)`` phase id of the shell.
        layer: ``(N,)`` index of the layer the particle belongs to (-1: none).
        meta: free-form provenance (seed, algorithm, achieved porosity, ...).
    """

    box: Box
    centers: np.ndarray
    radii: np.ndarray
    phase: np.ndarray | None = None
    shell_thickness: np.ndarray | None = None
    shell_phase: np.ndarray | None = None
    layer: np.ndarray | None = None
    meta: dict = field(default_factory=dict)

    def __post_init__(self):
        n = len(self.radii)
        self.centers = np.ascontiguousarray(self.centers, dtype=float).reshape(n, self.box.dim)
        self.radii = np.ascontiguousarray(self.radii, dtype=float)
        default = {"phase": tags.ACTIVE, "shell_thickness": 0.0, "shell_phase": tags.SECOND}
        for name, value in default.items():
            arr = getattr(self, name)
            arr = np.full(n, value) if arr is None else np.asarray(arr)
            setattr(self, name, arr.astype(float if name == "shell_thickness" else np.int32))
        self.layer = np.full(n, -1, np.int32) if self.layer is None else np.asarray(self.layer)
        self.layer = self.layer.astype(np.int32)
        self.validate()

    def __len__(self) -> int:
        return len(self.radii)

    @property
    def dim(self) -> int:
        return self.box.dim

    def validate(self) -> None:
        """Check finiteness, positivity and fit in the box; raise MicrostructureError."""
        if not np.all(np.isfinite(self.centers)) or not np.all(np.isfinite(self.radii)):
            raise MicrostructureError("particles: centres and radii must be finite (found NaN/inf)")
        if np.any(self.radii <= 0):
            i = int(np.argmin(self.radii))
            raise MicrostructureError(f"particles[{i}].radius: must be > 0, got {self.radii[i]}")
        if np.any(self.shell_thickness < 0) or np.any(self.shell_thickness >= self.radii):
            bad = np.flatnonzero((self.shell_thickness < 0) | (self.shell_thickness >= self.radii))
            i = int(bad[0])
            raise MicrostructureError(
                f"particles[{i}].shell_thickness: must be in [0, radius), got "
                f"{self.shell_thickness[i]} for radius {self.radii[i]}"
            )
        for p in np.unique(np.concatenate([self.phase, self.shell_phase])):
            if int(p) not in tags.SOLID_PHASES:
                raise MicrostructureError(
                    f"particles.phase: {int(p)} is not a solid phase id {tags.SOLID_PHASES}"
                )
        limit = min(self.box.size) / 2 if not self.box.periodic else self.box.height / 2
        if len(self) and self.radii.max() > limit:
            i = int(np.argmax(self.radii))
            raise MicrostructureError(
                f"particles[{i}].radius: {self.radii[i]:.4g} µm is larger than the box allows "
                f"(at most {limit:.4g} µm for box {self.box.size})"
            )

    def volumes(self) -> np.ndarray:
        """Per-particle volume (µm³, or µm² in 2D), ignoring overlaps and box clipping."""
        return ball_volume(self.radii, self.dim)

    def subset(self, mask: np.ndarray) -> Particles:
        """Particles selected by a boolean mask or index array."""
        return Particles(
            self.box,
            self.centers[mask],
            self.radii[mask],
            self.phase[mask],
            self.shell_thickness[mask],
            self.shell_phase[mask],
            self.layer[mask],
            dict(self.meta),
        )

    # --- CSV -----------------------------------------------------------------------------
    def to_csv(self, path: str | Path) -> None:
        """Write ``x,y[,z],r,phase,shell_thickness,shell_phase,layer`` (µm)."""
        from .particles_csv import write_csv

        write_csv(self, path)

    @classmethod
    def from_csv(cls, path: str | Path, box: Box) -> Particles:
        """Read particles from a CSV of centre coordinates, radius and phase (µm).

        Required columns: ``x, y[, z], r``. Optional: ``phase`` (id or name, default active),
        ``shell_thickness``, ``shell_phase``, ``layer``. A ``d``/``diameter`` column may replace
        ``r``. Every row is checked; a bad one raises MicrostructureError naming the file, the
        data row and the column (see :mod:`.particles_csv`). A particle must intersect the box;
        lateral coordinates are then wrapped into it when it is periodic.
        """
        from .particles_csv import read_csv

        return read_csv(path, box)
