"""The ``infiltrate`` job: electrolyte infiltration of an electrode's pore space (two-phase VOF).

Paper 002's set-up (Experimental, "VOF Method") on the pore space of a meshed 2D microstructure
(or, as a demonstration, a 3D one), solved by :class:`electrofem.physics.vof.VOFSolver` (read its
module docstring for the discretisation and its limits):

* **inlet** at the top (``y = H``; 3D: ``z = H``): electrolyte only (α = 1) at
  ``inlet_speed_m_s`` (1e-4 m/s);
* **outlet** at the bottom (``y = 0``; 3D: ``z = 0``): traction-free;
* **symmetry** (slip) on the left and right sides (3D: also front and back);
* **particle surfaces**: no-slip walls with the static contact angle ``contact_angle_deg``;
* the pore space starts full of air (α = 0), optionally with an electrolyte film of
  ``initial_film_um`` below the inlet.

Parameters and their sources
----------------------------
Every parameter is a field of :class:`~electrofem.physics.vof.InfiltrationOptions` with its unit,
check and source (``electrofem.params.describe(InfiltrationOptions)``; the sources are recorded
in ``infiltration.json``). The electrolyte's density and viscosity (1200 kg/m³, 3.1 cP) and the
inlet speed (1e-4 m/s) are paper 002's; air is dry air at 20 °C; gravity is neglected (Bond
number ~1e-5 at 10 µm). The surface tension (0.035 N/m) and the static contact angle on NMC
(30°, through the electrolyte) are **assumed**: the references give no value; LiPF6/carbonate
electrolytes are commonly reported at 0.03–0.045 N/m and wet NMC coatings at roughly 10–50°.

Metrics: see :mod:`electrofem.jobs.infiltrate_metrics` (outlet fraction, breakthrough time,
saturation, air fraction and profile, volume balance).

Files
-----
=========================  ==========================================================
``infiltration.json``      parameters, sources, definitions, metrics, version, status
                           (``running`` / ``done`` / ``failed`` with ``error``);
                           rewritten at every output, checkpoint and at the end
``infiltration.csv``       one row per step: t, dt, outlet fractions, saturation,
                           cumulative in/outflow, volume balance, Courant, u_max, ...
``fields.xdmf``/``.h5``    time series of ``alpha`` (DG0), ``u`` (P1 interpolant of the
                           P2 velocity), ``p`` (P1) every ``output_interval_s``
``snapshots/alpha_*.png``  α maps at the same times (2D only; in 3D use the XDMF)
``infiltration.png``       outlet fraction, saturation and the final air profile
``checkpoint/``            restart state every ``checkpoint_every_steps`` steps or
                           ``checkpoint_every_s`` wall seconds (and at outputs)
``wetting/``               the wetting state at every output: ``state_<index>.npz``
                           (α of the pore cells, centroids in µm, time, mesh
                           fingerprint) and ``index.json``; read by ``--wetting``
                           (:mod:`electrofem.physics.wetting`)
=========================  ==========================================================

**Restart** (``restart=True``, ``--restart``): the last checkpoint is read (fields gathered with
their coordinates, so any number of ranks works on the same mesh), the run continues from it and
loses at most one checkpoint interval. A config source is not regenerated: ``outdir/mesh.xdmf``
is read. The XDMF series is appended to, so it may repeat the times between the checkpoint and
the kill. Options may change on restart (e.g. ``t_end_s``, ``capillary_factor``); the changes
are recorded in ``restart_changes``.

**Failure**: a diverging step (:class:`~electrofem.physics.vof.VOFDivergenceError`: NaN or a
Courant number beyond ``courant_blowup``) stops the run with ``status = "failed"`` and the error
in the JSON; the CSV, fields, snapshots and the last checkpoint are kept.

**Cost**: the adaptive step's capillary bound makes a run to breakthrough at the paper's
speed out of reach on the paper's geometry (measured: see "Cost of the adaptive step" in
:mod:`electrofem.physics.vof`); the paper's own scheduled steps (``step_control =
"scheduled"``, ``examples/infiltration_2d.toml``) reach it.

MPI-collective; rank 0 writes the small files. A paper-geometry run on 2 ranks matched the
serial one to 1e-11 (saturation, time) after 300 steps. 3D meshes run (a demonstration: see the
VOF module's limitations; ``benchmarks/bench_vof_3d.py`` measures the cost).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
from mpi4py import MPI

from .. import __version__
from ..physics.vof import InfiltrationOptions, VOFDivergenceError, VOFSolver
from ..physics.vof.options import SOLVER_KNOBS
from ..physics.wetting import WETTING_DIR, mesh_fingerprint
from .infiltrate_metrics import (
    FieldOutput,
    Probe,
    WettingOutput,
    finish_metrics,
    header_metrics,
    snapshot,
)
from .output import (
    CHECKPOINT_DIR,
    CheckpointSchedule,
    JobRecord,
    prepare_outdir,
    read_checkpoint,
    write_checkpoint,
    write_csv,
)
from .source import load_source
from .stop import Interrupted, StopSignal, soft

log = logging.getLogger("electrofem")


@dataclass
class InfiltrationReport:
    """What :func:`run_infiltration` returns."""

    metrics: dict
    rows: list[dict]
    files: dict[str, Path] = field(default_factory=dict)

    @property
    def breakthrough_time_s(self) -> float | None:
        return self.metrics.get("breakthrough_time_s")

    @property
    def status(self) -> str:
        return self.metrics["status"]


@dataclass
class InfiltrationRun:
    """What one run of the job works on (set up by :func:`run_infiltration`)."""

    solver: VOFSolver
    emesh: object  # the ElectrodeMesh (its metadata are recorded)
    mesh_path: Path | None
    box: list[float]  # µm
    options: InfiltrationOptions
    outdir: Path
    comm: MPI.Comm
    progress: bool = True
    plots: bool = True
    step_callback: Callable[[dict], None] | None = None
    t0: float = 0.0  # wall clock at the job start
    restored: tuple[dict, dict] | None = None  # (state, arrays) of the checkpoint to continue
    stop: StopSignal | None = None  # SIGINT/SIGTERM -> checkpoint, "interrupted"


@dataclass
class RunCounters:
    """The job's running totals, saved in every checkpoint (``state.json``) with its rows."""

    v0: float | None = None  # the electrolyte volume at t = 0
    inflow: float = 0.0  # cumulative electrolyte volumes through the boundary
    outflow: float = 0.0
    next_out: float = 0.0  # simulated time of the next field output
    last_out: float = -1.0
    out_index: int = 0  # number of the next snapshot


