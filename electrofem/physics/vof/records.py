"""What a VOF step and a VOF run return, the divergence error, and the observer protocol of
:meth:`electrofem.physics.vof.VOFSolver.run` (no dolfinx here)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Protocol, runtime_checkable


class VOFDivergenceError(RuntimeError):
    """The two-phase solve blew up (NaN, or a Courant number beyond the blow-up bound)."""


@dataclass
class StepRecord:
    """One time step. Volumes are areas (m²) in 2D, volumes (m³) in 3D.

    ``inflow``/``outflow`` are the electrolyte volumes that entered/left through the boundary in
    this step; ``balance_error`` = ΔV - inflow + outflow (conservation, ~round-off);
    ``div_residual`` = max_K |Σ_f F'_f| dt / |K| after the flux projection (dimensionless);
    ``div_fe`` = the same before it (the Taylor–Hood per-cell divergence);
    ``linear_iterations`` = the Krylov iterations of the flow solve (0 with MUMPS, or with no
    flow solve).
    """

    step: int
    t: float
    dt: float
    courant: float
    substeps: int
    alpha_min: float
    alpha_max: float
    volume: float
    inflow: float
    outflow: float
    balance_error: float
    div_residual: float
    div_fe: float
    u_max: float
    linear_iterations: int = 0

    def as_dict(self) -> dict:
        return asdict(self)


#: The stop reasons of :meth:`~electrofem.physics.vof.VOFSolver.run` (an observer may return
#: others, e.g. ``"breakthrough"``).
STOP_REASONS = ("t_end", "max_steps", "max_wall")


class RunResult(list):
    """The :class:`StepRecord` of every step of a :meth:`~electrofem.physics.vof.VOFSolver.run`
    (a list), and why the run stopped: ``stop_reason`` is ``"t_end"``, ``"max_steps"``,
    ``"max_wall"`` or the reason an observer returned."""

    stop_reason: str = "t_end"


@runtime_checkable
class StepObserver(Protocol):
    """What :meth:`~electrofem.physics.vof.VOFSolver.run` calls after every step (on every
    rank): ``on_step(solver, record)`` returns ``None`` to go on, or a stop reason (a short
    string, e.g. ``"breakthrough"``; it must be the same on every rank) to stop after this step.

    An observer may also define ``on_start(solver)`` (before the first step, before the wall
    clock of ``max_wall_s`` starts) and ``on_end(solver, stop_reason)`` (after the last step;
    not called when a step raises). It writes the files, metrics, checkpoints and progress
    lines; the loop itself stays in the solver."""

    def on_step(self, solver, record: StepRecord) -> str | None: ...
