"""Mesh and import times with cell counts.

    python benchmarks/bench_mesh.py [--quick]
    python benchmarks/bench_mesh.py --case box400 [--gmsh Mesh.Algorithm=5 ...] [--label x]
        [--route auto|occ|fragment|discrete]

Without ``--case`` (the issue-2 table):

* 2D paper-002 geometry: L-S, 146 x 50 µm, h = 0.5 µm;
* 3D box with ~500 bidisperse particles (Mix of 4.5 / 11.3 µm is too large a box for 500, so
  radii 3 and 4 µm, 50 x 50 x 60 µm, as in stack-facts), h = 1 µm.

With ``--case`` (issue 14), one case per process, the full split written to
``benchmarks/results/bench_mesh_<case>[_<label>].json``:

* ``box400``: ~400 spheres, lognormal r = 7.2 ± 0.7 µm, in a non-periodic 100 µm cube
  (walls on every side), overlapping contacts (the default ``ContactModel``), h = 2 µm;
* ``box50``: the same recipe in a 50 µm cube (~50 spheres), for quick A/B runs;
* ``ls2d``: the 2D L-S case of the table;
* ``pack40``: issue 3's laterally periodic 40 µm pack (363 spheres, r = 2.5 / 3.5 µm) at
  ``bench_transport``'s h = 1 µm options;
* ``ls3d``: paper 002's 3D L-S section, 146 x 50 x 50 µm, d = 11.3 / 4.5 µm, porosity 0.40,
  laterally periodic, h = 1 µm.
* ``pack40x2``, ``ls3dx2``: the same with the smaller particles of phase ``second``: two
  solid phases that meet on contact faces (paper 003's SIA needs their area).

Under ``mpirun -n N`` the ranks share the OCC cuts and rank 0 meshes, as
``electrofem generate`` does (:mod:`electrofem.mesh.parallel`); the mesh hash must not change.

Split: packing, geometry (OCC radical-plane cuts, fragment, classification), size field,
surface mesh (gmsh ``generate(2)``), volume mesh (``generate(3)``), optimisation, import to
dolfinx, XDMF write; cell counts, minSICN quality (min, mean, fraction below 0.1/0.2/0.3), the
memory peak (``ru_maxrss``) and a hash of the mesh (node coordinates and cells, to check
determinism). ``--gmsh NAME=VALUE`` overrides a gmsh option after electrofem sets its own.
"""

import argparse
import hashlib
import json
import os
import resource
import shutil
import tempfile
import time
from pathlib import Path

import gmsh
import numpy as np
from mpi4py import MPI

from electrofem import analysis
from electrofem.mesh import ElectrodeMesh, MeshOptions, build_and_mesh
from electrofem.mesh.build import resolve_route
from electrofem.mesh.parallel import RankCutSharing, help_mesh
from electrofem.microstructure import (
    Box,
    Electrode,
    Fixed,
    Layer,
    LogNormal,
    Population,
    generate,
    preset,
    summarize,
)

RESULTS = Path(__file__).resolve().parent / "results"


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


def two_phases(spec):
    """The recipe with its smallest particles (by median radius) of phase ``second``."""
    import dataclasses

    from electrofem import tags

    def radius(p):
        return getattr(p.size, "mean", getattr(p.size, "radius", None))

    small = min(radius(p) for layer in spec.layers for p in layer.populations)
    layers = tuple(
        dataclasses.replace(
            layer,
            populations=tuple(
                dataclasses.replace(p, phase=tags.SECOND) if radius(p) == small else p
                for p in layer.populations
            ),
        )
        for layer in spec.layers
    )
    return dataclasses.replace(spec, layers=layers)


