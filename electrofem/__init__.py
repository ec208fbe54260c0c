"""electrofem: finite-element multiphysics for electrode microstructures.

Data flows one way: packing -> geometry -> mesh -> solve -> analyse -> write.

* :mod:`electrofem.microstructure` -- particle packings (numpy + Cython, no dolfinx)
* :mod:`electrofem.mesh` -- Gmsh geometry, conformal meshing, dolfinx/XDMF/meshio I/O
* :mod:`electrofem.tags` -- every cell and facet tag number, in one place
* :mod:`electrofem.cli` -- the ``electrofem`` command

Lengths in microstructures and meshes are in micrometres (µm); see ``LENGTH_UNIT_M``.
"""

try:  # The PyPI dolfinx wheel must be initialised before dolfinx/petsc4py are imported.
    import dolfinx_solver  # noqa: F401
except ImportError:  # a conda/spack dolfinx needs no such step
    pass


def _petsc_alone_under_mpi4py_futures() -> None:
    """Under ``python -m mpi4py.futures`` (``electrofem study --workers N``) every process
    works alone: the parent runs the study, each worker its cases on ``MPI.COMM_SELF``. PETSc's
    initialisation is collective on its world communicator, so it must be COMM_SELF there (on
    COMM_WORLD the first process to import dolfinx would wait for the others forever)."""
    import sys

    core = sys.modules.get("mpi4py.futures._core")
    if core is None or getattr(core, "SharedPool", None) is None:
        return
    import petsc4py
    from mpi4py import MPI

    petsc4py.init(comm=MPI.COMM_SELF)


_petsc_alone_under_mpi4py_futures()

__version__ = "0.1.0"

#: Metres per length unit of every microstructure and mesh coordinate (1 µm).
LENGTH_UNIT_M = 1.0e-6

__all__ = ["__version__", "LENGTH_UNIT_M"]
