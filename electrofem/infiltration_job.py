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
======================================  =========  ===============================================
electrolyte density                     1200       kg/m³, paper 002 (1.2 g cm⁻³)
electrolyte viscosity                   3.1e-3     Pa·s, paper 002 (3.1 cP)
air density, viscosity                  1.204,     kg/m³, Pa·s: dry air at 20 °C, 1 atm
                                        1.81e-5
inlet speed                             1e-4       m/s, paper 002
surface tension electrolyte/air         0.035      N/m: **assumed**. Paper 002 and the other
                                                   project references give no value; LiPF6 in
                                                   carbonate (EC/DMC/EMC) mixtures are commonly
                                                   reported at about 0.03–0.045 N/m.
static contact angle on NMC             30°        **assumed** (through the electrolyte). Not in
                                                   the references; carbonate electrolytes wet NMC
                                                   cathode coatings well, reported angles span
                                                   roughly 10–50° depending on binder, carbon and
                                                   calendering.
gravity                                 0          m/s² (Bond number ~1e-5 at 10 µm: negligible)
======================================  =========  ===============================================

Metrics (``infiltration.json``; every step in ``infiltration.csv``)
------------------------------------------------------------------
* **Outlet electrolyte fraction** ``f_out(t)``: the length-weighted mean of α over the outlet,
  i.e. ``Σ_f |f| α_K(f) / Σ_f |f|`` over the pore facets of the bottom face, α of the cell
  behind each facet (the upwind value of outflow). Its maximum is 1 (outlet fully covered by
  electrolyte), which is what "maximum" means in the breakthrough metric. The flux-weighted
  variant ``f_flux`` (electrolyte share of the volume that left in a step) is in the CSV too.
