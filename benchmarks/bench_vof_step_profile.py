"""Where the time of one VOF step goes, on the paper's L-S case (2D, 1 µm mesh by default).

Runs the infiltration job with the wetting study's settings (the paper's 1e-4 s steps, flow
Courant ≤ 10, contact-line slip 0.7 h) to a short end time, timing the phases of
:meth:`electrofem.physics.vof.VOFSolver.step` by wrapping them: the Navier–Stokes solve (assembly
+ MUMPS, ``TwoPhaseFlow.solve``), the α̃ / normal / curvature solves
(``TwoPhaseFlow.update_interface``), the face-flux projection (``AlphaTransport.face_fluxes``)
and the FCT transport of α (``AlphaTransport.advect``, all sub-steps). Run it on an idle
machine.

    python benchmarks/bench_vof_step_profile.py [--size 1.0] [--t-end 0.01]
    mpirun -n 2 python benchmarks/bench_vof_step_profile.py

Writes ``benchmarks/results/vof_step_profile_n<ranks>.json``.
"""

from __future__ import annotations

import argparse
import json
import time
from collections import defaultdict
from pathlib import Path

from mpi4py import MPI

from electrofem import __version__
from electrofem.jobs.infiltrate import run_infiltration
from electrofem.physics.vof.flow import TwoPhaseFlow
from electrofem.physics.vof.transport import AlphaTransport
from electrofem.studies.spec import load_study

COMM = MPI.COMM_WORLD
RESULTS = Path(__file__).resolve().parent / "results"
#: The wetting study's set-up (its L-S case), run to a short end time.
STUDY = Path(__file__).resolve().parents[1] / "examples" / "study_paper_wetting.toml"


def timed(cls, name: str, totals: dict, counts: dict) -> None:
    """Wrap ``cls.name`` so every call adds its wall time to ``totals[name]``."""
    orig = getattr(cls, name)

    def wrapper(self, *args, **kwargs):
        t = time.perf_counter()
        try:
            return orig(self, *args, **kwargs)
        finally:
            totals[name] += time.perf_counter() - t
            counts[name] += 1

    setattr(cls, name, wrapper)


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--size", type=float, default=1.0, help="mesh size (µm)")
    ap.add_argument("--t-end", type=float, default=0.01, help="simulated time (s)")
    ap.add_argument("--workdir", default="/tmp/electrofem-step-profile")
    args = ap.parse_args(argv)
    totals, counts = defaultdict(float), defaultdict(int)
    timed(TwoPhaseFlow, "solve", totals, counts)
    timed(TwoPhaseFlow, "update_interface", totals, counts)
    timed(AlphaTransport, "face_fluxes", totals, counts)
    timed(AlphaTransport, "advect", totals, counts)
    cfg = load_study(STUDY).check_case({
        "preset": "L-S",
        "mesh.size": args.size,
        "infiltration.t_end_s": args.t_end,
        "infiltration.output_interval_s": args.t_end,
        "infiltration.checkpoint_every_s": 1e6,
    })  # fmt: skip
    opts = cfg.infiltration
    out = Path(args.workdir) / f"h{args.size:g}_n{COMM.size}"
    t0 = time.perf_counter()
    run_infiltration(cfg, out, opts, comm=COMM, progress=False, plots=False)
    wall = time.perf_counter() - t0
    m = json.loads((out / "infiltration.json").read_text())
    steps = int(m["steps"])
    phases = {
        "navier_stokes_solve": totals["solve"],
        "alpha_smooth_normal_curvature": totals["update_interface"],
        "flux_projection": totals["face_fluxes"],
        "alpha_transport_fct": totals["advect"],
    }
    per_step = {k: v / max(steps, 1) for k, v in phases.items()}
    res = {
        "benchmark": "bench_vof_step_profile",
        "command": f"mpirun -n {COMM.size} python benchmarks/bench_vof_step_profile.py "
        f"--size {args.size:g} --t-end {args.t_end:g}",
        "version": __version__,
        "mpi_ranks": COMM.size,
        "mesh_size_um": args.size,
        "pore_cells": m.get("pore_cells"),
        "t_end_s": args.t_end,
        "steps": steps,
        "alpha_substeps": counts["advect"],
        "wall_s": wall,
        "ns_solves": counts["solve"],
        "phase_s": phases,
        "phase_s_per_step": per_step,
    }
    if COMM.rank == 0:
        RESULTS.mkdir(exist_ok=True)
        path = RESULTS / f"vof_step_profile_n{COMM.size}.json"
        path.write_text(json.dumps(res, indent=2) + "\n")
        n_ns, n_sub = counts["solve"], counts["advect"]
        print(f"{steps} steps ({n_ns} NS solves), {n_sub} α sub-steps, {wall:.1f} s")
        for k, v in phases.items():
            print(f"  {k:32s} {v:7.2f} s  {1e3 * per_step[k]:7.1f} ms/step")
        print(f"-> {path}")
    return res


if __name__ == "__main__":
    main()
