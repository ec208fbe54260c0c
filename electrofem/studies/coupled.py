"""Paper 002's rate study, coupled: each electrode is first infiltrated (the wetting study's
set-up), then discharged as the infiltration left it (issue 13).

Electrodes as :mod:`electrofem.studies.rate` (L-Dry-S, Mix, S-Dry-L at 22 and 29.6 mg/cm²,
porosity 0.55, 50 µm wide, gap contacts with the carbon-binder network). Infiltration with
:func:`electrofem.studies.wetting.paper_step_options` (1e-4 m/s, the paper's steps, contact-line
slip 0.7, σ = 0.035 N/m and θ = 30°, both assumed), run for the same criterion on every
electrode: ``fill_factor`` (1.1) × the time the inflow needs to fill the pore volume. Each
C-rate is then a discharge from rest of the electrode with the infiltration's last wetting
state, and — for the comparison on the same mesh — of the fully wetted electrode.

Folders: ``outdir/<arch>_<loading>/{generate,infiltrate}`` once per electrode, and
``outdir/<arch>_<loading>/<rate>C`` (wetted) and ``<rate>C_full`` per rate. Every stage and
case resumes (:func:`electrofem.studies.series.run_series`, the jobs' checkpoints).
MPI-collective.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import time
from pathlib import Path

from mpi4py import MPI

from ..jobs.discharge import run_discharge
from ..jobs.generate import run_generate
from ..jobs.infiltrate import run_infiltration
from ..jobs.output import CHECKPOINT_DIR
from ..mesh import ElectrodeMesh
from ..physics.electrochem import ElectrochemError, rate_label
from .rate import PAPER_ARCHITECTURES, PAPER_C_RATES, PAPER_LOADINGS_MG_CM2, paper_config
from .series import run_series
from .wetting import paper_step_options

log = logging.getLogger("electrofem")

#: The infiltration criterion of every electrode: this many times the filling time.
FILL_FACTOR = 1.1


def _json(path: Path, comm):
    data = None
    if comm.rank == 0 and path.is_file():
        data = json.loads(path.read_text())
    return comm.bcast(data, root=0)


def _electrode(cfg, edir: Path, comm, infiltration, progress) -> tuple[ElectrodeMesh, dict]:
    """The mesh and the finished infiltration of one electrode (made or read)."""
    gdir, idir = edir / "generate", edir / "infiltrate"
    if (gdir / "mesh.xdmf").is_file() and (gdir / "summary.json").is_file():
        emesh = ElectrodeMesh.read(gdir / "mesh.xdmf", comm)
    else:
        emesh, _ = run_generate(cfg, gdir, comm=comm, progress=progress)
    m = _json(idir / "infiltration.json", comm)
    if m is None or m.get("status") != "done":
        restart = bool(comm.bcast((idir / CHECKPOINT_DIR / "state.json").is_file(), root=0))
        m = run_infiltration(
            emesh, idir, infiltration, comm=comm, progress=progress, restart=restart
        ).metrics
    return emesh, m


def run_coupled_study(
    outdir: str | Path,
    architectures=PAPER_ARCHITECTURES,
    loadings_mg_cm2=PAPER_LOADINGS_MG_CM2,
    c_rates=PAPER_C_RATES,
    *,
    mesh_size_um: float = 2.0,
    fill_factor: float = FILL_FACTOR,
    full_reference: bool = True,
    comm: MPI.Comm = MPI.COMM_WORLD,
    deadline_s: float | None = None,
    on_result=None,
    progress: bool = False,
) -> list[dict]:
    """Every loading × rate × architecture (in that order, so a study cut short has complete
    comparisons at the first loading and rate); one row per case."""
    outdir = Path(outdir)
    infiltration = paper_step_options(fill_factor=fill_factor, snapshots=False)
    cases = [(ld, r, a) for ld in loadings_mg_cm2 for r in c_rates for a in architectures]
    electrodes: dict = {}

    def folder(case):
        loading, rate, arch = case
        return outdir / f"{arch}_{loading:g}" / f"{rate_label(rate)}C"

    def run_case(case, rdir):
        loading, rate, arch = case
        key = f"{arch}_{loading:g}"
        cfg = paper_config(arch, loading, mesh_size_um=mesh_size_um, c_rates=(rate,))
        t0 = time.perf_counter()
        if key not in electrodes:
            electrodes[key] = _electrode(cfg, outdir / key, comm, infiltration, progress)
        emesh, inf = electrodes[key]
        t_inf = time.perf_counter() - t0
        opts = dataclasses.replace(cfg.discharge, checkpoint_every_s=300.0)
        row = {
            "architecture": arch,
            "loading_target_mg_cm2": loading,
            "c_rate": rate,
            "mesh_size_um": mesh_size_um,
            "breakthrough_time_s": inf.get("breakthrough_time_s"),
            "final_air_fraction": inf.get("final_air_fraction"),
            "infiltration_t_final_s": inf.get("t_final_s"),
            "infiltration_steady": inf.get("steady"),
            "electrode_wall_s": t_inf,
            "ranks": comm.size,
        }
        runs = [("wetted", rdir, str(outdir / key / "infiltrate"))]
        if full_reference:
            runs.append(("full", rdir.with_name(rdir.name + "_full"), None))
        for name, d, wetting in runs:
            tj = time.perf_counter()
            o = dataclasses.replace(opts, wetting=wetting)
            try:
                m = run_discharge(emesh, d, o, comm=comm, progress=progress).metrics
                status = "done"
            except ElectrochemError as err:
                m, status = _json(d / "discharge.json", comm) or {}, f"failed: {err}"
            dis = (m.get("rates") or {}).get(rate_label(rate), {}).get("discharge", {})
            row[f"{name}_capacity_mAh_g"] = dis.get("capacity_mAh_g")
            row[f"{name}_stop_reason"] = dis.get("stop_reason")
            row[f"{name}_status"] = status
            row[f"{name}_wall_s"] = time.perf_counter() - tj
            if name == "wetted":
                row["wetting"] = m.get("wetting")
                row["theoretical_mAh_g"] = (m.get("theoretical") or {}).get(
                    "discharge_capacity_mAh_g"
                )
        log.info(
            "%s %g mg/cm2 %sC: wetted %s / full %s mAh/g",
            arch,
            loading,
            rate_label(rate),
            row.get("wetted_capacity_mAh_g"),
            row.get("full_capacity_mAh_g"),
        )
        return row

    return run_series(
        cases,
        folder,
        run_case,
        comm=comm,
        deadline_s=deadline_s,
        on_result=on_result,
        name="coupled study",
    )


def ordering_1c(rows: list[dict], loading: float, key: str = "wetted_capacity_mAh_g"):
    """Is the paper's 1C ordering L-Dry-S > Mix > S-Dry-L reproduced at ``loading``? (None:
    not all three cases are there.)"""
    cap = {
        r["architecture"]: r.get(key)
        for r in rows
        if r["c_rate"] == 1.0 and r["loading_target_mg_cm2"] == loading
    }
    v = [cap.get(a) for a in ("L-Dry-S", "Mix", "S-Dry-L")]
    if any(x is None for x in v):
        return None
    return v[0] > v[1] > v[2]
