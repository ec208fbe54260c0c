"""Static drop: Laplace pressure jump and parasitic (spurious) currents of the VOF core.

    python benchmarks/bench_vof_validation.py [--cells 16 32 64] [--steps 100]
    mpirun -n 2 python benchmarks/bench_vof_validation.py

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
import time
from pathlib import Path

from mpi4py import MPI

from electrofem.physics.vof import FluidParams, InfiltrationOptions, VOFSolver, _tag_box_facets

COMM = MPI.COMM_WORLD
RESULTS = Path(__file__).resolve().parent / "results"


def drop(n: int, steps: int) -> dict:
    import ufl  # after electrofem, which loads the vendored PETSc first
    from dolfinx import fem, mesh

    L = 1e-4
    R = 0.25 * L
    fl = FluidParams()
    m = mesh.create_rectangle(
        COMM, [[0.0, 0.0], [L, L]], [n, n], ghost_mode=mesh.GhostMode.shared_facet
    )
    ft = _tag_box_facets(m, L, L)
    t0 = time.perf_counter()
    with VOFSolver(m, ft, {}, fl, InfiltrationOptions(capillary_factor=20.0)) as s:
        s.set_alpha_fraction(lambda x: (x[0] - L / 2) ** 2 + (x[1] - L / 2) ** 2 < R**2)
        v0 = s.volume()
        recs = [s.step(s.stable_dt()) for _ in range(steps)]
        X = ufl.SpatialCoordinate(m)
        r = ufl.sqrt((X[0] - L / 2) ** 2 + (X[1] - L / 2) ** 2)
        dx = ufl.dx(metadata={"quadrature_degree": 4})

        def mean_p(cond):
            ind = ufl.conditional(cond, 1.0, 0.0)
            num = COMM.allreduce(fem.assemble_scalar(fem.form(s.p * ind * dx)), op=MPI.SUM)
            return num / COMM.allreduce(fem.assemble_scalar(fem.form(ind * dx)), op=MPI.SUM)

        dp = mean_p(ufl.lt(r, 0.5 * R)) - mean_p(ufl.gt(r, 1.5 * R))
        dv = abs(s.volume() - v0) / v0
    umax = max(rec.u_max for rec in recs)
    return {
        "cells_per_side": n,
        "h_um": L / n * 1e6,
        "cells_per_radius": R / (L / n),
        "steps": steps,
        "t_end_s": recs[-1].t,
        "dt_s": recs[-1].t / steps,
        "dp_Pa": dp,
        "laplace_Pa": fl.sigma / R,
        "dp_rel_error": dp / (fl.sigma / R) - 1,
        "u_max_run_m_s": umax,
        "u_max_end_m_s": recs[-1].u_max,
        "Ca_max": umax * fl.mu_liquid / fl.sigma,
        "Ca_end": recs[-1].u_max * fl.mu_liquid / fl.sigma,
        "volume_change_rel": dv,
        "wall_s": time.perf_counter() - t0,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--cells", type=int, nargs="+", default=[16, 32, 64])
    ap.add_argument("--steps", type=int, default=100)
    args = ap.parse_args()
    rows = [drop(n, args.steps) for n in args.cells]
    if COMM.rank:
        return
    out = {
        "command": f"mpirun -n {COMM.size} python benchmarks/bench_vof_validation.py "
        f"--cells {' '.join(map(str, args.cells))} --steps {args.steps}",
        "ranks": COMM.size,
        "machine": platform.platform(),
        "rows": rows,
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"bench_vof_validation_n{COMM.size}.json").write_text(json.dumps(out, indent=2))
    print(
        "| cells/side | cells/R | steps | t (s) | Δp/(σ/R) − 1 | Ca max | Ca end | ΔV/V "
        "| wall (s) |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['cells_per_side']} | {r['cells_per_radius']:.0f} | {r['steps']} | "
            f"{r['t_end_s']:.2e} | {100 * r['dp_rel_error']:+.2f} % | {r['Ca_max']:.1e} | "
            f"{r['Ca_end']:.1e} | {r['volume_change_rel']:.0e} | {r['wall_s']:.1f} |"
        )


if __name__ == "__main__":
    main()
