"""Accuracy against cost of the tortuosity factor on a 3D bidisperse packing.

    python benchmarks/bench_transport.py                      # the h study (serial), ~15 min
    python benchmarks/bench_transport.py --sizes 2.5 2.0      # a subset of h
    python benchmarks/bench_transport.py --order 2 --degree 2 --sizes 4 3 2 1.41 1.0
                                                # curved cells, P2 (bench_transport_o2p2.json)
    python benchmarks/bench_transport.py --route discrete --sizes 2.0 1.41
                                                # the discrete route (..._discrete.json)
    python benchmarks/bench_transport.py --route discrete --electrolyte-only --sizes 2.0 1.41 1.0
                                    # the pore meshed alone (..._discrete_eo.json)
    mpirun -n 2 python benchmarks/bench_transport.py --mpi-case 1.0   # one h on N ranks
    python benchmarks/bench_transport.py --mpi-case 1.0               # ... and on 1 rank

Structure: 40 x 40 x 40 µm, laterally periodic, porosity 0.40, bidisperse spheres of radius
2.5 and 3.5 µm (40 % / 60 % of the solid volume), overlapping contacts (default
``ContactModel``), seed 1: ~360 particles. The particles are written to
``benchmarks/results/bench_transport_particles.csv`` so that ``bench_peers.py`` voxelises the
same structure (``--mpi-case`` reads them back).

Mesh: every size of the size field scales with h: ``MeshOptions(size=h,
radius_factor=0.25 h, neck_factor=0.5 h)`` (h in µm; h = 1 is the default MeshOptions), so
h, 2h are a uniform refinement of the same graded mesh. tau of the electrolyte through-plane (z),
P1 + CG/GAMG (``solve_transport`` defaults, rtol 1e-10).

The converged value is Richardson-extrapolated from the three finest h with the observed order
p (solved from tau(h) = tau* + C h^p through the three points, any h ratios). Times: ``mesh``
is the Gmsh meshing (size field + tetrahedra) plus the dolfinx import; the OCC geometry is built
once (reported separately, and added in ``total``); ``solve`` is ``solve_transport`` (submesh,
assembly, GAMG setup + CG), forms already JIT-compiled (a warm-up solve runs first).

Writes ``benchmarks/results/bench_transport.json`` (``bench_transport_mpi_n<N>.json`` for
``--mpi-case``) and prints markdown tables.
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import time
from pathlib import Path

import gmsh
from mpi4py import MPI

from electrofem import tags
from electrofem.mesh import ElectrodeMesh, MeshOptions, build_and_mesh, build_geometry
from electrofem.mesh.geometry import mesh_geometry
from electrofem.microstructure import (
    Box,
    Electrode,
    Fixed,
    Layer,
    Particles,
    Population,
    generate,
    summarize,
)
from electrofem.physics.transport import solve_transport

COMM = MPI.COMM_WORLD
RESULTS = Path(__file__).resolve().parent / "results"
PARTICLES_CSV = RESULTS / "bench_transport_particles.csv"
BOX = (40.0, 40.0, 40.0)
RADII = (2.5, 3.5)
POROSITY = 0.40
SEED = 1
SIZES = (2.0, 1.41, 1.0, 0.71)


def spec() -> Electrode:
    pops = (
        Population(Fixed(RADII[0]), volume_fraction=0.4),
        Population(Fixed(RADII[1]), volume_fraction=0.6),
    )
    return Electrode(Box(BOX), (Layer(1.0, POROSITY, pops),), seed=SEED)


def mesh_options(
    h: float, order: int = 1, route: str = "auto", electrolyte_only: bool = False, **kw
) -> MeshOptions:
    """The case's sizes at ``h``; ``kw``: other MeshOptions fields."""
    return MeshOptions(
        size=h,
        radius_factor=0.25 * h,
        neck_factor=0.5 * h,
        size_min=0.01,
        order=order,
        geometry_route=route,
        electrolyte_only=electrolyte_only,
        **kw,
    )


def observed_order(h, tau) -> tuple[float, float]:
    """(p, tau*) of tau(h) = tau* + C h^p through three points (h ascending), any ratios."""
    (h1, h2, h3), (t1, t2, t3) = h, tau
    target = (t3 - t2) / (t2 - t1)
    if not target > 0:
        return math.nan, math.nan

    def g(p):
        return (h3**p - h2**p) / (h2**p - h1**p) - target

    lo, hi = 1e-3, 8.0
    if g(lo) * g(hi) > 0:
        return math.nan, math.nan
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        if g(lo) * g(mid) <= 0:
            hi = mid
        else:
            lo = mid
    p = 0.5 * (lo + hi)
    c = (t2 - t1) / (h2**p - h1**p)
    return p, t1 - c * h1**p


