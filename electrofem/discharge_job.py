"""The ``discharge`` job: galvanostatic discharge (and charge) of a resolved half cell at
C-rates, with rate capability, concentration-polarization metrics, fields and checkpoints.

For each C-rate the half cell of :mod:`electrofem.physics.electrochem` (Li metal | electrolyte
| NMC particles | Al) starts from rest (uniform ``c0``, ``x0``) and runs the protocol
*discharge* (constant current to ``v_min_V``) → optional *rest* (zero current for ``rest_s``)
→ optional *charge* (constant current to ``v_max_V``) → optional *cv* (CC-CV charge: the
voltage held at ``v_max_V`` until the current falls below ``cv_cutoff_c_rate``, C/20 by
default). Files written into ``outdir``:

==============================  ===============================================================
``discharge.json``              parameters, version, active mass, theoretical capacity, per-rate
                                results (capacity, stop reason, steps, Newton iterations,
                                polarization at the end), the rate-capability table. Rewritten
                                after every phase and at every checkpoint.
``discharge_<rate>C.csv``       time series of every accepted step (all phases of that rate)
``rate_capability.csv``         delivered discharge capacity per C-rate
``discharge_curves.png``        voltage vs capacity of every rate (and vs time)
``concentration_map.png``       electrolyte c and particle x at the end of the fastest discharge
``fields_<rate>C_electrolyte``  XDMF time series: ``c`` (mol/m³), ``phi`` (V)[, ``phi_cb``]
``fields_<rate>C_active``       XDMF time series: ``x`` (c_s/c_s,max), ``c_s`` (mol/m³),
                                ``phi_s`` (V), ``j_interface`` (A/m², see below)
``checkpoint/``                 restart state (see below)
==============================  ===============================================================

**Drive.** 1C is ``specific_capacity_1C_mAh_g`` (210 mA g⁻¹, paper 002) of active mass; the
active mass is the ACTIVE phase volume of the mesh × its density (4.75 g/cm³ default, or the
config's ``[density] active``). The current per box cross-section is
``i_app = C · 0.210 A/g · m_active / A_cross`` (A/m²). In 2D every extensive quantity is per
metre of depth: the section is extruded, the mass is g/m, the current A/m and the cross-section
is the box width × 1 m; capacities in mAh/g do not depend on the depth.

**Cut-offs and the end of discharge.** The run stops at ``v_min_V`` (2.7 V) on discharge and
``v_max_V`` (4.3 V) on charge, or when a particle node's stoichiometry leaves
``[x_stop_min, x_stop_max]`` (Chen 2020's NMC811 OCP stays above 3.49 V up to ``x = 1``: the
2.7 V cut-off is only reached through the kinetic polarization of saturating particles, where
the exchange current vanishes; the stoichiometry event ends such discharges first).
:func:`theoretical_capacity` gives the Li the material can take between ``x0`` and the
stoichiometry at which the OCP reaches the cut-off (``x = 1`` for the default OCP).

**Separator.** Not modelled separately: the electrolyte band that the mesh has above the
particles (if any) is the separator (free electrolyte, no tortuosity); the Li metal is the top
face of the mesh.

**Isolated particles** (touching neither the collector nor a connected particle, e.g. 2D
disks with gap contacts) need no regularisation: their potential is fixed by a zero net
Butler--Volmer current, so they take no net Li and lower the delivered capacity. A 2D section
cannot have both a connected solid and open pores (overlap contacts close the pores into
pockets: the electrolyte stops percolating). The option ``cbd_conductivity_S_m > 0`` adds a
homogenised carbon-binder electronic network in the pores (:class:`CellParams`) that connects
every particle surface to the collector: use it with gap contacts in 2D.

**Interface current** (``j_interface`` in ``fields_<rate>C_active.xdmf``): the
Butler--Volmer current density ``j`` (A/m², anodic positive, so negative on discharge) of the
particle|electrolyte interface, as a P1 field of the active submesh obtained by a lumped L²
projection onto the particle surface nodes (:meth:`HalfCell.interface_current_field`; the
node values times their surface weights sum exactly to ``∫ j dS``). It is 0 at nodes off the
interface (particle interiors). In ParaView open the ``_active`` file, colour by
``j_interface``; the particle outlines then show where the reaction runs (``Extract
Edges``/``Feature Edges`` in 2D, ``Extract Surface`` in 3D, restrict the view to them).

**Checkpoints** (``checkpoint/``): every ``checkpoint_every_steps`` accepted steps or
``checkpoint_every_s`` seconds of wall time, and at the end of each phase. The field dofs are
gathered to rank 0 with their coordinates (``state_<seq>.npz``) next to ``state.json`` (time,
charge, next dt, the rows and records so far, completed rates), so a run restarts on any number
of ranks: each dof is matched by coordinates (the mesh must be the same). ``state.json`` is
written last and atomically, so a kill while writing keeps the previous checkpoint.

MPI-collective; rank 0 writes the small files.
"""

from __future__ import annotations

import csv
import json
import logging
import math
import time
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path

import numpy as np
from mpi4py import MPI

from . import __version__, tags
from .checkpoint import json_default, read_checkpoint, write_checkpoint
from .physics.electrochem import (
    CellParams,
    DischargeOptions,
    ElectrochemError,
    HalfCell,
    StepRecord,
)
from .physics.materials import FARADAY

