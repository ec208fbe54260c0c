"""What a half-cell run produces: one record per accepted step, the result of a run, and the
error that stops one."""

from __future__ import annotations

from dataclasses import asdict, dataclass


class ElectrochemError(RuntimeError):
    """The solve failed (divergence, NaN, dt below its minimum, bad input).

    Attributes:
        records: the :class:`StepRecord` list of the steps completed before the failure.
    """

    def __init__(self, message: str, records=None):
        super().__init__(message)
        self.records = list(records or [])


@dataclass
class StepRecord:
    """One accepted time step. Currents are A (3D) or A per metre of depth (2D), positive on
    discharge; Li amounts are mol (3D) or mol/m (2D).

    Attributes:
        step, time_s, dt_s: step number (1-based), time at its end, its length.
        voltage_V: collector potential vs Li metal.
        applied_current: ``I_app`` (potentiostatic: the collector current).
        interface_current: ``−∫ j`` over the particle|electrolyte interface.
        collector_current: ``∫ (φ_s − V)/R_cc`` over the collector contacts.
        li_metal_current: ``∫ j_Li`` over the Li metal face.
        li_electrolyte_mol, li_solid_mol, li_total_mol: Li inventories.
        charge_passed_C: ``∫ I_app dt`` since the start.
        newton_iterations: of the accepted solve.
        x_mean: mean stoichiometry of the particles.
        x_min, x_max: extreme particle stoichiometries (dof values).
        c_min_mol_m3: smallest electrolyte concentration (dof values).
        linear_iterations: Krylov iterations of the accepted solve, summed over its Newton
            steps (the direct solver: one per Newton step).
    """

    step: int
    time_s: float
    dt_s: float
    voltage_V: float
    applied_current: float
    interface_current: float
    collector_current: float
    li_metal_current: float
    li_electrolyte_mol: float
    li_solid_mol: float
    li_total_mol: float
    charge_passed_C: float
    newton_iterations: int
    x_mean: float
    x_min: float
    x_max: float
    c_min_mol_m3: float
    linear_iterations: int = 0

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass
class DischargeResult:
    """Records of a run, why it stopped, and the initial inventories."""

    records: list[StepRecord]
    stop_reason: str
    initial_li_mol: float
    wall_time_s: float
