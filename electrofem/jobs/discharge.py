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
Butler--Volmer current density (A/m², anodic positive) on the particle surface nodes
(:meth:`HalfCell.interface_current_field`), 0 in particle interiors; in ParaView colour the
``_active`` file by it and show the particle outlines.

**Checkpoints** (``checkpoint/``, format in :mod:`electrofem.jobs.output`): every
``checkpoint_every_steps`` steps or ``checkpoint_every_s`` wall seconds and at the end of each
phase; ``state.json`` holds time, charge, next dt, rows, records and completed rates.

MPI-collective; rank 0 writes the small files."""

from __future__ import annotations

import dataclasses
import logging
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from mpi4py import MPI

from .. import __version__, tags
from ..physics.electrochem import (
    CellParams,
    DischargeOptions,
    ElectrochemError,
    HalfCell,
    Observer,
    PolarizationMetrics,
    StepRecord,
    protocol,
    rate_label,
    theoretical_capacity,
)
from .discharge_output import (
    METRIC_KEYS,
    FieldWriter,
    cell_params_dict,
    rate_table,
    step_row,
)
from .output import (
    CHECKPOINT_DIR,
    CheckpointSchedule,
    JobRecord,
    jsonable,
    prepare_outdir,
    read_checkpoint,
    write_checkpoint,
    write_csv,
)
from .source import load_source
from .stop import Interrupted, StopSignal, soft
from .wetting import wetted_region

log = logging.getLogger("electrofem")


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


@dataclass
class _Run:
    """The state of one discharge job run (what its observer needs)."""

    cell: HalfCell
    options: DischargeOptions
    outdir: Path
    mass_g: float
    q_th: float
    diag: PolarizationMetrics
    record: JobRecord
    schedule: CheckpointSchedule
    progress: bool
    step_callback: object
    stop: StopSignal | None = None
    rates: dict = field(default_factory=dict)
    all_rows: dict = field(default_factory=dict)
    files: dict = field(default_factory=dict)


def _phase_state(cell, kind, phase_start, dt) -> dict:
    return {
        "phase": kind,
        "time_s": cell.time,
        "charge_C": cell.charge,
        "phase_start": phase_start,
        "dt_next_s": dt,
        "records": [r.as_dict() for r in cell.records],
    }


class _RateObserver(Observer):
    """Writes the rows, fields, checkpoints and results of one C-rate's phases."""

    def __init__(self, run: _Run, ri: int, c_rate: float, n_phases: int, writer: FieldWriter):
        self.run, self.ri, self.c_rate, self.n_phases = run, ri, c_rate, n_phases
        self.label = rate_label(c_rate)
        self.rows = run.all_rows[self.label]
        self.writer = writer

    def checkpoint(
        self, state: dict, ri: int, pi: int, between: bool = False, force: bool = False
    ) -> None:
        r = self.run
        if not r.schedule.due(force=between or force, count=not between):
            return
        m = r.record.metrics
        full = {
            **state,
            "version": __version__,
            "rate_index": ri,
            "phase_index": pi,
            "rate_label": self.label,
            "options": jsonable(asdict(r.options)),
            "rates": {k: {p: asdict(v) for p, v in ph.items()} for k, ph in r.rates.items()},
            "metrics_rates": m["rates"],
            "all_rows": r.all_rows,
            "restarts": m.get("restarts", 0),
        }
        seq = r.schedule.seq
        write_checkpoint(r.outdir / CHECKPOINT_DIR, seq, full, r.cell.state_arrays(), r.cell.comm)
        r.schedule.written()
        m["checkpoint"] = {"seq": seq, "time_s": r.cell.time, "rate": self.label}
        r.record.write()

    def on_step(self, cell, phase, info) -> None:
        r, o, rec = self.run, self.run.options, info.record
        i_row = rec.applied_current / cell.cross_section if phase.kind == "cv" else None
        cap = abs(cell.charge - info.start["charge_C"]) / 3.6 / r.mass_g
        row = step_row(cell, rec, phase, self.c_rate, i_row, cap, info.start, r.diag)
        self.rows.append(row)
        if r.progress:
            log.info(
                "%sC %s step %d: t %.1f s, V %.4f V, Q %.2f mAh/g, Newton %d, dt %.3g s",
                self.label,
                phase.kind,
                info.steps,
                cell.time,
                rec.voltage_V,
                row["capacity_mAh_g"],
                info.newton_iterations,
                info.dt_s,
            )
        if r.step_callback is not None:
            r.step_callback(row)
        if o.fields_every_steps and info.steps % o.fields_every_steps == 0:
            self.writer.write(cell.time)
        if info.stop is None:
            state = _phase_state(cell, phase.kind, info.start, info.dt_next_s)
            self.checkpoint(state, self.ri, phase.index)
            if r.stop is not None and (sig := r.stop.requested(cell.comm)):
                self.checkpoint(state, self.ri, phase.index, force=True)
                self.interrupt(cell, phase, sig)

    def interrupt(self, cell, phase, signum: int) -> None:
        """Stop after a checkpoint: raise :class:`Interrupted` with the resume hint."""
        raise Interrupted(
            f"interrupted at step {len(cell.records)} of {phase.label}, t = {cell.time:.6g} s; "
            "the checkpoint is written: resume with --restart",
            signum,
        )

    def on_phase_end(self, cell, phase, outcome) -> None:
        r, kind = self.run, phase.kind
        self.writer.write(cell.time)
        last = self.rows[-1] if self.rows else {}
        phase_rows = [x for x in self.rows if x["phase"] == kind]
        res = PhaseResult(
            phase=kind,
            c_rate=phase.rate,
            current_density_A_m2=phase.current_density_A_m2,
            capacity_mAh_g=abs(cell.charge - outcome.start["charge_C"]) / 3.6 / r.mass_g,
            stop_reason=outcome.stop_reason,
            steps=outcome.steps,
            newton_iterations=sum(x["newton_iterations"] for x in phase_rows),
            time_s=cell.time - outcome.start["time_s"],
            final_voltage_V=cell.voltage(),
            x_mean_end=last.get("x_mean", float("nan")),
            wall_time_s=outcome.wall_s,  # summed over restarts
            end_metrics={k: last.get(k) for k in METRIC_KEYS},
        )
        m = r.record.metrics
        r.rates[self.label][kind] = res
        m["rates"][self.label] = {k: asdict(v) for k, v in r.rates[self.label].items()}
        m["rate_capability"] = rate_table(r.rates, r.q_th)
        csv_path = r.outdir / f"discharge_{self.label}C.csv"
        write_csv(csv_path, self.rows, cell.comm)
        r.files[f"csv_{self.label}"] = csv_path
        r.record.write()
        log.info(
            "%sC %s: %.2f mAh/g (%s) in %d steps, %.1f s",
            self.label,
            kind,
            res.capacity_mAh_g,
            res.stop_reason,
            res.steps,
            res.wall_time_s,
        )
        pi = phase.index
        nxt = (self.ri, pi + 1) if pi + 1 < self.n_phases else (self.ri + 1, 0)
        self.checkpoint(_phase_state(cell, None, None, 0.0), *nxt, between=True)
        if r.stop is not None and (sig := r.stop.requested(cell.comm)):
            self.interrupt(cell, phase, sig)


