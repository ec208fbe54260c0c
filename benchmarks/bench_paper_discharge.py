"""Paper 002's rate study (Figure 2f/g) with the resolved 2D half cell.

    python benchmarks/bench_paper_discharge.py                         # the whole study
    python benchmarks/bench_paper_discharge.py --loadings 29.6 --c-rates 1,0.5
    mpirun -n 2 python benchmarks/bench_paper_discharge.py --archs L-Dry-S --loadings 29.6 \
        --c-rates 1 --out benchmarks/results/paper_study_out_n2 --tag n2

Electrodes: ``preset`` L-Dry-S, Mix, S-Dry-L of :mod:`electrofem.microstructure` (11.3 / 4.5 µm
disks, L:S = 5:5 by thickness, Mix 5:5 by volume), 50 µm wide, laterally periodic, seed 1,
porosity 0.55 (the paper's uncalendered electrodes of Figure 2: "between 55 % and 60 %").

Loadings: the paper's 22 and 29.6 mg/cm² are active mass per electrode area (4.6 and
6.2 mAh/cm² at 210 mAh/g). The 2D section is taken as extruded: its solid area fraction is the
solid volume fraction, so the thickness that carries the loading is
``H = m / (ρ (1 − ε)) = 102.9 µm`` (22) and ``138.5 µm`` (29.6) with ρ = 4.75 g/cm³ (the
paper: 141.5 µm at 29.6 mg/cm² uncalendered). The loading of the actual mesh is measured and
reported (``loading_mesh_mg_cm2``). The 4 wt % carbon and binder take no volume: a homogenised
carbon-binder network in the pores (σ = 1 S/m) connects the (gap-contact) particles to the
collector. The Li metal sits on the top face (no separator band).

Drive: 1C = 210 mA/g, each rate a fresh discharge from rest to 2.7 V or the stoichiometry
event (a particle node at x = 0.995; the Chen 2020 NMC811 OCP stays above 3.49 V). Runs are
ordered: first loading (29.6) at 1C for all three, then 0.5C, then 0.1C; then 22 mg/cm².

Writes into ``benchmarks/results/``: ``bench_paper_discharge[_<tag>].json`` (every run: capacity,
stop reason, wall time, polarization metrics; and the table), ``..._table.csv`` (Figure 2f/g
layout), ``paper_rate_capability[_<tag>].png`` and polarization maps
``paper_maps/<arch>_<loading>_<rate>C.png`` (electrolyte c and particle x at the end of each
discharge). Run directories (fields XDMF with ``j_interface``, CSVs, checkpoints) go to
``--out`` (default ``benchmarks/results/paper_study_out``, not versioned).
"""

from __future__ import annotations

import argparse
import csv
import json
import logging
import shutil
import time
from pathlib import Path

from mpi4py import MPI

from electrofem.plot import plot_rate_capability
from electrofem.studies.rate import (
    PAPER_ARCHITECTURES,
    PAPER_C_RATES,
    PAPER_LOADINGS_MG_CM2,
    PAPER_POROSITY,
    event_capacity,
    paper_thickness_um,
    rate_study_table,
    run_rate_study,
)

COMM = MPI.COMM_WORLD
RESULTS = Path(__file__).resolve().parent / "results"

#: Paper 002, Figure 2f/g (mAh/g; read from the text: L-Dry-S at 29.6 mg/cm²: 0.5C 178.55,
#: 1C 103.95; Mix-Dry-Mix at 29.6: 1C 0; S-Dry-L at 29.6: 1C 0 (Section 2.5 "both ... exhibit
#: zero discharge capacities at 1C"); at 22 mg/cm²: L-Dry-S 1C 139.5, Mix-Dry-Mix 1C 100.05,
#: S-Dry-L 0 above 0.5C).
PAPER_1C = {
    29.6: {"L-Dry-S": 103.95, "Mix": 0.0, "S-Dry-L": 0.0},
    22.0: {"L-Dry-S": 139.5, "Mix": 100.05, "S-Dry-L": 0.0},
}


