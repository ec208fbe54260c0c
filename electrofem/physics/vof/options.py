"""The options of an infiltration run: one definition per parameter (no dolfinx here).

:class:`InfiltrationOptions` is what :class:`~electrofem.physics.vof.VOFSolver` solves with,
what the infiltration job runs (:mod:`electrofem.jobs.infiltrate`), the ``[infiltration]``
table of a config (its keys are the field names) and the source of the ``electrofem
infiltrate`` flags (``--t-end``, ``--capillary-factor``, ``--contact-angle``, ``--max-steps``).
Every field is defined once with :func:`electrofem.params.param`: default, unit, check, and
the source of the physical values. SI units throughout.

The defaults are paper 002's set-up as the job runs it (contact angle 30°, ``capillary_factor``
20, ``dt_max_s`` 1e-4 s). The verification cases of the solver pass their own values (e.g. a
neutral 90° angle) explicitly.
"""

from __future__ import annotations

import dataclasses
import json
import math
import warnings
from dataclasses import dataclass

from ... import params
from ...params import OptionsError, at_least, half_open, nonneg, param, positive

#: The Navier–Stokes solver's PETSc options; ``InfiltrationOptions.petsc_options`` overrides
#: them key by key.
NS_PETSC_DEFAULTS = {
    "ksp_type": "preonly",
    "pc_type": "lu",
    "pc_factor_mat_solver_type": "mumps",
}

#: ``linear_solver = "auto"`` uses the iterative solver in 3D from this many flow unknowns on
#: (MUMPS below: measured in benchmarks/bench_vof_krylov.py, BENCHMARKS.md issue 16).
ITERATIVE_MIN_DOFS = 100_000

#: Fields that only the solver reads (not recorded with the job's options; the job records
#: them in ``parameters.solver``).
SOLVER_KNOBS = (
    "inlet_alpha",
    "smoothing",
    "curvature_smoothing",
    "curvature",
    "curvature_fit_radius",
    "curvature_fit_smoothing",
    "quadrature_degree",
    "advect_alpha",
    "linear_solver",
)

_PAPER_SOURCE = "paper 002"
_AIR = "dry air, 20 C, 1 atm"


def _finite(v) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)


def _angle(v):
    return None if 0 < v < 180 else "must be in (0, 180) degrees"


def _positive_or_omitted(v):
    return None if v > 0 else "must be positive (or omitted)"


def _positive_int(v):
    return None if v >= 1 else "must be a positive integer"


def _step_control(v):
    return None if v in ("courant", "scheduled") else "must be 'courant' or 'scheduled'"


def _schedule(v):
    ok = all(
        isinstance(e, list | tuple)
        and len(e) == 2
        and all(_finite(x) for x in e)
        and e[0] >= 0
        and e[1] > 0
        for e in v
    )
    return None if ok else "must be a list of [t >= 0, dt > 0] pairs (s)"


def _gravity(v):
    if _finite(v):
        return None
    if isinstance(v, list | tuple) and v and all(_finite(x) for x in v):
        return None
    return "must be a finite number (along -y in 2D, -z in 3D) or a vector of numbers"


def _unit_interval(v):
    return None if 0 <= v <= 1 else "must be in [0, 1]"


