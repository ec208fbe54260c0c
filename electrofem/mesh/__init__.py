"""Meshing: Gmsh OCC geometry with conformal phases (:mod:`.geometry`, no dolfinx) and the
distributed dolfinx mesh with its XDMF/.msh/meshio I/O (:mod:`.io`)."""

from .geometry import GeometryReport, MeshOptions, MeshStats, build_and_mesh, build_geometry
from .io import ElectrodeMesh, MeshFileError, convert

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