log = logging.getLogger("electrofem")

#: 1C of paper 002 (mA per g of active material).
ONE_C_MA_G = 210.0
CHECKPOINT_DIR = "checkpoint"
#: With a CV hold, the CC charge's last step is shortened until it ends within this of v_max.
CV_LANDING_TOL_V = 1e-3


@dataclass
class DischargeJobOptions:
    """What the discharge job runs (the ``[discharge]`` config table).

    Attributes:
        c_rates: discharge C-rates, run in this order, each from the initial rest state.
        v_min_V, v_max_V: discharge / charge cut-off voltages.
        specific_capacity_1C_mAh_g: the current of 1C per gram of active material.
        active_density_g_cm3: density of the ACTIVE phase (None: the config's ``[density]`` or
            4.75 g/cm³).
        rest_s: rest (zero current) after the discharge; 0: none.
        charge: charge (constant current) after the discharge (and rest).
        charge_c_rate: C-rate of the charge (None: the discharge rate).
        cv_hold: CC-CV charge: after the constant-current charge reaches ``v_max_V``, hold
            the voltage there (phase ``"cv"``) until the current falls below
            ``cv_cutoff_c_rate`` (C/20 by default) or ``cv_max_s`` has passed.
        cv_cutoff_c_rate: end of the CV hold, as a C-rate of the current.
        cv_max_s: longest CV hold (s).
        x_stop_max, x_stop_min: stoichiometry events (see the module docstring).
        c_stop_min_mol_m3: electrolyte depletion event.
        dt_max_fraction: largest step as a fraction of ``3600/C`` s.
        dt_initial_fraction: first step as a fraction of ``3600/C`` s.
        dt_min_s: smallest step before the run fails.
        max_steps_per_phase: hard limit on accepted steps per phase.
        slab_fraction: the top / bottom slabs of the polarization metrics (fraction of the
            electrode thickness = top of the highest particle).
        depletion_threshold: ``c < depletion_threshold · c0`` counts as depleted.
        checkpoint_every_steps, checkpoint_every_s: checkpoint interval (steps / wall s);
            0 disables that trigger.
        fields_every_steps: XDMF output every N steps (0: only at the end of each phase).
        cbd_conductivity_S_m, cbd_contact_resistance_ohm_m2: the optional carbon-binder
            electronic network in the pores (:class:`CellParams`; 0: none). Needed in 2D when
            the particles do not touch (gap contacts keep the pores open).
        petsc_options: overrides of the Newton/linear solver options.
    """

    c_rates: tuple = (0.1, 0.5, 1.0)
    v_min_V: float = 2.7
    v_max_V: float = 4.3
    specific_capacity_1C_mAh_g: float = ONE_C_MA_G
    active_density_g_cm3: float | None = None
    rest_s: float = 0.0
    charge: bool = False
    charge_c_rate: float | None = None
    cv_hold: bool = False
    cv_cutoff_c_rate: float = 0.05
    cv_max_s: float = 10800.0
    x_stop_max: float = 0.995
    x_stop_min: float = 0.005
    c_stop_min_mol_m3: float = 1.0
    dt_max_fraction: float = 0.01
    dt_initial_fraction: float = 2e-4
    dt_min_s: float = 1e-4
    max_steps_per_phase: int = 20000
    slab_fraction: float = 0.2
    depletion_threshold: float = 0.1
    checkpoint_every_steps: int = 50
    checkpoint_every_s: float = 120.0
    fields_every_steps: int = 0
    cbd_conductivity_S_m: float = 0.0
    cbd_contact_resistance_ohm_m2: float = 1e-5
    petsc_options: dict = field(default_factory=dict)

    def __post_init__(self):
        if isinstance(self.c_rates, int | float):
            self.c_rates = (self.c_rates,)
        self.c_rates = tuple(self.c_rates)

    def validate(self) -> None:
        p = "discharge"
        if not self.c_rates:
            raise ValueError(f"{p}.c_rates: must not be empty")
        for c in self.c_rates:
            if isinstance(c, bool) or not isinstance(c, int | float):
                raise ValueError(f"{p}.c_rates: must be numbers, got {c!r}")
            if not (c > 0 and math.isfinite(c)):
                raise ValueError(f"{p}.c_rates: must be positive, got {c}")
        if len(set(self.c_rates)) != len(self.c_rates):
            raise ValueError(f"{p}.c_rates: repeated rate in {list(self.c_rates)}")
        if not 0 < self.v_min_V < self.v_max_V:
            raise ValueError(f"{p}.v_min_V/v_max_V: need 0 < v_min_V < v_max_V")
        positive = ["specific_capacity_1C_mAh_g", "dt_max_fraction", "dt_initial_fraction"]
        positive += ["dt_min_s", "max_steps_per_phase", "c_stop_min_mol_m3"]
        positive += ["cv_cutoff_c_rate", "cv_max_s"]
        if self.active_density_g_cm3 is not None:
            positive.append("active_density_g_cm3")
        if self.charge_c_rate is not None:
            positive.append("charge_c_rate")
        for name in positive:
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int | float) or not v > 0:
                raise ValueError(f"{p}.{name}: must be positive, got {v!r}")
        if not self.cbd_contact_resistance_ohm_m2 > 0:
            raise ValueError(f"{p}.cbd_contact_resistance_ohm_m2: must be positive")
        for name in (
            "rest_s",
            "checkpoint_every_steps",
            "checkpoint_every_s",
            "cbd_conductivity_S_m",
        ):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int | float) or not v >= 0:
                raise ValueError(f"{p}.{name}: must be >= 0, got {v!r}")
        if not isinstance(self.fields_every_steps, int) or self.fields_every_steps < 0:
            raise ValueError(f"{p}.fields_every_steps: must be an integer >= 0")
        if not isinstance(self.charge, bool):
            raise ValueError(f"{p}.charge: must be true or false, got {self.charge!r}")
        if not isinstance(self.cv_hold, bool):
            raise ValueError(f"{p}.cv_hold: must be true or false, got {self.cv_hold!r}")
        if self.cv_hold and not self.charge:
            raise ValueError(f"{p}.cv_hold: needs charge = true (CC-CV charge)")
        if not 0 < self.x_stop_min < self.x_stop_max < 1:
            raise ValueError(f"{p}.x_stop_min/x_stop_max: need 0 < x_stop_min < x_stop_max < 1")
        if not 0 < self.slab_fraction <= 0.5:
            raise ValueError(f"{p}.slab_fraction: must be in (0, 0.5]")
        if not 0 < self.depletion_threshold < 1:
            raise ValueError(f"{p}.depletion_threshold: must be in (0, 1)")
        if not isinstance(self.petsc_options, dict):
            raise ValueError(f"{p}.petsc_options: must be a table")


