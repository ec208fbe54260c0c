"""Electrolyte infiltration of paper 002's 2D L-S electrode: cost per simulated time, time steps,
stability of the semi-implicit capillary step, and whether breakthrough is reached.

    python benchmarks/bench_infiltration.py                          # serial, cf = 1, 20, 200
    mpirun -n 2 python benchmarks/bench_infiltration.py --capillary-factors 20
    python benchmarks/bench_infiltration.py --steps 300 --size 2.0 --radius-factor 0.5

Structure: ``preset = "L-Dry-S"`` (ratio 5:5, porosity 0.40, seed 1) of
:mod:`electrofem.microstructure` through the config, 50 µm wide x 146 µm high, 11.3 µm disks at
the bottom and 4.5 µm on top, laterally periodic, **gap** contacts (2D: open pores; the default
gap 0.08 r leaves 0.2 µm throats), a coarse mesh (``--size`` 2 µm, particle surfaces at
``--radius-factor`` 0.5 x r). The paper's set-up of :mod:`electrofem.jobs.infiltrate`: inlet at
the top (1e-4 m/s, α = 1), outlet at the bottom, symmetry sides, contact angle 30°, σ = 0.035 N/m
(both assumed), starting with an electrolyte film of ``--film`` µm (20) below the inlet, so
that the interface meets the particles from the first step (a dry start spends its first
thousands of steps on an interface that touches nothing).

Each case runs ``--steps`` adaptive steps (``max_steps``; at most ``--max-wall`` s) from t = 0
with a given ``capillary_factor`` (dt ≤ factor × the explicit Brackbill bound; 0: no capillary
bound, only the Courant bound and ``dt_max_s``). Reported per case: steps, simulated time
reached, dt (min/mean/max), the largest Courant number and |u|, α bounds, volume balance, wall
time per step and per simulated second, and the wall time that the measured rate extrapolates
to for the pore-filling time (the order of the breakthrough time). A case that diverges is
reported as such (the stability result for that factor).

Writes ``benchmarks/results/bench_infiltration_n<ranks>.json`` and prints a markdown table; on 2
ranks, compares with the serial file (same factor) if it exists.
"""

from __future__ import annotations

import argparse
import json
import logging
import platform
import time
from pathlib import Path

from mpi4py import MPI

from electrofem.config import parse
from electrofem.jobs.generate import run_generate
from electrofem.jobs.infiltrate import run_infiltration
from electrofem.physics.vof import InfiltrationOptions, VOFDivergenceError

COMM = MPI.COMM_WORLD
RESULTS = Path(__file__).resolve().parent / "results"
log = logging.getLogger("electrofem")


def log_row(label: str, row: dict) -> None:
    """One progress line for a row of the infiltration job."""
    log.info(
        "%s step %d: t %.3e s, dt %.2e s, Co %.2f, |u|max %.2e m/s, S %.4f, its %d, %.1f s",
        label,
        row["step"],
        row["t_s"],
        row["dt_s"],
        row["courant"],
        row["u_max_m_s"],
        row["saturation"],
        row.get("linear_iterations", 0),
        row["wall_s"],
    )


def vs_serial(run: dict, ref: dict) -> dict:
    """Speed-up per step and relative differences of a parallel ``run`` against the serial
    ``ref`` (both with ``wall_s_per_step``, ``saturation_final``, ``t_reached_s``)."""
    return {
        "speedup_per_step": ref["wall_s_per_step"] / run["wall_s_per_step"],
        "saturation_rel_diff": abs(run["saturation_final"] - ref["saturation_final"])
        / ref["saturation_final"],
        "t_reached_rel_diff": abs(run["t_reached_s"] - ref["t_reached_s"]) / ref["t_reached_s"],
    }