#: Options a restart may change (how long and how often, not what is computed).
RESTART_MAY_CHANGE = frozenset(
    {"max_steps_per_phase", "checkpoint_every_steps", "checkpoint_every_s", "fields_every_steps"}
)


def _changed_options(saved: dict, now: dict) -> list[str]:
    """The options that differ from the checkpoint's (options added since it was written
    count as equal at their defaults)."""
    defaults = jsonable(asdict(DischargeOptions()))
    keys = sorted(set(saved) | set(now))
    return [k for k in keys if saved.get(k, defaults.get(k)) != now.get(k)]


def run_discharge(
    source,
    outdir: str | Path,
    options: DischargeOptions | None = None,
    params: CellParams | None = None,
    comm: MPI.Comm = MPI.COMM_WORLD,
    progress: bool = True,
    plots: bool = True,
    restart: bool = False,
    step_callback=None,
    stop: StopSignal | None = None,
    wetting=None,
) -> DischargeReport:
    """Run the discharge job on ``source`` (ElectrodeMesh, ``.xdmf``/``.msh`` path, config).

    Args:
        source: the structure; a config (``Config`` or ``.toml`` path) is generated first into
            ``outdir`` and its ``[discharge]`` and ``[density]`` tables are used unless
            ``options`` / ``options.active_density_g_cm3`` are given.
        outdir: output directory (created).
        options: :class:`~electrofem.physics.electrochem.DischargeOptions` (default C/10, C/2,
            1C).
        params: :class:`CellParams` (materials; default Chen 2020 NMC811, Nyman electrolyte).
        restart: continue from ``outdir/checkpoint`` (the same source and options).
        step_callback: ``callback(row)`` after every accepted step (all ranks).
        wetting: a partly wetted electrode: a
            :class:`~electrofem.physics.wetting.WettingState` (or ``"DIR[:TIME]"``); default
            ``options.wetting`` (None: fully wetted). See :func:`wetted_region`.
        stop: a :class:`~electrofem.jobs.stop.StopSignal` (the command line's): a SIGINT or
            SIGTERM then ends the run after the current step with a checkpoint,
            ``status = "interrupted"`` and :class:`~electrofem.jobs.stop.Interrupted`.

    Raises:
        ElectrochemError: a failed Newton solve with dt below ``dt_min_s``; everything written
            so far is kept (``discharge.json`` has ``status = "failed"`` and the error).
        ValueError: bad options, or no usable checkpoint with ``restart``.
    """
    outdir = prepare_outdir(outdir, comm)
    t0 = time.perf_counter()
    if options is not None:
        options.validate()
    if restart:  # fail early, before generating the mesh
        state, arrays = read_checkpoint(outdir / CHECKPOINT_DIR, comm)
    emesh, cfg, mesh_path = load_source(source, outdir, comm, progress, reuse_mesh=restart)
    if options is None:
        options = getattr(cfg, "discharge", None) or DischargeOptions()
    options = dataclasses.replace(options)
    density = options.active_density_g_cm3
    if density is None:
        from ..microstructure.measure import DEFAULT_DENSITY_G_CM3

        dens = (cfg.density if cfg is not None else None) or {}
        density = dens.get(tags.ACTIVE, DEFAULT_DENSITY_G_CM3[tags.ACTIVE])
        options.active_density_g_cm3 = float(density)
    options.validate()
    params = params or CellParams()
    if restart:
        changed = _changed_options(state["options"], jsonable(asdict(options)))
        fixed = [k for k in changed if k not in RESTART_MAY_CHANGE]
        if fixed:
            old = {k: state["options"].get(k) for k in fixed}
            raise ValueError(
                f"--restart: options differ from the checkpoint's: {', '.join(fixed)} "
                f"(checkpoint: {old}); only {', '.join(sorted(RESTART_MAY_CHANGE))} may change"
            )
        if changed:
            log.warning("restart: %s changed from the checkpoint's", ", ".join(changed))
    region = wetted_region(emesh, options, wetting) if wetting or options.wetting else None
    if region is not None and not region.has_path:
        return _no_electrolyte_path(emesh, options, params, density, outdir, region, t0)
    mask = region.mask if region is not None else None
    cell = HalfCell(emesh, params, options, electrolyte_cells=mask)
    try:
        mass_g = cell.solid_volume * density * 1e6  # g (3D) or g per metre of depth (2D)
        if not mass_g > 0:
            raise ValueError("the mesh has no active material")
        diag = PolarizationMetrics(cell, options.slab_fraction, options.depletion_threshold)
        metrics = _initial_metrics(cell, emesh, options, params, density, mesh_path, diag)
        if region is not None:
            metrics["wetting"] = region.metrics
        json_path = outdir / "discharge.json"
        run = _Run(
            cell=cell,
            options=options,
            outdir=outdir,
            mass_g=mass_g,
            q_th=metrics["theoretical"]["discharge_capacity_mAh_g"],
            diag=diag,
            record=JobRecord(json_path, metrics, comm, barrier=False),
            schedule=CheckpointSchedule(
                comm, options.checkpoint_every_steps, options.checkpoint_every_s
            ),
            progress=progress,
            step_callback=step_callback,
            stop=stop,
            files={"discharge": json_path},
        )
        start_rate, start_phase, resume = 0, 0, None
        if restart:
            start_rate, start_phase, resume = _resume(run, state, arrays)
        run.record.write()
        try:
            for ri in range(start_rate, len(options.c_rates)):
                c_rate = options.c_rates[ri]
                label = rate_label(c_rate)
                rows = run.all_rows.setdefault(label, [])
                run.rates.setdefault(label, {})
                writer = FieldWriter(cell, outdir, label, append=resume is not None)
                one_c = options.specific_capacity_1C_mAh_g * 1e-3 * mass_g  # A (A/m in 2D)
                phases = protocol(options, c_rate, one_c, cell.cross_section, cell.scheme.kind)
                if resume is None:
                    cell.reset()
                    rows.clear()
                    writer.write(0.0)
                first = start_phase if resume is not None else 0
                observer = _RateObserver(run, ri, c_rate, len(phases), writer)
                with soft(stop):
                    cell.run(phases[first:], observer, resume)
                resume, start_phase = None, 0
                run.files[f"fields_{label}"] = writer.paths["electrolyte"]
        except Interrupted as err:
            for lab, rows in run.all_rows.items():
                write_csv(outdir / f"discharge_{lab}C.csv", rows, comm)
            run.record.fail(err, status="interrupted")
            raise
        except ElectrochemError as err:
            kept = len(run.all_rows.get(rate_label(options.c_rates[ri]), []))
            msg = f"{err}; {kept} steps of this rate kept in the CSV"
            for lab, rows in run.all_rows.items():
                write_csv(outdir / f"discharge_{lab}C.csv", rows, comm)
            run.record.fail(msg)
            raise ElectrochemError(msg, err.records) from None
        _finish(run, plots)
        metrics["seconds"] = {"total": time.perf_counter() - t0}
        run.record.finish()
        return DischargeReport(metrics, run.rates, run.all_rows, run.files)
    finally:
        cell.close()  # PETSc objects freed on every rank at the same point