@dataclass
class PhaseResult:
    """One phase (discharge, rest, charge) of one rate."""

    phase: str
    c_rate: float
    current_density_A_m2: float
    capacity_mAh_g: float
    stop_reason: str
    steps: int
    newton_iterations: int
    time_s: float
    final_voltage_V: float
    x_mean_end: float
    wall_time_s: float
    end_metrics: dict = field(default_factory=dict)


@dataclass
class DischargeReport:
    """What :func:`run_discharge` returns."""

    metrics: dict
    rates: dict[str, dict[str, PhaseResult]]
    rows: dict[str, list[dict]]
    files: dict[str, Path] = field(default_factory=dict)

    def capacity(self, c_rate: float, phase: str = "discharge") -> float:
        return self.rates[rate_label(c_rate)][phase].capacity_mAh_g


def rate_label(c_rate: float) -> str:
    """``0.1`` → ``"0.1"`` (file names ``discharge_0.1C.csv``)."""
    return f"{float(c_rate):g}"


def theoretical_capacity(
    params: CellParams, v_cut: float, density_g_cm3: float, charge=False, x_start=None
):
    """``(x_cut, mAh/g)``: Li the active material takes from ``x_start`` (default ``x0``) to
    the stoichiometry where its OCP reaches ``v_cut`` (discharge: ``x`` grows, the OCP falls;
    charge: ``x`` falls). If the OCP never reaches it in ``[0, 1]``, ``x_cut`` is 1
    (discharge) or 0 (charge). ``Q = |x_cut − x_start| c_s,max F / (3.6 ρ)`` (mAh/g, with ρ in
    g/cm³), independent of the geometry."""
    am = params.active
    x_start = am.x0 if x_start is None else float(x_start)
    x = np.linspace(x_start, 0.0 if charge else 1.0, 20001)
    u = np.asarray(am.ocp_V(x), dtype=float)
    hit = np.flatnonzero(u >= v_cut) if charge else np.flatnonzero(u <= v_cut)
    if hit.size == 0:
        x_cut = float(x[-1])
    else:  # linear interpolation between the bracketing samples, then bisection
        k = int(hit[0])
        a, b = float(x[max(k - 1, 0)]), float(x[k])
        for _ in range(60):
            m = 0.5 * (a + b)
            um = float(am.ocp_V(m))
            if (um >= v_cut) == charge:
                b = m
            else:
                a = m
        x_cut = 0.5 * (a + b)
    q = abs(x_cut - x_start) * am.c_max_mol_m3 * FARADAY / 3.6 / (density_g_cm3 * 1e6)
    return x_cut, q


# --- diagnostics -------------------------------------------------------------------------------


