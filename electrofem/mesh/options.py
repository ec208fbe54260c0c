"""Meshing options and reports: :class:`MeshOptions`, :class:`GeometryReport`, :class:`MeshStats`.

Plain dataclasses, no gmsh or dolfinx: :mod:`electrofem.config` imports :class:`MeshOptions`.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass, field


def finite(v) -> bool:
    """``math.isfinite``, False for an integer beyond the float range (no OverflowError)."""
    try:
        return math.isfinite(v)
    except OverflowError:
        return False


def _is_number(v) -> bool:
    return isinstance(v, numbers.Real) and not isinstance(v, bool)


# --------------------------------------------------------------------------------------------
# Public data classes
# --------------------------------------------------------------------------------------------
#: ``MeshOptions.geometry_route`` values.
GEOMETRY_ROUTES = ("auto", "occ", "fragment", "discrete")


def glues(route: str, dim: int) -> bool:
    """Whether ``route`` builds a ``dim``-D OCC geometry by the glued construction."""
    return route in ("auto", "occ") and dim == 3


@dataclass(frozen=True)
class MeshOptions:
    """Element sizes and meshing switches (lengths in µm).

    Attributes:
        size: global maximum element size (electrolyte far from particles).
        radius_factor: element size at a particle surface = ``min(size, radius_factor * r)``.
        neck_factor: element size at a contact neck of radius ``a`` (and at the circle where a
            box face cuts a particle) = ``max(size_min, neck_factor * a)``.
        size_min: lower bound on any element size.
        optimize: 3D: HXT's and gmsh's optimisation of the tetrahedra (off: gmsh's sliver
            removal only).
        quality_warn: log a warning when the minimum element quality (minSICN) is below this.
        mend_rounds: 3D: when the minimum quality is below ``quality_warn``, mesh again, up
            to this many times, with the sizes refined around the cells below 0.2
            (:data:`electrofem.mesh.sizing.MEND_BELOW`; both routes). 0: keep the first mesh.
        verbose: print gmsh's own output.
        order: geometry order of the cells: 1 (straight) or 2 (edge midpoints on the exact
            spheres, contact circles and box faces; :mod:`electrofem.mesh.curved`). Order 2
            is for the steady transport and conductivity solvers; the time-dependent solvers
            need order 1.
        geometry_route: how the OCC geometry is assembled (:func:`.occ.build_geometry`):
            ``"occ"`` glues the box-cut pieces in 3D and makes the pore a discrete volume
            (:mod:`electrofem.mesh.glue`, 3x cheaper than the fragment on 400 spheres),
            falling back to the box fragment when the pore's shells need it; ``"fragment"``
            fragments the box with the pieces (the only route in 2D); ``"discrete"`` (3D, no
            shells) triangulates the packing's surface itself and
            has HXT mesh the regions (:mod:`electrofem.mesh.discrete`; 2-4.5x faster on large
            packings; ``interface_tag(p, p)`` contact facets only with
            ``same_phase_contacts``). ``"auto"`` is ``"discrete"``
            for 3D packings of at least :data:`electrofem.mesh.build.AUTO_DISCRETE_PARTICLES`
            particles that it can mesh, where the OCC glue grows ~quadratically, and
            ``"occ"`` otherwise.
        electrolyte_only: 3D, discrete route: mesh the electrolyte (pore) phase alone; the
            particles are holes bounded by the interface facets. For the electrolyte's
            steady transport (tortuosity, effective ionic conductivity): it skips the solid
            cells (~40 % less volume meshing and import on a 0.4-porous pack). Not for the
            jobs that need the solid (discharge, the solid's conductivity, SIA's masses from
            the mesh). ``"auto"`` then takes the discrete route at any particle count.
    """

    size: float = 1.0
    radius_factor: float = 0.25
    neck_factor: float = 0.5
    size_min: float = 0.05
    optimize: bool = True
    quality_warn: float = 0.1
    mend_rounds: int = 2
    verbose: bool = False
    order: int = 1
    geometry_route: str = "auto"
    electrolyte_only: bool = False
    same_phase_contacts: bool = False

    def validate(self) -> None:
        """Raise ValueError naming the offending field."""
        for name in ("size", "radius_factor", "neck_factor", "size_min"):
            v = getattr(self, name)
            if not (_is_number(v) and finite(v) and v > 0):
                raise ValueError(f"mesh.{name}: must be > 0, got {v!r}")
        if self.size_min > self.size:
            raise ValueError(
                f"mesh.size_min: must be <= mesh.size ({self.size}), got {self.size_min}"
            )
        q = self.quality_warn
        if not (_is_number(q) and 0 <= q <= 1):
            raise ValueError(f"mesh.quality_warn: must be in [0, 1], got {q!r}")
        m = self.mend_rounds
        if not (isinstance(m, int) and not isinstance(m, bool) and m >= 0):
            raise ValueError(f"mesh.mend_rounds: must be an integer >= 0, got {m!r}")
        if not (isinstance(self.order, int) and not isinstance(self.order, bool)) or (
            self.order not in (1, 2)
        ):
            raise ValueError(f"mesh.order: must be 1 or 2, got {self.order!r}")
        if self.geometry_route not in GEOMETRY_ROUTES:
            raise ValueError(
                f"mesh.geometry_route: must be one of {GEOMETRY_ROUTES}, "
                f"got {self.geometry_route!r}"
            )
        if self.electrolyte_only is True and self.geometry_route not in ("auto", "discrete"):
            raise ValueError(
                "mesh.electrolyte_only: needs geometry_route = 'discrete' or 'auto', got "
                f"{self.geometry_route!r}"
            )
        for name in ("optimize", "verbose", "electrolyte_only", "same_phase_contacts"):
            if not isinstance(getattr(self, name), bool):
                raise ValueError(f"mesh.{name}: must be true or false, got {getattr(self, name)!r}")


@dataclass
class GeometryReport:
    """What :func:`build_geometry` built (JSON-serialisable via ``dataclasses.asdict``).

    Attributes:
        n_volumes: number of gmsh entities of the top dimension.
        phase_volumes: phase id -> total volume (area in 2D), µm^3, from OCC.
        interface_areas: interface facet tag -> total area (length in 2D), µm^2.
        boundary_areas: box-face tag (``tags.BOTTOM`` ...) -> area (length in 2D), µm^2.
    """

    n_volumes: int
    phase_volumes: dict[int, float] = field(default_factory=dict)
    interface_areas: dict[int, float] = field(default_factory=dict)
    boundary_areas: dict[int, float] = field(default_factory=dict)


@dataclass
class MeshStats:
    """Size, quality (gmsh minSICN of the top-dimensional elements) and timings of a mesh."""

    n_nodes: int
    n_cells: int
    min_quality: float
    mean_quality: float
    seconds_geometry: float
    seconds_mesh: float
    #: split of ``seconds_mesh``: size field, surface mesh, volume mesh, optimisation, curving
    seconds_split: dict[str, float] = field(default_factory=dict)
    #: order 2: cells whose edge midpoints were put back on their straight edges (no inversion)
    straightened_cells: int = 0