* **Breakthrough time** (paper 002's "time to reach 1 % of the maximum outlet VOF"): the first
  time at which ``f_out`` reaches ``breakthrough_fraction`` (0.01) × 1, linearly interpolated
  between the two steps that bracket the crossing. ``breakthrough_time_flux_s`` is the same for
  ``f_flux``. ``null`` if not reached.
* **Saturation** ``S(t)``: electrolyte volume / pore volume. **Air fraction** = 1 - S (air over
  pore volume); ``final_air_fraction`` is its value at the end of the run, and ``steady`` says
  whether S changed by less than 1e-3 over the last 10 % of the simulated time (the paper's
  trapped-air fraction needs a steady state: only then is it *trapped* air).
* **Air profile**: ``n_slabs`` slabs through the thickness (y), air volume / pore volume of
  each slab (cells assigned by centroid).
* **Volume balance**: ``|V_in - V_out - (V(t) - V(0))| / V_in`` from the boundary fluxes of the
  conservative α update; must be < 1e-3 (it is at round-off level by construction).

In 2D every volume is an area (m², per metre of depth). In 3D the same keys are kept: the
``*_m2`` volumes are in m³, the open inlet/outlet "lengths" are areas (m²), the outlet fraction
is area-weighted and the air profile's slabs are along z (its ``y_*_um`` keys hold z).

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

**Cost and the capillary time step** (measured with ``benchmarks/bench_infiltration.py`` on the
paper's L-S geometry at a coarse mesh: 2 µm, particle surfaces 0.5 r, 4.7k pore cells, h_min
0.23 µm in the 0.2 µm gaps of the 2D gap contacts; a step takes 0.13–0.36 s on one core of this
machine, shared with other jobs). The step is the smaller of the Courant bound and
``capillary_factor`` × the explicit capillary bound dt_σ (≈ 5.8e-9 s at h_min). With the default
factor 20 the step is 1.2e-7 s and the ~0.6 s the inflow needs to fill the pores would take ~5e6
steps (hundreds of hours): **a run to breakthrough at the paper's 1e-4 m/s is out of reach at
the default**. Factors 200, 2000 and 0 (no capillary bound) ran stably (300 steps, α bounded,
balance ~1e-13) with steps of 1.2e-6, 1.2e-5 and ~4e-5 s. Without the capillary bound the
Courant bound takes over, and it collapses whenever capillary flow starts in a throat: a
2500-step run (factor 0) reached t = 0.042 s in 13 min with steps down to 1.3e-6 s for hundreds
of steps at |u|max ≈ 0.3 m/s (3000× the inlet speed), which extrapolates to ~3–4 h of one core
to the ~0.6 s filling time at this coarse mesh; the issue's ≤ 15 min at 1 µm is not met.
*Stable is not accurate*: the semi-implicit term is a surface viscosity ``dt σ``; against the
viscous resistance of a pore of size ℓ its weight is ``Λ = dt σ / (μ_l ℓ)`` ≈ 0.65 at factor 20
(ℓ = 2 µm) but ~200 at the Courant-limited steps, so large steps over-damp capillary motion
(first 300 steps: |u|max 0.9 m/s at factor 20, 0.01 m/s without the bound). On a small domain at
0.05 m/s the breakthrough time changed by 1.3 % and the final air fraction by 0.3 points between
factors 5 and ∞; the effect at the paper's speed (where capillarity matters more) is not
quantified. Use ``capillary_factor`` > 20 knowingly, and compare with a run at 20 on a small
domain. On that small domain (3 disks, 20 × 24 µm, 440 pore cells) at the paper's 1e-4 m/s,
factor 0 did run to breakthrough: 21k steps in 325 s, breakthrough at 0.108 s = 0.57 × the
filling time (0.92 × at 0.05 m/s: capillary wicking runs ahead at low Ca), final air 0.01 %; for
~0.03 s of it |u|max was 0.3–1.9 m/s and the step ~5e-7 s.

MPI-collective; rank 0 writes the small files. A paper-geometry run on 2 ranks matched the
serial one to 1e-11 (saturation, time) after 300 steps. 3D meshes run (a demonstration: see the
VOF module's limitations; ``benchmarks/bench_vof_3d.py`` measures the cost).
"""

from __future__ import annotations

import csv
import json
import logging
import math
import time
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

import numpy as np
from mpi4py import MPI

from . import __version__
from .checkpoint import json_default, read_checkpoint, write_checkpoint
from .physics.vof import FluidParams, InfiltrationOptions, VOFDivergenceError, VOFSolver

log = logging.getLogger("electrofem")

CHECKPOINT_DIR = "checkpoint"
_RUN_KEYS = ("v0", "inflow", "outflow", "next_out", "last_out", "out_index")

#: Where each default physical parameter comes from.
PARAMETER_SOURCES = {
    "rho_electrolyte_kg_m3": "paper 002 (1.2 g/cm3)",
    "mu_electrolyte_Pa_s": "paper 002 (3.1 cP)",
    "rho_air_kg_m3": "dry air, 20 C, 1 atm",
    "mu_air_Pa_s": "dry air, 20 C, 1 atm",
    "inlet_speed_m_s": "paper 002 (1e-4 m/s velocity inlet)",
    "surface_tension_N_m": "assumed (not in the project references; LiPF6/carbonate "
    "electrolytes are commonly reported at about 0.03-0.045 N/m; measurements of LiPF6 and "
    "LiTFSI alkyl-carbonate electrolytes: Ind. Eng. Chem. Res. 51 (2012) 5240-5245, "
    "doi:10.1021/ie203066x, not checked here)",
    "contact_angle_deg": "assumed (not in the project references; carbonate electrolytes on "
    "NMC cathode coatings: roughly 10-50 degrees; same measurement source to check)",
    "gravity_m_s2": "neglected (Bond number ~1e-5 at the pore scale)",
}

DEFINITIONS = {
    "outlet_fraction": "length-weighted mean of alpha over the pore facets of the outlet "
    "(bottom face), alpha of the cell behind each facet; maximum 1",
    "outlet_fraction_flux": "electrolyte volume that left through the outlet in a step / all "
    "fluid volume that left in it",
    "breakthrough_time_s": "first time outlet_fraction reaches breakthrough_fraction x 1 (its "
    "maximum), linearly interpolated between steps; null if not reached",
    "wall_s_to_breakthrough": "wall seconds from the job start (mesh loading included) to the "
    "step that reached the breakthrough fraction (this run; a restarted run counts from its "
    "restart)",
    "saturation": "electrolyte volume / pore volume",
    "air_fraction": "air volume / pore volume = 1 - saturation",
    "steady": "saturation changed by < 1e-3 over the last 10 % of the simulated time",
    "volume_balance": "|inflow - outflow - (V(t) - V(0))| / inflow, electrolyte volumes",
    "air_profile": "air volume / pore volume per through-thickness slab (cells by centroid)",
}


@dataclass
class InfiltrationJobOptions:
    """What the infiltration job runs (the ``[infiltration]`` config table). SI units.

    Attributes:
        inlet_speed_m_s: electrolyte velocity at the inlet (top), m/s.
        rho_electrolyte_kg_m3, mu_electrolyte_Pa_s, rho_air_kg_m3, mu_air_Pa_s: fluids.
        surface_tension_N_m: electrolyte/air surface tension (assumed, see the module doc).
        contact_angle_deg: static contact angle on the particles, through the electrolyte.
        gravity_m_s2: gravity along -y (from the inlet to the outlet); 0: none.
        t_end_s: simulated end time; ``None``: ``fill_factor`` × the time the inflow takes to
            fill the pore volume.
        fill_factor: see ``t_end_s``.
        stop_at_breakthrough: stop once the breakthrough time is reached.
        max_steps: hard limit on steps (the run then ends with ``stop_reason = "max_steps"``).
        max_wall_s: stop (``stop_reason = "max_wall"``) after this many wall seconds of
            stepping; 0: no limit. The run ends normally (metrics, files, checkpoint).
        initial_film_um: electrolyte film below the inlet at t = 0 (µm; 0: none).
        courant_max: target cell Courant number of the adaptive step.
        courant_blowup: a Courant number above this is a divergence.
        capillary_factor: dt ≤ capillary_factor × the explicit capillary bound (Brackbill);
            values above 1 rely on the semi-implicit surface tension (see the VOF module doc).
        dt_max_s, dt_min_s: step bounds.
        contact_line_slip: Navier slip length at the contact line in cell diameters (0:
            no-slip walls, the contact line moves by numerical slip only and lags: about half
            the Lucas–Washburn rate); 0.7 is within 10 % of Lucas–Washburn at 8 cells per
            channel width (tests/test_vof.py). See ``VOFSolver._wall_terms``.
        step_control: ``"courant"`` (adaptive step under the Courant and capillary bounds) or
            ``"scheduled"`` (flow step ``dt_max_s`` or from ``dt_schedule_s``, capped at a
            flow Courant number ``flow_courant_max``, α sub-cycled to ``courant_max``; the
            capillary-dominated mode, see the VOF module).
        dt_schedule_s: ``[[t0, dt0], [t1, dt1], ...]`` for ``"scheduled"`` (paper 002:
            ``[[0, 1e-4], [0.1, 2e-4]]``).
        flow_courant_max: see ``step_control``.
        compression: interface-compression coefficient.
        semi_implicit_tension: the Hysing semi-implicit surface-tension term.
        breakthrough_fraction: the breakthrough threshold as a fraction of the maximum (1).
        output_interval_s: simulated time between XDMF/PNG outputs; ``None``: t_end / 20.
        snapshots: write PNG α maps at the outputs.
        n_slabs: slabs of the through-thickness air profile.
        checkpoint_every_steps, checkpoint_every_s: checkpoint interval (steps / wall
            seconds); 0 disables that trigger.
        petsc_options: overrides of the Navier–Stokes solver options (MUMPS LU by default).
    """

    inlet_speed_m_s: float = 1e-4
    rho_electrolyte_kg_m3: float = 1200.0
    mu_electrolyte_Pa_s: float = 3.1e-3
    rho_air_kg_m3: float = 1.204
    mu_air_Pa_s: float = 1.81e-5
    surface_tension_N_m: float = 0.035
    contact_angle_deg: float = 30.0
    gravity_m_s2: float = 0.0
    t_end_s: float | None = None
    fill_factor: float = 1.5
    stop_at_breakthrough: bool = False
    max_steps: int = 1_000_000
    max_wall_s: float = 0.0
    initial_film_um: float = 0.0
    courant_max: float = 0.5
    courant_blowup: float = 50.0
    capillary_factor: float = 20.0
    dt_max_s: float = 1e-4
    dt_min_s: float = 1e-14
    contact_line_slip: float = 0.0
    step_control: str = "courant"
    dt_schedule_s: list = field(default_factory=list)
    flow_courant_max: float = 10.0
    compression: float = 1.0
    semi_implicit_tension: bool = True
    breakthrough_fraction: float = 0.01
    output_interval_s: float | None = None
    snapshots: bool = True
    n_slabs: int = 20
    checkpoint_every_steps: int = 200
    checkpoint_every_s: float = 300.0
    petsc_options: dict = field(default_factory=dict)

    def validate(self) -> None:
        """Raise ValueError naming the offending field (``infiltration.<name>: ...``)."""

        def bad(name, what):
            raise ValueError(f"infiltration.{name}: {what}, got {getattr(self, name)!r}")

        def number(name):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v):
                bad(name, "must be a finite number")
            return float(v)

        for name in (
            "inlet_speed_m_s",
            "rho_electrolyte_kg_m3",
            "mu_electrolyte_Pa_s",
            "rho_air_kg_m3",
            "mu_air_Pa_s",
            "fill_factor",
            "courant_blowup",
            "dt_max_s",
            "dt_min_s",
        ):
            if not number(name) > 0:
                bad(name, "must be positive")
        for name in (
            "surface_tension_N_m",
            "initial_film_um",
            "capillary_factor",
            "compression",
            "contact_line_slip",
        ):
            if not number(name) >= 0:
                bad(name, "must be >= 0")
        number("gravity_m_s2")
        if not 0 < number("contact_angle_deg") < 180:
            bad("contact_angle_deg", "must be in (0, 180) degrees")
        if not 0 < number("courant_max") <= 1:
            bad("courant_max", "must be in (0, 1]")
        if not 0 < number("breakthrough_fraction") <= 1:
            bad("breakthrough_fraction", "must be in (0, 1]")
        if not self.dt_max_s > self.dt_min_s:
            bad("dt_max_s", f"must be > dt_min_s ({self.dt_min_s})")
        if self.step_control not in ("courant", "scheduled"):
            bad("step_control", "must be 'courant' or 'scheduled'")
        if not number("flow_courant_max") > 0:
            bad("flow_courant_max", "must be positive")
        sched = self.dt_schedule_s
        if not isinstance(sched, list | tuple) or any(
            not isinstance(e, list | tuple)
            or len(e) != 2
            or not all(isinstance(v, int | float) and math.isfinite(v) for v in e)
            or e[0] < 0
            or e[1] <= 0
            for e in sched
        ):
            bad("dt_schedule_s", "must be a list of [t >= 0, dt > 0] pairs (s)")
        for name in ("t_end_s", "output_interval_s"):
            if getattr(self, name) is not None and not number(name) > 0:
                bad(name, "must be positive (or omitted)")
        for name in ("max_steps", "n_slabs", "checkpoint_every_steps"):
            v = getattr(self, name)
            if (
                isinstance(v, bool)
                or not isinstance(v, int)
                or v < (0 if "checkpoint" in name else 1)
            ):
                bad(name, "must be a positive integer" if "checkpoint" not in name else ">= 0")
        if not number("max_wall_s") >= 0:
            bad("max_wall_s", "must be >= 0")
        if not number("checkpoint_every_s") >= 0:
            bad("checkpoint_every_s", "must be >= 0")
        for name in ("stop_at_breakthrough", "semi_implicit_tension", "snapshots"):
            if not isinstance(getattr(self, name), bool):
                bad(name, "must be true or false")
        if not isinstance(self.petsc_options, dict):
            bad("petsc_options", "must be a table")

    def fluid(self, dim: int = 2) -> FluidParams:
        """The fluids; gravity along the thickness (-y in 2D, -z in 3D)."""
        return FluidParams(
            rho_liquid=self.rho_electrolyte_kg_m3,
            rho_gas=self.rho_air_kg_m3,
            mu_liquid=self.mu_electrolyte_Pa_s,
            mu_gas=self.mu_air_Pa_s,
            sigma=self.surface_tension_N_m,
            gravity=(0.0,) * (dim - 1) + (-self.gravity_m_s2,),
            contact_angle=self.contact_angle_deg,
        )

    def solver_options(self) -> InfiltrationOptions:
        o = InfiltrationOptions(
            inlet_speed=self.inlet_speed_m_s,
            courant_max=self.courant_max,
            courant_blowup=self.courant_blowup,
            dt_max=self.dt_max_s,
            dt_min=self.dt_min_s,
            capillary_factor=self.capillary_factor,
            step_control=self.step_control,
            contact_line_slip=self.contact_line_slip,
            dt_schedule=tuple(tuple(float(v) for v in e) for e in self.dt_schedule_s),
            flow_courant_max=self.flow_courant_max,
            semi_implicit_tension=self.semi_implicit_tension,
            compression=self.compression,
        )
        o.petsc_options = {**o.petsc_options, **self.petsc_options}
        return o


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


# --- measurements ------------------------------------------------------------------------------


class _Probe:
    """Outlet fraction, volumes and the air profile of a :class:`VOFSolver` state (MPI-reduced).

    Boundary facets in the solver's facet arrays belong to their one (owned) cell, so boundary
    sums over ranks count every facet once. In 3D the "lengths" are facet areas (m²), the
    "areas" cell volumes (m³) and the thickness coordinate is z."""

    def __init__(self, s: VOFSolver, height_m: float, n_slabs: int):
        self.s = s
        self.comm = s.comm
        kind = s._f_kind
        self.out_cells = s._f_c0[kind == 3]
        self.out_len = s._f_len[kind == 3]
        self.outlet_length = self._sum(self.out_len.sum())
        self.inlet_length = self._sum(s._f_len[kind == 2].sum())
        n = s.n_owned
        self.area = s.area[:n]
        self.pore_area = self._sum(self.area.sum())
        y = s.centroid[:n, s.tdim - 1]  # through the thickness: y in 2D, z in 3D
        self.edges = np.linspace(0.0, height_m, n_slabs + 1)
        self.slab = np.clip(np.searchsorted(self.edges, y, side="right") - 1, 0, n_slabs - 1)
        self.n_slabs = n_slabs
        self.slab_pore = self.comm.allreduce(
            np.bincount(self.slab, weights=self.area, minlength=n_slabs), op=MPI.SUM
        )

    def _sum(self, v) -> float:
        return self.comm.allreduce(float(v), op=MPI.SUM)

    def outlet_fraction(self) -> float:
        a = self.s._alpha_cells()
        num = self._sum(np.dot(self.out_len, np.clip(a[self.out_cells], 0.0, 1.0)))
        return num / self.outlet_length if self.outlet_length > 0 else float("nan")

    def air_profile(self) -> list[dict]:
        a = np.clip(self.s._alpha_cells()[: self.s.n_owned], 0.0, 1.0)
        air = self.comm.allreduce(
            np.bincount(self.slab, weights=(1.0 - a) * self.area, minlength=self.n_slabs),
            op=MPI.SUM,
        )
        return [
            {
                "y_low_um": float(self.edges[k] * 1e6),
                "y_high_um": float(self.edges[k + 1] * 1e6),
                "air_fraction": float(air[k] / self.slab_pore[k]) if self.slab_pore[k] else None,
                "pore_area_m2": float(self.slab_pore[k]),
            }
            for k in range(self.n_slabs)
        ]


# --- checkpoints -------------------------------------------------------------------------------


def _gather(comm, arr):
    parts = comm.gather(np.ascontiguousarray(arr), root=0)
    return np.concatenate(parts) if comm.rank == 0 else None


def _solver_arrays(s: VOFSolver) -> dict:
    """α (owned cells + centroids), u (owned P2 nodes), p (owned P1 nodes), on rank 0."""
    comm = s.comm
    n = s.n_owned
    nu = s.V.dofmap.index_map.size_local
    npd = s.Q.dofmap.index_map.size_local
    out = {
        "alpha": _gather(comm, s._alpha_cells()[:n]),
        "alpha_xy": _gather(comm, s.centroid[:n]),
        "u": _gather(comm, s.u.x.array.reshape(-1, s.gdim)[:nu]),
        "u_xy": _gather(comm, s.V.tabulate_dof_coordinates()[:nu, : s.gdim]),
        "p": _gather(comm, s.p.x.array[:npd]),
        "p_xy": _gather(comm, s.Q.tabulate_dof_coordinates()[:npd, : s.gdim]),
    }
    return out if comm.rank == 0 else {}


def _write_checkpoint(s: VOFSolver, ckdir: Path, seq: int, state: dict) -> None:
    comm = s.comm
    arrays = _solver_arrays(s)
    write_checkpoint(ckdir, seq, state, arrays, comm)


def _match(comm, ref_xy, xy, what: str, h: float):
    from scipy.spatial import cKDTree

    dist, idx = cKDTree(ref_xy).query(xy)
    worst = comm.allreduce(float(dist.max(initial=0.0)), op=MPI.MAX)
    if worst > 1e-3 * h:
        raise ValueError(
            f"--restart: the checkpoint's {what} does not match this mesh (largest distance "
            f"{worst:.3g} m)"
        )
    return idx


def _load_state(s: VOFSolver, arrays: dict) -> None:
    h = s.h_min
    idx = _match(s.comm, arrays["alpha_xy"], s.centroid, "alpha", h)
    s.set_alpha(arrays["alpha"][idx])
    xu = s.V.tabulate_dof_coordinates()[:, : s.gdim]
    idx = _match(s.comm, arrays["u_xy"], xu, "velocity", h)
    s.u.x.array[:] = arrays["u"][idx].ravel()
    s.u.x.scatter_forward()
    xp = s.Q.tabulate_dof_coordinates()[:, : s.gdim]
    idx = _match(s.comm, arrays["p_xy"], xp, "pressure", h)
    s.p.x.array[:] = arrays["p"][idx]
    s.p.x.scatter_forward()


# --- fields and pictures -----------------------------------------------------------------------


class _FieldWriter:
    """XDMF time series of α (DG0), u (vector P1 interpolant) and p (P1)."""

    def __init__(self, s: VOFSolver, path: Path, append: bool):
        from dolfinx import fem

        self.s = s
        self.path = path
        V1v = fem.functionspace(s.mesh, ("Lagrange", 1, (s.gdim,)))
        self.u = fem.Function(V1v, name="u")
        self.p = fem.Function(s.Q, name="p")
        self.alpha = fem.Function(s.V0, name="alpha")
        self.started = append and path.is_file()

    def write(self, t: float) -> None:
        from dolfinx.io import XDMFFile

        s = self.s
        self.u.interpolate(s.u)
        self.p.x.array[:] = s.p.x.array
        self.alpha.x.array[:] = s.alpha.x.array
        mode = "a" if self.started else "w"
        with XDMFFile(s.comm, str(self.path), mode) as f:
            if not self.started:
                f.write_mesh(s.mesh)
            for fn in (self.alpha, self.u, self.p):
                f.write_function(fn, t)
        self.started = True


def _snapshot(s: VOFSolver, path: Path, title: str, box_um) -> None:
    """α map of a 2D run (owned cells gathered to rank 0; µm)."""
    n = s.n_owned
    tri = s.mesh.geometry.x[s.mesh.geometry.dofmaps[0][:n, :3], :2] * 1e6
    tris = _gather(s.comm, tri)
    vals = _gather(s.comm, s._alpha_cells()[:n])
    if s.comm.rank == 0:
        from .plot import plot_alpha_map

        plot_alpha_map(tris, vals, box_um, path, title)


# --- the job -----------------------------------------------------------------------------------


def _crossing(rows: list[dict], key: str, level: float) -> float | None:
    prev_t, prev_v = 0.0, 0.0
    for r in rows:
        v = r[key]
        if v >= level:
            if v == prev_v:
                return r["t_s"]
            return prev_t + (level - prev_v) * (r["t_s"] - prev_t) / (v - prev_v)
        prev_t, prev_v = r["t_s"], v
    return None


def run_infiltration(
    source,
    outdir: str | Path,
    options: InfiltrationJobOptions | None = None,
    comm: MPI.Comm = MPI.COMM_WORLD,
    progress: bool = True,
    plots: bool = True,
    restart: bool = False,
    step_callback=None,
) -> InfiltrationReport:
    """Run the infiltration job on ``source`` (ElectrodeMesh, ``.xdmf``/``.msh`` path, config).

    Args:
        source: the structure; a config (``Config`` or ``.toml`` path) is generated first into
            ``outdir`` and its ``[infiltration]`` table is used unless ``options`` is given.
        outdir: output directory (created).
        options: :class:`InfiltrationJobOptions` (default: paper 002's set-up).
        progress: log a line per step (simulated time / end time, step, dt, saturation).
        plots: PNG snapshots and the summary plot.
        restart: continue from ``outdir/checkpoint``.
        step_callback: ``callback(row)`` after every step (all ranks).

    Raises:
        VOFDivergenceError: a diverging step; everything written so far is kept
            (``infiltration.json`` has ``status = "failed"`` and the error).
        ValueError: bad options or source, or no usable checkpoint with ``restart``.
    """
    outdir = Path(outdir)
    if comm.rank == 0:
        outdir.mkdir(parents=True, exist_ok=True)
    comm.barrier()
    t0 = time.perf_counter()
    ckdir = outdir / CHECKPOINT_DIR
    if options is not None:
        options.validate()
    state = arrays = None
    if restart:  # fail early, before generating or reading the mesh
        state, arrays = read_checkpoint(ckdir, comm)
    from .pipeline import load_source  # lazy: config imports the jobs' options

    emesh, cfg, mesh_path = load_source(source, outdir, comm, progress, reuse_mesh=restart)
    if options is None:
        options = getattr(cfg, "infiltration", None) or InfiltrationJobOptions()
    options = InfiltrationJobOptions(**asdict(options))
    options.validate()
    dim = emesh.dim
    if dim not in (2, 3):
        raise ValueError(f"infiltration: 2D or 3D meshes only, got {dim}D")
    box = [float(v) for v in emesh.metadata.get("box_um") or ()]
    if len(box) != dim:
        raise ValueError(
            f"infiltration: the mesh has no {dim}D box_um metadata (use electrofem generate)"
        )

    s = VOFSolver.from_electrode_mesh(emesh, options.fluid(dim), options.solver_options())
    try:
        return _run(
            s,
            emesh,
            cfg,
            mesh_path,
            box,
            options,
            outdir,
            ckdir,
            comm,
            progress,
            plots,
            state,
            arrays,
            step_callback,
            t0,
        )
    finally:
        s.close()  # PETSc objects freed on every rank at the same point


def _run(
    s,
    emesh,
    cfg,
    mesh_path,
    box,
    options,
    outdir,
    ckdir,
    comm,
    progress,
    plots,
    state,
    arrays,
    step_callback,
    t0,
) -> InfiltrationReport:
    dim = s.tdim
    H = box[dim - 1] * 1e-6  # thickness: y in 2D, z in 3D
    probe = _Probe(s, H, options.n_slabs)
    if probe.inlet_length <= 0 or probe.outlet_length <= 0:
        raise ValueError(
            "infiltration: the pore space does not reach both the top (inlet) and the bottom "
            f"(outlet) faces (open inlet {probe.inlet_length:.3g} m, outlet "
            f"{probe.outlet_length:.3g} m)"
        )
    q_in = options.inlet_speed_m_s * probe.inlet_length  # m²/s per metre of depth (3D: m³/s)
    fill_time = probe.pore_area / q_in
    t_end = options.t_end_s if options.t_end_s is not None else options.fill_factor * fill_time
    dt_out = options.output_interval_s or t_end / 20
    opts_dict = json.loads(json.dumps(asdict(options)))

    metrics = {
        "version": __version__,
        "status": "running",
        "parameters": {
            "options": opts_dict,
            "t_end_s": t_end,
            "output_interval_s": dt_out,
            "sources": PARAMETER_SOURCES,
            "boundaries": {
                "top": f"velocity inlet {options.inlet_speed_m_s:g} m/s, alpha = 1",
                "bottom": "outlet (traction-free)",
                "sides": "symmetry (slip)" + (" on the x and y faces" if dim == 3 else ""),
                "particles": "no-slip walls, static contact angle "
                f"{options.contact_angle_deg:g} deg",
            },
            "solver": asdict(s.options) | {"fluid": asdict(s.fluid)},
            "mesh": str(mesh_path) if mesh_path else None,
            "mesh_metadata": {
                k: emesh.metadata.get(k) for k in ("seed", "porosity", "mesh_options", "version")
            },
        },
        "definitions": DEFINITIONS,
        "units": "SI; in 2D volumes are areas (m2 per metre of depth)"
        if dim == 2
        else "SI; 3D: the *_m2 keys (names kept from 2D) hold volumes in m3, the *_length_m "
        "keys open areas in m2, inflow_rate_m2_s is in m3/s; air-profile y_*_um are z",
        "dim": dim,
        "box_um": box,
        "pore_cells": comm.allreduce(s.n_owned, op=MPI.SUM),
        "h_min_m": s.h_min,
        "pore_volume_m2": probe.pore_area,
        "porosity_mesh": probe.pore_area
        / (box[0] * box[1] * 1e-12 if dim == 2 else box[0] * box[1] * box[2] * 1e-18),
        "inlet_open_length_m": probe.inlet_length,
        "outlet_open_length_m": probe.outlet_length,
        "inflow_rate_m2_s": q_in,
        "fill_time_s": fill_time,
        "capillary_number": options.mu_electrolyte_Pa_s
        * options.inlet_speed_m_s
        / max(options.surface_tension_N_m, 1e-300),
        "mpi_ranks": comm.size,
    }
    json_path = outdir / "infiltration.json"
    csv_path = outdir / "infiltration.csv"
    files = {"infiltration": json_path, "csv": csv_path, "fields": outdir / "fields.xdmf"}

    def write_json():
        if comm.rank == 0:
            tmp = json_path.with_suffix(".json.tmp")
            tmp.write_text(json.dumps(metrics, indent=2, default=json_default))
            tmp.replace(json_path)
        comm.barrier()

    rows: list[dict] = []
    run = {
        "v0": None,
        "inflow": 0.0,
        "outflow": 0.0,
        "next_out": 0.0,
        "last_out": -1.0,
        "out_index": 0,
        "seq": 0,
    }
    if state is not None:
        changes = {
            k: [state["options"].get(k), v]
            for k, v in opts_dict.items()
            if state["options"].get(k) != v
        }
        if changes:
            log.warning("restart: options changed from the checkpoint's: %s", changes)
        metrics["restart_changes"] = changes
        metrics["restarts"] = state.get("restarts", 0) + 1
        _load_state(s, arrays)
        s.t, s.n_steps = state["t"], state["n_steps"]
        rows = state["rows"]
        for k in _RUN_KEYS:
            run[k] = state[k]
        run["seq"] = state["seq"] + 1
        log.info(
            "restarting from checkpoint %d at t = %.4e s (step %d)", state["seq"], s.t, s.n_steps
        )
    else:
        film = options.initial_film_um * 1e-6
        s.set_alpha(
            lambda x: (x[dim - 1] > H - film).astype(float) if film > 0 else np.zeros(x.shape[1])
        )
        run["v0"] = s.volume()
    writer = _FieldWriter(s, files["fields"], append=state is not None)
    snap_dir = outdir / "snapshots"
    snapshots = plots and options.snapshots and dim == 2  # PNG α maps: 2D only

    def output():
        writer.write(s.t)
        if snapshots:
            sat = s.volume() / probe.pore_area
            _snapshot(
                s,
                snap_dir / f"alpha_{run['out_index']:04d}.png",
                f"t = {s.t:.4g} s, saturation {sat:.3f}",
                box,
            )
        run["out_index"] += 1
        run["next_out"] = s.t + dt_out
        run["last_out"] = s.t

    ck = {"wall": time.perf_counter(), "steps": 0}

    def checkpoint(force=False):
        every_n, every_s = options.checkpoint_every_steps, options.checkpoint_every_s
        due = (
            force
            or (every_n > 0 and ck["steps"] >= every_n)
            or (every_s > 0 and time.perf_counter() - ck["wall"] >= every_s)
        )
        if not comm.bcast(due, root=0):  # wall clocks differ: rank 0 decides
            return
        st = {
            "version": __version__,
            "t": s.t,
            "n_steps": s.n_steps,
            "rows": rows,
            "options": opts_dict,
            "restarts": metrics.get("restarts", 0),
            **{k: run[k] for k in _RUN_KEYS},
        }
        _write_checkpoint(s, ckdir, run["seq"], st)
        metrics["checkpoint"] = {"seq": run["seq"], "t_s": s.t, "step": s.n_steps}
        run["seq"] += 1
        ck["wall"], ck["steps"] = time.perf_counter(), 0
        _write_csv(csv_path, rows, comm)
        write_json()

    write_json()
    if state is None:
        output()
        checkpoint(force=True)
    level = options.breakthrough_fraction  # × the maximum, 1
    stop_reason = "t_end"
    wall_run = time.perf_counter()
    steps_run = 0
    try:
        while s.t < t_end * (1 - 1e-12):
            if s.n_steps >= options.max_steps:
                stop_reason = "max_steps"
                break
            if options.max_wall_s > 0 and comm.bcast(
                time.perf_counter() - wall_run >= options.max_wall_s, root=0
            ):  # wall clocks differ: rank 0 decides
                stop_reason = "max_wall"
                break
            dt = min(s.stable_dt(), t_end - s.t)
            rec = s.step(dt)
            steps_run += 1
            run["inflow"] += rec.inflow
            run["outflow"] += rec.outflow
            stored = rec.volume - run["v0"]
            bal = abs(run["inflow"] - run["outflow"] - stored)
            total_out = q_in * rec.dt
            row = {
                "step": rec.step,
                "t_s": rec.t,
                "dt_s": rec.dt,
                "outlet_fraction": probe.outlet_fraction(),
                "outlet_fraction_flux": rec.outflow / total_out if total_out > 0 else 0.0,
                "saturation": rec.volume / probe.pore_area,
                "electrolyte_volume_m2": rec.volume,
                "inflow_cum_m2": run["inflow"],
                "outflow_cum_m2": run["outflow"],
                "volume_balance": bal / run["inflow"] if run["inflow"] > 0 else bal,
                "courant": rec.courant,
                "substeps": rec.substeps,
                "u_max_m_s": rec.u_max,
                "alpha_min": rec.alpha_min,
                "alpha_max": rec.alpha_max,
                "div_residual": rec.div_residual,
                "wall_s": time.perf_counter() - t0,
            }
            rows.append(row)
            ck["steps"] += 1
            if progress:
                log.info(
                    "step %d: t %.4e / %.4e s (%.1f %%), dt %.3e s, saturation %.4f, outlet %.4f, "
                    "Co %.2f, |u|max %.2e m/s",
                    rec.step,
                    rec.t,
                    t_end,
                    100 * rec.t / t_end,
                    rec.dt,
                    row["saturation"],
                    row["outlet_fraction"],
                    rec.courant,
                    rec.u_max,
                )
            if step_callback is not None:
                step_callback(row)
            if s.t >= run["next_out"] * (1 - 1e-12):
                output()
                checkpoint(force=True)
            else:
                checkpoint()
            if options.stop_at_breakthrough and row["outlet_fraction"] >= level:
                stop_reason = "breakthrough"
                break
    except VOFDivergenceError as err:
        metrics["status"] = "failed"
        metrics["error"] = str(err)
        metrics["steps"] = s.n_steps
        metrics["t_final_s"] = s.t
        _finish(metrics, rows, probe, level, t_end, wall_run, steps_run, run["v0"])
        _write_csv(csv_path, rows, comm)
        metrics["files"] = {k: Path(v).name for k, v in files.items()}
        write_json()
        raise VOFDivergenceError(
            f"{err}; stopped at step {s.n_steps + 1}, everything written so far is kept in "
            f"{outdir} (last checkpoint: t = {metrics.get('checkpoint', {}).get('t_s', 0.0):.4e} s)"
        ) from None

    if s.t > run["last_out"]:
        output()  # the final state
    metrics["stop_reason"] = stop_reason
    metrics["steps"] = s.n_steps
    metrics["rejected_steps"] = s.n_rejected  # this run (scheduled steps redone)
    metrics["t_final_s"] = s.t
    _finish(metrics, rows, probe, level, t_end, wall_run, steps_run, run["v0"])
    _write_csv(csv_path, rows, comm)
    if plots and comm.rank == 0 and rows:
        from .plot import plot_infiltration_summary

        files["plot"] = plot_infiltration_summary(
            rows, metrics["air_profile"], outdir / "infiltration.png", level, "yz"[dim - 2]
        )
    if snapshots:
        files["snapshots"] = outdir / "snapshots"
    checkpoint(force=True)
    metrics["files"] = {k: Path(v).name for k, v in files.items()}
    metrics["seconds"] = {"total": time.perf_counter() - t0}
    metrics["status"] = "done"
    write_json()
    return InfiltrationReport(metrics, rows, files)


def _finish(metrics, rows, probe, level, t_end, wall_run, steps_run, v0) -> None:
    """Fill the summary metrics from the rows and the current state."""
    profile = probe.air_profile()
    metrics["air_profile"] = profile
    if not rows:
        return
    last = rows[-1]
    t_last = last["t_s"]
    sat = np.array([r["saturation"] for r in rows])
    t = np.array([r["t_s"] for r in rows])
    recent = t >= 0.9 * t_last
    metrics.update(
        {
            "breakthrough_fraction": level,
            "breakthrough_time_s": _crossing(rows, "outlet_fraction", level),
            "breakthrough_time_flux_s": _crossing(rows, "outlet_fraction_flux", level),
            "wall_s_to_breakthrough": next(
                (r["wall_s"] for r in rows if r["outlet_fraction"] >= level), None
            ),
            "outlet_fraction_final": last["outlet_fraction"],
            "outlet_fraction_max": max(r["outlet_fraction"] for r in rows),
            "saturation_final": last["saturation"],
            "final_air_fraction": 1.0 - last["saturation"],
            "steady": bool(np.ptp(sat[recent]) < 1e-3) and t_last >= 0.999 * t_end,
            "saturation_series": _subsample(rows, ("t_s", "saturation", "outlet_fraction")),
            "volume_balance": {
                "inflow_m2": last["inflow_cum_m2"],
                "outflow_m2": last["outflow_cum_m2"],
                "stored_change_m2": last["electrolyte_volume_m2"] - v0,
                "relative_error": last["volume_balance"],
                "relative_error_max": max(r["volume_balance"] for r in rows),
                "ok": bool(max(r["volume_balance"] for r in rows) < 1e-3),
            },
            "alpha_bounds": [
                min(r["alpha_min"] for r in rows),
                max(r["alpha_max"] for r in rows),
            ],
            "dt_s": {
                "min": float(min(r["dt_s"] for r in rows)),
                "mean": float(np.mean([r["dt_s"] for r in rows])),
                "max": float(max(r["dt_s"] for r in rows)),
            },
            "courant_max": max(r["courant"] for r in rows),
            "u_max_m_s": max(r["u_max_m_s"] for r in rows),
        }
    )
    wall = time.perf_counter() - wall_run
    t_run = t_last - (rows[-steps_run - 1]["t_s"] if 0 < steps_run < len(rows) else 0.0)
    metrics["performance"] = {
        "steps_this_run": steps_run,
        "wall_s_this_run": wall,
        "wall_s_per_step": wall / steps_run if steps_run else None,
        "wall_s_per_simulated_s": wall / t_run if steps_run and t_run > 0 else None,
    }


def _subsample(rows, keys, n: int = 200) -> list[list[float]]:
    idx = np.unique(np.linspace(0, len(rows) - 1, min(n, len(rows))).astype(int))
    return [[rows[i][k] for k in keys] for i in idx]


def _write_csv(path: Path, rows: list[dict], comm) -> None:
    if comm.rank != 0 or not rows:
        return
    tmp = path.with_suffix(".csv.tmp")
    with open(tmp, "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0].keys()))
        w.writeheader()
        for r in rows:
            w.writerow({k: (repr(v) if isinstance(v, float) else v) for k, v in r.items()})
    tmp.replace(path)


def option_names() -> set[str]:
    """The keys of the ``[infiltration]`` table."""
    return {f.name for f in fields(InfiltrationJobOptions)}
