"""Electrolyte infiltration (two-phase VOF) on a small 3D electrode: a capability demonstration
and its cost per step, on 1 and 2 ranks.

    python benchmarks/bench_vof_3d.py
    mpirun -n 2 python benchmarks/bench_vof_3d.py

Structure: one layer of equal spheres (``--diameter`` 6 µm, ``--porosity`` 0.5, ``--seed`` 1)
packed by :mod:`electrofem.microstructure` in a ``--box`` (20 µm) cube with walls on the sides
(``--height`` makes it a ``box × box × height`` prism; several ``--diameter`` values make a
mixed layer of those sizes in equal volume fractions, e.g. issue 16's bidisperse electrode:
``--box 40 --height 60 --diameter 11.3 4.5``),
meshed at ``--size`` (2.5 µm) with particle surfaces at ``--radius-factor`` (0.6) × r and the
contact necks at ``--neck-factor`` (1) × the neck radius, at least ``--size-min`` (0.5 µm): a
coarse mesh (~33k tetrahedra, ~22k in the pores), because every step factorises the 3D
Taylor–Hood system with MUMPS (the cost grows fast with the pore cells). The
paper's set-up of :mod:`electrofem.jobs.infiltrate` in 3D: inlet at the top (z = H, 1e-4 m/s,
α = 1), outlet at the bottom, slip on the four sides, no-slip particle walls with θ = 30°,
σ = 0.035 N/m, starting with an electrolyte film of ``--film`` µm below the inlet. Runs
``--steps`` adaptive steps (capillary factor ``--capillary-factor``, 20 by default).

Reports the mesh (cells, pore cells, h_min), the wall time of each phase of a step (the
Navier–Stokes solve, the α̃/normal/curvature update, the face-flux projection and the FCT
transport, as ``bench_vof_step_profile.py`` splits them), steps, simulated time, dt, wall
time (job and per step), the volume balance (relative to the inflow, which is tiny over a
few steps, and to the electrolyte volume), α bounds, Courant number, |u|max and the
saturation. Writes ``benchmarks/results/bench_vof_3d_n<ranks>.json``; on 2 ranks, compares
with the serial file (same steps): speed-up per step and the relative difference of the
saturation.
"""

from __future__ import annotations

import argparse
import itertools
import json
import logging
import platform
import resource
import sys
import time
from collections import defaultdict
from pathlib import Path

from bench_infiltration import log_row, vs_serial  # benchmarks/ is sys.path[0]
from bench_vof_step_profile import timed
from mpi4py import MPI

from electrofem.config import parse
from electrofem.jobs.generate import run_generate
from electrofem.jobs.infiltrate import run_infiltration
from electrofem.physics.vof import InfiltrationOptions
from electrofem.physics.vof.flow import TwoPhaseFlow
from electrofem.physics.vof.transport import AlphaTransport

