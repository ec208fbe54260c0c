"""Mesh and import times with cell counts.

    python benchmarks/bench_mesh.py [--quick]

* 2D paper-002 geometry: L-S, 146 x 50 µm, h = 0.5 µm;
* 3D box with ~500 bidisperse particles (Mix of 4.5 / 11.3 µm is too large a box for 500, so
  radii 3 and 4 µm, 50 x 50 x 60 µm, as in stack-facts), h = 1 µm.
Timings: packing, Gmsh geometry (OCC + fragment), Gmsh meshing, dolfinx import (model_to_mesh).
"""

import argparse
import time

import gmsh
from mpi4py import MPI

from electrofem.mesh import ElectrodeMesh, MeshOptions, build_and_mesh
from electrofem.microstructure import (
    Box,
    Electrode,
    Fixed,
    Layer,
    Population,
    generate,
    preset,
    summarize,
)


def run(name, spec, opts):
    t = time.perf_counter()
    parts = generate(spec)
    t_pack = time.perf_counter() - t
    gmsh.initialize()
    rep, st = build_and_mesh(parts, opts)
    t = time.perf_counter()
    em = ElectrodeMesh.from_gmsh(MPI.COMM_WORLD, parts.dim)
    t_imp = time.perf_counter() - t
    gmsh.finalize()
    por = summarize(parts)["porosity"]
    print(
        f"| {name} | {len(parts)} | {opts.size} | {st.n_cells} | {t_pack:.1f} | "
        f"{st.seconds_geometry:.1f} | {st.seconds_mesh:.1f} | {t_imp:.1f} | "
        f"{st.min_quality:.3f} | {por:.3f} |",
        flush=True,
    )
    return em


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()
    print(
        "| case | particles | h (µm) | cells | pack (s) | geometry (s) | mesh (s) | "
        "import (s) | min quality | porosity |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    run(
        "2D L-S 146x50",
        preset("L-Dry-S", width=50, height=146, porosity=0.40, seed=1),
        MeshOptions(size=0.5),
    )
    if args.quick:
        return
    pops = (
        Population(Fixed(3.0), volume_fraction=0.4),
        Population(Fixed(4.0), volume_fraction=0.6),
    )
    spec3 = Electrode(Box((50.0, 50.0, 60.0)), (Layer(1.0, 0.45, pops),), seed=1)
    run("3D bidisperse 50x50x60", spec3, MeshOptions(size=1.0))


if __name__ == "__main__":
    main()
