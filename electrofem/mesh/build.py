"""The one entry point from particles to a meshed gmsh model: :func:`build_and_mesh`.

It picks the route of ``MeshOptions.geometry_route``: the OpenCASCADE geometry
(:func:`.occ.build_geometry`, then :func:`.sizing.mesh_geometry`), or the discrete route
(:func:`.discrete.build_and_mesh_discrete`), which triangulates the packing's surface itself.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from .discrete import build_and_mesh_discrete, check_supported
from .occ import build_geometry
from .sizing import mesh_geometry

if TYPE_CHECKING:
    from ..microstructure.particles import Particles
    from .options import GeometryReport, MeshOptions, MeshStats
    from .pieces import CutSharing


log = logging.getLogger("electrofem.mesh")

#: ``geometry_route = "auto"`` takes the discrete route for 3D packings of at least this many
#: particles (when it can mesh them): the OCC glue grows ~quadratically with the pieces
#: (9.7 min against 2.0 min on paper 002's 3D section of 2 440 particles, BENCHMARKS.md),
#: while below ~500 particles both routes take well under a minute.
AUTO_DISCRETE_PARTICLES = 1000


def resolve_route(options: MeshOptions, particles: Particles) -> str:
    """The route ``options.geometry_route`` stands for with these particles: ``"auto"``
    becomes ``"discrete"`` for large 3D packings the discrete route can mesh, and always with
    ``electrolyte_only`` (which only the discrete route makes)."""
    route = options.geometry_route
    if options.electrolyte_only:
        return "discrete"
    if route != "auto" or particles.dim != 3 or len(particles) < AUTO_DISCRETE_PARTICLES:
        return route
    try:
        check_supported(particles, options)
    except ValueError:
        return route
    return "discrete"


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
    particles) then :func:`.sizing.mesh_geometry`. ``"discrete"`` (and ``"auto"`` on large
    packings, :func:`resolve_route`): rank 0 alone (``sharing`` only meets the other ranks'
    calls). When ``"auto"`` chose the discrete route and it fails (RuntimeError: the surface
    did not close, or HXT failed), the OCC route meshes instead, with a warning; rank 0 then
    makes every cut."""
    options.validate()
    route = resolve_route(options, particles)
    if route == "discrete" and (options.geometry_route == "discrete" or options.electrolyte_only):
        return build_and_mesh_discrete(particles, options, model_name, gmsh_options=gmsh_options)
    if route == "discrete":  # chosen by "auto": the OCC route stands behind it
        log.info(
            "mesh: %d particles: the discrete route (geometry_route = 'occ' forces OCC)",
            len(particles),
        )
        try:
            return build_and_mesh_discrete(
                particles, options, model_name, gmsh_options=gmsh_options
            )
        except RuntimeError as err:  # the surface did not close, or HXT failed
            log.warning("mesh: the discrete route failed (%s); meshing by OCC instead", err)
            sharing = None  # the other ranks were told "discrete" and cut nothing
    report = build_geometry(
        particles,
        model_name,
        verbose=options.verbose,
        sharing=sharing,
        route=options.geometry_route,
    )
    return report, mesh_geometry(options, particles, gmsh_options=gmsh_options)