def solve(em, degree: int = 1) -> tuple[object, float]:
    COMM.barrier()
    t = time.perf_counter()
    d = solve_transport(em, {tags.ELECTROLYTE: 1.0}, directions=("z",), degree=degree)
    d = d.directions["z"]
    COMM.barrier()
    return d, time.perf_counter() - t


def mesh_case(
    parts: Particles, h: float, order: int = 1, route: str = "auto", eo: bool = False, **kw
):
    """Mesh the current gmsh geometry (rank 0) at h and distribute; returns em, stats, time.
    The discrete route builds its surface here, at h (it has no separate geometry)."""
    COMM.barrier()
    t = time.perf_counter()
    st = None
    if COMM.rank == 0:
        options = mesh_options(h, order, route, eo, **kw)
        if route == "discrete":
            st = build_and_mesh(parts, options)[1]
        else:
            st = mesh_geometry(options, parts)
    em = ElectrodeMesh.from_gmsh(COMM, 3, {"box_um": list(BOX)})
    COMM.barrier()
    return em, COMM.bcast(st, root=0), time.perf_counter() - t


def machine_note() -> str:
    load = Path("/proc/loadavg").read_text().split()[:3] if Path("/proc/loadavg").exists() else []
    return (
        f"{platform.node()}: {COMM.size} rank(s), load average at start {' '.join(load)} "
        "(other work may run concurrently on this 2-core machine)"
    )


def study(sizes, order: int = 1, degree: int = 1, route: str = "auto", eo: bool = False) -> dict:
    RESULTS.mkdir(parents=True, exist_ok=True)
    t = time.perf_counter()
    parts = generate(spec())
    t_pack = time.perf_counter() - t
    parts.to_csv(PARTICLES_CSV)
    summ = summarize(parts)
    print(f"<!-- {machine_note()} -->")
    print(
        f"structure: {len(parts)} particles (r = {RADII} µm), box {BOX} µm, porosity "
        f"{summ['porosity']:.4f} (exact union volume), packed in {t_pack:.1f} s -> {PARTICLES_CSV}",
        flush=True,
    )
    gmsh.initialize()
    t = time.perf_counter()
    if route != "discrete":
        build_geometry(parts, verbose=False)
    t_geom = time.perf_counter() - t
    print(f"OCC geometry (once): {t_geom:.1f} s", flush=True)
    # warm-up: JIT-compile the forms on a coarse mesh (the discrete route: the coarsest h,
    # since HXT's optimiser is slow on its 3 µm mesh, BENCHMARKS.md)
    em, _, _ = mesh_case(parts, sizes[0] if route == "discrete" else 3.0, order, route, eo)
    solve(em, degree)
    del em
    rows = []
    head = (
        "| h (µm) | cells | dofs | mesh (s) | solve (s) | CG its | ε (mesh) | τ | "
        "error vs extrapolated |"
    )
    print("\n" + head + "\n|---|---|---|---|---|---|---|---|---|", flush=True)
    for h in sizes:
        em, st, t_mesh = mesh_case(parts, h, order, route, eo)
        d, t_solve = solve(em, degree)
        rows.append(
            dict(
                h=h,
                cells=int(em.mesh.topology.index_map(3).size_global),
                dofs=d.dofs,
                seconds_mesh=t_mesh,
                seconds_gmsh=st.seconds_mesh,
                seconds_solve=t_solve,
                iterations=d.iterations,
                epsilon=d.epsilon,
                tau=d.tortuosity,
                relative_diffusivity=d.relative_diffusivity,
                min_quality=st.min_quality,
                straightened_cells=st.straightened_cells,
            )
        )
        r = rows[-1]
        print(
            f"| {h} | {r['cells']} | {r['dofs']} | {t_mesh:.1f} | {t_solve:.2f} | "
            f"{r['iterations']} | {d.epsilon:.4f} | {d.tortuosity:.4f} | (pending) |",
            flush=True,
        )
        del em
    gmsh.finalize()
    fine = sorted(rows, key=lambda r: r["h"])[:3]
    p, tau_star = observed_order([r["h"] for r in fine], [r["tau"] for r in fine])
    for r in rows:
        r["error"] = abs(r["tau"] - tau_star) / tau_star
        r["seconds_total"] = r["seconds_mesh"] + r["seconds_solve"] + t_geom
    print(
        f"\nRichardson from h = {[r['h'] for r in fine]}: observed order p = {p:.2f}, "
        f"tau* = {tau_star:.4f}; exact porosity {summ['porosity']:.4f}\n"
    )
    print(
        "| h (µm) | cells | dofs | mesh (s) | solve (s) | mesh + solve + geometry (s) | τ | "
        "error vs τ* |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['h']} | {r['cells']} | {r['dofs']} | {r['seconds_mesh']:.1f} | "
            f"{r['seconds_solve']:.2f} | {r['seconds_total']:.1f} | {r['tau']:.4f} | "
            f"{100 * r['error']:.2f} % |"
        )
    out = dict(
        structure=dict(
            box_um=list(BOX),
            radii_um=list(RADII),
            n_particles=len(parts),
            porosity_exact=summ["porosity"],
            seed=SEED,
            periodic=parts.box.periodic,
            particles_csv=str(PARTICLES_CSV.name),
        ),
        seconds_pack=t_pack,
        seconds_geometry=t_geom,
        rows=rows,
        richardson=dict(h=[r["h"] for r in fine], order=p, tau=tau_star),
        geometry_order=order,
        degree=degree,
        geometry_route=route,
        electrolyte_only=eo,
        machine=machine_note(),
    )
    (RESULTS / result_name(order, degree, route, eo)).write_text(json.dumps(out, indent=2))
    return out


