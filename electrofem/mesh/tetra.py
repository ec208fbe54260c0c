"""The 3D mesh of the current gmsh model, step by step: :func:`generate_3d`.

Surface mesh (the 2D algorithm of the options, Frontal-Delaunay), then the volume mesh (HXT on
one thread) and its optimisation. With ``Mesh.Optimize`` set, HXT runs its own optimiser
(edge removal and smoothing) inside ``generate(3)`` and gmsh's optimiser follows; that
removed every tetrahedron below quality 0.2 on the benchmark packings, where gmsh's optimiser
alone, run after an unoptimised HXT mesh, left flat tetrahedra whose four nodes lie on one
sphere. Without it, gmsh's optimiser alone still removes HXT's flat tetrahedra.
"""

from __future__ import annotations

import time

import gmsh
import numpy as np


def tet_qualities() -> np.ndarray:
    """minSICN of every tetrahedron of the current model."""
    _, etags, _ = gmsh.model.mesh.getElements(3)
    if not len(etags):
        return np.zeros(0)
    return np.asarray(gmsh.model.mesh.getElementQualities(np.concatenate(etags), "minSICN"))


def generate_3d(split: dict[str, float], optimize: bool = True) -> None:
    """Surface mesh, then volume mesh and optimisation, timed into ``split`` (seconds:
    ``surface``; ``volume``, which includes HXT's and gmsh's optimisers when ``optimize``;
    ``optimize``, gmsh's optimiser run apart when not ``optimize``).

    ``Mesh.OptimizeNetgen`` (off by default) still runs after them when set."""
    t = time.perf_counter()
    gmsh.model.mesh.generate(2)
    split["surface"] = time.perf_counter() - t
    previous = gmsh.option.getNumber("Mesh.Optimize")
    gmsh.option.setNumber("Mesh.Optimize", 1 if optimize else 0)
    try:
        t = time.perf_counter()
        gmsh.model.mesh.generate(3)
        split["volume"] = time.perf_counter() - t
        t = time.perf_counter()
        if not optimize:
            gmsh.model.mesh.optimize("")
        split["optimize"] = time.perf_counter() - t
    finally:
        gmsh.option.setNumber("Mesh.Optimize", previous)
