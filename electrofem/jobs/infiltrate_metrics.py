"""What the infiltration job measures and records: the probe (outlet fraction, pore volume, air
profile), the metric definitions, the summary metrics of a run, the breakthrough crossing, the
``infiltration.json`` header, and the field outputs (XDMF series, 2D α maps).

MPI-collective where it reduces over ranks (:class:`Probe`, :class:`FieldOutput`,
:func:`snapshot`); the rest is plain Python on the rows of ``infiltration.csv``.

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
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
from mpi4py import MPI

from .. import __version__
from ..physics.state import gather
from ..physics.vof.options import PARAMETER_SOURCES
from ..physics.wetting import INDEX_NAME, WettingState
from .output import XDMFSeries, write_json

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


class Probe:
    """Outlet fraction, volumes and the air profile of a
    :class:`~electrofem.physics.vof.VOFSolver` state (MPI-reduced).

    Boundary facets belong to their one (owned) cell, so boundary sums over ranks count every
    facet once. In 3D the "lengths" are facet areas (m²), the "areas" cell volumes (m³) and the
    thickness coordinate is z."""

    def __init__(self, s, height_m: float, n_slabs: int):
        self.s = s
        self.comm = s.comm
        self.out_cells, self.out_len = s.boundary_facets("outlet")
        self.outlet_length = self._sum(self.out_len.sum())
        self.inlet_length = self._sum(s.boundary_facets("inlet")[1].sum())
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
        a = self.s.alpha_cells()
        num = self._sum(np.dot(self.out_len, np.clip(a[self.out_cells], 0.0, 1.0)))
        return num / self.outlet_length if self.outlet_length > 0 else float("nan")

    def air_profile(self) -> list[dict]:
        a = np.clip(self.s.alpha_cells()[: self.s.n_owned], 0.0, 1.0)
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


def solver_record(o, dim: int) -> dict:
    """``parameters.solver`` of ``infiltration.json``: the solver's settings under the names
    that record has always had (those of the solver's former option classes)."""
    return {
        "inlet_speed": o.inlet_speed_m_s,
        "inlet_alpha": o.inlet_alpha,
        "courant_max": o.courant_max,
        "courant_blowup": o.courant_blowup,
        "dt_max": o.dt_max_s,
        "dt_min": o.dt_min_s,
        "capillary_factor": o.capillary_factor,
        "semi_implicit_tension": o.semi_implicit_tension,
        "compression": o.compression,
        "smoothing": o.smoothing,
        "curvature_smoothing": o.curvature_smoothing,
        "curvature": o.curvature,
        "curvature_fit_radius": o.curvature_fit_radius,
        "quadrature_degree": o.quadrature_degree,
        "advect_alpha": o.advect_alpha,
        "contact_line_slip": o.contact_line_slip,
        "step_control": o.step_control,
        "dt_schedule": [list(e) for e in o.schedule()],
        "flow_courant_max": o.flow_courant_max,
        "petsc_options": o.ns_petsc_options(),
        "fluid": {
            "rho_liquid": o.rho_electrolyte_kg_m3,
            "rho_gas": o.rho_air_kg_m3,
            "mu_liquid": o.mu_electrolyte_Pa_s,
            "mu_gas": o.mu_air_Pa_s,
            "sigma": o.surface_tension_N_m,
            "gravity": list(o.gravity(dim)),
            "contact_angle": o.contact_angle_deg,
        },
    }


def header_metrics(s, emesh, mesh_path, box, o, probe: Probe, t_end: float, dt_out: float):
    """The ``infiltration.json`` of a run before its first step (status ``running``)."""
    comm = s.comm
    dim = s.tdim
    q_in = o.inlet_speed_m_s * probe.inlet_length  # m²/s per metre of depth (3D: m³/s)
    return {
        "version": __version__,
        "status": "running",
        "parameters": {
            "options": o.record(),
            "t_end_s": t_end,
            "output_interval_s": dt_out,
            "sources": PARAMETER_SOURCES,
            "boundaries": {
                "top": f"velocity inlet {o.inlet_speed_m_s:g} m/s, alpha = 1",
                "bottom": "outlet (traction-free)",
                "sides": "symmetry (slip)" + (" on the x and y faces" if dim == 3 else ""),
                "particles": f"no-slip walls, static contact angle {o.contact_angle_deg:g} deg",
            },
            "solver": solver_record(o, dim),
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
        "flow_dofs": s.flow.n_dofs if s.flow is not None else 0,
        "linear_solver": s.flow.linear_solver if s.flow is not None else None,
        "pore_volume_m2": probe.pore_area,
        "porosity_mesh": probe.pore_area
        / (box[0] * box[1] * 1e-12 if dim == 2 else box[0] * box[1] * box[2] * 1e-18),
        "inlet_open_length_m": probe.inlet_length,
        "outlet_open_length_m": probe.outlet_length,
        "inflow_rate_m2_s": q_in,
        "fill_time_s": probe.pore_area / q_in,
        "capillary_number": o.mu_electrolyte_Pa_s
        * o.inlet_speed_m_s
        / max(o.surface_tension_N_m, 1e-300),
        "mpi_ranks": comm.size,
    }


def crossing_time(rows: list[dict], key: str, level: float) -> float | None:
    """The first time ``rows[*][key]`` reaches ``level``, linearly interpolated between the
    two rows that bracket it (from ``(0, 0)`` before the first row); ``None`` if never."""
    prev_t, prev_v = 0.0, 0.0
    for r in rows:
        v = r[key]
        if v >= level:
            if v == prev_v:
                return r["t_s"]
            return prev_t + (level - prev_v) * (r["t_s"] - prev_t) / (v - prev_v)
        prev_t, prev_v = r["t_s"], v
    return None


def subsample(rows, keys, n: int = 200) -> list[list[float]]:
    """``keys`` of at most ``n`` rows, evenly spread (first and last included)."""
    idx = np.unique(np.linspace(0, len(rows) - 1, min(n, len(rows))).astype(int))
    return [[rows[i][k] for k in keys] for i in idx]


def finish_metrics(metrics, rows, probe, level, t_end, wall_run, steps_run, v0) -> None:
    """Fill the summary metrics from the rows and the current state (collective: the air
    profile). ``wall_run``: the wall clock when this run's stepping started; ``steps_run``:
    the steps of this run (a restart counts its own)."""
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
            "breakthrough_time_s": crossing_time(rows, "outlet_fraction", level),
            "breakthrough_time_flux_s": crossing_time(rows, "outlet_fraction_flux", level),
            "wall_s_to_breakthrough": next(
                (r["wall_s"] for r in rows if r["outlet_fraction"] >= level), None
            ),
            "outlet_fraction_final": last["outlet_fraction"],
            "outlet_fraction_max": max(r["outlet_fraction"] for r in rows),
            "saturation_final": last["saturation"],
            "final_air_fraction": 1.0 - last["saturation"],
            "steady": bool(np.ptp(sat[recent]) < 1e-3) and t_last >= 0.999 * t_end,
            "saturation_series": subsample(rows, ("t_s", "saturation", "outlet_fraction")),
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


class FieldOutput:
    """The XDMF time series ``fields.xdmf`` of α (DG0), u (vector P1 interpolant of the P2
    velocity) and p (P1); ``append``: continue the file of a restarted run."""

    def __init__(self, s, path: Path, append: bool):
        from dolfinx import fem

        self.s = s
        V1v = fem.functionspace(s.mesh, ("Lagrange", 1, (s.gdim,)))
        self.u = fem.Function(V1v, name="u")
        self.p = fem.Function(s.Q, name="p")
        self.alpha = fem.Function(s.V0, name="alpha")
        self.series = XDMFSeries(path, s.mesh, append=append)

    def write(self, t: float) -> None:
        s = self.s
        self.u.interpolate(s.u)
        self.p.x.array[:] = s.p.x.array
        self.alpha.x.array[:] = s.alpha.x.array
        self.series.write(t, (self.alpha, self.u, self.p))


class WettingOutput:
    """The wetting states of a run: ``wetting/state_<index>.npz`` (α of the pore cells with
    their centroids in µm, the time and the fingerprint of the parent mesh; see
    :mod:`electrofem.physics.wetting`) and ``wetting/index.json`` (``[{"file", "time_s"}]``,
    by time). A fresh run starts a new index (and removes the former states); a restarted
    one appends to it: a state rewritten after the restart replaces the entry of its file and
    any later one (left by the interrupted run)."""

    def __init__(self, folder: Path, fingerprint: str, comm, fresh: bool):
        self.folder = Path(folder)
        self.fingerprint = fingerprint
        self.comm = comm
        if fresh and comm.rank == 0 and self.folder.is_dir():
            for old in (*self.folder.glob("state_*.npz"), self.folder / INDEX_NAME):
                old.unlink(missing_ok=True)
        comm.barrier()

    def write(self, s, index: int) -> None:
        """The solver's current α as state number ``index`` (collective; rank 0 writes). The
        solver's cells are the parent's electrolyte cells, in metres: centroids × 1e6 = µm."""
        alpha = gather(self.comm, s.alpha_cells()[: s.n_owned])
        xy = gather(self.comm, s.centroid[: s.n_owned] * 1e6)
        entries = None
        if self.comm.rank == 0:
            state = WettingState(float(s.t), alpha, xy, self.fingerprint)
            name = f"state_{index:04d}.npz"
            state.save(self.folder / name)
            path = self.folder / INDEX_NAME
            try:
                old = json.loads(path.read_text()) if path.is_file() else []
                old = [e for e in old if e["file"] != name and e["time_s"] < state.time_s]
            except (OSError, ValueError, KeyError, TypeError):  # unreadable: start it again
                old = []
            entries = [*old, {"file": name, "time_s": state.time_s}]
        write_json(self.folder / INDEX_NAME, entries, self.comm, indent=1)


def snapshot(s, path: Path, title: str, box_um) -> None:
    """α map of a 2D run (owned cells gathered to rank 0; µm)."""
    n = s.n_owned
    tri = s.mesh.geometry.x[s.mesh.geometry.dofmaps[0][:n, :3], :2] * 1e6
    tris = gather(s.comm, tri)
    vals = gather(s.comm, s.alpha_cells()[:n])
    if s.comm.rank == 0:
        from ..plot import plot_alpha_map

        plot_alpha_map(tris, vals, box_um, path, title)