def result_name(order: int, degree: int, route: str = "auto", eo: bool = False) -> str:
    """``bench_transport.json`` (straight, P1), else ``bench_transport_o<order>p<degree>.json``;
    ``_discrete`` before ``.json`` for the discrete route, then ``_eo`` for the pore alone."""
    stem = "bench_transport" if (order, degree) == (1, 1) else f"bench_transport_o{order}p{degree}"
    return stem + ("_discrete" if route == "discrete" else "") + ("_eo" if eo else "") + ".json"


def load_particles() -> Particles:
    if not PARTICLES_CSV.is_file():
        raise SystemExit(f"{PARTICLES_CSV} is missing: run the study first (without --mpi-case)")
    parts = Particles.from_csv(PARTICLES_CSV, Box(BOX, periodic=True))
    return parts


def mpi_case(h: float) -> None:
    """One h on COMM.size ranks: solve time and tau; table rows for all runs done so far."""
    parts = load_particles() if COMM.rank == 0 else None
    if COMM.rank == 0:
        gmsh.initialize()
        build_geometry(parts, verbose=False)
    em, _, _ = mesh_case(parts, 3.0)
    solve(em)  # warm-up (JIT)
    em, _, t_mesh = mesh_case(parts, h)
    d, t_solve = solve(em)
    d2, t_solve2 = solve(em)  # twice: the best of two
    if COMM.rank == 0:
        gmsh.finalize()
        RESULTS.mkdir(parents=True, exist_ok=True)
        res = dict(
            h=h,
            ranks=COMM.size,
            cells=int(em.mesh.topology.index_map(3).size_global),
            dofs=d.dofs,
            seconds_mesh_and_distribute=t_mesh,
            seconds_solve=min(t_solve, t_solve2),
            iterations=d.iterations,
            tau=d.tortuosity,
            tau_repeat=d2.tortuosity,
            machine=machine_note(),
        )
        (RESULTS / f"bench_transport_mpi_n{COMM.size}.json").write_text(json.dumps(res, indent=2))
        runs = []
        for f in sorted(RESULTS.glob("bench_transport_mpi_n*.json")):
            r = json.loads(f.read_text())
            if r["h"] == h:
                runs.append(r)
        base = next((r for r in runs if r["ranks"] == 1), None)
        print(
            "| ranks | h (µm) | cells | dofs | mesh + distribute (s) | solve (s) | CG its | τ | "
            "τ − τ(1 rank) |"
        )
        print("|---|---|---|---|---|---|---|---|---|")
        for r in sorted(runs, key=lambda r: r["ranks"]):
            dt = f"{r['tau'] - base['tau']:.1e}" if base else "-"
            print(
                f"| {r['ranks']} | {r['h']} | {r['cells']} | {r['dofs']} | "
                f"{r['seconds_mesh_and_distribute']:.1f} | {r['seconds_solve']:.2f} | "
                f"{r['iterations']} | {r['tau']:.8f} | {dt} |"
            )


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sizes", type=float, nargs="+", default=list(SIZES), help="h values, µm")
    ap.add_argument("--mpi-case", type=float, default=None, help="run one h on COMM.size ranks")
    ap.add_argument("--order", type=int, choices=[1, 2], default=1, help="geometry order")
    ap.add_argument("--degree", type=int, choices=[1, 2], default=1, help="Lagrange degree")
    ap.add_argument(
        "--route", choices=["auto", "discrete"], default="auto", help="MeshOptions.geometry_route"
    )
    ap.add_argument(
        "--electrolyte-only",
        action="store_true",
        help="MeshOptions.electrolyte_only: mesh the pore alone (the discrete route)",
    )
    args = ap.parse_args()
    if args.mpi_case is not None:
        mpi_case(args.mpi_case)
        return
    if COMM.size > 1:
        raise SystemExit("the h study runs serially; use --mpi-case H under mpirun")
    route = "discrete" if args.electrolyte_only else args.route
    study(sorted(args.sizes, reverse=True), args.order, args.degree, route, args.electrolyte_only)


if __name__ == "__main__":
    main()
