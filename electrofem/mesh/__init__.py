"""Meshing: Gmsh OCC geometry with conformal phases and the distributed dolfinx mesh.

* :mod:`.geometry` -- the front door of the geometry and meshing (no dolfinx), re-exporting
  :mod:`.options` (MeshOptions, GeometryReport, MeshStats), :mod:`.plan` (instances, radical
  planes), :mod:`.pieces` (truncated balls), :mod:`.occ` (``build_geometry``) and
  :mod:`.sizing` (size field, ``mesh_geometry``, ``build_and_mesh``);
* :mod:`.io` -- :class:`ElectrodeMesh`: the distributed mesh, XDMF/.msh reading and writing
  under MPI, with :mod:`.files` (file checks, MeshFileError), :mod:`.metadata` (the JSON
  sidecar, and what a mesh without one derives) and :mod:`.conversion` (meshio ``convert``).

Importing this package does not import gmsh or dolfinx: :func:`build_geometry` and
:func:`build_and_mesh` (gmsh) are loaded on first use, and :mod:`.io` imports dolfinx inside
its functions.
"""

from typing import TYPE_CHECKING

from .io import ElectrodeMesh, MeshFileError, convert
from .options import GeometryReport, MeshOptions, MeshStats

if TYPE_CHECKING:
    from .build import build_and_mesh
    from .occ import build_geometry

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
