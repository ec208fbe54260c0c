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

__version__ = "0.1.0"

#: Metres per length unit of every microstructure and mesh coordinate (1 µm).
LENGTH_UNIT_M = 1.0e-6

__all__ = ["__version__", "LENGTH_UNIT_M"]
