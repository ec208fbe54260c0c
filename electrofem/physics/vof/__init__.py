"""Two-phase (electrolyte/air) Navier–Stokes with a volume-of-fluid fraction (see
:mod:`electrofem.physics.vof.solver`)."""

from .solver import (  # noqa: F401
    BOUNDARY_KINDS,
    FluidParams,
    InfiltrationOptions,
    StepRecord,
    VOFDivergenceError,
    VOFSolver,
    _tag_box_facets,
)