@dataclass
class InfiltrationOptions:
    """Everything an infiltration run takes (SI units); see the field definitions for the
    unit, the check and the source of each value, and :func:`electrofem.params.describe`."""

    TABLE = "infiltration"

    # --- fluids and boundary conditions --------------------------------------------------
    inlet_speed_m_s: float = param(
        1e-4,
        unit="m/s",
        check=positive,
        doc="electrolyte velocity at the inlet (the top face)",
        source="paper 002 (1e-4 m/s velocity inlet)",
    )
    rho_electrolyte_kg_m3: float = param(
        1200.0,
        unit="kg/m3",
        check=positive,
        doc="electrolyte density",
        source="paper 002 (1.2 g/cm3)",
    )
    mu_electrolyte_Pa_s: float = param(
        3.1e-3,
        unit="Pa s",
        check=positive,
        doc="electrolyte dynamic viscosity",
        source="paper 002 (3.1 cP)",
    )
    rho_air_kg_m3: float = param(
        1.204, unit="kg/m3", check=positive, doc="air density", source=_AIR
    )
    mu_air_Pa_s: float = param(
        1.81e-5, unit="Pa s", check=positive, doc="air dynamic viscosity", source=_AIR
    )
    surface_tension_N_m: float = param(
        0.035,
        unit="N/m",
        check=nonneg,
        doc="electrolyte/air surface tension (0: none)",
        source="assumed (not in the project references; LiPF6/carbonate electrolytes are "
        "commonly reported at about 0.03-0.045 N/m; measurements of LiPF6 and LiTFSI "
        "alkyl-carbonate electrolytes: Ind. Eng. Chem. Res. 51 (2012) 5240-5245, "
        "doi:10.1021/ie203066x, not checked here)",
    )
    contact_angle_deg: float = param(
        30.0,
        unit="deg",
        check=_angle,
        flag="--contact-angle",
        doc="static contact angle on the walls (particles), through the electrolyte "
        "(< 90: wetting)",
        source="assumed (not in the project references; carbonate electrolytes on NMC cathode "
        "coatings: roughly 10-50 degrees; same measurement source to check)",
    )
    gravity_m_s2: float | tuple = param(
        0.0,
        unit="m/s2",
        check=_gravity,
        doc="gravity: a number is its size along the thickness, from the inlet to the outlet "
        "(-y in 2D, -z in 3D); a vector is the body acceleration itself (2 components in 2D, "
        "3 in 3D; a zero vector of 2 serves 3D too)",
        source="neglected (Bond number ~1e-5 at the pore scale)",
    )
    # --- run length and stopping ---------------------------------------------------------
    t_end_s: float | None = param(
        None,
        unit="s",
        check=_positive_or_omitted,
        flag="--t-end",
        doc="simulated end time (None: fill_factor x the time the inflow takes to fill the "
        "pore volume)",
    )
    fill_factor: float = param(1.5, check=positive, doc="see t_end_s")
    stop_at_breakthrough: bool = param(False, doc="stop once the breakthrough time is reached")
    max_steps: int = param(
        1_000_000,
        check=_positive_int,
        flag="--max-steps",
        doc="stop (stop_reason max_steps) after this many steps in all (restarts included)",
    )
    max_wall_s: float = param(
        0.0,
        unit="s",
        check=nonneg,
        doc="stop (stop_reason max_wall) after this many wall seconds of stepping; 0: no limit",
    )
    initial_film_um: float = param(
        0.0, unit="um", check=nonneg, doc="electrolyte film below the inlet at t = 0 (0: none)"
    )
    # --- time step -----------------------------------------------------------------------
    courant_max: float = param(
        0.5,
        check=half_open(0, 1),
        doc="target cell Courant number of the adaptive step (alpha is sub-cycled if a step "
        "still exceeds Co = 1)",
    )
    courant_blowup: float = param(
        50.0, check=positive, doc="a Courant number above this is a divergence (exception)"
    )
    capillary_factor: float = param(
        20.0,
        check=nonneg,
        flag="--capillary-factor",
        doc="dt <= capillary_factor x the explicit capillary bound dt_sigma (Brackbill); 1 is "
        "the classical bound, larger values rely on the semi-implicit surface tension; 0: no "
        "capillary bound",
    )
    dt_max_s: float = param(1e-4, unit="s", check=positive, doc="largest step")
    dt_min_s: float = param(1e-14, unit="s", check=positive, doc="smallest step")
    contact_line_slip: float = param(
        0.0,
        check=nonneg,
        doc="Navier slip length at the contact line, in cell diameters (0: strongly imposed "
        "no-slip walls; the contact line then moves by numerical slip only and lags, about "
        "half the Lucas-Washburn rate; 0.7 is within 10 % of Lucas-Washburn at 8 cells per "
        "channel width). See electrofem.physics.vof.flow.TwoPhaseFlow.wall_terms",
    )
    step_control: str = param(
        "courant",
        check=_step_control,
        doc="'courant': the adaptive step under the Courant, capillary and dt_max_s bounds; "
        "'scheduled': the flow step is dt_max_s (or the dt_schedule_s value for the current "
        "time), capped only by flow_courant_max, alpha sub-cycled to courant_max (the "
        "capillary-dominated mode of paper 002's own fixed implicit steps)",
    )
    dt_schedule_s: list = param(
        check=_schedule,
        factory=list,
        unit="s",
        doc="[[t0, dt0], [t1, dt1], ...] for 'scheduled': the step is the dt of the last "
        "entry with t_i <= t (dt_max_s before the first); paper 002: [[0, 1e-4], [0.1, 2e-4]]",
    )
    flow_courant_max: float = param(
        10.0,
        check=positive,
        doc="with 'scheduled', the step is cut so that the cell Courant number of the current "
        "flow stays below this; a step whose new flow exceeds twice this (or courant_blowup, "
        "if lower) is rejected and redone",
    )
    compression: float = param(
        1.0, check=nonneg, doc="interface-compression coefficient c_alpha (0: none)"
    )
    semi_implicit_tension: bool = param(True, doc="the semi-implicit (Hysing) surface-tension term")
    # --- job outputs ---------------------------------------------------------------------
    breakthrough_fraction: float = param(
        0.01,
        check=half_open(0, 1),
        doc="the breakthrough threshold as a fraction of the maximum outlet fraction (1)",
    )
    output_interval_s: float | None = param(
        None,
        unit="s",
        check=_positive_or_omitted,
        doc="simulated time between XDMF/PNG outputs (None: t_end / 20)",
    )
    snapshots: bool = param(True, doc="PNG alpha maps at the outputs (2D only)")
    n_slabs: int = param(20, check=_positive_int, doc="slabs of the through-thickness air profile")
    checkpoint_every_steps: int = param(
        200, check=at_least(0), doc="checkpoint interval in steps (0: off)"
    )
    checkpoint_every_s: float = param(
        300.0, unit="s", check=nonneg, doc="checkpoint interval in wall seconds (0: off)"
    )
    petsc_options: dict = param(
        factory=dict,
        doc="overrides of the Navier-Stokes solver's PETSc options (those of linear_solver)",
    )
    # --- solver knobs (SOLVER_KNOBS) -----------------------------------------------------
    inlet_alpha: float = param(
        1.0, check=_unit_interval, doc="alpha of the inflow (1: electrolyte)"
    )
    smoothing: float = param(
        1.0, check=nonneg, doc="Helmholtz filter width of the smoothed alpha, in cell diameters"
    )
    curvature_smoothing: float = param(
        1.0,
        check=nonneg,
        doc="width of the |grad alpha|-weighted filter of the curvature, in cell diameters "
        "(0: off)",
    )
    curvature: str = param(
        "fit",
        choices=("projection", "fit"),
        doc="interface curvature: 'projection' (-div of the projected normal of the smoothed "
        "alpha; carries the contact angle) or 'fit' (circle/sphere fits to the level 1/2 of a "
        "lightly filtered alpha, physics.vof.curvature; the projection is kept within 2-4 "
        "cells of walls, where it carries the contact angle)",
    )
    curvature_fit_radius: float = param(
        6.0, check=positive, doc="radius of the 'fit' curvature's sphere fits, in cell sizes"
    )
    curvature_fit_smoothing: float = param(
        0.3,
        check=positive,
        doc="Helmholtz filter width of the alpha whose level 1/2 the 'fit' curvature fits, "
        "in cell diameters",
    )
    quadrature_degree: int = param(4, check=at_least(1), doc="of the momentum forms")
    advect_alpha: bool = param(
        True, doc="False freezes alpha (single-phase checks; no Courant limit then)"
    )
    linear_solver: str = param(
        "auto",
        choices=("auto", "lu", "iterative"),
        doc="the Navier-Stokes linear solver: lu (MUMPS), iterative (GMRES with a Schur "
        "fieldsplit, GAMG on the velocity; physics/vof/krylov.py) or auto (iterative in 3D "
        "from ITERATIVE_MIN_DOFS flow unknowns on, else lu)",
    )

    def validate(self, names: dict[str, str] | None = None) -> None:
        """Raise :class:`~electrofem.params.OptionsError` (a ValueError) naming the offending
        field (``infiltration.<name>: ...``, or the name in ``names``, e.g. a flag)."""
        params.validate(self, self.TABLE, names)
        names = names or {}

        def bad(name, what):
            label = names.get(name) or f"{self.TABLE}.{name}"
            raise OptionsError(f"{label}: {what}, got {getattr(self, name)!r}")

        if not self.dt_max_s > self.dt_min_s:
            bad("dt_max_s", f"must be > dt_min_s ({self.dt_min_s})")

    # --- views ---------------------------------------------------------------------------
    def record(self) -> dict:
        """The job's options as recorded in ``infiltration.json`` and in a checkpoint (every
        field but the :data:`SOLVER_KNOBS`), as plain JSON types."""
        d = dataclasses.asdict(self)
        return json.loads(json.dumps({k: v for k, v in d.items() if k not in SOLVER_KNOBS}))

    def gravity(self, dim: int) -> tuple[float, ...]:
        """The body acceleration as given: a number ``g`` is ``(0, ..., -g)`` (along the
        thickness), a vector is returned as it is (the solver checks its length)."""
        g = self.gravity_m_s2
        if isinstance(g, list | tuple):
            return tuple(g)
        return (0.0,) * (dim - 1) + (-g,)

    def ns_petsc_options(self, iterative: bool = False) -> dict:
        """:data:`NS_PETSC_DEFAULTS` (MUMPS) or, ``iterative``,
        :data:`~electrofem.physics.vof.krylov.ITERATIVE_PETSC_OPTIONS`, with ``petsc_options``
        on top."""
        from .krylov import ITERATIVE_PETSC_OPTIONS

        base = ITERATIVE_PETSC_OPTIONS if iterative else NS_PETSC_DEFAULTS
        return {**base, **self.petsc_options}

    def schedule(self) -> tuple[tuple[float, float], ...]:
        """``dt_schedule_s`` as float pairs."""
        return tuple(tuple(float(v) for v in e) for e in self.dt_schedule_s)


