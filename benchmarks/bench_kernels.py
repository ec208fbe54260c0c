"""Post-processing kernels: facet areas per tag and slab binning on ~1M tagged facets.

    python benchmarks/bench_kernels.py [--n 44] [--slabs 20]

A unit-cube tetrahedral mesh from ``dolfinx.mesh.create_box`` (``n^3 * 6`` cells, about
``12 n^3`` facets; n = 44 gives ~1.05 M facets), every facet tagged with one of 5 tags (box
faces and interior facets alike). Compared, per tag totals:

* the Cython kernel ``facet_areas_by_tag`` (on the facet -> geometry-node table);
* vectorised numpy (cross products + ``np.bincount``) on the same table;
* UFL ``assemble_scalar`` of ``1 * ds(t) + 1 * dS(t)`` per tag (forms compiled beforehand);

and for ``--slabs`` slabs along z: the Cython kernels (exact clipping of each simplex between
the slab planes) against numpy ``np.bincount`` on (tag, centroid slab) -- which only bins by
centroid, so it does less work and is not exact. Times are the best of ``--repeat`` runs, one
core. Prints a Markdown table for BENCHMARKS.md.
"""

import argparse
import platform
import time

import numpy as np
from electrofem._postprocess import cell_volumes_by_tag, facet_areas_binned, facet_areas_by_tag
from mpi4py import MPI

N_TAGS = 5


def best(fn, repeat):
    times, out = [], None
    for _ in range(repeat):
        t = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t)
    return min(times), out


def numpy_areas(x, nodes, lut):
    e1 = x[nodes[:, 1]] - x[nodes[:, 0]]
    e2 = x[nodes[:, 2]] - x[nodes[:, 0]]
    area = 0.5 * np.linalg.norm(np.cross(e1, e2), axis=1)
    return np.bincount(lut, weights=area, minlength=N_TAGS)


def numpy_binned(x, nodes, lut, z0, z1, n):
    k = nodes.shape[1]
    if k == 3:
        e1 = x[nodes[:, 1]] - x[nodes[:, 0]]
        e2 = x[nodes[:, 2]] - x[nodes[:, 0]]
        meas = 0.5 * np.linalg.norm(np.cross(e1, e2), axis=1)
    else:
        e = x[nodes[:, 1:]] - x[nodes[:, :1]]
        meas = np.abs(np.linalg.det(e)) / 6
    zc = x[nodes, 2].mean(axis=1)
    slab = np.clip(((zc - z0) / (z1 - z0) * n).astype(np.int64), 0, n - 1)
    return np.bincount(lut * n + slab, weights=meas, minlength=N_TAGS * n).reshape(N_TAGS, n)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=44, help="cubes per side (6 tets each)")
    ap.add_argument("--slabs", type=int, default=20)
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    import ufl  # after electrofem, which initialises the dolfinx wheel
    from dolfinx import fem, mesh

    comm = MPI.COMM_WORLD
    t = time.perf_counter()
    msh = mesh.create_box(comm, [[0, 0, 0], [1, 1, 1]], [args.n] * 3, mesh.CellType.tetrahedron)
    tdim = msh.topology.dim
    msh.topology.create_entities(tdim - 1)
    msh.topology.create_connectivity(tdim - 1, tdim)
    n_facets = msh.topology.index_map(tdim - 1).size_local
    n_cells = msh.topology.index_map(tdim).size_local
    facets = np.arange(n_facets, dtype=np.int32)
    values = (100 + facets % N_TAGS).astype(np.int32)
    utags = np.arange(100, 100 + N_TAGS, dtype=np.int32)
    lut = values - 100
    ft = mesh.meshtags(msh, tdim - 1, facets, values)
    t_mesh = time.perf_counter() - t

    x = msh.geometry.x
    t_geo, nodes = best(lambda: mesh.entities_to_geometry(msh, tdim - 1, facets), 1)
    rows = np.arange(n_facets, dtype=np.int32)
    t_cy, a_cy = best(lambda: facet_areas_by_tag(x, nodes, rows, values, utags), args.repeat)
    t_np, a_np = best(lambda: numpy_areas(x, nodes, lut), args.repeat)

    one = fem.Constant(msh, 1.0)
    ds = ufl.Measure("ds", domain=msh, subdomain_data=ft)
    dS = ufl.Measure("dS", domain=msh, subdomain_data=ft)
    forms = [fem.form(one * ds(int(v)) + one * dS(int(v))) for v in utags]
    t_ufl, a_ufl = best(lambda: np.array([fem.assemble_scalar(f) for f in forms]), args.repeat)
    for a in (a_np, a_ufl):
        assert np.allclose(a, a_cy, rtol=1e-10), (a, a_cy)

    n = args.slabs
    t_fb, (tot, fb) = best(
        lambda: facet_areas_binned(x, nodes, rows, values, utags, 2, 0.0, 1.0, n), args.repeat
    )
    t_fb_np, fb_np = best(lambda: numpy_binned(x, nodes, lut, 0.0, 1.0, n), args.repeat)
    assert np.allclose(fb.sum(1), a_cy, rtol=1e-10) and np.allclose(fb_np.sum(1), a_cy)
    cnodes = msh.geometry.dofmaps[0]
    cells = np.arange(n_cells, dtype=np.int32)
    cvals = (100 + cells % N_TAGS).astype(np.int32)
    t_cb, (ctot, cb) = best(
        lambda: cell_volumes_by_tag(x, cnodes, cells, cvals, utags, 2, 0.0, 1.0, n), args.repeat
    )
    t_cb_np, cb_np = best(lambda: numpy_binned(x, cnodes, cvals - 100, 0.0, 1.0, n), args.repeat)
    assert np.isclose(ctot.sum(), 1.0) and np.isclose(cb_np.sum(), 1.0)

    print(
        f"machine: {platform.processor() or platform.machine()}, 1 core; "
        f"box mesh {args.n}^3 x 6 tets: {n_cells} cells, {n_facets} facets, {N_TAGS} tags "
        f"(mesh {t_mesh:.1f} s, entities_to_geometry {t_geo * 1e3:.0f} ms)"
    )
    print()
    print("| task | method | time (ms) | vs Cython |")
    print("|---|---|---|---|")
    rows_out = [
        ("facet areas per tag", "Cython `facet_areas_by_tag`", t_cy, t_cy),
        ("facet areas per tag", "vectorised numpy + `bincount`", t_np, t_cy),
        ("facet areas per tag", "UFL `assemble_scalar` (ds + dS per tag)", t_ufl, t_cy),
        (f"facet areas, {n} slabs", "Cython `facet_areas_binned` (exact clip)", t_fb, t_fb),
        (f"facet areas, {n} slabs", "numpy `bincount` by centroid", t_fb_np, t_fb),
        (f"cell volumes, {n} slabs", "Cython `cell_volumes_by_tag` (exact clip)", t_cb, t_cb),
        (f"cell volumes, {n} slabs", "numpy `bincount` by centroid", t_cb_np, t_cb),
    ]
    for task, method, tm, ref in rows_out:
        print(f"| {task} | {method} | {tm * 1e3:.1f} | {tm / ref:.1f}x |")


if __name__ == "__main__":
    main()
