"""The files of the discharge job that are not its metrics: the XDMF fields of a rate, the CSV
row of a step, the rate-capability table and the materials as JSON."""

from __future__ import annotations

from dataclasses import fields
from pathlib import Path

from ..physics.electrochem import CellParams, DischargeOptions, HalfCell, StepRecord
from ..physics.materials import FARADAY
from .output import XDMFSeries


class FieldWriter:
    """XDMF time series of one rate: electrolyte (c, phi[, phi_cb]) and active (x, c_s,
    phi_s, j_interface)."""

    def __init__(self, cell: HalfCell, outdir: Path, label: str, append: bool):
        from dolfinx import fem

        self.cell = cell
        ce, pe, xs, ps, _ = cell.u[:5]
        self.c = fem.Function(ce.function_space, name="c")
        self.phi = fem.Function(pe.function_space, name="phi")
        self.x = fem.Function(xs.function_space, name="x")
        self.cs = fem.Function(xs.function_space, name="c_s")
        self.phis = fem.Function(ps.function_space, name="phi_s")
        self.j = fem.Function(xs.function_space, name="j_interface")
        self.pcb = cell.fields.get("phi_cb")
        self.paths = {
            "electrolyte": outdir / f"fields_{label}C_electrolyte.xdmf",
            "active": outdir / f"fields_{label}C_active.xdmf",
        }
        both = append and all(p.is_file() for p in self.paths.values())
        self.series = {
            "electrolyte": XDMFSeries(self.paths["electrolyte"], cell.domain.sub_e, both),
            "active": XDMFSeries(self.paths["active"], cell.domain.sub_s, both),
        }

    def write(self, t: float) -> None:
        cell = self.cell
        ce, pe, xs, ps, _ = cell.u[:5]
        self.c.x.array[:] = ce.x.array * cell.params.electrolyte.c0_mol_m3
        self.phi.x.array[:] = pe.x.array
        self.x.x.array[:] = xs.x.array
        self.cs.x.array[:] = xs.x.array * cell.params.active.c_max_mol_m3
        self.phis.x.array[:] = ps.x.array
        cell.interface_current_field(self.j)
        self.series["electrolyte"].write(t, (self.c, self.phi) + ((self.pcb,) if self.pcb else ()))
        self.series["active"].write(t, (self.x, self.cs, self.phis, self.j))


METRIC_KEYS = (
    "c_bottom_mol_m3",
    "c_top_mol_m3",
    "c_drop_mol_m3",
    "c_min_mol_m3",
    "c_max_mol_m3",
    "depleted_fraction",
    "x_bottom",
    "x_top",
    "x_spread",
)


def step_row(cell, rec: StepRecord, phase, c_rate, i_row, cap, start, diag) -> dict:
    am = cell.params.active
    m = diag()
    return {
        "c_rate": c_rate,
        "phase": phase.kind,
        "step": rec.step,
        "time_s": rec.time_s,
        "phase_time_s": rec.time_s - start["time_s"],
        "dt_s": rec.dt_s,
        "voltage_V": rec.voltage_V,
        "current_density_A_m2": phase.current_density_A_m2 if i_row is None else i_row,
        "capacity_mAh_g": cap,
        "newton_iterations": rec.newton_iterations,
        "linear_iterations": rec.linear_iterations,
        "x_mean": rec.x_mean,
        "ocp_of_x_mean_V": float(am.ocp_V(rec.x_mean)),
        "x_min": rec.x_min,
        "x_max": rec.x_max,
        **m,
        "li_balance_error": rec.interface_current - rec.applied_current,
        # Li gained since the phase began against the charge passed over F (mol; NaN after a
        # restart from a checkpoint that predates the column)
        "li_inventory_error_mol": rec.li_total_mol
        - start.get("li_mol", float("nan"))
        - (rec.charge_passed_C - start["charge_C"]) / FARADAY,
    }


def rate_table(rates, q_th) -> list[dict]:
    out = []
    for label, ph in rates.items():
        d = ph.get("discharge")
        if d is None:
            continue
        out.append(
            {
                "c_rate": float(label),
                "capacity_mAh_g": d.capacity_mAh_g,
                "utilisation": d.capacity_mAh_g / q_th,
                "stop_reason": d.stop_reason,
                "final_voltage_V": d.final_voltage_V,
                "steps": d.steps,
                "newton_iterations": d.newton_iterations,
                "wall_time_s": d.wall_time_s,
            }
        )
    return out


def cell_params_dict(p: CellParams, options: DischargeOptions) -> dict:
    def clean(obj):
        out = {}
        for f in fields(obj):
            v = getattr(obj, f.name)
            out[f.name] = getattr(v, "__name__", None) or v if callable(v) else v
        return out

    return {
        "electrolyte": clean(p.electrolyte),
        "active": clean(p.active),
        "li_metal": clean(p.li_metal),
        "temperature_K": p.temperature_K,
        "contact_resistance_ohm_m2": p.contact_resistance_ohm_m2,
        "cbd_conductivity_S_m": options.cbd_conductivity_S_m,
        "cbd_contact_resistance_ohm_m2": options.cbd_contact_resistance_ohm_m2,
    }
