"""Gmsh (OpenCASCADE) geometry of particles in a box, its physical groups and its mesh.

Pure gmsh, no dolfinx. The caller owns ``gmsh.initialize()``/``gmsh.finalize()``; every function
works on the current gmsh model.

This module is the front door: it re-exports the public names of

* :mod:`.options` -- :class:`MeshOptions`, :class:`GeometryReport`, :class:`MeshStats` (no gmsh);
* :mod:`.plan` -- particle instances, radical planes, near-tangency hints (no gmsh);
* :mod:`.pieces` -- the truncated balls (OCC cuts, sphere seams);
* :mod:`.occ` -- :func:`build_geometry` (the boolean, classification, physical groups);
* :mod:`.glue` -- the glued 3D construction (box-cut pieces glued, the pore a discrete volume);
* :mod:`.sizing` -- :func:`mesh_geometry` (size field, gmsh options);
* :mod:`.union`, :mod:`.contacts`, :mod:`.discrete` -- the discrete route (the packing's
  surface and the contact faces between phases triangulated directly, no OCC boolean);
* :mod:`.build` -- :func:`build_and_mesh`, which picks the route;
* :mod:`.tetra` -- the 3D surface and volume meshes and their optimisation.

The gmsh-backed names are loaded on first use, so importing :class:`MeshOptions` from here
(as :mod:`electrofem.config` does) does not import gmsh.

Construction (:func:`build_geometry`):

1. the box ``[0, Lx] x [0, H]`` (2D, plane z = 0) or ``[0, Lx] x [0, Ly] x [0, H]`` (3D);
2. periodic images of particles that cross a lateral face (when ``box.periodic``);
3. overlapping particles are split on their **radical plane** (power diagram): particle ``i``
   keeps the part of its ball on its side of the radical plane with every overlapping
   neighbour, so two particles meet on a flat contact disk of radius ``a`` (area ``pi a^2``;
   a segment of length ``2a`` in 2D). The truncated balls are disjoint and tile the union;
4. core-shell particles: the core (radius ``r - t``, truncated by the same planes) has the
   particle's ``phase``, the rest of the truncated ball its ``shell_phase``;
5. 2D (or ``geometry_route = "fragment"``): ``occ.fragment`` of the box with all pieces;
   pieces outside the box are removed (from the gmsh model only, see :func:`build_geometry`).
   3D: the pieces are also cut by the box faces, glued with the six box faces (OCC's glue
   option), and the pore is a gmsh discrete volume bounded by the faces no piece covers on
   one side (:mod:`.glue`);
6. physical groups: one per phase (tag = phase id), one per box face (``tags.BOTTOM`` ...) and
   one per interface type (``tags.interface_tag(a, b)``; ``interface_tag(p, p)`` for contacts
   between two particles of phase ``p``). Every dim-1 entity is in exactly one group.

The cuts run in small scratch models, in batches of particles that cannot touch each other
(OCC booleans slow down with the size of the model). Each OCC sphere (disk) is rotated about
its centre so that its seam and poles stay away from the contact necks and box faces that cut
it: a seam grazing a neck makes sliver elements.

Meshing (:func:`mesh_geometry`): the element size (``min(size, radius_factor * r)`` on particle
surfaces, ``neck_factor * a`` on contact necks and on the circles where box faces cut
particles, growing linearly away from them) is sampled on a regular grid from the exact
distances to spheres and neck circles, and handed to gmsh as a 'Structured' background field.
Distance fields on the OCC surfaces gave similar meshes but cost seconds per hundred
particles. 2D: Frontal-Delaunay; 3D: Frontal-Delaunay surfaces, HXT volumes and (``optimize``)
HXT's and gmsh's optimisers (:mod:`.tetra`); one thread, fixed seed: the same particles give the
same mesh.

:func:`build_geometry` leaves a JSON record (dimension, a hash of the particles, near-tangency
hints, build time) in the gmsh model attribute ``electrofem.geometry`` for
:func:`mesh_geometry`.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from .options import GeometryReport, MeshOptions, MeshStats

if TYPE_CHECKING:  # loaded by __getattr__ on first use: they import gmsh
    from .build import build_and_mesh
    from .occ import ATTRIBUTE, build_geometry
    from .pieces import CUT_BATCH
    from .plan import TANGENT_TOL
    from .sizing import GRID_MAX_POINTS, GROWTH, RANDOM_SEED, mesh_geometry

#: Where the names loaded on first use live.
_LAZY = {
    "ATTRIBUTE": ".occ",
    "build_geometry": ".occ",
    "CUT_BATCH": ".pieces",
    "TANGENT_TOL": ".plan",
    "GRID_MAX_POINTS": ".sizing",
    "GROWTH": ".sizing",
    "RANDOM_SEED": ".sizing",
    "build_and_mesh": ".build",
    "mesh_geometry": ".sizing",
}
#: Searched, in order, for the private helpers the former single module defined.
_HELPER_MODULES = (".plan", ".occ", ".sizing", ".pieces")

__all__ = [
    "ATTRIBUTE",
    "CUT_BATCH",
    "GRID_MAX_POINTS",
    "GROWTH",
    "RANDOM_SEED",
    "TANGENT_TOL",
    "GeometryReport",
    "MeshOptions",
    "MeshStats",
    "build_and_mesh",
    "build_geometry",
    "mesh_geometry",
]


def __getattr__(name: str):
    """Load the gmsh-backed names (and, for old imports, the private helpers such as
    ``_instances``) from their submodule on first use."""
    if name in _LAZY:
        modules = (_LAZY[name],)
    elif name.startswith("_") and not name.startswith("__"):
        modules = _HELPER_MODULES
    else:
        modules = ()
    for mod in modules:
        module = importlib.import_module(mod, __package__)
        if hasattr(module, name):
            value = getattr(module, name)
            globals()[name] = value
            return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