@dataclass
class FluidParams:
    """Deprecated: the two fluids are fields of :class:`InfiltrationOptions` now
    (``rho_electrolyte_kg_m3``, ..., ``contact_angle_deg``). :meth:`to_options` converts;
    :class:`~electrofem.physics.vof.VOFSolver` accepts one in place of the options."""

    rho_liquid: float = 1200.0
    rho_gas: float = 1.204
    mu_liquid: float = 3.1e-3
    mu_gas: float = 1.81e-5
    sigma: float = 0.035
    gravity: tuple[float, ...] = (0.0, 0.0)
    contact_angle: float = 90.0

    def __post_init__(self):
        warnings.warn(
            "FluidParams is deprecated: use the fluid fields of InfiltrationOptions",
            DeprecationWarning,
            stacklevel=3,
        )

    def to_options(self, base: InfiltrationOptions | None = None) -> InfiltrationOptions:
        """``base`` (default: the solver's former defaults, ``capillary_factor`` 1 and
        ``dt_max_s`` 1e-3 s) with these fluids."""
        base = base or InfiltrationOptions(capillary_factor=1.0, dt_max_s=1e-3)
        return dataclasses.replace(
            base,
            rho_electrolyte_kg_m3=self.rho_liquid,
            rho_air_kg_m3=self.rho_gas,
            mu_electrolyte_Pa_s=self.mu_liquid,
            mu_air_Pa_s=self.mu_gas,
            surface_tension_N_m=self.sigma,
            gravity_m_s2=tuple(self.gravity),
            contact_angle_deg=self.contact_angle,
        )


def option_names() -> set[str]:
    """The keys of the ``[infiltration]`` table."""
    return {f.name for f in dataclasses.fields(InfiltrationOptions)}


#: Where each physical default comes from (from the field definitions).
PARAMETER_SOURCES = {
    row["name"]: row["source"] for row in params.describe(InfiltrationOptions) if row["source"]
}