COMM = MPI.COMM_WORLD
RESULTS = Path(__file__).resolve().parent / "results"
log = logging.getLogger("electrofem")


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--box", type=float, default=20.0, help="cube edge (µm)")
    ap.add_argument("--height", type=float, default=None, help="box height (µm; --box)")
    ap.add_argument(
        "--diameter", type=float, nargs="+", default=[6.0], help="sphere diameter(s) (µm)"
    )
    ap.add_argument("--porosity", type=float, default=0.5)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--size", type=float, default=2.5, help="mesh size (µm)")
    ap.add_argument("--radius-factor", type=float, default=0.6)
    ap.add_argument("--size-min", type=float, default=0.5, help="smallest element (µm)")
    ap.add_argument("--neck-factor", type=float, default=1.0)
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--film", type=float, default=4.0, help="initial electrolyte film (µm)")
    ap.add_argument("--capillary-factor", type=float, default=20.0)
    ap.add_argument(
        "--dt", type=float, default=None, help="scheduled steps of this size (s; default adaptive)"
    )
    ap.add_argument("--linear-solver", default="auto", choices=("auto", "lu", "iterative"))
    ap.add_argument("--petsc", action="append", default=[], metavar="KEY=VALUE")
    ap.add_argument("--workdir", default="/tmp/electrofem-bench-vof3d")
    ap.add_argument("--tag", default="")
    args = ap.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if COMM.rank == 0 else logging.WARNING,
        format="[bench] %(message)s",
    )
    work = Path(args.workdir) / f"n{COMM.size}"
    L = args.box
    H = args.height or L
    frac = 1.0 / len(args.diameter)
    totals, counts = defaultdict(float), defaultdict(int)
    for cls, name in (
        (TwoPhaseFlow, "solve"),
        (TwoPhaseFlow, "update_interface"),
        (AlphaTransport, "face_fluxes"),
        (AlphaTransport, "advect"),
    ):
        timed(cls, name, totals, counts)
    cfg = parse(
        {
            "seed": args.seed,
            "box": {"width": L, "depth": L, "height": H, "periodic": False},
            "layers": [
                {
                    "name": "A",
                    "thickness_fraction": 1.0,
                    "porosity": args.porosity,
                    "particles": [
                        {"phase": "active", "volume_fraction": frac, "diameter": d}
                        for d in args.diameter
                    ],
                }
            ],
            "mesh": {
                "size": args.size,
                "radius_factor": args.radius_factor,
                "size_min": args.size_min,
                "neck_factor": args.neck_factor,
            },
        }
    )
    t0 = time.perf_counter()
    emesh, summary = run_generate(cfg, work / "mesh", progress=False, picture=False)
    t_gen = time.perf_counter() - t0
    opts = InfiltrationOptions(
        capillary_factor=args.capillary_factor,
        **({"step_control": "scheduled", "dt_max_s": args.dt} if args.dt else {}),
        max_steps=args.steps,
        t_end_s=1.0,  # the step count ends the run
        initial_film_um=args.film,
        output_interval_s=1.0,  # fields at t = 0 and at the end only
        checkpoint_every_steps=0,
        checkpoint_every_s=0.0,
        snapshots=False,
        n_slabs=10,
        linear_solver=args.linear_solver,
        petsc_options=dict(kv.split("=", 1) for kv in args.petsc),
    )

    def every(row):
        log_row("3D", row)

    t1 = time.perf_counter()
    rep = run_infiltration(
        emesh, work / "run", opts, progress=False, plots=False, step_callback=every
    )
    wall = time.perf_counter() - t1
    m = rep.metrics
    perf = m["performance"]
    vb = m["volume_balance"]  # electrolyte volumes (m³ in 3D; keys named as in 2D)
    out = {
        "benchmark": "bench_vof_3d",
        "command": (f"mpirun -n {COMM.size} " if COMM.size > 1 else "")
        + "python benchmarks/bench_vof_3d.py "
        + " ".join(argv if argv is not None else sys.argv[1:]),
        "mpi_ranks": COMM.size,
        "machine": platform.platform(),
        "structure": {
            "box_um": [L, L, H],
            "sphere_diameter_um": args.diameter,
            "target_porosity": args.porosity,
            "seed": args.seed,
            "n_particles": summary.get("n_particles"),
            "porosity": summary.get("porosity"),
            "porosity_mesh": m["porosity_mesh"],
        },
        "mesh": {
            "size_um": args.size,
            "radius_factor": args.radius_factor,
            "size_min_um": args.size_min,
            "neck_factor": args.neck_factor,
            "cells": summary["mesh"]["n_cells"],
            **{
                k: summary["mesh"].get(k)
                for k in ("n_vertices", "min_quality", "mean_quality", "seconds_mesh")
            },
            "pore_cells": m["pore_cells"],
            "flow_dofs": m["flow_dofs"],
            "h_min_m": m["h_min_m"],
            "generate_s": t_gen,
        },
        "options": {
            "capillary_factor": args.capillary_factor,
            "initial_film_um": args.film,
            "inlet_speed_m_s": opts.inlet_speed_m_s,
            "contact_angle_deg": opts.contact_angle_deg,
        },
        "steps": m["steps"],
        "t_reached_s": m["t_final_s"],
        "dt_s": m["dt_s"],
        "courant_max": m["courant_max"],
        "u_max_m_s": m["u_max_m_s"],
        "alpha_bounds": m["alpha_bounds"],
        "volume_balance_max": m["volume_balance"]["relative_error_max"],  # / inflow (tiny)
        "volume_balance_of_volume": abs(vb["inflow_m2"] - vb["outflow_m2"] - vb["stored_change_m2"])
        / (m["saturation_final"] * m["pore_volume_m2"]),
        "div_residual_max": max(r["div_residual"] for r in rep.rows),
        "saturation_initial": rep.rows[0]["saturation"]
        - rep.rows[0]["inflow_cum_m2"] / m["pore_volume_m2"],
        "saturation_final": m["saturation_final"],
        "wall_s_job": wall,
        "wall_s_steps": perf["wall_s_this_run"],
        "wall_s_per_step": perf["wall_s_per_step"],
        "phase_s": {
            "navier_stokes_solve": totals["solve"],
            "alpha_smooth_normal_curvature": totals["update_interface"],
            "flux_projection": totals["face_fluxes"],
            "alpha_transport_fct": totals["advect"],
        },
        "ns_solves": counts["solve"],
        "alpha_substeps": counts["advect"],
        "linear_solver": m["linear_solver"],
        "linear_iterations": [r["linear_iterations"] for r in rep.rows],
        "peak_rss_gb_per_rank": COMM.allreduce(
            resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6, op=MPI.MAX
        ),
        "step_wall_s": [b["wall_s"] - a["wall_s"] for a, b in itertools.pairwise(rep.rows)],
        "status": m["status"],
    }
    if COMM.size > 1:
        serial = RESULTS / f"bench_vof_3d_n1{args.tag}.json"
        if serial.is_file():
            r = json.loads(serial.read_text())
            if (
                r.get("steps") == out["steps"]
                and r.get("mesh", {}).get("cells") == out["mesh"]["cells"]
            ):
                out["vs_serial"] = vs_serial(out, r)
    if COMM.rank == 0:
        RESULTS.mkdir(exist_ok=True)
        path = RESULTS / f"bench_vof_3d_n{COMM.size}{args.tag}.json"
        path.write_text(json.dumps(out, indent=2))
        print(json.dumps(out, indent=2))
        print(f"-> {path}")
    return out


if __name__ == "__main__":
    main()
