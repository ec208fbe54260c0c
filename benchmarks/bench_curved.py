"""Curved (second-order) cells against straight ones: porosity and a closed-form transport.

    python benchmarks/bench_curved.py

1. A simple-cubic array of insulating spheres (one sphere of solid fraction 0.15 centred in a
   10 µm cube, zero-flux sides), D_eff/D0 against Rayleigh's formula (McPhedran & McKenzie's
   coefficient, as in ``tests/test_transport_3d.py``), on two meshes (size, radius_factor) =
   (1.2, 0.3) and (0.6, 0.15): straight cells with P1, curved cells with P1 and with P2.
2. The solid fraction on the mesh against the exact one, for the same meshes and for the
   box50 pack of ``bench_mesh.py`` (39 overlapping spheres, h = 2 µm, h ≈ r/3.6).

Writes ``benchmarks/results/bench_curved.json`` and prints markdown tables.
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path

import gmsh
from bench_mesh import case_spec
from mpi4py import MPI

from electrofem import analysis, tags
from electrofem.mesh import ElectrodeMesh, MeshOptions, build_and_mesh
from electrofem.microstructure import Box, Particles, generate, summarize
from electrofem.physics.transport import solve_transport

COMM = MPI.COMM_WORLD
RESULTS = Path(__file__).resolve().parent / "results"
PHI, SIDE = 0.15, 10.0


def rayleigh_sc(f: float) -> float:
    return 1.0 - 3.0 * f / (2.0 + f - 0.75 * 1.305 * f ** (10.0 / 3.0))


def mesh(parts, opts):
    st = None
    if COMM.rank == 0:
        gmsh.initialize()
        gmsh.option.setNumber("General.Terminal", 0)
        _, st = build_and_mesh(parts, opts)
    em = ElectrodeMesh.from_gmsh(COMM, 3, {"box_um": list(parts.box.size)})
    if COMM.rank == 0:
        gmsh.finalize()
    return em, COMM.bcast(st, root=0)


def sphere_rows() -> list[dict]:
    r = SIDE * (3.0 * PHI / (4.0 * math.pi)) ** (1.0 / 3.0)
    f_exact = 4.0 / 3.0 * math.pi * r**3 / SIDE**3
    parts = Particles(Box((SIDE,) * 3, periodic=False), [[SIDE / 2] * 3], [r])
    rows = []
    for order, degree in ((1, 1), (2, 1), (2, 2)):
        for size, rf in ((1.2, 0.3), (0.6, 0.15)):
            em, st = mesh(parts, MeshOptions(size=size, radius_factor=rf, order=order))
            t = time.perf_counter()
            d = solve_transport(em, {tags.ELECTROLYTE: 0.8}, directions=("z",), degree=degree)
            d = d.directions["z"]
            f = 1.0 - d.epsilon
            ray = rayleigh_sc(f_exact)
            rows.append(
                dict(
                    order=order,
                    degree=degree,
                    size=size,
                    cells=st.n_cells,
                    pulled_back=st.straightened_cells,
                    dofs=d.dofs,
                    solid_fraction_error=(f - f_exact) / f_exact,
                    relative_diffusivity=d.relative_diffusivity,
                    deviation_from_rayleigh=(d.relative_diffusivity - ray) / ray,
                    seconds_solve=time.perf_counter() - t,
                )
            )
    return rows


def pack_rows() -> list[dict]:
    spec, opts = case_spec("box50")
    parts = generate(spec)
    exact = summarize(parts)["porosity"]
    rows = []
    for order in (1, 2):
        em, st = mesh(parts, MeshOptions(**{**opts.__dict__, "order": order}))
        vols = analysis.phase_volumes(em)
        por = vols.get(tags.ELECTROLYTE, 0.0) / sum(vols.values())
        rows.append(
            dict(
                order=order,
                cells=st.n_cells,
                pulled_back=st.straightened_cells,
                porosity_exact=exact,
                porosity_mesh=por,
                relative_error=(por - exact) / exact,
                seconds_mesh=st.seconds_mesh,
                curve_seconds=st.seconds_split.get("curve", 0.0),
            )
        )
    return rows


def main():
    spheres, packs = sphere_rows(), pack_rows()
    if COMM.rank != 0:
        return
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "bench_curved.json").write_text(
        json.dumps(dict(ranks=COMM.size, spheres=spheres, pack=packs), indent=2)
    )
    print("| geometry | order | degree | size (µm) | cells | pulled back | dofs | solid fraction "
          "error | D_eff/D0 − Rayleigh (rel.) |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|---|")
    for r in spheres:
        kind = "curved" if r["order"] == 2 else "straight"
        print(
            f"| {kind} | {r['order']} | {r['degree']} | {r['size']} | {r['cells']} | "
            f"{r['pulled_back']} | {r['dofs']} | {r['solid_fraction_error']:+.1e} | "
            f"{r['deviation_from_rayleigh']:+.1e} |"
        )
    print("\n| box50 pack | cells | pulled back | porosity on the mesh | exact | error | "
          "curving (s) |")  # fmt: skip
    print("|---|---|---|---|---|---|---|")
    for r in packs:
        print(
            f"| order {r['order']} | {r['cells']} | {r['pulled_back']} | "
            f"{r['porosity_mesh']:.6f} | {r['porosity_exact']:.6f} | "
            f"{r['relative_error']:+.1e} | {r['curve_seconds']:.2f} |"
        )


if __name__ == "__main__":
    main()
