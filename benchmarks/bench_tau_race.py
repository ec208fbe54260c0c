"""FEM τ from particles against TauFactor, interleaved in one process on one core.

    python benchmarks/bench_tau_race.py [--rounds 3] [--h 1.95] [--meshes eo full] [--tag T]

``bench_peers.py`` times TauFactor once and reads the FEM times from an earlier
``bench_transport.py`` run. On this machine TauFactor's time moved 14-22 s between runs, so
here every round runs TauFactor at 200³ and then the FEM from the same particles, one after
the other, and the figure is the median over the rounds of each round's ratio.

* The structure is ``bench_transport.py``'s: its particles CSV, with τ* from
  ``bench_transport_o2p2_glue.json`` (curved P2, Richardson).
* FEM: the discrete route from the particles (surface, HXT, import) and ``solve_transport``
  (P1, CG + GAMG, rtol 1e-10), at one h for each mesh kind:
  * ``eo``: ``MeshOptions.electrolyte_only``;
  * ``full``: every phase meshed;
  * ``eo_unmended``: ``eo`` with ``MeshOptions.mend_rounds = 0``. At h = 1.95 µm the first
    mesh has a cell below the quality goal of 0.1, so by default the route meshes again,
    refined around its poor cells (BENCHMARKS.md, issue 14, tenth part); this is the
    first mesh alone.

  The default h = 1.95 µm gives about TauFactor's error at 200³: 11.15 % against 11.4 % at
  h = 2 µm (bench_transport_discrete.json). Both errors are reported.
* One warm-up FEM solve compiles the forms first. TauFactor (CPU, torch on one thread) gets
  the same voxel image in every round.

Writes ``benchmarks/results/bench_tau_race<T>.json``.
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

import gmsh
from bench_peers import run_taufactor, voxelise
from bench_transport import BOX, machine_note, mesh_case, solve

from electrofem import __version__
from electrofem.microstructure import Box, Particles

RESULTS = Path(__file__).resolve().parent / "results"
REFERENCE = "bench_transport_o2p2_glue.json"


#: the mesh kinds: bench_transport.mesh_case's keywords
KINDS = {"eo": {"eo": True}, "full": {}, "eo_unmended": {"eo": True, "mend_rounds": 0}}


def fem_once(parts: Particles, h: float, kind: str) -> dict:
    em, st, t_mesh = mesh_case(parts, h, 1, "discrete", **KINDS[kind])
    d, t_solve = solve(em)
    return dict(
        seconds=t_mesh + t_solve,
        seconds_mesh=t_mesh,
        seconds_solve=t_solve,
        cells=int(em.mesh.topology.index_map(3).size_global),
        min_quality=st.min_quality,
        seconds_mend=st.seconds_split.get("mend", 0.0),
        tau=d.tortuosity,
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--h", type=float, default=1.95, help="FEM mesh size, µm")
    ap.add_argument("--res", type=int, default=200, help="TauFactor voxels per side")
    ap.add_argument("--meshes", nargs="+", default=["eo", "full"], choices=list(KINDS))
    ap.add_argument("--tag", default="", help="suffix of the JSON file name")
    args = ap.parse_args()
    import torch

    torch.set_num_threads(1)
    ref = json.loads((RESULTS / REFERENCE).read_text())
    tau_star = ref["richardson"]["tau"]
    parts = Particles.from_csv(RESULTS / ref["structure"]["particles_csv"], Box(BOX, periodic=True))
    pore = voxelise(parts, args.res)
    gmsh.initialize()
    gmsh.option.setNumber("General.Terminal", 0)
    fem_once(parts, args.h, "eo")  # warm-up: JIT-compile the forms
    rounds = []
    for k in range(args.rounds):
        tf = run_taufactor(pore)
        row = {"taufactor": tf}
        for kind in args.meshes:
            row[kind] = fem_once(parts, args.h, kind)
            row[kind]["ratio"] = tf["seconds"] / row[kind]["seconds"]
        rounds.append(row)
        print(
            f"round {k + 1}: TauFactor {tf['seconds']:.1f} s"
            + "".join(
                f" | FEM {kind} {row[kind]['seconds']:.2f} s ({row[kind]['ratio']:.2f}x)"
                for kind in args.meshes
            ),
            flush=True,
        )
    gmsh.finalize()

    def err(tau):
        return abs(tau - tau_star) / tau_star

    summary = {
        "taufactor_seconds_median": statistics.median(r["taufactor"]["seconds"] for r in rounds),
        "taufactor_error": err(rounds[0]["taufactor"]["tau"]),
    }
    for kind in args.meshes:
        summary[kind] = {
            "seconds_median": statistics.median(r[kind]["seconds"] for r in rounds),
            "ratio_median": statistics.median(r[kind]["ratio"] for r in rounds),
            "ratio_range": [
                min(r[kind]["ratio"] for r in rounds),
                max(r[kind]["ratio"] for r in rounds),
            ],
            "error": err(rounds[0][kind]["tau"]),
            "cells": rounds[0][kind]["cells"],
            "min_quality": rounds[0][kind]["min_quality"],
            "seconds_mend": rounds[0][kind]["seconds_mend"],
        }
    print(
        "\n| method | error vs τ* | min quality | median time (s) | ratio per round "
        "(median, range) |"
    )
    print("|---|---|---|---|---|")
    print(
        f"| TauFactor {args.res}³ | {100 * summary['taufactor_error']:.2f} % | "
        f"| {summary['taufactor_seconds_median']:.1f} | |"
    )
    for kind in args.meshes:
        s = summary[kind]
        print(
            f"| FEM {kind}, h = {args.h} µm, {s['cells']} cells | {100 * s['error']:.2f} % | "
            f"{s['min_quality']:.3f} | {s['seconds_median']:.2f} | {s['ratio_median']:.2f}× "
            f"({s['ratio_range'][0]:.2f}–{s['ratio_range'][1]:.2f}) |"
        )
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"bench_tau_race{args.tag}.json").write_text(
        json.dumps(
            dict(
                command="python benchmarks/bench_tau_race.py "
                + f"--rounds {args.rounds} --h {args.h} --res {args.res} "
                + "--meshes "
                + " ".join(args.meshes)
                + (f" --tag {args.tag}" if args.tag else ""),
                version=__version__,
                tau_star=tau_star,
                tau_star_from=REFERENCE,
                machine=machine_note(),
                summary=summary,
                rounds=rounds,
            ),
            indent=1,
        )
    )


if __name__ == "__main__":
    main()