def run_infiltration(
    source,
    outdir: str | Path,
    options: InfiltrationOptions | None = None,
    comm: MPI.Comm = MPI.COMM_WORLD,
    progress: bool = True,
    plots: bool = True,
    restart: bool = False,
    step_callback=None,
    stop: StopSignal | None = None,
) -> InfiltrationReport:
    """Run the infiltration job on ``source`` (ElectrodeMesh, ``.xdmf``/``.msh`` path, config).

    Args:
        source: the structure; a config (``Config`` or ``.toml`` path) is generated first into
            ``outdir`` and its ``[infiltration]`` table is used unless ``options`` is given.
        outdir: output directory (created).
        options: :class:`~electrofem.physics.vof.InfiltrationOptions` (default: paper 002's
            set-up).
        progress: log a line per step (simulated time / end time, step, dt, saturation).
        plots: PNG snapshots and the summary plot.
        restart: continue from ``outdir/checkpoint``.
        step_callback: ``callback(row)`` after every step (all ranks).
        stop: a :class:`~electrofem.jobs.stop.StopSignal`: a SIGINT or SIGTERM then ends the
            run after the current step with a checkpoint, ``status = "interrupted"`` and
            :class:`~electrofem.jobs.stop.Interrupted`.

    Raises:
        VOFDivergenceError: a diverging step; everything written so far is kept
            (``infiltration.json`` has ``status = "failed"`` and the error).
        ValueError: bad options or source, or no usable checkpoint with ``restart``.
    """
    outdir = prepare_outdir(outdir, comm)
    t0 = time.perf_counter()
    if options is not None:
        options.validate()
    restored = None
    if restart:  # fail early, before generating or reading the mesh
        restored = read_checkpoint(outdir / CHECKPOINT_DIR, comm)
    emesh, cfg, mesh_path = load_source(source, outdir, comm, progress, reuse_mesh=restart)
    if options is None:
        options = getattr(cfg, "infiltration", None) or InfiltrationOptions()
    options = InfiltrationOptions(**asdict(options))  # the run's own copy
    options.validate()
    dim = emesh.dim
    if dim not in (2, 3):
        raise ValueError(f"infiltration: 2D or 3D meshes only, got {dim}D")
    box = [float(v) for v in emesh.metadata.get("box_um") or ()]
    if len(box) != dim:
        raise ValueError(
            f"infiltration: the mesh has no {dim}D box_um metadata (use electrofem generate)"
        )
    s = VOFSolver.from_electrode_mesh(emesh, options)
    try:
        run = InfiltrationRun(
            solver=s,
            emesh=emesh,
            mesh_path=mesh_path,
            box=box,
            options=options,
            outdir=outdir,
            comm=comm,
            progress=progress,
            plots=plots,
            step_callback=step_callback,
            stop=stop,
            t0=t0,
            restored=restored,
        )
        return InfiltrationJob(run).execute()
    finally:
        s.close()  # PETSc objects freed on every rank at the same point


