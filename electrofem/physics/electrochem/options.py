"""The parameters of the half cell: materials (:class:`CellParams`) and the one options object
of the discharge (:class:`DischargeOptions`, the ``[discharge]`` TOML table, the command-line
flags and the Python API). No dolfinx here: :mod:`electrofem.config` imports it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from ...params import (
    OptionsError,
    at_least,
    half_open,
    nonneg,
    open_interval,
    param,
    positive,
)
from ...params import validate as validate_params
from ..materials import (
    FARADAY,
    GAS_CONSTANT,
    ActiveMaterialParams,
    ElectrolyteParams,
    LiMetalParams,
)

#: 1C of paper 002 (mA per g of active material).
ONE_C_MA_G = 210.0

#: ``linear_solver = "auto"`` uses the iterative solver in 3D from this many unknowns on
#: (MUMPS LU below). The measured break-even is 14-26 k unknowns (BENCHMARKS.md, issue 16,
#: third part); the switch sits higher so that small runs keep the direct solver.
ITERATIVE_MIN_DOFS = 100_000

#: Default Newton + linear solver options (SNES prefix of the problem).
DEFAULT_PETSC_OPTIONS = {
    "snes_type": "newtonls",
    "snes_linesearch_type": "basic",
    "snes_rtol": 1e-10,
    "snes_atol": 1e-11,
    "snes_stol": 0.0,
    "snes_max_it": 20,
    "ksp_type": "preonly",
    "pc_type": "lu",
    "pc_factor_mat_solver_type": "mumps",
}


@dataclass
class CellParams:
    """Materials and cell-level constants of the half cell.

    Attributes:
        electrolyte: :class:`~electrofem.physics.materials.ElectrolyteParams`.
        active: :class:`~electrofem.physics.materials.ActiveMaterialParams` (NMC811).
        li_metal: :class:`~electrofem.physics.materials.LiMetalParams`.
        temperature_K: isothermal temperature.
        contact_resistance_ohm_m2: particle|collector contact resistance ``R_cc``; the default
            1e-6 Ω m² (0.01 Ω cm²) is close to an ideal contact.

    The optional carbon-binder network is a discharge option
    (:attr:`DischargeOptions.cbd_conductivity_S_m`).
    """

    electrolyte: ElectrolyteParams = field(default_factory=ElectrolyteParams)
    active: ActiveMaterialParams = field(default_factory=ActiveMaterialParams)
    li_metal: LiMetalParams = field(default_factory=LiMetalParams)
    temperature_K: float = 298.15
    contact_resistance_ohm_m2: float = 1e-6

    def validate(self) -> None:
        self.electrolyte.validate()
        self.active.validate()
        if not (self.temperature_K > 0 and math.isfinite(self.temperature_K)):
            raise ValueError(f"temperature_K: must be positive, got {self.temperature_K}")
        if not self.contact_resistance_ohm_m2 > 0:
            raise ValueError("contact_resistance_ohm_m2: must be positive")

    @property
    def thermal_voltage(self) -> float:
        """``RT/F`` (V)."""
        return GAS_CONSTANT * self.temperature_K / FARADAY


def _c_rates(v):
    if not v:
        return "must not be empty"
    for c in v:
        if isinstance(c, bool) or not isinstance(c, int | float):
            return f"must be numbers, got {c!r}"
        if not (c > 0 and math.isfinite(c)):
            return f"must be positive, got {c}"
    if len(set(v)) != len(v):
        return f"repeated rate in {list(v)}, got {list(v)}"
    return None


def _fraction(v):
    return None if 0 < v < 1 else "must be in (0, 1)"


@dataclass
class DischargeOptions:
    """What a discharge runs and how it steps: the ``[discharge]`` table of a config, the flags
    of ``electrofem discharge`` and the options of
    :class:`~electrofem.physics.electrochem.HalfCell`.

    The protocol per C-rate (the job, :func:`electrofem.jobs.discharge.run_discharge`):
    *discharge* (constant current to ``v_min_V``) → optional *rest* (``rest_s``) → optional
    *charge* (constant current to ``v_max_V``) → optional *cv* (hold ``v_max_V`` until the
    current falls below ``cv_cutoff_c_rate``). ``HalfCell.run()`` without a protocol runs one
    constant-current phase of ``current_density_A_m2`` for ``t_end_s`` (the direct Python API).
    Units are in the names (SI; C-rates in 1/h of the 1C current).
    """

    TABLE = "discharge"

    c_rates: tuple = param(
        (0.1, 0.5, 1.0),
        unit="C",
        doc="discharge C-rates, each from the initial rest state",
        check=_c_rates,
    )
    v_min_V: float = param(2.7, unit="V", doc="discharge cut-off voltage", check=positive)
    v_max_V: float = param(4.3, unit="V", doc="charge cut-off voltage", check=positive)
    specific_capacity_1C_mAh_g: float = param(
        ONE_C_MA_G,
        unit="mA/g",
        doc="the current of 1C per gram of active material",
        source="paper 002 (1C = 210 mA/g)",
        check=positive,
    )
    active_density_g_cm3: float | None = param(
        None,
        unit="g/cm3",
        doc="density of the ACTIVE phase (None: the config's [density] or 4.75)",
        check=positive,
    )
    rest_s: float = param(
        0.0, unit="s", doc="rest (zero current) after each discharge", check=nonneg, flag="--rest"
    )
    charge: bool = param(
        False, doc="constant-current charge after the discharge (and rest)", flag="--charge"
    )
    charge_c_rate: float | None = param(
        None, unit="C", doc="C-rate of the charge (None: the discharge rate)", check=positive
    )
    cv_hold: bool = param(False, doc="CC-CV: hold v_max_V after the CC charge")
    cv_cutoff_c_rate: float = param(
        0.05, unit="C", doc="end of the CV hold (current as a C-rate)", check=positive
    )
    cv_max_s: float = param(10800.0, unit="s", doc="longest CV hold", check=positive)
    x_stop_max: float = param(
        0.995, doc="stop when a particle node's stoichiometry exceeds this", check=_fraction
    )
    x_stop_min: float = param(
        0.005, doc="stop when a particle node's stoichiometry falls below this", check=_fraction
    )
    c_stop_min_mol_m3: float = param(
        1.0, unit="mol/m3", doc="stop on electrolyte depletion below this", check=positive
    )
    dt_max_fraction: float | None = param(
        None,
        doc="largest step as a fraction of 3600/C s (None: 0.01 with backward Euler, 0.1 with "
        "bdf2, whose error control sets its steps: timestep.DT_MAX_FRACTION)",
        check=positive,
        flag="--dt-max-fraction",
    )
    dt_initial_fraction: float = param(
        2e-4, doc="first step as a fraction of 3600/C s", check=positive
    )
    dt_min_s: float = param(
        1e-4, unit="s", doc="smallest step before the run fails", check=positive
    )
    max_steps_per_phase: int = param(
        20000, doc="hard limit on accepted steps per phase", check=at_least(1), flag="--max-steps"
    )
    slab_fraction: float = param(
        0.2,
        doc="top/bottom slabs of the polarization metrics (fraction of the thickness)",
        check=half_open(0, 0.5),
    )
    depletion_threshold: float = param(
        0.1, doc="c < depletion_threshold * c0 counts as depleted", check=_fraction
    )
    checkpoint_every_steps: int = param(
        50, doc="checkpoint every N accepted steps (0: never)", check=at_least(0)
    )
    checkpoint_every_s: float = param(
        120.0, unit="s", doc="checkpoint every S wall seconds (0: never)", check=nonneg
    )
    fields_every_steps: int = param(
        0, doc="XDMF fields every N steps (0: at the end of each phase)", check=at_least(0)
    )
    cbd_conductivity_S_m: float = param(
        0.0,
        unit="S/m",
        doc="homogenised carbon-binder electronic network in the pores (0: none)",
        source="a modelling choice for 2D sections with gap contacts (README)",
        check=nonneg,
    )
    cbd_contact_resistance_ohm_m2: float = param(
        1e-5, unit="ohm m2", doc="particle|carbon-binder contact resistance", check=positive
    )
    wetting: str | None = param(
        None,
        doc="a partly wetted electrode: an infiltration output folder (or a wetting .npz), "
        "optionally :TIME in s (default its last state); None: fully wetted",
        flag="--wetting",
    )
    wetting_threshold: float = param(
        0.5, doc="pore cells with electrolyte fraction below this hold air", check=_fraction
    )
    wetting_pockets: str = param(
        "inactive",
        doc="wetted pockets with no electrolyte path to the separator: inactive (no current) "
        "or active (they take part)",
        choices=("inactive", "active"),
    )
    # --- direct runs (HalfCell.run() without a protocol) and the step control of every run
    current_density_A_m2: float = param(
        10.0,
        unit="A/m2",
        doc="direct runs: applied current per box cross-section (+ discharge, - charge)",
    )
    t_end_s: float = param(3600.0, unit="s", doc="direct runs: end time", check=positive)
    dt_initial_s: float = param(1.0, unit="s", doc="direct runs: first step", check=positive)
    dt_max_s: float = param(60.0, unit="s", doc="direct runs: largest step", check=positive)
    growth: float = param(1.5, doc="dt factor after an easy step", check=positive)
    cut: float = param(0.5, doc="dt factor after a failed step", check=open_interval(0, 1))
    easy_iterations: int = param(
        4, doc="an easy step takes at most this many Newton its", check=at_least(0)
    )
    time_scheme: str = param(
        "auto",
        doc="euler: backward Euler, the step grown by `growth` after easy Newton solves; bdf2: "
        "variable-step BDF2 whose step follows a local-error estimate (time_tolerance), and "
        "whose runs land on the stop events (the step that crosses x_max, v_min, ... is redone "
        "to end within a hundredth of a step of the crossing); auto: bdf2 in 3D from "
        "ITERATIVE_MIN_DOFS = 1e5 unknowns (where linear_solver auto turns iterative), else "
        "euler (electrochem/timestep.py)",
        choices=("auto", "euler", "bdf2"),
        flag="--time-scheme",
    )
    time_tolerance: float = param(
        1e-2,
        doc="bdf2: local error allowed per step in x and c/c0 (dimensionless) and in the "
        "voltage (V); Newton's snes_rtol is 1e-4 times it, in [1e-10, 1e-6] "
        "(timestep.newton_rtol; petsc_options overrides it)",
        check=positive,
    )
    quadrature_degree: int = param(4, doc="of every integral", check=at_least(1))
    linear_solver: str = param(
        "auto",
        doc="the Newton systems' linear solver: lu (MUMPS), iterative (GMRES with a bordered "
        "block preconditioner, smoothed-aggregation GAMG; electrochem/krylov.py) or auto "
        "(iterative in 3D from ITERATIVE_MIN_DOFS = 1e5 unknowns on, else lu)",
        choices=("auto", "lu", "iterative"),
        flag="--linear-solver",
    )
    jacobian_lag: int = param(
        1,
        doc="Newton reassembles the Jacobian (and sets its preconditioner up again) every this "
        "many iterations (the rule of PETSc's snes_lag_jacobian, applied by "
        "electrochem.newton.LaggedJacobian; 1: every iteration). A step that fails "
        "with a lag is retried once with 1. Same answers within the Newton tolerance",
        check=at_least(1),
    )
    pc_rebuild_growth: float = param(
        1.5,
        doc="the iterative solver keeps its preconditioner across Newton matrices and steps "
        "until a linear solve takes more than this factor times the iterations of the first "
        "solve after its last set-up (0: set it up for every matrix). GMRES solves each "
        "system with the current matrix, so answers agree within ksp_rtol. A step that "
        "fails with a kept preconditioner is retried once with a fresh one",
        check=nonneg,
    )
    petsc_options: dict = param(doc="overrides of the Newton/linear solver options", factory=dict)

    def __post_init__(self):
        if isinstance(self.c_rates, int | float) and not isinstance(self.c_rates, bool):
            self.c_rates = (self.c_rates,)
        if isinstance(self.c_rates, list):
            self.c_rates = tuple(self.c_rates)

    def validate(self, names: dict[str, str] | None = None) -> None:
        """Raise :class:`~electrofem.params.OptionsError` naming the field (``names``: the
        names the user typed, e.g. command-line flags)."""
        validate_params(self, self.TABLE, names)
        p = self.TABLE
        if not self.v_min_V < self.v_max_V:
            raise OptionsError(f"{p}.v_min_V/v_max_V: need 0 < v_min_V < v_max_V")
        if self.cv_hold and not self.charge:
            raise OptionsError(f"{p}.cv_hold: needs charge = true (CC-CV charge)")
        if not self.x_stop_min < self.x_stop_max:
            raise OptionsError(f"{p}.x_stop_min/x_stop_max: need 0 < x_stop_min < x_stop_max < 1")
        if not self.growth >= 1:
            raise OptionsError(f"{p}.growth: must be >= 1, got {self.growth}")
        if not self.dt_initial_s <= self.dt_max_s:
            raise OptionsError(f"{p}.dt_initial_s: must be <= dt_max_s ({self.dt_max_s})")

    @property
    def cbd(self) -> bool:
        """Whether the carbon-binder network is on."""
        return self.cbd_conductivity_S_m > 0
