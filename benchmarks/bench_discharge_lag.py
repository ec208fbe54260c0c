"""The discharge's lagged Newton Jacobian (``DischargeOptions.jacobian_lag``) against full
Newton: a whole 1C discharge of a 3D electrode, every lag in its own one-rank process, all
side by side (one core each), so the wall times share the machine's state and their ratio is
the figure.

    python benchmarks/bench_discharge_lag.py [--refine 2.2] [--lags 1 3]
    python benchmarks/bench_discharge_lag.py --lags 1 --growths 0 1.5 --tag _pc   # issue 16
    python benchmarks/bench_discharge_lag.py --fixed-steps --refine 3.2 --cases 4:1 2:1 4:3

With ``--fixed-steps``: ``bench_discharge_krylov.py``'s three 30 s steps at 18 A/m² from rest
(no adaptivity), one ``quadrature_degree:jacobian_lag`` case after the other in this process,
one rank: Newton iterations, linear iterations per Newton step, seconds per Newton step and
the voltage (``benchmarks/results/bench_discharge_lag_fixed_f<f>.json``).

The electrode is ``bench_discharge_krylov.py``'s mesh of refinement ``f`` (made if missing;
f = 2.2: 135 072 cells, 63 195 unknowns), discharged at 1C with the iterative solver to its
end (the x_max event), with the job's adaptive steps. Writes
``benchmarks/results/bench_discharge_lag_f<f>.json``: per lag the steps, Newton
iterations, capacity, final voltage and wall time. ``--growths``: the runs are every
(lag, ``pc_rebuild_growth``) pair (default: the option's default only; the issue-16 sixth
part and earlier ran with the old behaviour, 0); ``--tag`` is appended to the file name.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench_discharge_krylov import RESULTS as KRYLOV
from bench_discharge_krylov import fixed_steps as krylov_fixed_steps
from bench_discharge_krylov import make_mesh, mesh_dir

RESULTS = Path(__file__).resolve().parent / "results"


def run_one(f: float, lag: int, growth: float | None, out: Path) -> None:
    """One 1C discharge in this process; its summary to ``out/summary.json``."""
    from electrofem import __version__
    from electrofem.jobs.discharge import run_discharge
    from electrofem.physics.electrochem import DischargeOptions

    extra = {} if growth is None else {"pc_rebuild_growth": growth}
    opts = DischargeOptions(c_rates=(1.0,), linear_solver="iterative", jacobian_lag=lag, **extra)
    t = time.perf_counter()
    run_discharge(mesh_dir(f) / "mesh.xdmf", out, opts, progress=False, plots=False)
    wall = time.perf_counter() - t
    m = json.loads((out / "discharge.json").read_text())
    rc = m["rate_capability"][0]
    summary = {"lag": lag, "pc_rebuild_growth": opts.pc_rebuild_growth, "wall_s": wall}
    summary.update(version=__version__, **rc)
    (out / "summary.json").write_text(json.dumps(summary, indent=1))


def fixed_steps(f: float, cases: list[str]) -> None:
    """The fixed-step comparison (see the module)."""
    from mpi4py import MPI

    from electrofem import __version__
    from electrofem.mesh import ElectrodeMesh
    from electrofem.physics.electrochem import DischargeOptions, HalfCell

    em = ElectrodeMesh.read(mesh_dir(f) / "mesh.xdmf", MPI.COMM_WORLD)
    rows = []
    for case in cases:
        q, lag = (int(v) for v in case.split(":"))
        opts = DischargeOptions(
            current_density_A_m2=18.0,
            linear_solver="iterative",
            quadrature_degree=q,
            jacobian_lag=lag,
        )
        with HalfCell(em, options=opts) as cell:
            secs = sum(krylov_fixed_steps(cell, case))
            newton = sum(r.newton_iterations for r in cell.records)
            linear = sum(r.linear_iterations for r in cell.records)
            rows.append({
                "quadrature_degree": q,
                "jacobian_lag": lag,
                "dofs": int(cell.n_dofs),
                "newton": newton,
                "jacobians": cell.jacobian.assembled,
                "linear_per_newton": linear / newton,
                "s_per_newton": secs / newton,
                "s_three_steps": secs,
                "voltage_V": cell.records[-1].voltage_V,
            })  # fmt: skip
        print(json.dumps(rows[-1]), flush=True)
    path = RESULTS / f"bench_discharge_lag_fixed_f{f:g}.json"
    path.write_text(json.dumps({
        "benchmark": "bench_discharge_lag --fixed-steps",
        "command": "python benchmarks/bench_discharge_lag.py " + " ".join(sys.argv[1:]),
        "version": __version__,
        "rows": rows,
    }, indent=1))  # fmt: skip
    print(f"-> {path}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--refine", type=float, default=2.2)
    ap.add_argument("--lags", type=int, nargs="+", default=[1, 3])
    ap.add_argument("--fixed-steps", action="store_true")
    ap.add_argument("--cases", nargs="+", default=["4:1", "2:1", "4:3"])
    ap.add_argument("--growths", type=float, nargs="+", default=[None])
    ap.add_argument("--tag", default="")
    ap.add_argument("--one", nargs=4, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.fixed_steps:
        fixed_steps(args.refine, args.cases)
        return
    if args.one:
        growth = None if args.one[2] == "default" else float(args.one[2])
        run_one(float(args.one[0]), int(args.one[1]), growth, Path(args.one[3]))
        return
    if not (mesh_dir(args.refine) / "mesh.xdmf").is_file():
        make_mesh(args.refine)
    work = Path(tempfile.mkdtemp(prefix="electrofem-lag-"))
    runs = [(lag, "default" if g is None else f"{g:g}") for lag in args.lags for g in args.growths]
    procs = {
        (lag, g): subprocess.Popen(
            [
                sys.executable,
                __file__,
                "--one",
                str(args.refine),
                str(lag),
                g,
                str(work / f"{lag}_{g}"),
            ]
        )
        for lag, g in runs
    }
    for key, p in procs.items():
        if p.wait() != 0:
            raise SystemExit(f"lag, growth {key}: exit {p.returncode}")
    rows = [json.loads((work / f"{lag}_{g}" / "summary.json").read_text()) for lag, g in runs]
    record = {
        "benchmark": "bench_discharge_lag",
        "command": "python benchmarks/bench_discharge_lag.py " + " ".join(sys.argv[1:]),
        "mesh": str(mesh_dir(args.refine).relative_to(KRYLOV.parent)),
        "rows": rows,
    }
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"bench_discharge_lag_f{args.refine:g}{args.tag}.json"
    path.write_text(json.dumps(record, indent=1))
    for r in rows:
        print(
            f"lag {r['lag']}, growth {r['pc_rebuild_growth']:g}: {r['steps']} steps, "
            f"{r['newton_iterations']} Newton, "
            f"{r['capacity_mAh_g']:.3f} mAh/g, {r['wall_s']:.0f} s"
        )
    print(f"-> {path}")


if __name__ == "__main__":
    main()
