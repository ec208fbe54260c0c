"""Solver state as plain arrays, for checkpoints that restart on any number of ranks.

:func:`gather` collects the owned dofs of a function, with their coordinates, on rank 0;
:func:`match` finds, for every local dof, the row of such an array with the same coordinates.
The solvers' ``state_arrays()`` / ``load_state_arrays()`` are built on these two.
"""

from __future__ import annotations

import numpy as np
from mpi4py import MPI


def gather(comm, arr) -> np.ndarray | None:
    """Concatenate each rank's ``arr`` on rank 0 (``None`` elsewhere)."""
    parts = comm.gather(np.ascontiguousarray(arr), root=0)
    return np.concatenate(parts) if comm.rank == 0 else None


def owned_values_and_coordinates(f, gdim: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The owned dof values of ``f`` (one row per node, block size kept) and their
    coordinates (the first ``gdim`` columns, default all three)."""
    V = f.function_space
    n = V.dofmap.index_map.size_local
    bs = V.dofmap.index_map_bs
    vals = f.x.array[: n * bs]
    if bs > 1:
        vals = vals.reshape(-1, bs)
    xyz = V.tabulate_dof_coordinates()[:n]
    return vals.copy(), (xyz[:, :gdim] if gdim else xyz).copy()


def match(comm, ref_xy: np.ndarray, xy: np.ndarray, what: str, tol: float) -> np.ndarray:
    """Indices into ``ref_xy`` of the points ``xy`` (nearest neighbour); raises ValueError on
    every rank if any point is farther than ``tol`` (not the same mesh)."""
    from scipy.spatial import cKDTree

    dist, idx = cKDTree(ref_xy).query(xy)
    worst = comm.allreduce(float(dist.max(initial=0.0)), op=MPI.MAX)
    if worst > tol:
        raise ValueError(
            f"--restart: the checkpoint's {what} does not match this mesh (largest distance "
            f"{worst:.3g})"
        )
    return idx
