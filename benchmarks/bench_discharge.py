"""1C discharge of paper 002's 2D L-S electrode: wall time, steps, Newton iterations, capacity.

    python benchmarks/bench_discharge.py                       # 1C, serial
    mpirun -n 2 python benchmarks/bench_discharge.py           # the same on 2 ranks
    python benchmarks/bench_discharge.py --c-rates 0.5,1 --size 1.0

Structure: ``preset("L-Dry-S")`` of :mod:`electrofem.microstructure` through the config
(``preset = "L-Dry-S"``, ratio 5:5, porosity 0.40, seed 1): 50 µm wide x 146 µm thick, 11.3 µm
particles at the collector, 4.5 µm on top, laterally periodic. Contacts are **overlap** (the
default ``ContactModel``, 8 % of the smaller radius): with 2D gap contacts nearly every disk is
electronically isolated and only the particles cut by the collector would discharge. The
overlaps close some pores into electrolyte pockets (a 2D artefact); these take no net current.
Mesh size ``--size`` µm (default 1.0). Discharge at the C-rates to 2.7 V (or the stoichiometry
event x = 0.995), 1C = 210 mA/g of active mass (4.75 g/cm³), per metre of depth (2D).

Times: ``generate`` (packing + Gmsh + import), ``job`` (``run_discharge``: HalfCell set-up and
JIT, the discharge, files and plots), per rate the wall time of the discharge loop.
Writes ``benchmarks/results/bench_discharge_n<ranks>.json`` and prints a markdown table.
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
from electrofem.jobs.discharge import run_discharge
from electrofem.jobs.generate import run_generate

COMM = MPI.COMM_WORLD
RESULTS = Path(__file__).resolve().parent / "results"


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--c-rates", default="1")
    ap.add_argument("--size", type=float, default=1.0, help="mesh size (µm)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--contacts", choices=["overlap", "gap"], default="gap")
    ap.add_argument(
        "--cbd",
        type=float,
        default=None,
        help="carbon-binder network conductivity S/m (default: 1 with gap contacts, else 0)",
    )
    ap.add_argument("--out", default=None, help="job output directory")
    ap.add_argument("-v", "--verbose", action="store_true", help="log every step")
    args = ap.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if (args.verbose and COMM.rank == 0) else logging.WARNING,
        format="[bench] %(message)s",
    )
    rates = tuple(float(v) for v in args.c_rates.split(","))
    cbd = args.cbd if args.cbd is not None else (1.0 if args.contacts == "gap" else 0.0)
    cfg = parse(
        {
            "seed": args.seed,
            "preset": "L-Dry-S",
            "ratio": "5:5",
            "porosity": 0.40,
            "box": {"width": 50.0, "height": 146.0, "periodic": True},
            "contacts": {"mode": args.contacts},
            "mesh": {"size": args.size},
            "discharge": {
                "c_rates": list(rates),
                "checkpoint_every_s": 120.0,
                "cbd_conductivity_S_m": cbd,
            },
        }
    )
    tag = f"n{COMM.size}_{args.contacts}_cbd{cbd:g}"
    out = Path(args.out or RESULTS / f"bench_discharge_out_{tag}")
    t0 = time.perf_counter()
    emesh, summary = run_generate(cfg, out, comm=COMM, progress=False, picture=False)
    t_gen = time.perf_counter() - t0
    t1 = time.perf_counter()
    rep = run_discharge(emesh, out, cfg.discharge, comm=COMM, progress=args.verbose)
    t_job = time.perf_counter() - t1
    m = rep.metrics
    res = {
        "command": f"mpirun -n {COMM.size} python benchmarks/bench_discharge.py "
        f"--c-rates {args.c_rates} --size {args.size} --contacts {args.contacts} --cbd {cbd:g}",
        "ranks": COMM.size,
        "machine": platform.machine(),
        "cbd_conductivity_S_m": cbd,
        "cells": summary["mesh"]["n_cells"],
        "n_particles": summary["n_particles"],
        "porosity_mesh": summary["mesh"]["porosity_mesh"],
        "collector_contact_fraction": m["collector_contact_fraction"],
        "generate_s": t_gen,
        "job_s": t_job,
        "theoretical_mAh_g": m["theoretical"]["discharge_capacity_mAh_g"],
        "one_C_A_m2": m["one_C_current_density_A_m2"],
        "rates": m["rate_capability"],
        "end_metrics": {k: v["discharge"]["end_metrics"] for k, v in m["rates"].items()},
    }
    if COMM.rank == 0:
        RESULTS.mkdir(parents=True, exist_ok=True)
        path = RESULTS / f"bench_discharge_{tag}.json"
        path.write_text(json.dumps(res, indent=2))
        print(f"\n{res['command']}")
        print(
            f"{res['n_particles']} particles, {res['cells']} cells, porosity "
            f"{res['porosity_mesh']:.3f}, 1C = {res['one_C_A_m2']:.2f} A/m², generate "
            f"{t_gen:.1f} s, job {t_job:.1f} s\n"
        )
        print(
            "| ranks | C-rate | capacity (mAh/g) | of theoretical | stop | steps | Newton its "
            "| discharge wall (s) | c drop (mol/m³) | depleted | x top - bottom |"
        )
        print("|---|---|---|---|---|---|---|---|---|---|---|")
        for r in res["rates"]:
            e = res["end_metrics"][f"{r['c_rate']:g}"]
            print(
                f"| {COMM.size} | {r['c_rate']:g} | {r['capacity_mAh_g']:.2f} | "
                f"{r['utilisation']:.1%} | {r['stop_reason']} | {r['steps']} | "
                f"{r['newton_iterations']} | {r['wall_time_s']:.1f} | {e['c_drop_mol_m3']:.1f} | "
                f"{e['depleted_fraction']:.3f} | {e['x_spread']:.3f} |"
            )
    return res


if __name__ == "__main__":
    main()