class _Metrics:
    """Concentration-polarization metrics of a :class:`HalfCell` state (collective)."""

    def __init__(self, cell: HalfCell, slab_fraction: float, depletion_threshold: float):
        import ufl
        from dolfinx import fem

        dom = cell.domain
        self.cell = cell
        d = dom.tdim
        ys = dom.sub_s.geometry.x[:, d - 1]
        top = cell.comm.allreduce(float(ys.max(initial=-np.inf)), op=MPI.MAX)
        self.thickness_um = top
        y = ufl.SpatialCoordinate(dom.mesh)[d - 1]
        lo, hi = slab_fraction * top, (1 - slab_fraction) * top
        bot = ufl.conditional(ufl.lt(y, lo), 1.0, 0.0)
        upp = ufl.conditional(ufl.And(ufl.gt(y, hi), ufl.lt(y, top)), 1.0, 0.0)
        ce, _, xs, _, _ = cell.u[:5]
        dep = ufl.conditional(ufl.lt(ce, depletion_threshold), 1.0, 0.0)
        em = dom.entity_maps

        def F(expr, meas):
            return fem.form(expr * meas, entity_maps=em)

        one = fem.Constant(dom.mesh, 1.0)
        self.forms = {
            "c_bottom": (F(ce * bot, dom.dx_e), F(one * bot, dom.dx_e)),
            "c_top": (F(ce * upp, dom.dx_e), F(one * upp, dom.dx_e)),
            "x_bottom": (F(xs * bot, dom.dx_s), F(one * bot, dom.dx_s)),
            "x_top": (F(xs * upp, dom.dx_s), F(one * upp, dom.dx_s)),
            "depleted_fraction": (F(dep, dom.dx_e), F(one, dom.dx_e)),
        }
        self.denoms = {k: cell._scalar(v[1]) for k, v in self.forms.items()}

    def __call__(self) -> dict:
        cell = self.cell
        c0 = cell.params.electrolyte.c0_mol_m3
        out = {}
        for k, (num, _) in self.forms.items():
            den = self.denoms[k]
            out[k] = cell._scalar(num) / den if den > 0 else float("nan")
        for k in ("c_bottom", "c_top"):
            out[k] *= c0
        ca = cell.u[0].x.array
        cmax = cell.comm.allreduce(float(np.max(ca, initial=-np.inf)), op=MPI.MAX) * c0
        cmin = cell.comm.allreduce(float(np.min(ca, initial=np.inf)), op=MPI.MIN) * c0
        res = {
            "c_bottom_mol_m3": out["c_bottom"],
            "c_top_mol_m3": out["c_top"],
            "c_drop_mol_m3": out["c_top"] - out["c_bottom"],
            "c_min_mol_m3": cmin,
            "c_max_mol_m3": cmax,
            "c_range_mol_m3": cmax - cmin,
            "depleted_fraction": out["depleted_fraction"],
            "x_bottom": out["x_bottom"],
            "x_top": out["x_top"],
            "x_spread": out["x_top"] - out["x_bottom"],
        }
        return res


# --- checkpoints -------------------------------------------------------------------------------


def _owned(f):
    imap = f.function_space.dofmap.index_map
    bs = f.function_space.dofmap.index_map_bs
    return imap.size_local * bs


def _dof_coords(f) -> np.ndarray:
    return f.function_space.tabulate_dof_coordinates()


def _write_checkpoint(cell: HalfCell, ckdir: Path, seq: int, state: dict, comm) -> None:
    """Gather every field (owned dofs, with coordinates) to rank 0 and write it."""
    arrays = {}
    for name, f in cell.fields.items():
        if name == "V":
            arrays["V"] = np.array([cell.voltage()])
            continue
        n = _owned(f)
        vals = comm.gather(f.x.array[:n].copy(), root=0)
        xyz = comm.gather(_dof_coords(f)[:n].copy(), root=0)
        if comm.rank == 0:
            arrays[name] = np.concatenate(vals)
            arrays[name + "_xyz"] = np.concatenate(xyz)
    write_checkpoint(ckdir, seq, state, arrays, comm)


def _load_fields(cell: HalfCell, arrays: dict) -> None:
    from scipy.spatial import cKDTree

    for name, f in cell.fields.items():
        if name == "V":
            f.x.array[:] = float(arrays["V"][0])
            continue
        xyz = _dof_coords(f)
        tree = cKDTree(arrays[name + "_xyz"])
        dist, idx = tree.query(xyz)
        ok = bool(np.all(dist < 1e-6))
        if not cell.comm.allreduce(ok, op=MPI.LAND):
            raise ValueError(
                f"--restart: the checkpoint's {name} dofs do not match this mesh "
                f"(largest distance {cell.comm.allreduce(float(dist.max(initial=0)), MPI.MAX):.3g})"
            )
        f.x.array[:] = arrays[name][idx]
        f.x.scatter_forward()
    cell.ce_old.x.array[:] = cell.u[0].x.array
    cell.xs_old.x.array[:] = cell.u[2].x.array


# --- fields output -----------------------------------------------------------------------------


class _FieldWriter:
    """XDMF time series of one rate: electrolyte (c, phi) and active (x, c_s, phi_s)."""

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
        self.started = append and all(p.is_file() for p in self.paths.values())

    def write(self, t: float) -> None:
        from dolfinx.io import XDMFFile

        cell = self.cell
        ce, pe, xs, ps, _ = cell.u[:5]
        self.c.x.array[:] = ce.x.array * cell.params.electrolyte.c0_mol_m3
        self.phi.x.array[:] = pe.x.array
        self.x.x.array[:] = xs.x.array
        self.cs.x.array[:] = xs.x.array * cell.params.active.c_max_mol_m3
        self.phis.x.array[:] = ps.x.array
        cell.interface_current_field(self.j)
        groups = {
            "electrolyte": (
                cell.domain.sub_e,
                (self.c, self.phi) + ((self.pcb,) if self.pcb else ()),
            ),
            "active": (cell.domain.sub_s, (self.x, self.cs, self.phis, self.j)),
        }
        for key, (msh, funcs) in groups.items():
            mode = "a" if self.started else "w"
            with XDMFFile(msh.comm, str(self.paths[key]), mode) as f:
                if not self.started:
                    f.write_mesh(msh)
                for u in funcs:
                    f.write_function(u, t)
        self.started = True