class InfiltrationJob:
    """The job as an observer of :meth:`VOFSolver.run <electrofem.physics.vof.VOFSolver.run>`:
    :meth:`execute` sets the state up (fresh or from the checkpoint), runs the solver's loop
    and writes the summary; :meth:`on_step` writes a CSV row, the progress line, the fields
    and checkpoints when due, and stops the run at breakthrough if asked to."""

    def __init__(self, run: InfiltrationRun):
        self.run = run
        self.s = s = run.solver
        self.o = o = run.options
        self.comm = run.comm
        dim = s.tdim
        self.probe = Probe(s, run.box[dim - 1] * 1e-6, o.n_slabs)  # thickness: y (2D), z (3D)
        if self.probe.inlet_length <= 0 or self.probe.outlet_length <= 0:
            raise ValueError(
                "infiltration: the pore space does not reach both the top (inlet) and the "
                f"bottom (outlet) faces (open inlet {self.probe.inlet_length:.3g} m, outlet "
                f"{self.probe.outlet_length:.3g} m)"
            )
        self.q_in = o.inlet_speed_m_s * self.probe.inlet_length
        fill_time = self.probe.pore_area / self.q_in
        self.t_end = o.t_end_s if o.t_end_s is not None else o.fill_factor * fill_time
        self.dt_out = o.output_interval_s or self.t_end / 20
        self.level = o.breakthrough_fraction  # × the maximum, 1
        out = run.outdir
        metrics = header_metrics(
            s, run.emesh, run.mesh_path, run.box, o, self.probe, self.t_end, self.dt_out
        )
        self.record = JobRecord(out / "infiltration.json", metrics, self.comm)
        self.csv_path = out / "infiltration.csv"
        self.files = {
            "infiltration": self.record.path,
            "csv": self.csv_path,
            "fields": out / "fields.xdmf",
            "wetting": out / WETTING_DIR,
        }
        fingerprint = mesh_fingerprint(run.emesh)  # of the parent mesh, not the pore submesh
        metrics["mesh_fingerprint"] = fingerprint
        self.wetting = WettingOutput(
            self.files["wetting"], fingerprint, self.comm, fresh=run.restored is None
        )
        self.rows: list[dict] = []
        self.counters = RunCounters()
        self.schedule = CheckpointSchedule(
            self.comm, o.checkpoint_every_steps, o.checkpoint_every_s
        )
        self.snapshots = run.plots and o.snapshots and dim == 2  # PNG α maps: 2D only
        self.fields: FieldOutput | None = None  # made by execute (appends after a restart)
        self.steps_run = 0
        self.wall_run = time.perf_counter()

    @property
    def metrics(self) -> dict:
        return self.record.metrics

    # ------------------------------------------------------------------ state
    def _restore(self, state: dict, arrays: dict) -> None:
        s, m = self.s, self.metrics
        recorded = m["parameters"]["options"]
        old = state["options"]
        changes = {k: [old.get(k), v] for k, v in recorded.items() if old.get(k) != v}
        knobs = state.get("solver_knobs", {})  # checkpoints since the options were unified
        changes |= {
            k: [knobs[k], getattr(self.o, k)]
            for k in SOLVER_KNOBS
            if k in knobs and knobs[k] != getattr(self.o, k)
        }
        if changes:
            log.warning("restart: options changed from the checkpoint's: %s", changes)
        m["restart_changes"] = changes
        m["restarts"] = state.get("restarts", 0) + 1
        s.load_state_arrays(arrays)
        s.t, s.n_steps = state["t"], state["n_steps"]
        self.rows = state["rows"]
        self.counters = RunCounters(**{k: state[k] for k in asdict(RunCounters())})
        self.schedule.seq = state["seq"] + 1
        log.info(
            "restarting from checkpoint %d at t = %.4e s (step %d)", state["seq"], s.t, s.n_steps
        )

    def _start_fresh(self) -> None:
        s = self.s
        dim = s.tdim
        H = self.run.box[dim - 1] * 1e-6
        film = self.o.initial_film_um * 1e-6
        s.set_alpha(
            lambda x: (x[dim - 1] > H - film).astype(float) if film > 0 else np.zeros(x.shape[1])
        )
        self.counters.v0 = s.volume()

    # ------------------------------------------------------------------ outputs
    def output(self) -> None:
        """Fields (XDMF), the wetting state and, in 2D, the α map at the current time."""
        s, c = self.s, self.counters
        self.fields.write(s.t)
        self.wetting.write(s, c.out_index)
        if self.snapshots:
            sat = s.volume() / self.probe.pore_area
            snapshot(
                s,
                self.run.outdir / "snapshots" / f"alpha_{c.out_index:04d}.png",
                f"t = {s.t:.4g} s, saturation {sat:.3f}",
                self.run.box,
            )
        c.out_index += 1
        c.next_out = s.t + self.dt_out
        c.last_out = s.t

    def checkpoint(self, force: bool = False, count: bool = True) -> None:
        """A checkpoint if one is due (every rank asks; rank 0 decides), then the CSV and the
        JSON."""
        if not self.schedule.due(force, count):
            return
        s, o = self.s, self.o
        seq = self.schedule.seq
        state = {
            "version": __version__,
            "t": s.t,
            "n_steps": s.n_steps,
            "rows": self.rows,
            "options": self.metrics["parameters"]["options"],
            "solver_knobs": {k: getattr(o, k) for k in SOLVER_KNOBS},
            "restarts": self.metrics.get("restarts", 0),
            **asdict(self.counters),
        }
        write_checkpoint(self.run.outdir / CHECKPOINT_DIR, seq, state, s.state_arrays(), self.comm)
        self.schedule.written()
        self.metrics["checkpoint"] = {"seq": seq, "t_s": s.t, "step": s.n_steps}
        write_csv(self.csv_path, self.rows, self.comm)
        self.record.write()

    # ------------------------------------------------------------------ the observer
    def on_start(self, solver) -> None:
        self.wall_run = time.perf_counter()

    def on_step(self, solver, rec) -> str | None:
        s, c = self.s, self.counters
        self.steps_run += 1
        c.inflow += rec.inflow
        c.outflow += rec.outflow
        stored = rec.volume - c.v0
        bal = abs(c.inflow - c.outflow - stored)
        total_out = self.q_in * rec.dt
        row = {
            "step": rec.step,
            "t_s": rec.t,
            "dt_s": rec.dt,
            "outlet_fraction": self.probe.outlet_fraction(),
            "outlet_fraction_flux": rec.outflow / total_out if total_out > 0 else 0.0,
            "saturation": rec.volume / self.probe.pore_area,
            "electrolyte_volume_m2": rec.volume,
            "inflow_cum_m2": c.inflow,
            "outflow_cum_m2": c.outflow,
            "volume_balance": bal / c.inflow if c.inflow > 0 else bal,
            "courant": rec.courant,
            "substeps": rec.substeps,
            "u_max_m_s": rec.u_max,
            "alpha_min": rec.alpha_min,
            "alpha_max": rec.alpha_max,
            "div_residual": rec.div_residual,
            "linear_iterations": rec.linear_iterations,
            "wall_s": time.perf_counter() - self.run.t0,
        }
        self.rows.append(row)
        if self.run.progress:
            log.info(
                "step %d: t %.4e / %.4e s (%.1f %%), dt %.3e s, saturation %.4f, outlet %.4f, "
                "Co %.2f, |u|max %.2e m/s",
                rec.step,
                rec.t,
                self.t_end,
                100 * rec.t / self.t_end,
                rec.dt,
                row["saturation"],
                row["outlet_fraction"],
                rec.courant,
                rec.u_max,
            )
        if self.run.step_callback is not None:
            self.run.step_callback(row)
        if s.t >= c.next_out * (1 - 1e-12):
            self.output()
            self.checkpoint(force=True)
        else:
            self.checkpoint()
        stop = self.run.stop
        if stop is not None and (sig := stop.requested(self.comm)):
            self.checkpoint(force=True, count=False)
            raise Interrupted(
                f"interrupted at step {s.n_steps}, t = {s.t:.6g} s; the checkpoint is written: "
                "resume with --restart",
                sig,
            )
        if self.o.stop_at_breakthrough and row["outlet_fraction"] >= self.level:
            return "breakthrough"
        return None

    # ------------------------------------------------------------------ the run
    def execute(self) -> InfiltrationReport:
        s, o, m = self.s, self.o, self.metrics
        restored = self.run.restored
        if restored is not None:
            self._restore(*restored)
        else:
            self._start_fresh()
        self.fields = FieldOutput(s, self.files["fields"], append=restored is not None)
        self.record.write()
        if restored is None:
            self.output()
            self.checkpoint(force=True, count=False)
        try:
            with soft(self.run.stop):
                result = s.run(
                    self.t_end,
                    observer=self,
                    max_steps=max(o.max_steps - s.n_steps, 0),
                    max_wall_s=o.max_wall_s,
                )
        except Interrupted as err:
            m["steps"] = s.n_steps
            m["t_final_s"] = s.t
            self._finish()
            self.record.fail(err, status="interrupted")
            raise
        except VOFDivergenceError as err:
            m["steps"] = s.n_steps
            m["t_final_s"] = s.t
            self._finish()
            m["files"] = {k: Path(v).name for k, v in self.files.items()}
            self.record.fail(err)
            last = m.get("checkpoint", {}).get("t_s", 0.0)
            raise VOFDivergenceError(
                f"{err}; stopped at step {s.n_steps + 1}, everything written so far is kept in "
                f"{self.run.outdir} (last checkpoint: t = {last:.4e} s)"
            ) from None
        if s.t > self.counters.last_out:
            self.output()  # the final state
        m["stop_reason"] = result.stop_reason
        m["steps"] = s.n_steps
        m["rejected_steps"] = s.n_rejected  # this run (scheduled steps redone)
        m["t_final_s"] = s.t
        self._finish()
        if self.run.plots and self.comm.rank == 0 and self.rows:
            from ..plot import plot_infiltration_summary

            self.files["plot"] = plot_infiltration_summary(
                self.rows,
                m["air_profile"],
                self.run.outdir / "infiltration.png",
                self.level,
                "yz"[s.tdim - 2],
            )
        if self.snapshots:
            self.files["snapshots"] = self.run.outdir / "snapshots"
        self.checkpoint(force=True, count=False)
        m["files"] = {k: Path(v).name for k, v in self.files.items()}
        m["seconds"] = {"total": time.perf_counter() - self.run.t0}
        self.record.finish()
        return InfiltrationReport(m, self.rows, self.files)

    def _finish(self) -> None:
        """The summary metrics and the CSV (collective)."""
        finish_metrics(
            self.metrics,
            self.rows,
            self.probe,
            self.level,
            self.t_end,
            self.wall_run,
            self.steps_run,
            self.counters.v0,
        )
        write_csv(self.csv_path, self.rows, self.comm)
