"""Meshing: Gmsh OCC geometry with conformal phases (:mod:`.geometry`, no dolfinx) and the
distributed dolfinx mesh with its XDMF/.msh/meshio I/O (:mod:`.io`).

Importing this package does not import gmsh or dolfinx: :func:`build_geometry` and
:func:`build_and_mesh` (gmsh) are loaded on first use, and :mod:`.io` imports dolfinx inside
its functions.
"""

from typing import TYPE_CHECKING

from .io import ElectrodeMesh, MeshFileError, convert
from .options import GeometryReport, MeshOptions, MeshStats

if TYPE_CHECKING:
    from .occ import build_geometry
    from .sizing import build_and_mesh

__all__ = [
    "ElectrodeMesh",
    "GeometryReport",
    "MeshFileError",
    "MeshOptions",
    "MeshStats",
    "build_and_mesh",
    "build_geometry",
    "convert",
]


def __getattr__(name: str):
    """``build_geometry`` and ``build_and_mesh`` import gmsh: load them on first use."""
    if name in ("build_and_mesh", "build_geometry"):
        from . import geometry

        value = getattr(geometry, name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