# --- the job -----------------------------------------------------------------------------------


def run_discharge(
    source,
    outdir: str | Path,
    options: DischargeJobOptions | None = None,
    params: CellParams | None = None,
    comm: MPI.Comm = MPI.COMM_WORLD,
    progress: bool = True,
    plots: bool = True,
    restart: bool = False,
    step_callback=None,
) -> DischargeReport:
    """Run the discharge job on ``source`` (ElectrodeMesh, ``.xdmf``/``.msh`` path, config).

    Args:
        source: the structure; a config (``Config`` or ``.toml`` path) is generated first into
            ``outdir`` and its ``[discharge]`` and ``[density]`` tables are used unless
            ``options`` / ``options.active_density_g_cm3`` are given.
        outdir: output directory (created).
        options: :class:`DischargeJobOptions` (default C/10, C/2, 1C).
        params: :class:`CellParams` (materials; default Chen 2020 NMC811, Nyman electrolyte).
        restart: continue from ``outdir/checkpoint`` (the same source and options).
        step_callback: ``callback(row)`` after every accepted step (all ranks).

    Raises:
        ElectrochemError: a failed Newton solve with dt below ``dt_min_s``; everything written
            so far is kept (``discharge.json`` has ``status = "failed"`` and the error).
        ValueError: bad options, or no usable checkpoint with ``restart``.
    """
    from .pipeline import load_source

    outdir = Path(outdir)
    if comm.rank == 0:
        outdir.mkdir(parents=True, exist_ok=True)
    comm.barrier()
    t0 = time.perf_counter()
    ckdir = outdir / CHECKPOINT_DIR
    if options is not None:
        options.validate()
    if restart:  # fail early, before generating the mesh
        state, arrays = read_checkpoint(ckdir, comm)
    emesh, cfg, mesh_path = load_source(source, outdir, comm, progress, reuse_mesh=restart)
    if options is None:
        options = getattr(cfg, "discharge", None) or DischargeJobOptions()
    options = DischargeJobOptions(**asdict(options))
    density = options.active_density_g_cm3
    if density is None:
        from .microstructure.measure import DEFAULT_DENSITY_G_CM3

        dens = (cfg.density if cfg is not None else None) or {}
        density = dens.get(tags.ACTIVE, DEFAULT_DENSITY_G_CM3[tags.ACTIVE])
        options.active_density_g_cm3 = float(density)
    options.validate()
    params = params or CellParams()
    if options.cbd_conductivity_S_m > 0:
        params = replace(
            params,
            cbd_conductivity_S_m=options.cbd_conductivity_S_m,
            cbd_contact_resistance_ohm_m2=options.cbd_contact_resistance_ohm_m2,
        )
    if restart and state["options"] != json.loads(json.dumps(asdict(options))):
        raise ValueError(
            "--restart: the options differ from the checkpoint's "
            f"(checkpoint c_rates {state['options']['c_rates']}, now {list(options.c_rates)})"
        )

    first = options.c_rates[0]
    cell = HalfCell(
        emesh,
        params,
        DischargeOptions(
            current_density_A_m2=0.0,
            dt_initial_s=options.dt_min_s,
            dt_min_s=options.dt_min_s,
            dt_max_s=max(options.dt_min_s, 3600.0 / first * options.dt_max_fraction),
            v_min_V=options.v_min_V,
            v_max_V=options.v_max_V,
            petsc_options=dict(options.petsc_options),
        ),
    )
    try:
        dim = emesh.dim
        mass_g = cell.solid_volume * density * 1e6  # g (3D) or g per metre of depth (2D)
        if not mass_g > 0:
            raise ValueError("the mesh has no active material")
        box = [float(v) for v in emesh.metadata.get("box_um") or ()]
        diag = _Metrics(cell, options.slab_fraction, options.depletion_threshold)
        x_cut, q_th = theoretical_capacity(params, options.v_min_V, density)
        x_cut_ch, q_th_ch = theoretical_capacity(
            params, options.v_max_V, density, charge=True, x_start=x_cut
        )
        per = "per metre of depth (2D section extruded)" if dim == 2 else "(3D)"
        metrics = {
            "version": __version__,
            "status": "running",
            "parameters": {
                "options": asdict(options),
                "cell": _cell_params_dict(params),
                "mesh": str(mesh_path) if mesh_path else None,
                "mesh_metadata": {
                    k: emesh.metadata.get(k)
                    for k in ("seed", "porosity", "mesh_options", "version")
                },
            },
            "dim": dim,
            "box_um": box,
            "electrode_thickness_um": diag.thickness_um,
            "units": f"currents A, masses g, charges C {per}; current densities A/m² of the box "
            "cross-section; capacities mAh per g of active material",
            "active_volume_m3": cell.solid_volume,
            "active_mass_g": mass_g,
            "cross_section_m2": cell.cross_section,
            "loading_mg_cm2": mass_g / cell.cross_section * 0.1,
            "collector_contact_fraction": cell.contact_area / cell.cross_section,
            "one_C_current": options.specific_capacity_1C_mAh_g * 1e-3 * mass_g,
            "one_C_current_density_A_m2": options.specific_capacity_1C_mAh_g
            * 1e-3
            * mass_g
            / cell.cross_section,
            "theoretical": {
                "discharge_x_cut": x_cut,
                "discharge_capacity_mAh_g": q_th,
                "charge_x_cut": x_cut_ch,
                "charge_capacity_mAh_g": q_th_ch,
                "note": "discharge: Li between x0 and the stoichiometry where the OCP reaches "
                "v_min_V (x = 1 if it never does); charge: from that stoichiometry to where the "
                "OCP reaches v_max_V",
            },
            "separator": "not modelled separately: the electrolyte band above the particles (if "
            "any) is free electrolyte; the Li metal is the top face",
            "rates": {},
            "rate_capability": [],
            "mpi_ranks": comm.size,
        }
        json_path = outdir / "discharge.json"

        def write_json():
            if comm.rank == 0:
                tmp = json_path.with_suffix(".json.tmp")
                tmp.write_text(json.dumps(metrics, indent=2, default=json_default))
                tmp.replace(json_path)

        rates: dict[str, dict[str, PhaseResult]] = {}
        all_rows: dict[str, list[dict]] = {}
        files = {"discharge": json_path}
        # resume position
        start_rate, start_phase, resume = 0, 0, None
        if restart:
            metrics["rates"] = state["metrics_rates"]
            metrics["restarts"] = state.get("restarts", 0) + 1
            for lab, ph in state["rates"].items():
                rates[lab] = {k: PhaseResult(**v) for k, v in ph.items()}
            all_rows = state["all_rows"]
            start_rate, start_phase = state["rate_index"], state["phase_index"]
            resume = state
            log.info(
                "restarting from checkpoint %d: rate %s, %s, t = %.1f s",
                state["seq"],
                state["rate_label"],
                state["phase"],
                state["time_s"],
            )
        if restart:
            _load_fields(cell, arrays)
            cell.time, cell.charge = state["time_s"], state["charge_C"]
            cell.records = [StepRecord(**r) for r in state["records"]]
            if state["phase_start"] is None and start_phase == 0:
                resume = None  # the checkpoint is the end of a rate: the next one starts afresh
        write_json()
        ck = {"seq": (state["seq"] + 1) if restart else 0, "wall": time.perf_counter(), "steps": 0}

        def _checkpoint(st, ri, pi, label, between=False):
            ck["steps"] += 0 if between else 1
            every_n, every_s = options.checkpoint_every_steps, options.checkpoint_every_s
            due = (
                between
                or (every_n > 0 and ck["steps"] >= every_n)
                or (every_s > 0 and time.perf_counter() - ck["wall"] >= every_s)
            )
            if not comm.bcast(due, root=0):  # wall clocks differ: rank 0 decides
                return
            full = {
                **st,
                "version": __version__,
                "rate_index": ri,
                "phase_index": pi,
                "rate_label": label,
                "options": json.loads(json.dumps(asdict(options))),
                "rates": {k: {p: asdict(v) for p, v in ph.items()} for k, ph in rates.items()},
                "metrics_rates": metrics["rates"],
                "all_rows": all_rows,
                "restarts": metrics.get("restarts", 0),
            }
            _write_checkpoint(cell, ckdir, ck["seq"], full, comm)
            ck["seq"] += 1
            ck["wall"], ck["steps"] = time.perf_counter(), 0
            metrics["checkpoint"] = {"seq": ck["seq"] - 1, "time_s": cell.time, "rate": label}
            write_json()

        def protocol(c_rate):
            ph = [("discharge", c_rate)]
            if options.rest_s > 0:
                ph.append(("rest", 0.0))
            if options.charge:
                ph.append(("charge", options.charge_c_rate or c_rate))
            if options.charge and options.cv_hold:
                ph.append(("cv", options.charge_c_rate or c_rate))
            return ph

        try:
            for ri in range(start_rate, len(options.c_rates)):
                c_rate = options.c_rates[ri]
                label = rate_label(c_rate)
                rows = all_rows.setdefault(label, [])
                rates.setdefault(label, {})
                writer = _FieldWriter(cell, outdir, label, append=resume is not None)
                phases = protocol(c_rate)
                if resume is None:
                    _reset(cell)
                    rows.clear()
                    writer.write(0.0)
                for pi in range(start_phase if resume is not None else 0, len(phases)):
                    kind, rate = phases[pi]
                    pres = _run_phase(
                        cell=cell,
                        kind=kind,
                        c_rate=c_rate,
                        rate=rate,
                        options=options,
                        mass_g=mass_g,
                        diag=diag,
                        rows=rows,
                        writer=writer,
                        resume=resume,
                        checkpoint=lambda st, ri=ri, pi=pi, label=label: _checkpoint(
                            st, ri, pi, label
                        ),
                        progress=progress,
                        step_callback=step_callback,
                        label=label,
                    )
                    resume = None
                    rates[label][kind] = pres
                    metrics["rates"][label] = {k: asdict(v) for k, v in rates[label].items()}
                    metrics["rate_capability"] = _rate_table(rates, q_th)
                    _write_csv(outdir / f"discharge_{label}C.csv", rows, comm)
                    files[f"csv_{label}"] = outdir / f"discharge_{label}C.csv"
                    write_json()
                    log.info(
                        "%sC %s: %.2f mAh/g (%s) in %d steps, %.1f s",
                        label,
                        kind,
                        pres.capacity_mAh_g,
                        pres.stop_reason,
                        pres.steps,
                        pres.wall_time_s,
                    )
                    nxt = (ri, pi + 1) if pi + 1 < len(phases) else (ri + 1, 0)
                    _checkpoint(_phase_state(cell, None, None, 0.0), *nxt, label, between=True)
                start_phase = 0
                files[f"fields_{label}"] = writer.paths["electrolyte"]
        except ElectrochemError as err:
            metrics["status"] = "failed"
            metrics["error"] = str(err)
            for label, rows in all_rows.items():
                _write_csv(outdir / f"discharge_{label}C.csv", rows, comm)
            write_json()
            raise

        # rate-capability table and plots
        table = _rate_table(rates, q_th)
        metrics["rate_capability"] = table  # also after a restart that had nothing left to run
        files["rate_capability"] = outdir / "rate_capability.csv"
        _write_csv(files["rate_capability"], table, comm)
        if plots:
            from .plot import plot_discharge_curves, plot_field_map

            if comm.rank == 0:
                files["curves_png"] = plot_discharge_curves(
                    all_rows, outdir / "discharge_curves.png"
                )
            # the current state is the end of the last phase of the last rate; the map is of the
            # fastest rate's discharge only if that is the final state
            last = options.c_rates[-1]
            if last == max(options.c_rates) and not options.charge and options.rest_s == 0:
                map_png = plot_field_map(
                    cell, outdir / "concentration_map.png", title=f"end of {rate_label(last)}C"
                )
                if map_png is not None:  # 2D only
                    files["map_png"] = map_png
        metrics["files"] = {k: v.name for k, v in files.items()}
        metrics["seconds"] = {"total": time.perf_counter() - t0}
        metrics["status"] = "done"
        write_json()
        return DischargeReport(metrics, rates, all_rows, files)
    finally:
        cell.close()  # PETSc objects freed on every rank at the same point