def small_domain():
    """3 disks in a 20 x 24 µm box, mesh size 1.5 µm (~440 pore cells): the test geometry."""
    import gmsh

    from electrofem.mesh import ElectrodeMesh, MeshOptions, build_and_mesh
    from electrofem.microstructure import Box, Particles

    parts = Particles(
        Box((20.0, 24.0), periodic=False), [[5.0, 8.0], [14.0, 14.0], [6.0, 19.0]], [3.5, 3.5, 3.0]
    )
    if COMM.rank == 0:
        gmsh.initialize()
        build_and_mesh(parts, MeshOptions(size=1.5, radius_factor=0.5))
    em = ElectrodeMesh.from_gmsh(COMM, 2, {"box_um": [20.0, 24.0]})
    if COMM.rank == 0:
        gmsh.finalize()
    return em


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--steps", type=int, default=150)
    ap.add_argument("--capillary-factors", default="1,20,200")
    ap.add_argument("--size", type=float, default=2.0)
    ap.add_argument("--radius-factor", type=float, default=0.5)
    ap.add_argument("--gap", type=float, default=0.08)
    ap.add_argument("--film", type=float, default=20.0, help="initial electrolyte film (µm)")
    ap.add_argument("--workdir", default="/tmp/electrofem-bench-infiltration")
    ap.add_argument("--tag", default="")
    ap.add_argument(
        "--small",
        action="store_true",
        help="accuracy check: 3 disks in 20 x 24 um, dry start, run to 1.3 x the filling time "
        "(no step cap) at --inlet-speed",
    )
    ap.add_argument("--inlet-speed", type=float, default=1e-4, help="m/s")
    ap.add_argument(
        "--slip", type=float, default=0.0, help="contact-line slip length (cell diameters)"
    )
    ap.add_argument(
        "--fixed-dts",
        default="",
        help="comma-separated fixed flow steps (s): step_control = 'fixed' cases "
        "(semi-implicit tension, alpha sub-cycled), run after the capillary-factor cases",
    )
    ap.add_argument(
        "--max-wall", type=float, default=600.0, help="wall seconds per case (0: no limit)"
    )
    args = ap.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if COMM.rank == 0 else logging.WARNING,
        format="[bench] %(message)s",
    )
    factors = [float(v) for v in args.capillary_factors.split(",") if v]
    fixed = [float(v) for v in args.fixed_dts.split(",") if v]
    runs = [("cf", cf, f"cf{cf:g}") for cf in factors] + [
        ("fixed", dt, f"dt{dt:g}") for dt in fixed
    ]
    work = Path(args.workdir) / f"n{COMM.size}"
    cfg = parse(
        {
            "seed": 1,
            "preset": "L-Dry-S",
            "ratio": "5:5",
            "porosity": 0.40,
            "box": {"width": 50.0, "height": 146.0, "periodic": True},
            "contacts": {"mode": "gap", "gap": args.gap},
            "mesh": {"size": args.size, "radius_factor": args.radius_factor},
        }
    )
    t0 = time.perf_counter()
    if args.small:
        emesh = small_domain()
        summary = {"mesh": {"n_cells": emesh.mesh.topology.index_map(2).size_global}}
    else:
        emesh, summary = run_generate(cfg, work / "mesh", progress=False, picture=False)
    t_gen = time.perf_counter() - t0
    cases = []
    for mode, value, label in runs:
        cf = value if mode == "cf" else 0.0
        opts = InfiltrationOptions(
            capillary_factor=cf,
            step_control="scheduled" if mode == "fixed" else "courant",
            contact_line_slip=args.slip,
            dt_max_s=value if mode == "fixed" else 1e-4,
            max_steps=10**7 if args.small else args.steps,
            inlet_speed_m_s=args.inlet_speed,
            t_end_s=None,
            fill_factor=1.3,
            output_interval_s=1.0,  # fields at t = 0 and the end only
            checkpoint_every_steps=0,
            checkpoint_every_s=0.0,
            max_wall_s=args.max_wall,
            snapshots=False,
            initial_film_um=0.0 if args.small else args.film,
        )

        def every(row, label=label):
            if row["step"] % 25 == 0:
                log_row(label, row)

        t1 = time.perf_counter()
        case = {"case": label, "capillary_factor": cf, "step_control": opts.step_control}
        if mode == "fixed":
            case["fixed_dt_s"] = value
        try:
            rep = run_infiltration(
                emesh, work / label, opts, progress=False, plots=False, step_callback=every
            )
            m = rep.metrics
            case["status"] = "ok"
        except VOFDivergenceError as err:
            m = json.loads((work / label / "infiltration.json").read_text())
            case["status"] = "diverged"
            case["error"] = str(err).split(";")[0]
        wall = time.perf_counter() - t1
        perf = m.get("performance", {})
        per_sim = perf.get("wall_s_per_simulated_s")
        case.update(
            {
                "steps": m.get("steps"),
                "stop_reason": m.get("stop_reason"),
                "t_reached_s": m.get("t_final_s"),
                "dt_s": m.get("dt_s"),
                "courant_max": m.get("courant_max"),
                "u_max_m_s": m.get("u_max_m_s"),
                "alpha_bounds": m.get("alpha_bounds"),
                "volume_balance_max": (m.get("volume_balance") or {}).get("relative_error_max"),
                "saturation_final": m.get("saturation_final"),
                "outlet_fraction_final": m.get("outlet_fraction_final"),
                "breakthrough_time_s": m.get("breakthrough_time_s"),
                "breakthrough_reached": m.get("breakthrough_time_s") is not None,
                "final_air_fraction": m.get("final_air_fraction"),
                "wall_s_job": wall,
                "wall_s_per_step": perf.get("wall_s_per_step"),
                "wall_s_per_simulated_s": per_sim,
                "fill_time_s": m.get("fill_time_s"),
                "extrapolated_wall_h_to_fill_time": per_sim * m["fill_time_s"] / 3600
                if per_sim and m.get("fill_time_s")
                else None,
            }
        )
        cases.append(case)
        log.info("%s: %s", label, json.dumps(case))
    out = {
        "benchmark": "bench_infiltration",
        "command": f"mpirun -n {COMM.size} python benchmarks/bench_infiltration.py "
        + " ".join(argv if argv is not None else __import__("sys").argv[1:]),
        "mpi_ranks": COMM.size,
        "machine": platform.platform(),
        "structure": "3 disks in 20 x 24 um (small)"
        if args.small
        else "L-Dry-S 5:5, porosity 0.40, 50 x 146 um, gap contacts, seed 1",
        "inlet_speed_m_s": args.inlet_speed,
        "contact_line_slip": args.slip,
        "initial_film_um": args.film,
        "mesh": {
            "size_um": args.size,
            "radius_factor": args.radius_factor,
            "gap": args.gap,
            "cells": summary["mesh"]["n_cells"],
            "pore_cells": m.get("pore_cells"),
            "h_min_m": m.get("h_min_m"),
            "generate_s": t_gen,
        },
        "cases": cases,
    }
    if COMM.size > 1:
        serial = RESULTS / f"bench_infiltration_n1{args.tag}.json"
        if serial.is_file():
            ref = {
                c.get("case", f"cf{c['capillary_factor']:g}"): c
                for c in json.loads(serial.read_text())["cases"]
            }
            for c in cases:
                r = ref.get(c["case"])
                if r and r.get("steps") == c.get("steps") and r.get("saturation_final"):
                    c["vs_serial"] = vs_serial(c, r)
    if COMM.rank == 0:
        RESULTS.mkdir(exist_ok=True)
        path = RESULTS / f"bench_infiltration_n{COMM.size}{args.tag}.json"
        path.write_text(json.dumps(out, indent=2))
        print(
            "| ranks | case | status | steps | t reached (s) | dt mean (s) | Co max | "
            "|u|max (m/s) | wall/step (s) | wall per sim s (s) | extrapolated to fill (h) | "
            "breakthrough (s) | final air |"
        )
        print("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
        for c in cases:
            dt = (c["dt_s"] or {}).get("mean")
            ex = c["extrapolated_wall_h_to_fill_time"]
            nan = float("nan")
            print(
                f"| {COMM.size} | {c['case']} | {c['status']} | {c['steps']} | "
                f"{c['t_reached_s']:.3e} | {dt or float('nan'):.2e} | "
                f"{c['courant_max'] or float('nan'):.2f} | {c['u_max_m_s'] or float('nan'):.2e} | "
                f"{c['wall_s_per_step'] or float('nan'):.3f} | "
                f"{c['wall_s_per_simulated_s'] or float('nan'):.3e} | "
                f"{ex if ex is not None else float('nan'):.3g} | "
                f"{c['breakthrough_time_s'] or float('nan'):.4g} | "
                f"{nan if c['final_air_fraction'] is None else c['final_air_fraction']:.4f} |"
            )
        print(f"-> {path}")
    return out


if __name__ == "__main__":
    main()