def _no_electrolyte_path(emesh, options, params, density, outdir, region, t0):
    """No wetted electrolyte connects the separator to a particle: no current can flow. Every
    rate delivers 0 mAh/g with the stop reason ``no_electrolyte_path`` (no solve)."""
    comm = emesh.comm
    vol_um = emesh.phase_volumes().get(tags.ACTIVE, 0.0)
    dim = emesh.dim
    mass_g = vol_um * 1e-6**dim * density * 1e6
    rates, rows = {}, {}
    for c in options.c_rates:
        lab = rate_label(c)
        rates[lab] = {
            "discharge": PhaseResult(
                "discharge",
                c,
                0.0,
                0.0,
                "no_electrolyte_path",
                0,
                0,
                0.0,
                float("nan"),
                float("nan"),
                0.0,
            )
        }
        rows[lab] = []
    metrics = {
        "version": __version__,
        "status": "done",
        "parameters": {"options": asdict(options), "cell": cell_params_dict(params, options)},
        "dim": dim,
        "active_mass_g": mass_g,
        "wetting": region.metrics,
        "rates": {k: {p: asdict(v) for p, v in ph.items()} for k, ph in rates.items()},
        "theoretical": {
            "discharge_capacity_mAh_g": theoretical_capacity(params, options.v_min_V, density)[1]
        },
        "rate_capability": rate_table(rates, 1.0),
        "note": "the wetted electrolyte does not connect the separator to any particle surface: "
        "no current can flow (nothing was solved)",
        "seconds": {"total": time.perf_counter() - t0},
        "mpi_ranks": comm.size,
    }
    files = {
        "discharge": outdir / "discharge.json",
        "rate_capability": outdir / "rate_capability.csv",
    }
    write_csv(files["rate_capability"], metrics["rate_capability"], comm)
    JobRecord(files["discharge"], metrics, comm).write()
    log.warning("no electrolyte path: every rate delivers 0 mAh/g")
    return DischargeReport(metrics, rates, rows, files)


