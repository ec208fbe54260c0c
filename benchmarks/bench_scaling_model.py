"""What 8, 64 and 512 ranks would give (issue 16): partitions of a real 3D electrode mesh.

    python benchmarks/bench_scaling_model.py                       # default electrode, h = 1 µm
    python benchmarks/bench_scaling_model.py --mesh DIR/mesh.xdmf --ranks 2,8,64,512

Nothing here runs in parallel: the mesh's cell dual graph is cut with SCOTCH (the partitioner
dolfinx uses here) into N parts on one process, exactly as ``mpirun -n N`` would distribute it,
and each part's load and halo are counted:

* owned cells and vertices (P1 dofs: two fields per electrolyte vertex, two per particle vertex,
  four on the interface, as the half cell and the VOF pressure/alpha fields use them);
* ghost vertices: vertices a part's cells use but another part owns (a hash picks the owner
  among the parts sharing a vertex, balanced as dolfinx balances it). One halo exchange of
  one P1 field sends/receives that many values, so a Krylov iteration moves
  ``ghosts x fields x 8 B`` per matrix product and per smoother sweep of the finest level;
* neighbours: the distinct parts a part exchanges with (latency: messages per exchange).

The model of the time per Krylov iteration on ``N`` ranks is then
``t(N) = w n_max(N) + (alpha m(N) + beta b(N)) + gamma log2(N)`` with ``n_max`` the largest
part's dofs, ``m`` its neighbours, ``b`` its halo bytes and two global reductions per GMRES
iteration. ``w`` (s per dof per iteration) is measured here on one core by a sparse
matrix-vector product on a P1 Laplacian of the mesh (the dominant kernel of a Krylov iteration
with an AMG or SOR smoother, per sweep); ``alpha`` = 2 µs, ``beta`` = 1/(10 GB/s) and ``gamma`` =
5 µs per level of the reduction tree are stated assumptions for an InfiniBand cluster (not
measured here: this machine has 2 cores). The model assumes the iteration count does not grow
with N (true for GAMG; a block-Jacobi/ILU smoother grows slowly; LU is not modelled: its fill
grows as n^(4/3), which is why issue 16 replaces it).

Writes ``benchmarks/results/scaling_model.json`` and prints the markdown table of BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
from mpi4py import MPI

RESULTS = Path(__file__).resolve().parent / "results"
ALPHA_S, BETA_S_PER_B, GAMMA_S = 2e-6, 1e-10, 5e-6


def default_mesh(out: Path, size_um: float) -> Path:
    """The issue's 3D discharge electrode class: L-S 5:5, 50 x 50 x 60 µm, porosity 0.40."""
    from electrofem.config import parse
    from electrofem.jobs.generate import run_generate

    path = out / "mesh.xdmf"
    if not path.is_file():
        cfg = parse(
            {
                "seed": 1,
                "preset": "L-S",
                "ratio": "5:5",
                "porosity": 0.40,
                "box": {"width": 50.0, "depth": 50.0, "height": 60.0},
                "mesh": {"size": size_um, "radius_factor": 0.5},
            }
        )
        run_generate(cfg, out, comm=MPI.COMM_SELF, progress=False, picture=False)
    return path