def _reset(cell: HalfCell) -> None:
    cell._set_initial_state()
    cell.time = 0.0
    cell.charge = 0.0
    cell.records = []


def _phase_state(cell, kind, phase_start, dt) -> dict:
    return {
        "phase": kind,
        "time_s": cell.time,
        "charge_C": cell.charge,
        "phase_start": phase_start,
        "dt_next_s": dt,
        "records": [r.as_dict() for r in cell.records],
    }


def _run_phase(
    *,
    cell: HalfCell,
    kind: str,
    c_rate: float,
    rate: float,
    options: DischargeJobOptions,
    mass_g: float,
    diag: _Metrics,
    rows: list,
    writer: _FieldWriter,
    resume: dict | None,
    checkpoint,
    progress: bool,
    step_callback,
    label: str,
) -> PhaseResult:
    """Run one phase with adaptive dt (as :meth:`HalfCell.run`), logging and checkpointing."""
    sign = {"discharge": 1.0, "rest": 0.0, "charge": -1.0, "cv": 0.0}[kind]
    one_c = options.specific_capacity_1C_mAh_g * 1e-3 * mass_g  # A (A/m in 2D)
    i_app = sign * rate * one_c / cell.cross_section
    cell.options.current_density_A_m2 = i_app
    if kind == "cv":  # constant voltage at the charge cut-off; the current follows
        cell.set_potentiostatic(options.v_max_V)
    else:
        cell.set_galvanostatic()
    ref = 3600.0 / (rate if rate > 0 else c_rate)
    dt_max = max(options.dt_min_s, ref * options.dt_max_fraction)
    if kind == "rest":
        t_len = options.rest_s
        dt_max = max(options.dt_min_s, min(dt_max, options.rest_s / 10))
    elif kind == "cv":
        t_len = options.cv_max_s
    else:
        t_len = 3.0 * ref  # safety end: 3x the nominal duration
    if resume is not None and resume.get("phase_start") is not None:
        start = resume["phase_start"]
        dt = resume["dt_next_s"]
    else:
        start = {"time_s": cell.time, "charge_C": cell.charge, "steps": len(cell.records)}
        dt = max(options.dt_min_s, ref * options.dt_initial_fraction)
    o = cell.options
    wall0 = time.perf_counter()
    wall_before = float(start.get("wall_s", 0.0))  # wall time of this phase before a restart
    stop = "t_end"
    n_steps = len(cell.records) - start["steps"]
    t_end = start["time_s"] + t_len

    def capacity():
        return abs(cell.charge - start["charge_C"]) / 3.6 / mass_g

    while cell.time < t_end * (1 - 1e-12) - 1e-12:
        if n_steps >= options.max_steps_per_phase:
            stop = "max_steps"
            break
        dt_try = min(dt, dt_max, t_end - cell.time)
        land = kind == "charge" and options.cv_hold  # the CV hold starts at v_max exactly
        if land:
            snap = (cell._save(), cell.time, cell.charge, len(cell.records), cell.voltage())
        ok, its, why = cell.step(dt_try)
        if ok and land and cell.records[-1].voltage_V > options.v_max_V + CV_LANDING_TOL_V:
            # overshoot of the charge cut-off: undo the step, retry with the interpolated dt
            v_new, v_old = cell.records[-1].voltage_V, snap[4]
            frac = (options.v_max_V - v_old) / (v_new - v_old) if v_new > v_old else 0.5
            dt_new = dt_try * min(max(frac, 0.05), 0.95)
            if dt_new >= options.dt_min_s:
                saved, cell.time, cell.charge, n_rec, _ = snap
                cell._restore(saved)
                cell.ce_old.x.array[:] = saved[0]
                cell.xs_old.x.array[:] = saved[2]
                del cell.records[n_rec:]
                dt = dt_new
                continue
        if not ok:
            dt = dt_try * o.cut
            if dt < options.dt_min_s:
                raise ElectrochemError(
                    f"{label}C {kind}: time step fell below dt_min_s={options.dt_min_s:g} s at "
                    f"t={cell.time:g} s (last failure: {why} after {its} Newton iterations; "
                    f"{cell._diagnosis()}); {len(rows)} steps of this rate kept in the CSV",
                    cell.records,
                )
            continue
        n_steps += 1
        rec = cell.records[-1]
        dt = dt_try * o.growth if its <= o.easy_iterations else dt_try
        i_row = rec.applied_current / cell.cross_section if kind == "cv" else i_app
        row = _row(cell, rec, kind, c_rate, i_row, capacity(), start, diag)
        rows.append(row)
        if progress:
            log.info(
                "%sC %s step %d: t %.1f s, V %.4f V, Q %.2f mAh/g, Newton %d, dt %.3g s",
                label,
                kind,
                n_steps,
                cell.time,
                rec.voltage_V,
                row["capacity_mAh_g"],
                its,
                dt_try,
            )
        if step_callback is not None:
            step_callback(row)
        if options.fields_every_steps and n_steps % options.fields_every_steps == 0:
            writer.write(cell.time)
        if kind == "discharge":
            if rec.voltage_V <= options.v_min_V:
                stop = "v_min"
                break
            if rec.x_max >= options.x_stop_max:
                stop = "x_max"
                break
        if kind == "charge":
            if rec.voltage_V >= options.v_max_V:
                stop = "v_max"
                break
            if rec.x_min <= options.x_stop_min:
                stop = "x_min"
                break
        if kind == "cv":
            if abs(rec.applied_current) <= options.cv_cutoff_c_rate * one_c:
                stop = "i_min"
                break
            if rec.x_min <= options.x_stop_min:
                stop = "x_min"
                break
        if kind != "rest" and rec.c_min_mol_m3 <= options.c_stop_min_mol_m3:
            stop = "c_min"
            break
        start["wall_s"] = wall_before + time.perf_counter() - wall0
        checkpoint(_phase_state(cell, kind, start, dt))
    writer.write(cell.time)
    cell.set_galvanostatic()
    last = rows[-1] if rows else {}
    phase_rows = [r for r in rows if r["phase"] == kind]
    return PhaseResult(
        phase=kind,
        c_rate=rate,
        current_density_A_m2=i_app,
        capacity_mAh_g=capacity(),
        stop_reason=stop,
        steps=n_steps,
        newton_iterations=sum(r["newton_iterations"] for r in phase_rows),
        time_s=cell.time - start["time_s"],
        final_voltage_V=cell.voltage(),
        x_mean_end=last.get("x_mean", float("nan")),
        wall_time_s=wall_before + time.perf_counter() - wall0,  # summed over restarts
        end_metrics={k: last.get(k) for k in _METRIC_KEYS},
    )