def _initial_metrics(cell, emesh, options, params, density, mesh_path, diag) -> dict:
    dim = emesh.dim
    mass_g = cell.solid_volume * density * 1e6
    box = [float(v) for v in emesh.metadata.get("box_um") or ()]
    x_cut, q_th = theoretical_capacity(params, options.v_min_V, density)
    x_cut_ch, q_th_ch = theoretical_capacity(
        params, options.v_max_V, density, charge=True, x_start=x_cut
    )
    one_c = options.specific_capacity_1C_mAh_g * 1e-3 * mass_g
    per = "per metre of depth (2D section extruded)" if dim == 2 else "(3D)"
    return {
        "version": __version__,
        "status": "running",
        "parameters": {
            "options": asdict(options),
            "cell": cell_params_dict(params, options),
            "mesh": str(mesh_path) if mesh_path else None,
            "mesh_metadata": {
                k: emesh.metadata.get(k) for k in ("seed", "porosity", "mesh_options", "version")
            },
        },
        "dim": dim,
        "box_um": box,
        "solver": {"linear_solver": cell.linear_solver, "time_scheme": cell.scheme.kind},
        "electrode_thickness_um": diag.thickness_um,
        "units": f"currents A, masses g, charges C {per}; current densities A/m² of the box "
        "cross-section; capacities mAh per g of active material",
        "active_volume_m3": cell.solid_volume,
        "active_mass_g": mass_g,
        "cross_section_m2": cell.cross_section,
        "loading_mg_cm2": mass_g / cell.cross_section * 0.1,
        "collector_contact_fraction": cell.contact_area / cell.cross_section,
        "one_C_current": one_c,
        "one_C_current_density_A_m2": one_c / cell.cross_section,
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
        "mpi_ranks": cell.comm.size,
    }