def case_spec(case: str):
    """``(recipe, MeshOptions)`` of an issue-14 case."""
    if case.endswith("x2"):
        spec, opts = case_spec(case[:-2])
        return two_phases(spec), opts
    if case == "pack40":  # issue 3's laterally periodic pack at its h = 1 µm
        import bench_transport

        return bench_transport.spec(), bench_transport.mesh_options(1.0)
    if case == "ls3d":  # paper 002's 3D L-S section: 146 x 50 x 50 µm, d = 11.3 / 4.5 µm
        return preset("L-S", dim=3, seed=1), MeshOptions(size=1.0)
    if case == "ls2d":
        return preset("L-Dry-S", width=50, height=146, porosity=0.40, seed=1), MeshOptions(0.5)
    size, porosity = {"box400": (100.0, 0.38), "box50": (50.0, 0.50)}[case]
    pops = (Population(LogNormal(7.2, 0.7)),)
    spec = Electrode(Box((size,) * 3, periodic=False), (Layer(1.0, porosity, pops),), seed=1)
    return spec, MeshOptions(size=2.0)


def git_revision() -> str:
    import subprocess

    try:
        out = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True
        )
        return out.stdout.strip()
    except OSError:
        return "unknown"


def mesh_hash() -> str:
    """SHA-1 of the node coordinates and the cells of the current gmsh model."""
    h = hashlib.sha1()
    _, coords, _ = gmsh.model.mesh.getNodes()
    h.update(np.asarray(coords, float).tobytes())
    dim = gmsh.model.getDimension()
    for _, tag in gmsh.model.getEntities(dim):
        types, _, nodes = gmsh.model.mesh.getElements(dim, tag)
        for t, n in zip(types, nodes, strict=True):
            h.update(np.int64(t).tobytes() + np.asarray(n, np.int64).tobytes())
    return h.hexdigest()


def quality_histogram(dim: int) -> dict:
    _, etags, _ = gmsh.model.mesh.getElements(dim)
    q = np.asarray(gmsh.model.mesh.getElementQualities(np.concatenate(etags), "minSICN"))
    out = {"min": float(q.min()), "mean": float(q.mean())}
    for b in (0.1, 0.2, 0.3):
        out[f"below_{b}"] = float(np.mean(q < b))
        out[f"count_below_{b}"] = int(np.sum(q < b))
    return out


def run_case(case: str, overrides: dict, label: str, write: bool, mesh_kw: dict) -> dict:
    comm = MPI.COMM_WORLD
    spec, opts = case_spec(case)
    if mesh_kw:
        opts = MeshOptions(**{**opts.__dict__, **mesh_kw})
    # as `electrofem generate` does: rank 0 packs and meshes, the other ranks cut part of the
    # particles and sleep (electrofem.mesh.parallel); from_gmsh distributes
    parts = st = info = quality = digest = None
    t_pack = 0.0
    if comm.rank == 0:
        t = time.perf_counter()
        parts = generate(spec)
        t_pack = time.perf_counter() - t
    parts = comm.bcast(parts, root=0)
    t_start = time.perf_counter()
    if comm.rank == 0:
        gmsh.initialize()
        gmsh.option.setNumber("General.Terminal", 0)
        with RankCutSharing(comm) as sharing:
            _, st = build_and_mesh(parts, opts, gmsh_options=overrides, sharing=sharing)
        t_mesh_wall = time.perf_counter() - t_start
        info = json.loads(gmsh.model.getAttribute("electrofem.geometry")[0])
        quality = quality_histogram(parts.dim)
        digest = mesh_hash()
    else:
        help_mesh(comm, parts, resolve_route(opts, parts))
    dim = comm.bcast(parts.dim if comm.rank == 0 else None, root=0)
    comm.barrier()
    t = time.perf_counter()
    em = ElectrodeMesh.from_gmsh(comm, dim)
    t_imp = time.perf_counter() - t
    vols = em.phase_volumes()  # collective
    areas, sia = analysis.interface_areas(em), analysis.sia(em)  # collective
    if comm.rank == 0:
        gmsh.finalize()
    t_write = None
    if write:
        tmp = tempfile.mkdtemp() if comm.rank == 0 else None
        tmp = comm.bcast(tmp, root=0)
        t = time.perf_counter()
        em.write(Path(tmp) / "mesh.xdmf")
        t_write = time.perf_counter() - t
        comm.barrier()
        if comm.rank == 0:
            shutil.rmtree(tmp, ignore_errors=True)
    if comm.rank != 0:
        return {}
    from electrofem.mesh.plan import contact_count

    split = st.seconds_split
    total = t_mesh_wall + t_imp + (t_write or 0.0)  # packing apart
    result = {
        "case": case,
        "label": label,
        "gmsh_options": overrides,
        "mesh_options": opts.__dict__,
        "ranks": comm.size,
        "particles": len(parts),
        "contacts": contact_count(parts),
        "porosity": summarize(parts)["porosity"],
        "porosity_mesh": vols.get(1, 0.0) / float(np.prod(parts.box.size)),
        "route": info.get("route"),
        "phase_volumes": {str(k): v for k, v in sorted(vols.items())},
        "interface_areas": {str(k): v for k, v in sorted(areas.items())},
        "sia_m2_g": sia,
        "cells": st.n_cells,
        "nodes": st.n_nodes,
        "seconds": {
            "packing": t_pack,
            "geometry": st.seconds_geometry,
            "geometry_cut": info.get("seconds_cut"),
            "geometry_fragment": info.get("seconds_fragment"),
            "size_field": split.get("size_field"),
            "surface_mesh": split.get("surface"),
            "volume_mesh": split.get("volume"),
            "regions": split.get("regions"),
            "optimize": split.get("optimize"),
            "sliver_repair": split.get("repair"),
            "mend": split.get("mend"),
            "mesh": st.seconds_mesh,
            "import": t_imp,
            "write": t_write,
            "geometry_mesh_import_write": total,
        },
        "mesh_split": split,
        "quality": quality,
        "max_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0,
        "mesh_sha1": digest,
        "load_average": list(os.getloadavg()),
        "git": git_revision(),
    }
    return result


