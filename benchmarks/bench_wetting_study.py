"""Paper 002's wetting study (sections 2.1 and 2.5) on its 2D VOF domain: wetting (breakthrough)
times and trapped air of L-S / Mix / S-L and of L-Dry-S with L:S = 3:7 ... 7:3.

    python benchmarks/bench_wetting_study.py                      # all 8 cases, 1 µm mesh
    python benchmarks/bench_wetting_study.py --cases L-S,Mix,S-L --size 2
    mpirun -n 2 python benchmarks/bench_wetting_study.py --cases L-S --tag _n2

Set-up (paper 002, Experimental "VOF Method"): 50 µm wide x 146 µm high, porosity 0.40,
11.3 / 4.5 µm particles, dry start, velocity inlet 1e-4 m/s of electrolyte at the top,
outlet at the bottom, symmetry sides; the paper's own time steps (first-order implicit,
1e-4 s for t < 0.1 s, 2e-4 s after) through ``step_control = "scheduled"`` (semi-implicit
surface tension, α sub-cycled to Courant 0.5, flow Courant capped at 10), Navier slip of
0.7 cell diameters at the contact line (``--slip``; the Lucas–Washburn-validated value).
σ = 0.035 N/m and θ = 30° are the job defaults (sources: ``electrofem.physics.vof.options``).
No parameter is tuned to the paper's results.

Each case runs to ``--fill-factor`` x the time the inflow takes to fill the pore volume (the
final air fraction is read there, with the job's ``steady`` flag) and records the wall time to
breakthrough. Cases resume (``skip_done``: a finished case is read back; an interrupted one is
rerun). Writes ``benchmarks/results/wetting_study<tag>.json`` / ``.csv`` and
``wetting_study<tag>.png``, and prints a markdown table and the paper's orderings.
"""

from __future__ import annotations

import argparse
import csv
import json
import logging
import platform
import time
from pathlib import Path

from mpi4py import MPI

from electrofem import __version__
from electrofem.plot import plot_wetting_study
from electrofem.studies.wetting import (
    PAPER_CASES,
    orderings,
    paper_step_options,
    run_wetting_study,
)

COMM = MPI.COMM_WORLD
RESULTS = Path(__file__).resolve().parent / "results"
log = logging.getLogger("electrofem")


def main(argv=None) -> list[dict]:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--cases", default="all", help="comma-separated case names, or 'all'")
    ap.add_argument("--size", type=float, default=1.0, help="mesh size (µm)")
    ap.add_argument("--radius-factor", type=float, default=0.5)
    ap.add_argument("--fill-factor", type=float, default=1.3)
    ap.add_argument("--contact-angle", type=float, default=30.0)
    ap.add_argument(
        "--slip", type=float, default=0.7, help="contact-line slip length (cell diameters)"
    )
    ap.add_argument(
        "--stop-at-breakthrough",
        action="store_true",
        help="end each case at its breakthrough (the performance measurement; no final air)",
    )
    ap.add_argument(
        "--dt-scale", type=float, default=1.0, help="multiply the paper's steps (a dt study)"
    )
    ap.add_argument("--workdir", default="/tmp/electrofem-wetting-study")
    ap.add_argument("--deadline", type=float, default=None, help="no new case after (s)")
    ap.add_argument("--tag", default="")
    args = ap.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if COMM.rank == 0 else logging.WARNING,
        format="[wetting] %(message)s",
    )
    wanted = None if args.cases == "all" else set(args.cases.split(","))
    cases = [c for c in PAPER_CASES if wanted is None or c[0] in wanted]
    opts = paper_step_options(
        args.dt_scale,
        contact_angle_deg=args.contact_angle,
        contact_line_slip=args.slip,
        fill_factor=args.fill_factor,
        stop_at_breakthrough=args.stop_at_breakthrough,
        output_interval_s=0.05,
        checkpoint_every_s=300.0,
    )
    tag = args.tag or f"_h{args.size:g}"
    work = Path(args.workdir) / tag.lstrip("_")
    t0 = time.perf_counter()

    def every(rows):
        r = rows[-1]
        log.info(
            "%s: breakthrough %s s, air %.4f, steps %s, wall %.0f s",
            r["case"],
            r["breakthrough_time_s"],
            r["final_air_fraction"] or float("nan"),
            r["steps"],
            r["wall_s"],
        )

    rows = run_wetting_study(
        work,
        cases,
        opts,
        comm=COMM,
        deadline_s=args.deadline,
        progress=False,
        on_result=every,
        mesh_size_um=args.size,
        radius_factor=args.radius_factor,
    )
    for r in rows:  # wall time to breakthrough, from each case's job record
        cdir = work / r["case"].replace(" ", "_").replace(":", "-")
        m = json.loads((cdir / "infiltration.json").read_text())
        r["wall_s_to_breakthrough"] = m.get("wall_s_to_breakthrough")
        r["pore_cells"] = m.get("pore_cells")
        r["h_min_m"] = m.get("h_min_m")
        r["fill_time_s"] = m.get("fill_time_s")
        r["steady"] = m.get("steady")
    order = orderings(rows)
    out = {
        "benchmark": "bench_wetting_study",
        "command": f"mpirun -n {COMM.size} python benchmarks/bench_wetting_study.py "
        + " ".join(argv if argv is not None else __import__("sys").argv[1:]),
        "version": __version__,
        "mpi_ranks": COMM.size,
        "machine": platform.platform(),
        "mesh_size_um": args.size,
        "dt_schedule_s": opts.dt_schedule_s,
        "wall_s_total": time.perf_counter() - t0,
        "rows": rows,
        "orderings": order,
    }
    if COMM.rank == 0:
        RESULTS.mkdir(exist_ok=True)
        base = RESULTS / f"wetting_study{tag}"
        base.with_suffix(".json").write_text(json.dumps(out, indent=2, default=str))
        keys = [
            "case",
            "breakthrough_time_s",
            "final_air_fraction",
            "steady",
            "stop_reason",
            "t_final_s",
            "steps",
            "pore_cells",
            "volume_balance_max",
            "wall_s_to_breakthrough",
            "wall_s",
        ]
        with base.with_suffix(".csv").open("w", newline="") as fh:
            w = csv.DictWriter(fh, fieldnames=keys, extrasaction="ignore")
            w.writeheader()
            w.writerows(rows)
        plot_wetting_study(rows, base.with_suffix(".png"), "paper 002 wetting study (2D, model)")
        print(
            "| case | breakthrough (s) | final air (%) | steady | pore cells | steps | "
            "wall to breakthrough (s) | wall total (s) |"
        )
        print("|---|---|---|---|---|---|---|---|")
        for r in rows:
            bt = r["breakthrough_time_s"]
            air = r["final_air_fraction"]
            wb = r["wall_s_to_breakthrough"]
            print(
                f"| {r['case']} | {'—' if bt is None else f'{bt:.4f}'} | "
                f"{'—' if air is None else f'{100 * air:.2f}'} | {r['steady']} | "
                f"{r['pore_cells']} | {r['steps']} | {'—' if wb is None else f'{wb:.0f}'} | "
                f"{r['wall_s']:.0f} |"
            )
        print("orderings:", json.dumps(order))
        print(f"-> {base}.json")
    return rows


if __name__ == "__main__":
    main()
