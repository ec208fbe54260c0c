"""Paper 002's rate study (its Figure 2f/g) as a series of :mod:`electrofem.jobs.discharge` runs:
electrode architectures × active-material loadings × C-rates, each discharge from rest, and the
table of delivered capacities.

Used by ``benchmarks/bench_paper_discharge.py`` and ``examples/paper_rate_study.py``.
MPI-collective.
"""

from __future__ import annotations

import csv
import json
import logging
import time
from dataclasses import replace
from pathlib import Path

from mpi4py import MPI

from ..jobs.discharge import run_discharge
from ..physics.electrochem import ElectrochemError, rate_label
from .series import run_series

log = logging.getLogger("electrofem")

# --- paper 002's rate study (Figure 2f/g) ------------------------------------------------------

#: Paper 002, Figure 2: the electrode architectures (dried between the two coatings), the
#: active-material loadings (mg/cm²) and the C-rates of this study.
PAPER_ARCHITECTURES = ("L-Dry-S", "Mix", "S-Dry-L")
PAPER_LOADINGS_MG_CM2 = (29.6, 22.0)
PAPER_C_RATES = (1.0, 0.5, 0.1)
#: Uncalendered porosity of paper 002's electrodes ("between 55 % and 60 %, labelled 55 %").
PAPER_POROSITY = 0.55


def paper_thickness_um(loading_mg_cm2: float, porosity: float, density_g_cm3: float) -> float:
    """Electrode thickness (µm) that carries ``loading_mg_cm2`` of active material at the given
    porosity: ``H = m / (ρ (1 − ε))``. In 2D the solid area fraction of the section stands for
    the solid volume fraction (the section is extruded), so the loading per projected area of
    the 2D domain equals the paper's when ``H`` is chosen this way; the carbon-binder (4 wt %
    in the paper) is not resolved and takes no volume (homogenised in the pores)."""
    return loading_mg_cm2 * 1e-3 / (density_g_cm3 * (1.0 - porosity)) * 1e4


def paper_config(
    architecture: str,
    loading_mg_cm2: float,
    *,
    porosity: float = PAPER_POROSITY,
    density_g_cm3: float = 4.75,
    width_um: float = 50.0,
    mesh_size_um: float = 1.0,
    seed: int = 1,
    c_rates=(1.0,),
    cbd_conductivity_S_m: float = 1.0,
):
    """A :class:`~electrofem.config.Config` of one of paper 002's 2D electrodes at a loading.

    The box is ``width_um`` wide (laterally periodic), ``paper_thickness_um(...)`` thick; the
    preset's 11.3 / 4.5 µm particles, L:S = 5:5, gap contacts (open pores) with the carbon-binder
    network ``cbd_conductivity_S_m`` as the electronic path (see the module docstring). The
    Li metal sits on the top face (no separator band)."""
    from ..config import parse

    h = paper_thickness_um(loading_mg_cm2, porosity, density_g_cm3)
    return parse(
        {
            "seed": seed,
            "preset": architecture,
            "ratio": "5:5",
            "porosity": porosity,
            "box": {"width": width_um, "height": round(h, 4), "periodic": True},
            "contacts": {"mode": "gap"},
            "density": {"active": density_g_cm3},
            "mesh": {"size": mesh_size_um},
            "discharge": {
                "c_rates": list(c_rates),
                "cbd_conductivity_S_m": cbd_conductivity_S_m,
                "checkpoint_every_s": 300.0,
            },
        }
    )