def parse_overrides(items):
    out = {}
    for item in items or []:
        name, value = item.split("=", 1)
        out[name] = float(value)
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument(
        "--case", choices=["box400", "box50", "ls2d", "pack40", "ls3d", "pack40x2", "ls3dx2"]
    )
    ap.add_argument("--gmsh", action="append", metavar="NAME=VALUE", help="gmsh option")
    ap.add_argument("--mesh", action="append", metavar="NAME=VALUE", help="MeshOptions field")
    ap.add_argument("--label", default="", help="suffix of the JSON file name")
    ap.add_argument(
        "--route",
        choices=["auto", "occ", "fragment", "discrete"],
        default="auto",
        help="MeshOptions.geometry_route",
    )
    ap.add_argument("--no-write", action="store_true")
    args = ap.parse_args()
    if args.case:
        mesh_kw = {}
        for k, v in parse_overrides(args.mesh).items():
            flags = ("optimize", "verbose", "electrolyte_only", "same_phase_contacts")
            mesh_kw[k] = bool(v) if k in flags else int(v) if k in ("order", "mend_rounds") else v
        mesh_kw["geometry_route"] = args.route
        res = run_case(
            args.case, parse_overrides(args.gmsh), args.label, not args.no_write, mesh_kw
        )
        if MPI.COMM_WORLD.rank == 0:
            RESULTS.mkdir(exist_ok=True)
            name = f"bench_mesh_{args.case}" + (f"_{args.label}" if args.label else "")
            (RESULTS / f"{name}.json").write_text(json.dumps(res, indent=2))
            s, q = res["seconds"], res["quality"]
            s = {**s, "repaired_surfaces": res["mesh_split"].get("repaired_surfaces")}
            print(
                f"{name}: {res['particles']} particles, {res['contacts']} contacts, "
                f"{res['cells']} cells | "
                + " ".join(f"{k}={v:.2f}" for k, v in s.items() if v is not None)
                + f" | q min {q['min']:.4f} mean {q['mean']:.3f} <0.1 {q['below_0.1']:.2e} "
                f"<0.2 {q['below_0.2']:.2e} <0.3 {q['below_0.3']:.2e} | "
                f"rss {res['max_rss_mb']:.0f} MB | sha1 {res['mesh_sha1'][:12]}",
                flush=True,
            )
        return
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
