"""The VOF flow solve in 3D: the iterative solver (GMRES + Schur fieldsplit, physics/vof/krylov.py)
against MUMPS on a mesh sequence, serial and on 2 ranks.

    python benchmarks/bench_vof_krylov.py                  # the sequence; resumes
    python benchmarks/bench_vof_krylov.py --report         # only the table

Each case is one ``benchmarks/bench_vof_3d.py`` run in its own process (so the memory peak is
its own): the 20 µm cube of 6 µm spheres, meshed with every length of bench_vof_3d's default
mesh (size 2.5 µm, particle surfaces 0.6 r, contact necks 1 × the neck radius, at least
0.5 µm) divided by the refinement ``r``,
``--steps`` scheduled steps of ``--dt`` (the paper's 1e-4 s: viscous-dominated, with the
semi-implicit surface viscosity dt·σ on the interface), solver ``lu`` or ``iterative``.
Results: ``benchmarks/results/bench_vof_3d_n<ranks>_krylov_r<r>_<solver>.json`` per case,
and the table ``benchmarks/results/bench_vof_krylov.json``. A case whose file exists is not
run again; one that fails or exceeds ``--timeout`` is recorded as such.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"


def case_file(r: float, solver: str, ranks: int) -> Path:
    return RESULTS / f"bench_vof_3d_n{ranks}_krylov_r{r:g}_{solver}.json"


def run_case(r: float, solver: str, ranks: int, args) -> dict:
    out = case_file(r, solver, ranks)
    if out.is_file():
        return json.loads(out.read_text())
    bindir = Path(sys.executable).parent
    cmd = [sys.executable, str(HERE / "bench_vof_3d.py")]
    if ranks > 1:
        cmd = [str(bindir / "mpirun"), "-n", str(ranks), *cmd]
    cmd += [
        "--size", f"{2.5 / r:.4g}", "--radius-factor", f"{0.6 / r:.4g}",
        "--size-min", f"{0.5 / r:.4g}", "--neck-factor", f"{1.0 / r:.4g}",
        "--steps", str(args.steps), "--dt", f"{args.dt:g}",
        "--linear-solver", solver, "--tag", f"_krylov_r{r:g}_{solver}",
        "--workdir", f"/tmp/electrofem-bench-vofkrylov/r{r:g}",
    ]  # fmt: skip
    print("$", " ".join(cmd), flush=True)
    try:
        proc = subprocess.run(cmd, timeout=args.timeout, capture_output=True, text=True)
        ok = proc.returncode == 0 and out.is_file()
        err = "" if ok else proc.stderr[-2000:]
    except subprocess.TimeoutExpired:
        ok, err = False, f"timeout after {args.timeout} s"
    if not ok:
        rec = {"status": "failed", "error": err, "refinement": r, "solver": solver}
        out.write_text(json.dumps(rec, indent=2))
        return rec
    return json.loads(out.read_text())


def row(r: dict, ref: float, solver: str, ranks: int) -> dict:
    if r.get("status") == "failed":
        return {"refinement": ref, "solver": solver, "ranks": ranks, "status": r["error"][-200:]}
    its = r.get("linear_iterations") or [0]
    steps = r.get("step_wall_s") or [r["wall_s_per_step"]]
    return {
        "refinement": ref,
        "solver": solver,
        "ranks": ranks,
        "cells": r["mesh"]["cells"],
        "pore_cells": r["mesh"]["pore_cells"],
        "flow_dofs": r["mesh"]["flow_dofs"],
        "its_per_step": sum(its) / len(its),
        "its": its,
        "s_per_step": sum(steps) / len(steps),  # steps 2.. (the first one sets up)
        "peak_rss_gb_per_rank": r["peak_rss_gb_per_rank"],
        "u_max_m_s": r["u_max_m_s"],
        "saturation_final": r["saturation_final"],
        "volume_balance_max": r["volume_balance_max"],
        "command": r["command"],
    }


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--refine", type=float, nargs="+", default=[1.0, 1.5, 2.0, 2.5])
    ap.add_argument("--lu-refine", type=float, nargs="+", default=[1.0, 1.5, 2.0])
    ap.add_argument("--ranks2-refine", type=float, nargs="+", default=[2.0])
    ap.add_argument("--steps", type=int, default=4)
    ap.add_argument("--dt", type=float, default=1e-4)
    ap.add_argument("--timeout", type=float, default=3600.0)
    ap.add_argument("--report", action="store_true")
    args = ap.parse_args(argv)
    plan = [(r, "iterative", 1) for r in args.refine]
    plan += [(r, "lu", 1) for r in args.lu_refine]
    plan += [(r, v, 2) for r in args.ranks2_refine for v in ("iterative", "lu")]
    rows = []
    for ref, solver, ranks in plan:
        f = case_file(ref, solver, ranks)
        if args.report and not f.is_file():
            continue
        r = json.loads(f.read_text()) if args.report else run_case(ref, solver, ranks, args)
        rows.append(row(r, ref, solver, ranks))
        print(json.dumps({k: v for k, v in rows[-1].items() if k != "command"}), flush=True)
    (RESULTS / "bench_vof_krylov.json").write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
