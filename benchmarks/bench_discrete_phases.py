"""Random multi-phase packs through the discrete route, against the OCC route.

    python benchmarks/bench_discrete_phases.py [--seeds 0 12]

Each seed draws a small cube (14-20 µm, walls or laterally periodic), two or three solid
phases (lognormal radii, means 1.5-3 µm), a porosity of 0.47-0.6 and a mesh size of
0.6-1.2 µm, packs it (``generate``) and meshes it on both routes, and again with every
particle of one phase (to tell the contact faces' share of any defect from the route's own).
A row: particles, cells, seconds and minimum quality (minSICN) of each mesh, and the
active|second contact area of the discrete route's triangles against the OCC route's
geometry report (OCC's exact areas, not its mesh's): the straight facets' bias. Writes
``benchmarks/results/bench_discrete_phases.json``.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import gmsh
import numpy as np

from electrofem import __version__, tags
from electrofem.mesh import MeshOptions, build_and_mesh
from electrofem.microstructure import (
    Box,
    Electrode,
    Layer,
    LogNormal,
    Particles,
    Population,
    generate,
)

RESULTS = Path(__file__).resolve().parent / "results"


def case(seed: int) -> tuple[Particles, float]:
    rng = np.random.default_rng(seed)
    phases = [tags.ACTIVE, tags.SECOND, tags.BINDER][: 2 + seed % 2]
    pops = tuple(
        Population(
            LogNormal(float(rng.uniform(1.5, 3.0)), 0.3), phase=p, volume_fraction=1 / len(phases)
        )
        for p in phases
    )
    side = float(rng.uniform(14, 20))
    porosity = float(rng.uniform(0.47, 0.6))
    spec = Electrode(
        Box((side,) * 3, periodic=bool(seed % 3)), (Layer(1.0, porosity, pops),), seed=seed
    )
    return generate(spec), float(rng.uniform(0.6, 1.2))


def mesh(p: Particles, size: float, route: str, same: bool = False) -> dict:
    """One mesh; ``same``: the discrete route's ``same_phase_contacts``."""
    t = time.perf_counter()
    options = MeshOptions(size=size, geometry_route=route, same_phase_contacts=same)
    rep, st = build_and_mesh(p, options)
    same_tags = {tags.interface_tag(q, q) for q in tags.SOLID_PHASES}
    return dict(
        seconds=time.perf_counter() - t,
        cells=st.n_cells,
        min_quality=st.min_quality,
        contact_area=rep.interface_areas.get(tags.interface_tag(tags.ACTIVE, tags.SECOND), 0.0),
        same_phase_area=sum(a for k, a in rep.interface_areas.items() if k in same_tags),
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seeds", nargs=2, type=int, default=[0, 12])
    ap.add_argument(
        "--same-phase",
        action="store_true",
        help="the discrete meshes with same_phase_contacts; the last column is then the "
        "one-phase contact area against the OCC route's (writes ..._samephase.json)",
    )
    args = ap.parse_args()
    gmsh.initialize()
    gmsh.option.setNumber("General.Terminal", 0)
    rows = []
    print(
        "| seed | phases | periodic | particles | h | discrete: cells, s, q | OCC: cells, s, q "
        "| one phase: discrete q, OCC q | contact area, triangles/exact − 1 |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for seed in range(*args.seeds):
        p, size = case(seed)
        one = Particles(p.box, p.centers, p.radii)
        row = dict(
            seed=seed,
            phases=len(np.unique(p.phase)),
            periodic=p.box.periodic,
            particles=len(p),
            size=size,
        )
        for name, q in (("discrete", p), ("occ", p), ("discrete_one", one), ("occ_one", one)):
            try:
                row[name] = mesh(q, size, name.split("_")[0], args.same_phase)
            except Exception as err:  # a failure is a result here
                row[name] = dict(error=f"{type(err).__name__}: {err}"[:300])
        rows.append(row)
        d, o = row["discrete"], row["occ"]
        ok = "error" not in d and "error" not in o
        key = "same_phase_area" if args.same_phase else "contact_area"
        print(
            f"| {seed} | {row['phases']} | {row['periodic']} | {len(p)} | {size:.2f} | "
            + (
                f"{d['cells']}, {d['seconds']:.1f}, {d['min_quality']:.3f}"
                if "error" not in d
                else "FAILED"
            )
            + " | "
            + (
                f"{o['cells']}, {o['seconds']:.1f}, {o['min_quality']:.3f}"
                if "error" not in o
                else "FAILED"
            )
            + f" | {row['discrete_one'].get('min_quality', float('nan')):.3f}, "
            f"{row['occ_one'].get('min_quality', float('nan')):.3f} | "
            + (f"{d[key] / o[key] - 1:+.4f}" if ok and o[key] else "")
            + " |",
            flush=True,
        )
    gmsh.finalize()
    RESULTS.mkdir(parents=True, exist_ok=True)
    tag = "_samephase" if args.same_phase else ""
    (RESULTS / f"bench_discrete_phases{tag}.json").write_text(
        json.dumps(
            dict(
                command="python benchmarks/bench_discrete_phases.py --seeds "
                + " ".join(map(str, args.seeds))
                + (" --same-phase" if args.same_phase else ""),
                version=__version__,
                rows=rows,
            ),
            indent=1,
        )
    )


if __name__ == "__main__":
    main()