def run_rate_study(
    outdir: str | Path,
    architectures=PAPER_ARCHITECTURES,
    loadings_mg_cm2=PAPER_LOADINGS_MG_CM2,
    c_rates=PAPER_C_RATES,
    *,
    porosity: float = PAPER_POROSITY,
    density_g_cm3: float = 4.75,
    width_um: float = 50.0,
    mesh_size_um: float = 1.0,
    seed: int = 1,
    cbd_conductivity_S_m: float = 1.0,
    comm: MPI.Comm = MPI.COMM_WORLD,
    skip_done: bool = True,
    on_result=None,
    deadline_s: float | None = None,
) -> list[dict]:
    """Paper 002's rate study: every architecture × loading × C-rate, each discharge from rest.

    Runs are ordered loading-major (as given), then rate (as given), then architecture, so a
    cut-short study still has complete comparisons at the first loading and rate. Each run is
    its own :func:`run_discharge` job in ``outdir/<arch>_<loading>/<rate>C`` (the mesh is
    generated once per architecture and loading into ``outdir/<arch>_<loading>/mesh``).
    ``skip_done``: a run whose ``result.json`` exists is read, not rerun. ``on_result(results)``
    runs after every run (e.g. to rewrite a table). ``deadline_s``: no new run starts after
    that many wall seconds. Returns one dict per run (capacity, stop reason, wall time,
    measured loading and thickness, end-of-discharge polarization metrics)."""
    from ..jobs.generate import run_generate
    from ..mesh import ElectrodeMesh

    outdir = Path(outdir)
    meshes: dict = {}
    # loading-major, then rate, then architecture
    cases = [(ld, r, a) for ld in loadings_mg_cm2 for r in c_rates for a in architectures]

    def folder(case):
        loading, rate, arch = case
        return outdir / f"{arch}_{loading:g}" / f"{rate_label(rate)}C"

    def run_case(case, rdir):
        loading, rate, arch = case
        key = f"{arch}_{loading:g}"
        cfg = paper_config(
            arch,
            loading,
            porosity=porosity,
            density_g_cm3=density_g_cm3,
            width_um=width_um,
            mesh_size_um=mesh_size_um,
            seed=seed,
            c_rates=(rate,),
            cbd_conductivity_S_m=cbd_conductivity_S_m,
        )
        mdir = outdir / key / "mesh"
        tg = time.perf_counter()
        if key not in meshes:
            if (mdir / "mesh.xdmf").is_file():
                meshes[key] = ElectrodeMesh.read(mdir / "mesh.xdmf", comm)
            else:
                meshes[key], _ = run_generate(cfg, mdir, comm=comm, progress=False)
        t_gen = time.perf_counter() - tg
        opts = replace(cfg.discharge, active_density_g_cm3=density_g_cm3)
        tj = time.perf_counter()
        status, err = "done", None
        try:
            m = run_discharge(meshes[key], rdir, opts, comm=comm, progress=False).metrics
        except ElectrochemError as e:
            status, err = "failed", str(e)
            m = None
            if comm.rank == 0:
                m = json.loads((rdir / "discharge.json").read_text())
            m = comm.bcast(m, root=0)
        t_job = time.perf_counter() - tj
        lab = rate_label(rate)
        d = m["rates"].get(lab, {}).get("discharge", {})
        q_event = None
        if comm.rank == 0 and (rdir / f"discharge_{lab}C.csv").is_file():
            with open(rdir / f"discharge_{lab}C.csv") as fh:
                q_event = event_capacity(list(csv.DictReader(fh)), opts.v_min_V, opts.x_stop_max)
        q_event = comm.bcast(q_event, root=0)
        res = {
            "architecture": arch,
            "loading_target_mg_cm2": loading,
            "c_rate": rate,
            "status": status,
            "error": err,
            "capacity_mAh_g": d.get("capacity_mAh_g"),
            "capacity_event_mAh_g": q_event,
            "utilisation": (
                d["capacity_mAh_g"] / m["theoretical"]["discharge_capacity_mAh_g"] if d else None
            ),
            "stop_reason": d.get("stop_reason"),
            "final_voltage_V": d.get("final_voltage_V"),
            "steps": d.get("steps"),
            "newton_iterations": d.get("newton_iterations"),
            "discharge_wall_s": d.get("wall_time_s"),
            "job_wall_s": t_job,
            "mesh_s": t_gen,
            "ranks": comm.size,
            "loading_mesh_mg_cm2": m["loading_mg_cm2"],
            "box_um": m["box_um"],
            "electrode_thickness_um": m["electrode_thickness_um"],
            "porosity_target": porosity,
            "n_cells": meshes[key].mesh.topology.index_map(2).size_global
            if meshes[key].dim == 2
            else None,
            "one_C_current_density_A_m2": m["one_C_current_density_A_m2"],
            "theoretical_mAh_g": m["theoretical"]["discharge_capacity_mAh_g"],
            "end_metrics": d.get("end_metrics", {}),
            "outdir": str(rdir),
        }
        log.info(
            "%s %g mg/cm2 %sC: %s mAh/g (%s), %.0f s",
            arch,
            loading,
            lab,
            res["capacity_mAh_g"],
            res["stop_reason"],
            t_job,
        )
        return res

    return run_series(
        cases,
        folder,
        run_case,
        comm=comm,
        skip_done=skip_done,
        deadline_s=deadline_s,
        on_result=on_result,
        name="rate study",
    )


def event_capacity(rows: list[dict], v_min_V: float, x_stop_max: float) -> float | None:
    """Discharge capacity (mAh/g) at the end-of-discharge event, located by linear
    interpolation between the last two accepted steps of the discharge ``rows`` (CSV rows of
    the job): where the voltage crosses ``v_min_V`` or the largest particle stoichiometry
    crosses ``x_stop_max``, whichever comes first. The job's own capacity is that of the
    step that crossed (the time step at the end is up to ``dt_max_fraction`` of 1/C, i.e. up to
    about 2 mAh/g at the default 1 %); this removes that quantisation. None if no event."""
    rr = [r for r in rows if r.get("phase", "discharge") == "discharge"]
    if len(rr) < 2:
        return None
    a, b = rr[-2], rr[-1]
    qa, qb = float(a["capacity_mAh_g"]), float(b["capacity_mAh_g"])
    fracs = []
    va, vb = float(a["voltage_V"]), float(b["voltage_V"])
    if vb <= v_min_V < va:
        fracs.append((va - v_min_V) / (va - vb))
    xa, xb = float(a["x_max"]), float(b["x_max"])
    if xa < x_stop_max <= xb:
        fracs.append((x_stop_max - xa) / (xb - xa))
    if not fracs:
        return None
    return qa + min(fracs) * (qb - qa)


def rate_study_table(results: list[dict]) -> list[dict]:
    """Figure 2f/g-like table rows: one per loading × architecture, a column per C-rate."""
    rows: dict = {}
    for r in results:
        key = (r["loading_target_mg_cm2"], r["architecture"])
        row = rows.setdefault(
            key,
            {
                "loading_mg_cm2": r["loading_target_mg_cm2"],
                "loading_mesh_mg_cm2": r["loading_mesh_mg_cm2"],
                "architecture": r["architecture"],
                "thickness_um": r["electrode_thickness_um"],
            },
        )
        cap = r["capacity_mAh_g"]
        row[f"{rate_label(r['c_rate'])}C_mAh_g"] = cap
        row[f"{rate_label(r['c_rate'])}C_event_mAh_g"] = r.get("capacity_event_mAh_g")
        row[f"{rate_label(r['c_rate'])}C_stop"] = r["stop_reason"]
        row[f"{rate_label(r['c_rate'])}C_wall_s"] = r["job_wall_s"]
    return list(rows.values())