def _floats(s):
    return tuple(float(v) for v in s.split(","))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--archs", default=",".join(PAPER_ARCHITECTURES))
    ap.add_argument("--loadings", default=",".join(f"{v:g}" for v in PAPER_LOADINGS_MG_CM2))
    ap.add_argument("--c-rates", default=",".join(f"{v:g}" for v in PAPER_C_RATES))
    ap.add_argument("--size", type=float, default=1.0, help="mesh size (µm)")
    ap.add_argument("--porosity", type=float, default=PAPER_POROSITY)
    ap.add_argument("--cbd", type=float, default=1.0, help="carbon-binder conductivity (S/m)")
    ap.add_argument("--out", default=str(RESULTS / "paper_study_out"))
    ap.add_argument("--tag", default="", help="suffix of the result files")
    ap.add_argument("--deadline-min", type=float, default=None, help="no new run after this")
    args = ap.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if COMM.rank == 0 else logging.WARNING, format="[paper] %(message)s"
    )
    archs = tuple(a.strip() for a in args.archs.split(","))
    suffix = f"_{args.tag}" if args.tag else ""
    out = Path(args.out)
    json_path = RESULTS / f"bench_paper_discharge{suffix}.json"
    csv_path = RESULTS / f"bench_paper_discharge{suffix}_table.csv"
    png_path = RESULTS / f"paper_rate_capability{suffix}.png"
    maps = RESULTS / "paper_maps"
    command = (
        f"mpirun -n {COMM.size} python benchmarks/bench_paper_discharge.py --archs {args.archs} "
        f"--loadings {args.loadings} --c-rates {args.c_rates} --size {args.size} "
        f"--porosity {args.porosity} --cbd {args.cbd}"
    )
    t0 = time.perf_counter()

    def report(results):
        if COMM.rank != 0:
            return
        for r in results:  # runs from before the event interpolation existed
            if r.get("capacity_event_mAh_g") is None and r["capacity_mAh_g"] is not None:
                path = Path(r["outdir"]) / f"discharge_{r['c_rate']:g}C.csv"
                if path.is_file():
                    with open(path) as fh:
                        r["capacity_event_mAh_g"] = event_capacity(
                            list(csv.DictReader(fh)), 2.7, 0.995
                        )
        table = rate_study_table(results)
        verdict = {}
        for load in sorted({r["loading_target_mg_cm2"] for r in results}, reverse=True):
            one = {
                r["architecture"]: r.get("capacity_event_mAh_g") or r["capacity_mAh_g"]
                for r in results
                if r["loading_target_mg_cm2"] == load and r["c_rate"] == 1.0
            }
            if len(one) == 3 and all(v is not None for v in one.values()):
                verdict[f"{load:g}"] = {
                    "model_1C_mAh_g": one,
                    "note": "capacities at the end-of-discharge event, interpolated between "
                    "the last two steps (event_capacity); the step capacities are in runs",
                    "paper_1C_mAh_g": PAPER_1C.get(load),
                    "model_order": sorted(one, key=one.get, reverse=True),
                    "L-Dry-S > Mix > S-Dry-L": bool(one["L-Dry-S"] > one["Mix"] > one["S-Dry-L"]),
                }
        doc = {
            "command": command,
            "ranks": COMM.size,
            "porosity": args.porosity,
            "thickness_um": {
                f"{v:g}": paper_thickness_um(v, args.porosity, 4.75) for v in _floats(args.loadings)
            },
            "scaling": "H = loading / (rho_active (1 - porosity)); 2D area fraction = volume "
            "fraction (section extruded); rho_active = 4.75 g/cm3; carbon-binder homogenised "
            f"in the pores (sigma = {args.cbd:g} S/m), no volume",
            "runs": results,
            "table": table,
            "one_C_order": verdict,
            "wall_this_invocation_s": time.perf_counter() - t0,
            "job_wall_sum_s": sum(r["job_wall_s"] for r in results),
        }
        RESULTS.mkdir(parents=True, exist_ok=True)
        json_path.write_text(json.dumps(doc, indent=2))
        keys = []
        for row in table:
            keys += [k for k in row if k not in keys]
        with open(csv_path, "w", newline="") as fh:
            w = csv.DictWriter(fh, fieldnames=keys)
            w.writeheader()
            w.writerows(table)
        plot_rate_capability(
            table, png_path, title=f"2D resolved half cell, porosity {args.porosity:.2f}"
        )
        maps.mkdir(exist_ok=True)
        for r in results:
            src = Path(r["outdir"]) / "concentration_map.png"
            if src.is_file():
                name = f"{r['architecture']}_{r['loading_target_mg_cm2']:g}_{r['c_rate']:g}C.png"
                shutil.copyfile(src, maps / name)

    results = run_rate_study(
        out,
        archs,
        _floats(args.loadings),
        _floats(args.c_rates),
        porosity=args.porosity,
        mesh_size_um=args.size,
        cbd_conductivity_S_m=args.cbd,
        comm=COMM,
        on_result=report,
        deadline_s=None if args.deadline_min is None else 60 * args.deadline_min,
    )
    report(results)
    if COMM.rank == 0:
        print(f"\n{command}\n")
        print(
            "| loading (mg/cm²) | architecture | C-rate | capacity (mAh/g) | at the event "
            "(interpolated) | stop | wall (s) |"
        )
        print("|---|---|---|---|---|---|---|")
        for r in results:
            cap = r["capacity_mAh_g"]
            print(
                f"| {r['loading_target_mg_cm2']:g} | {r['architecture']} | {r['c_rate']:g} | "
                f"{cap if cap is None else round(cap, 2)} | "
                f"{r.get('capacity_event_mAh_g') and round(r['capacity_event_mAh_g'], 2)} | "
                f"{r['stop_reason']} | "
                f"{r['job_wall_s']:.0f} |"
            )
    return results


if __name__ == "__main__":
    main()