def partition_stats(cells: np.ndarray, phase: np.ndarray, n_vertices: int, parts: np.ndarray):
    """Per part: owned cells, owned dofs, ghost vertices, neighbour parts."""
    n_parts = int(parts.max()) + 1
    # (part, vertex) pairs a part uses; a shared vertex is owned by one of its parts chosen
    # by a hash (balanced, as dolfinx balances shared-vertex ownership; "lowest part" would
    # leave part 0 with no ghost at all)
    used = np.unique(np.repeat(parts, cells.shape[1]) * n_vertices + cells.ravel())
    upart, uvert = np.divmod(used, n_vertices)
    key = (upart * 2654435761 + uvert * 40503) % 4294967291
    order = np.lexsort((key, uvert))
    first = np.ones(len(order), dtype=bool)
    first[1:] = uvert[order][1:] != uvert[order][:-1]
    owner = np.empty(n_vertices, dtype=np.int64)
    owner[uvert[order][first]] = upart[order][first]
    # fields per vertex: 2 per phase that touches it (electrolyte: c, phi; active: x, phi_s)
    touches = np.zeros((n_vertices, 2), dtype=bool)
    for k, is_e in enumerate((phase == phase.min(), phase != phase.min())):
        touches[np.unique(cells[is_e]), k] = True
    fields = 2 * touches.sum(axis=1)
    dofs = np.bincount(owner, weights=fields, minlength=n_parts)
    n_cells = np.bincount(parts, minlength=n_parts)
    ghost = owner[uvert] != upart  # a used vertex owned elsewhere
    ghosts = np.bincount(upart[ghost], minlength=n_parts)
    ghost_dofs = np.bincount(upart[ghost], weights=fields[uvert[ghost]], minlength=n_parts)
    pairs = np.unique(upart[ghost] * n_parts + owner[uvert[ghost]])
    neighbours = np.bincount(pairs // n_parts, minlength=n_parts)
    return n_cells, dofs, ghosts, ghost_dofs, neighbours


def spmv_seconds_per_dof(mesh) -> float:
    """One core: seconds per dof of a P1 Laplacian matrix-vector product on ``mesh``."""
    import ufl
    from dolfinx import fem
    from dolfinx.fem.petsc import assemble_matrix

    V = fem.functionspace(mesh, ("Lagrange", 1))
    u, v = ufl.TrialFunction(V), ufl.TestFunction(V)
    A = assemble_matrix(fem.form(ufl.inner(ufl.grad(u), ufl.grad(v)) * ufl.dx))
    A.assemble()
    x, y = A.createVecs()
    x.set(1.0)
    reps = 50
    t = time.perf_counter()
    for _ in range(reps):
        A.mult(x, y)
    dt = (time.perf_counter() - t) / reps
    n = A.getSize()[0]
    A.destroy()
    return dt / n


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--mesh", default=None, help="an electrode mesh.xdmf (default: generate)")
    ap.add_argument("--size", type=float, default=1.0, help="mesh size of the default (µm)")
    ap.add_argument("--ranks", default="2,8,64,512")
    args = ap.parse_args(argv)
    import dolfinx_solver  # noqa: F401  (before dolfinx, as the package does)
    from dolfinx import graph
    from dolfinx import mesh as dmesh

    from electrofem.mesh import ElectrodeMesh

    out = RESULTS / "scaling_model_out"
    path = Path(args.mesh) if args.mesh else default_mesh(out, args.size)
    em = ElectrodeMesh.read(path, MPI.COMM_SELF)
    msh = em.mesh
    tdim = msh.topology.dim
    msh.topology.create_connectivity(tdim, 0)
    cells = msh.topology.connectivity(tdim, 0).array.reshape(-1, tdim + 1).astype(np.int64)
    n_vertices = msh.topology.index_map(0).size_local
    phase = np.empty(len(cells), dtype=np.int32)
    phase[em.cell_tags.indices] = em.cell_tags.values
    dual = dmesh.build_dual_graph(
        MPI.COMM_SELF, [msh.topology.cell_type], [np.ascontiguousarray(cells.ravel())], 2
    )
    w = spmv_seconds_per_dof(msh)
    n_dofs_total = None
    rows = []
    for n in [int(v) for v in args.ranks.split(",")]:
        t = time.perf_counter()
        part = graph.partitioner_scotch()(MPI.COMM_SELF, n, dual, False)
        parts = np.asarray(part.array, dtype=np.int64)[part.offsets[:-1]]
        t_part = time.perf_counter() - t
        n_cells, dofs, ghosts, ghost_dofs, nbrs = partition_stats(cells, phase, n_vertices, parts)
        n_dofs_total = float(dofs.sum())
        halo_b = float(ghost_dofs.max()) * 8.0
        compute = w * float(dofs.max())
        comm = ALPHA_S * float(nbrs.max()) + BETA_S_PER_B * halo_b
        reduce = 2 * GAMMA_S * np.log2(max(n, 1))
        rows.append(
            {
                "ranks": n,
                "cells_per_rank_mean": float(n_cells.mean()),
                "dofs_per_rank_max": float(dofs.max()),
                "dofs_per_rank_mean": float(dofs.mean()),
                "imbalance": float(dofs.max() / dofs.mean()),
                "ghost_vertices_max": int(ghosts.max()),
                "ghost_fraction_max": float(np.max(ghost_dofs / np.maximum(dofs, 1))),
                "halo_bytes_per_field_exchange_max": halo_b,
                "neighbours_max": int(nbrs.max()),
                "model_s_per_iteration": {"compute": compute, "halo": comm, "reductions": reduce},
                "partition_s": t_part,
            }
        )
    t1 = w * n_dofs_total
    for r in rows:
        m = r["model_s_per_iteration"]
        r["model_speedup"] = t1 / sum(m.values())
        r["model_efficiency"] = r["model_speedup"] / r["ranks"]
    doc = {
        "mesh": str(path),
        "cells": int(len(cells)),
        "vertices": int(n_vertices),
        "dofs": n_dofs_total,
        "spmv_s_per_dof_one_core": w,
        "assumptions": {"alpha_s": ALPHA_S, "beta_s_per_byte": BETA_S_PER_B, "gamma_s": GAMMA_S},
        "rows": rows,
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "scaling_model.json").write_text(json.dumps(doc, indent=2))
    print(
        f"{len(cells)} cells, {n_vertices} vertices, {n_dofs_total:.0f} P1 dofs (2 fields a "
        f"phase); SpMV {w * 1e9:.1f} ns/dof on one core"
    )
    print(
        "| ranks | dofs/rank (max) | imbalance | ghost dofs / owned (max) | halo per exchange "
        "(kB) | neighbours (max) | model speed-up | efficiency |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['ranks']} | {r['dofs_per_rank_max']:.0f} | {r['imbalance']:.3f} | "
            f"{r['ghost_fraction_max']:.3f} | {r['halo_bytes_per_field_exchange_max'] / 1e3:.1f} | "
            f"{r['neighbours_max']} | {r['model_speedup']:.1f} | {r['model_efficiency']:.2f} |"
        )
    return doc


if __name__ == "__main__":
    main()