def _resume(run: _Run, state: dict, arrays: dict):
    """Restore a checkpoint into ``run``; return ``(rate index, phase index, resume state)``."""
    m, cell = run.record.metrics, run.cell
    m["rates"] = state["metrics_rates"]
    m["restarts"] = state.get("restarts", 0) + 1
    for lab, ph in state["rates"].items():
        run.rates[lab] = {k: PhaseResult(**v) for k, v in ph.items()}
    run.all_rows = state["all_rows"]
    run.schedule.seq = state["seq"] + 1
    log.info(
        "restarting from checkpoint %d: rate %s, %s, t = %.1f s",
        state["seq"],
        state["rate_label"],
        state["phase"],
        state["time_s"],
    )
    cell.load_state_arrays(arrays)
    cell.time, cell.charge = state["time_s"], state["charge_C"]
    cell.records = [StepRecord(**r) for r in state["records"]]
    start_rate, start_phase = state["rate_index"], state["phase_index"]
    if state["phase_start"] is None and start_phase == 0:
        return start_rate, 0, None  # the end of a rate: the next one starts afresh
    return start_rate, start_phase, state


def _finish(run: _Run, plots: bool) -> None:
    """The rate-capability table, its CSV and the figures."""
    cell, comm, options, m = run.cell, run.cell.comm, run.options, run.record.metrics
    table = rate_table(run.rates, run.q_th)
    m["rate_capability"] = table  # also after a restart that had nothing left to run
    run.files["rate_capability"] = run.outdir / "rate_capability.csv"
    write_csv(run.files["rate_capability"], table, comm)
    if plots:
        from ..plot import plot_discharge_curves, plot_field_map

        if comm.rank == 0:
            run.files["curves_png"] = plot_discharge_curves(
                run.all_rows, run.outdir / "discharge_curves.png"
            )
        # the current state is the end of the last phase of the last rate; the map is of the
        # fastest rate's discharge only if that is the final state
        last = options.c_rates[-1]
        if last == max(options.c_rates) and not options.charge and options.rest_s == 0:
            map_png = plot_field_map(
                cell, run.outdir / "concentration_map.png", title=f"end of {rate_label(last)}C"
            )
            if map_png is not None:  # 2D only
                run.files["map_png"] = map_png
    m["files"] = {k: v.name for k, v in run.files.items()}
