"""The one entry point from particles to a meshed gmsh model: :func:`build_and_mesh`.

It picks the route of ``MeshOptions.geometry_route``: the OpenCASCADE geometry
(:func:`.occ.build_geometry`, then :func:`.sizing.mesh_geometry`), or the discrete route
(:func:`.discrete.build_and_mesh_discrete`), which triangulates the packing's surface itself.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .discrete import build_and_mesh_discrete
from .occ import build_geometry
from .sizing import mesh_geometry

if TYPE_CHECKING:
    from ..microstructure.particles import Particles
    from .options import GeometryReport, MeshOptions, MeshStats
    from .pieces import CutSharing


def build_and_mesh(
    particles: Particles,
    options: MeshOptions,
    model_name: str = "electrofem",
    *,
    gmsh_options: dict | None = None,
    sharing: CutSharing | None = None,
) -> tuple[GeometryReport, MeshStats]:
    """Geometry and mesh of ``particles`` in the current gmsh session.

    OCC routes: :func:`.occ.build_geometry` (``sharing``: other MPI ranks cut part of the
    particles) then :func:`.sizing.mesh_geometry`. ``"discrete"``: rank 0 alone (``sharing``
    only meets the other ranks' calls)."""
    options.validate()
    if options.geometry_route == "discrete":
        return build_and_mesh_discrete(particles, options, model_name, gmsh_options=gmsh_options)
    report = build_geometry(
        particles,
        model_name,
        verbose=options.verbose,
        sharing=sharing,
        route=options.geometry_route,
    )
    return report, mesh_geometry(options, particles, gmsh_options=gmsh_options)