_METRIC_KEYS = (
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


def _row(cell, rec: StepRecord, kind, c_rate, i_app, cap, start, diag) -> dict:
    am = cell.params.active
    m = diag()
    return {
        "c_rate": c_rate,
        "phase": kind,
        "step": rec.step,
        "time_s": rec.time_s,
        "phase_time_s": rec.time_s - start["time_s"],
        "dt_s": rec.dt_s,
        "voltage_V": rec.voltage_V,
        "current_density_A_m2": i_app,
        "capacity_mAh_g": cap,
        "newton_iterations": rec.newton_iterations,
        "x_mean": rec.x_mean,
        "ocp_of_x_mean_V": float(am.ocp_V(rec.x_mean)),
        "x_min": rec.x_min,
        "x_max": rec.x_max,
        **m,
        "li_balance_error": rec.interface_current - rec.applied_current,
    }


def _rate_table(rates, q_th) -> list[dict]:
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


def _write_csv(path: Path, rows: list[dict], comm) -> None:
    if comm.rank != 0 or not rows:
        return
    keys = list(rows[0].keys())
    tmp = path.with_suffix(".csv.tmp")
    with open(tmp, "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=keys)
        w.writeheader()
        for r in rows:
            w.writerow({k: (repr(v) if isinstance(v, float) else v) for k, v in r.items()})
    tmp.replace(path)


def _cell_params_dict(p: CellParams) -> dict:
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
        "cbd_conductivity_S_m": p.cbd_conductivity_S_m,
        "cbd_contact_resistance_ohm_m2": p.cbd_contact_resistance_ohm_m2,
    }
