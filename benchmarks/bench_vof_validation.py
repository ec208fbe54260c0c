"""Static drop: Laplace pressure jump and parasitic (spurious) currents of the VOF core.

    python benchmarks/bench_vof_validation.py [--cells 16 32 64] [--steps 100]
    mpirun -n 2 python benchmarks/bench_vof_validation.py
    python benchmarks/bench_vof_validation.py --washburn [--slips 0 0.35 0.7 1.4] [--across 8 16]

A liquid disk (R = 25 µm, electrolyte/air, σ = 0.035 N/m, ρ and μ of paper 002) at rest in
a closed 100 × 100 µm box meshed with n × n squares (each split in two triangles). Time steps
are ``stable_dt()`` (Courant and ``capillary_factor`` = 20 × the explicit capillary bound).
Reported after every run: the pressure jump Δp (mean p for r < R/2 minus mean p for r > 3R/2)
against σ/R, the largest velocity over the run and at its end, as a capillary number
Ca = μ_l |u|max / σ, and the volume change. Writes
``benchmarks/results/bench_vof_validation_n<ranks>.json`` and prints a markdown table.
"""

from __future__ import annotations

import argparse
import json
import platform
from pathlib import Path

from mpi4py import MPI

import electrofem
from electrofem.physics.vof import InfiltrationOptions
from electrofem.physics.vof.cases import DROP_OPTIONS, SOLVER_REFERENCE, static_drop, washburn_rate

COMM = MPI.COMM_WORLD
RESULTS = Path(__file__).resolve().parent / "results"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--cells", type=int, nargs="+", default=[16, 32, 64])
    ap.add_argument("--steps", type=int, default=100)
    ap.add_argument(
        "--curvature", choices=("projection", "fit"), default="projection", help="drop: κ method"
    )
    ap.add_argument("--dim", type=int, choices=(2, 3), default=2, help="drop: disk or sphere")
    ap.add_argument(
        "--n-sub", type=int, default=32, help="drop: initial alpha sampled n_sub^dim times a cell"
    )
    ap.add_argument(
        "--scheduled-dt",
        type=float,
        default=0.0,
        help="drop: fixed scheduled steps of this size (s) instead of capillary factor 20",
    )
    ap.add_argument(
        "--washburn",
        action="store_true",
        help="Lucas-Washburn imbibition instead of the drop (see --slips, --across)",
    )
    ap.add_argument("--slips", type=float, nargs="+", default=[0.0, 0.35, 0.7, 1.4])
    ap.add_argument("--across", type=int, nargs="+", default=[8])
    args = ap.parse_args()
    if args.washburn:
        return washburn(args)
    o = InfiltrationOptions(**{**DROP_OPTIONS, "curvature": args.curvature})
    if args.scheduled_dt > 0:
        o = InfiltrationOptions(
            **{
                **SOLVER_REFERENCE,
                "step_control": "scheduled",
                "dt_max_s": args.scheduled_dt,
                "flow_courant_max": 1e9,
                "curvature": args.curvature,
            }
        )
    rows = [static_drop(COMM, n, args.steps, o, n_sub=args.n_sub, dim=args.dim) for n in args.cells]
    if COMM.rank:
        return
    tag = f"_dt{args.scheduled_dt:g}" if args.scheduled_dt > 0 else ""
    tag += "_fit" if args.curvature == "fit" else ""
    tag += "_3d" if args.dim == 3 else ""
    tag += f"_nsub{args.n_sub}" if args.n_sub != 32 else ""
    out = {
        "command": f"mpirun -n {COMM.size} python benchmarks/bench_vof_validation.py "
        f"--cells {' '.join(map(str, args.cells))} --steps {args.steps}"
        + (f" --scheduled-dt {args.scheduled_dt:g}" if args.scheduled_dt > 0 else "")
        + f" --curvature {args.curvature} --dim {args.dim} --n-sub {args.n_sub}",
        "electrofem_version": electrofem.__version__,
        "options": o.record() | {"curvature": o.curvature},
        "ranks": COMM.size,
        "machine": platform.platform(),
        "rows": rows,
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"bench_vof_validation_n{COMM.size}{tag}.json").write_text(json.dumps(out, indent=2))
    print(
        "| cells/side | cells/R | steps | t (s) | Δp/((D−1)σ/R) − 1 | Ca max | Ca max, 2nd half "
        "| Ca end | ΔV/V | wall (s) |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['cells_per_side']} | {r['cells_per_radius']:.0f} | {r['steps']} | "
            f"{r['t_end_s']:.2e} | {100 * r['dp_rel_error']:+.2f} % | {r['Ca_max']:.1e} | "
            f"{r['Ca_max_late']:.1e} | {r['Ca_end']:.1e} | {r['volume_change_rel']:.0e} | "
            f"{r['wall_s']:.1f} |"
        )


def washburn(args) -> None:
    """Lucas–Washburn rate ratio for every (cells across, slip) pair; the channel keeps
    w = 10 µm, L_c = 600 µm, L0 = 200 µm, θ = 45°, dt = 1e-5 s (scaled with h)."""
    rows = []
    for n in args.across:
        for slip in args.slips:
            rows.append(washburn_rate(COMM, slip, cells_across=n, dt=1e-5 * 8 / n))
    if COMM.rank:
        return
    out = {
        "command": f"mpirun -n {COMM.size} python benchmarks/bench_vof_validation.py --washburn "
        f"--slips {' '.join(f'{v:g}' for v in args.slips)} "
        f"--across {' '.join(map(str, args.across))}",
        "ranks": COMM.size,
        "machine": platform.platform(),
        "rows": rows,
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"bench_washburn_n{COMM.size}.json").write_text(json.dumps(out, indent=2))
    print("| cells across | slip (h) | rate / Lucas–Washburn | Ca | wall (s) |")
    print("|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['cells_across']} | {r['slip_cells']:g} | {r['rate_ratio']:.3f} | "
            f"{r['capillary_number']:.1e} | {r['wall_s']:.0f} |"
        )


if __name__ == "__main__":
    main()
