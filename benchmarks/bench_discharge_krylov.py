"""Issue 16 item 1: the half cell's iterative linear solver against MUMPS LU on a 3D mesh
sequence: iterations per Newton step as h shrinks, wall time and memory.

    python benchmarks/bench_discharge_krylov.py                  # the whole table (resumes)
    python benchmarks/bench_discharge_krylov.py --refine 1,1.5   # some meshes only
    python benchmarks/bench_discharge_krylov.py --ranks 2        # the runs on 2 ranks

Structure: a 24 x 24 x 28 µm non-periodic box, one layer of 7 log-normal particles (median
6 µm, sigma 0.5, porosity 0.56, seed 1), meshed at ``size = 2/f`` µm and ``radius_factor =
0.5/f`` for the refinement factors ``f``; the particle surfaces are the same on every mesh.
Each run: :class:`~electrofem.physics.electrochem.HalfCell` at 18 A/m², three 30 s
backward-Euler steps from rest (the Newton systems of a discharge's start, the hardest: the
steps after have fewer Newton iterations). Solvers (``DischargeOptions.linear_solver``):

* ``lu``: MUMPS;
* ``iterative``: GMRES + the bordered block preconditioner (smoothed-aggregation GAMG);
* ``unsmoothed``: the same with the prototype's plain-aggregation GAMG (threshold 0.05, no
  prolongator smoothing), to show what is not h-robust.

Each (mesh, solver, ranks) runs in its own process (memory = its peak RSS, summed over
ranks) and writes ``benchmarks/results/krylov/<mesh>_<solver>_n<ranks>.json``; an existing
file is kept (the study resumes). Prints a markdown table of all the files.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results" / "krylov"
SOLVERS = {
    "lu": {"linear_solver": "lu"},
    "iterative": {"linear_solver": "iterative"},
    "unsmoothed": {
        "linear_solver": "iterative",
        "petsc_options": {
            f"bordered_fieldsplit_{g}_{k}": v
            for g in ("P", "C")
            for k, v in (("pc_gamg_threshold", 0.05), ("pc_gamg_agg_nsmooths", 0))
        },
    },
}
STEPS, DT_S, CURRENT_A_M2 = 3, 30.0, 18.0


def mesh_dir(f: float) -> Path:
    return RESULTS / f"mesh_f{f:g}"


def make_mesh(f: float) -> None:
    """Pack and mesh (serial, once per refinement factor)."""
    import gmsh
    from mpi4py import MPI

    from electrofem.mesh import ElectrodeMesh, MeshOptions, build_and_mesh
    from electrofem.microstructure import Box, Electrode, Layer, LogNormal, Population, generate

    box = Box((24.0, 24.0, 28.0), periodic=False)
    pops = (Population(LogNormal(6.0, 0.5)),)
    parts = generate(Electrode(box, (Layer(1.0, 0.56, pops),), seed=1))
    gmsh.initialize()
    try:
        build_and_mesh(parts, MeshOptions(size=2.0 / f, radius_factor=0.5 / f))
        em = ElectrodeMesh.from_gmsh(MPI.COMM_SELF, 3)
    finally:
        gmsh.finalize()
    mesh_dir(f).mkdir(parents=True, exist_ok=True)
    em.write(mesh_dir(f) / "mesh.xdmf")


def fixed_steps(cell, label: str = "step failed") -> list[float]:
    """The STEPS steps of DT_S seconds from rest on a ``HalfCell``: the wall seconds of each
    (also the fixed-step runs of ``bench_discharge_lag`` and ``bench_discharge_pc_variants``).
    Raises RuntimeError ``"<label>: <why>"`` when a step fails."""
    seconds = []
    for _ in range(STEPS):
        t = time.perf_counter()
        ok, _, why = cell.step(DT_S)
        seconds.append(time.perf_counter() - t)
        if not ok:
            raise RuntimeError(f"{label}: {why}")
    return seconds


def run_one(f: float, solver: str, out: Path) -> None:
    """One (mesh, solver) run in this process (under mpirun for several ranks)."""
    from mpi4py import MPI

    import electrofem
    from electrofem.mesh import ElectrodeMesh
    from electrofem.physics.electrochem import DischargeOptions, HalfCell

    comm = MPI.COMM_WORLD
    em = ElectrodeMesh.read(mesh_dir(f) / "mesh.xdmf", comm)
    t0 = time.perf_counter()
    opts = DischargeOptions(current_density_A_m2=CURRENT_A_M2, **SOLVERS[solver])
    steps = []
    with HalfCell(em, options=opts) as cell:
        n_dofs = cell.n_dofs
        t_setup = time.perf_counter() - t0
        seconds = fixed_steps(cell)
        for r, s in zip(cell.records[-STEPS:], seconds, strict=True):
            steps.append(
                {
                    "newton": r.newton_iterations,
                    "linear": r.linear_iterations,
                    "seconds": s,
                    "voltage_V": r.voltage_V,
                    "li_balance": (r.li_total_mol - cell.records[0].li_total_mol),
                }
            )
        chosen = cell.linear_solver
    rss = comm.allreduce(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, op=MPI.SUM)
    if comm.rank == 0:
        record = {
            "refine": f,
            "solver": solver,
            "linear_solver": chosen,
            "ranks": comm.size,
            "dofs": int(n_dofs),
            "cells": int(em.mesh.topology.index_map(3).size_global),
            "setup_s": t_setup,
            "steps": steps,
            "peak_rss_GB": rss / 2**20,
            "electrofem_version": electrofem.__version__,
            "machine": platform.node(),
            "command": " ".join(sys.argv),
        }
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(record, indent=1))


def table() -> str:
    rows = [json.loads(p.read_text()) for p in sorted(RESULTS.glob("*_n*.json"))]
    rows.sort(key=lambda r: (r["ranks"], r["dofs"], list(SOLVERS).index(r["solver"])))
    lines = [
        "| ranks | cells | unknowns | solver | Newton its (3 steps) | linear its / Newton | "
        "s / Newton | V after 3 steps | peak RSS GB |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        newton = sum(s["newton"] for s in r["steps"])
        linear = sum(s["linear"] for s in r["steps"])
        secs = sum(s["seconds"] for s in r["steps"])
        lines.append(
            f"| {r['ranks']} | {r['cells']} | {r['dofs']} | {r['solver']} | {newton} | "
            f"{linear / newton:.1f} | {secs / newton:.2f} | {r['steps'][-1]['voltage_V']:.9f} | "
            f"{r['peak_rss_GB']:.2f} |"
        )
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--refine", default="1,1.5,2.2,3.2,4.5", help="refinement factors f")
    ap.add_argument("--solvers", default="lu,iterative,unsmoothed")
    ap.add_argument("--ranks", type=int, default=1)
    ap.add_argument("--lu-max-refine", type=float, default=3.2, help="no LU on finer meshes")
    ap.add_argument("--one", nargs=3, metavar=("F", "SOLVER", "OUT"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.one:
        run_one(float(args.one[0]), args.one[1], Path(args.one[2]))
        return
    bindir = Path(sys.executable).parent
    for f in (float(x) for x in args.refine.split(",")):
        if not (mesh_dir(f) / "mesh.xdmf").exists():
            print(f"meshing f = {f:g}", flush=True)
            make_mesh(f)
        for solver in args.solvers.split(","):
            out = RESULTS / f"f{f:g}_{solver}_n{args.ranks}.json"
            if out.exists():
                continue
            if solver == "lu" and f > args.lu_max_refine:
                print(f"skip lu at f = {f:g} (--lu-max-refine)", flush=True)
                continue
            cmd = [sys.executable, __file__, "--one", f"{f}", solver, str(out)]
            if args.ranks > 1:
                cmd = [str(bindir / "mpirun"), "-n", str(args.ranks), *cmd]
            print(f"f = {f:g}, {solver}, {args.ranks} rank(s)", flush=True)
            subprocess.run(cmd, check=True, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    print(table())


if __name__ == "__main__":
    main()
