"""The element-size field and the mesh of the OCC geometry: :func:`mesh_geometry`.

The size (``min(size, radius_factor * r)`` on particle surfaces, ``neck_factor * a`` on
contact necks and on the circles where box faces cut particles, growing linearly away from
them) is sampled on a regular grid from the exact distances to spheres and neck circles
(:func:`_size_grid`) and handed to gmsh as a 'Structured' background field; the gmsh options
(:func:`_set_mesh_options`) fix the algorithms, one thread and the random seed, so the same
particles give the same mesh.
"""

from __future__ import annotations

import json
import logging
import math
import os
import tempfile
import time
from typing import TYPE_CHECKING

import gmsh
import numpy as np

from .curved import curve_mesh
from .occ import ATTRIBUTE
from .options import MeshOptions, MeshStats
from .plan import _effective_shell, _fingerprint, _hint_text, _Plan, _plan
from .tetra import generate_3d

if TYPE_CHECKING:
    from ..microstructure.particles import Particles

log = logging.getLogger("electrofem.mesh")

#: Growth rate of the element size away from refined surfaces (size increase per unit length).
GROWTH = 0.5
#: Largest number of points of the structured size-field grid.
GRID_MAX_POINTS = 4_000_000
#: 3D: factor on every element size. HXT's tetrahedra come out larger than Delaunay's for the
#: same size field (23k against 27.5k cells for a sphere in a 10 µm cube at size 0.6), and
#: the transport error of test_transport_3d grew from 0.029 f to 0.046 f; 0.9 brings it back
#: to 0.035 f (31k cells).
SIZE_FACTOR_3D = 0.9
#: Fixed seed of gmsh's random perturbations (determinism).
RANDOM_SEED = 1


def _load_info() -> dict:
    if ATTRIBUTE not in gmsh.model.getAttributeNames():
        raise RuntimeError(
            "mesh: the current gmsh model was not made by build_geometry (no "
            f"{ATTRIBUTE!r} attribute)"
        )
    return json.loads(gmsh.model.getAttribute(ATTRIBUTE)[0])


#: Mending (``MeshOptions.mend_rounds``): when the minimum quality is below
#: ``MeshOptions.quality_warn``, the size grid is refined around every cell below MEND_BELOW,
#: to MEND_FACTOR times its size there, growing back at MEND_GROWTH per µm, and the
#: mesh is made again. Such cells sit where the surface is finer than the grid's sizes around it
#: (tiny necks, arcs cut short by close triple points) and have their four nodes on the
#: surface, which no optimiser moves; a graded surface around them mends them. Measured on
#: the tortuosity pack at h = 2 µm (BENCHMARKS.md, issue 14, tenth part): 0.5 (a sharper
#: step) left more poor cells than it mended, 0.8 with 0.2 lifted the minimum from 0.078
#: to 0.13.
MEND_BELOW = 0.2
MEND_FACTOR = 0.8
MEND_GROWTH = 0.2


def _size_sources(options: MeshOptions, particles: Particles, plan: _Plan):
    """Refinement sources ``(kind, centre, normal, radius, h)`` with ``h < size``.

    ``"sphere"``: a particle (or core) surface; ``"ring"``: a contact neck or the circle where
    a box face cuts a particle (two points in 2D).
    """
    size, smin = float(options.size), float(options.size_min)
    t_shell = _effective_shell(particles)
    h_part = np.minimum(size, options.radius_factor * np.asarray(particles.radii, float))
    h_part = np.where(t_shell > 0, np.minimum(h_part, t_shell), h_part)
    h_part = np.maximum(h_part, smin)
    box = np.asarray(particles.box.size, float)
    dim = len(box)
    sources = []
    for k in plan.live:
        q = plan.inst[k]
        h = float(h_part[q.particle])
        if h < size:
            sources.append(("sphere", q.center, None, q.radius, h))
            if t_shell[q.particle] > 0:
                sources.append(("sphere", q.center, None, q.radius - t_shell[q.particle], h))
        # circles where the box faces cut the particle
        for ax in range(dim):
            for s, sign in ((q.center[ax], -1.0), (box[ax] - q.center[ax], 1.0)):
                if abs(s) < q.radius:
                    a = math.sqrt(q.radius**2 - s * s)
                    hn = max(smin, options.neck_factor * a)
                    if hn < h:
                        n = np.zeros(dim)
                        n[ax] = sign
                        sources.append(("ring", q.center + n * s, n, a, hn))
    for ka, kb, p, u, a in plan.contacts:
        hn = max(smin, options.neck_factor * a)
        ia, ib = plan.inst[ka].particle, plan.inst[kb].particle
        if hn < min(h_part[ia], h_part[ib]):
            sources.append(("ring", p, u, a, hn))
    return sources


def _size_grid(options: MeshOptions, particles: Particles, plan: _Plan):
    """Element size on a regular grid over the box: ``min(size, h + GROWTH * distance)`` over
    all refinement sources (exact distances to spheres and neck circles).

    Returns ``(spacing, values)`` or None when nothing needs refinement.
    """
    sources = _size_sources(options, particles, plan)
    if not sources:
        return None
    size = float(options.size)
    box = np.asarray(particles.box.size, float)
    dim = len(box)
    h_min = min(src[4] for src in sources)
    step = max(h_min / 2.5, (float(np.prod(box)) / GRID_MAX_POINTS) ** (1.0 / dim))
    n = np.maximum(np.ceil(box / step).astype(int) + 1, 2)
    spacing = box / (n - 1)
    grid = np.full(tuple(n), size)
    for kind, c, u, rad, h in sources:
        reach = rad + (size - h) / GROWTH
        lo = np.maximum(np.floor((c - reach) / spacing).astype(int), 0)
        hi = np.minimum(np.ceil((c + reach) / spacing).astype(int) + 1, n)
        if np.any(hi <= lo):
            continue
        axes = np.ix_(*[np.arange(lo[k], hi[k]) * spacing[k] - c[k] for k in range(dim)])
        if kind == "sphere":
            dist = np.abs(np.sqrt(sum(x * x for x in axes)) - rad)
        else:
            qn = sum(x * uk for x, uk in zip(axes, u, strict=True))
            qp = np.sqrt(np.maximum(sum(x * x for x in axes) - qn * qn, 0.0))
            dist = np.sqrt((qp - rad) ** 2 + qn * qn)
        block = tuple(slice(lo[k], hi[k]) for k in range(dim))
        np.minimum(grid[block], h + GROWTH * dist, out=grid[block])
    return spacing, grid


def node_xyz() -> np.ndarray:
    """The coordinates of the current model's nodes, a row per node tag (row 0 unused)."""
    ids, coords, _ = gmsh.model.mesh.getNodes()
    xyz = np.zeros((int(ids.max()) + 1, 3))
    xyz[ids.astype(np.int64)] = np.asarray(coords).reshape(-1, 3)
    return xyz


def cell_quality() -> tuple[np.ndarray, np.ndarray]:
    """The current model's tetrahedra: their quality (minSICN) and their centroids."""
    _, etags, enodes = gmsh.model.mesh.getElements(3)
    cells = np.concatenate(etags)
    quality = np.asarray(gmsh.model.mesh.getElementQualities(cells, "minSICN"))
    tets = np.concatenate([np.asarray(n, np.int64).reshape(-1, 4) for n in enodes])
    return quality, node_xyz()[tets].mean(axis=1)


def refined_grid(grid: tuple, centres: np.ndarray) -> tuple:
    """The size grid with ``MEND_FACTOR`` times its size at each of ``centres`` within that
    size of it, growing back at ``MEND_GROWTH`` beyond (a new array; each centre changes a
    block around it)."""
    spacing, values = grid
    values = values.copy()
    shape = np.array(values.shape)
    top = float(values.max())
    for c in centres:
        at = tuple(np.clip(np.round(c / spacing).astype(int), 0, shape - 1))
        h0 = float(values[at])
        h = MEND_FACTOR * h0
        reach = h0 + (top - h) / MEND_GROWTH
        lo = np.maximum(np.floor((c - reach) / spacing).astype(int), 0)
        hi = np.minimum(np.ceil((c + reach) / spacing).astype(int) + 1, shape)
        axes = np.ix_(*[np.arange(lo[k], hi[k]) * spacing[k] - c[k] for k in range(3)])
        dist = np.sqrt(sum(a * a for a in axes))
        block = tuple(slice(lo[k], hi[k]) for k in range(3))
        size = h + MEND_GROWTH * np.maximum(dist - h0, 0.0)
        np.minimum(values[block], size, out=values[block])
    return spacing, values


def _write_structured(path: str, spacing: np.ndarray, grid: np.ndarray) -> None:
    """gmsh 'Structured' field file (binary): origin, spacing, counts, values (x slowest)."""
    import struct

    if grid.ndim == 2:
        grid = grid[:, :, None]
        spacing = np.array([spacing[0], spacing[1], 1.0])
    with open(path, "wb") as fh:
        fh.write(struct.pack("=3d3d3i", 0.0, 0.0, 0.0, *map(float, spacing), *grid.shape))
        fh.write(np.ascontiguousarray(grid, dtype="=f8").tobytes())


def structured_field(grid: tuple[np.ndarray, np.ndarray]) -> tuple[int, str]:
    """A gmsh 'Structured' size field of the sampled ``grid`` (:func:`_size_grid`), read
    from a temporary file: ``(field tag, file path)``. The caller removes the file once the
    mesh is made."""
    fd, path = tempfile.mkstemp(prefix="electrofem-size-", suffix=".bin")
    os.close(fd)
    _write_structured(path, *grid)
    field = gmsh.model.mesh.field
    fid = field.add("Structured")
    field.setString(fid, "FileName", path)
    field.setNumber(fid, "TextFormat", 0)
    return fid, path


def _set_mesh_options(options: MeshOptions, dim: int) -> None:
    opt = gmsh.option.setNumber
    opt("General.Terminal", 1 if options.verbose else 0)
    # one thread: threads change the mesh. HXT's change the cell count; the surface mesher's
    # (2 threads: 6.1 s against 11.5 s on the box400 benchmark) gave 171 565 surface nodes
    # against 171 292, so a run would depend on the cores it was given
    opt("General.NumThreads", 1)
    opt("Mesh.MaxNumThreads1D", 1)
    opt("Mesh.MaxNumThreads2D", 1)
    opt("Mesh.MaxNumThreads3D", 1)
    opt("Mesh.RandomSeed", RANDOM_SEED)
    opt("Mesh.Algorithm", 6)  # Frontal-Delaunay (2D, and the 3D surface mesh)
    # HXT on one thread: the same mesh node for node on every run, and 15x faster than
    # Delaunay (box400 benchmark: 7 s against 114 s); Netgen's optimiser cost 213 s there and
    # left more cells below quality 0.2 than HXT's and gmsh's optimisers (:mod:`.tetra`)
    opt("Mesh.Algorithm3D", 10)
    opt("Mesh.Optimize", 1 if (options.optimize and dim == 3) else 0)  # see .tetra
    opt("Mesh.OptimizeNetgen", 0)
    opt("Mesh.MeshSizeFactor", SIZE_FACTOR_3D if dim == 3 else 1.0)
    opt("Mesh.ElementOrder", 1)
    opt("Mesh.LcIntegrationPrecision", 1e-3)
    opt("Mesh.MeshSizeMax", float(options.size))
    opt("Mesh.MeshSizeMin", float(options.size_min))
    opt("Mesh.MeshSizeFromPoints", 0)
    opt("Mesh.MeshSizeFromCurvature", 0)
    opt("Mesh.MeshSizeExtendFromBoundary", 0)


def _close_vertex_fields(options: MeshOptions) -> list[int]:
    """3D: size fields that refine to ``size_min`` around geometry vertices closer than
    ``size_min`` to another one, growing at :data:`GROWTH`: the Threshold field, or ``[]``
    when there are none.

    Two curves that meet a few nm apart force a mesh edge that short, and tetrahedra sized
    by the particle around it turn into slivers: on the paper-scale section, a neck circle
    crossing a side face 8–30 nm from the start point OCC gives that face's circle (the
    issue-14 benchmark's 16 cells below quality 0.1). Two spheres whose neck crosses a wall
    3 nm from that point give 0.015 without these fields and 0.12 with them
    (``tests/test_geometry.py``)."""
    from scipy.spatial import cKDTree

    points = gmsh.model.getEntities(0)
    if len(points) < 2:
        return []
    xyz = np.array([gmsh.model.getValue(0, tag, []) for _, tag in points])
    h = float(options.size_min)
    close = sorted({i for pair in cKDTree(xyz).query_pairs(h) for i in pair})
    if not close:
        return []
    log.info("mesh: %d geometry vertices closer than %g µm to another one", len(close), h)
    field = gmsh.model.mesh.field
    dist = field.add("Distance")
    field.setNumbers(dist, "PointsList", [points[i][1] for i in close])
    threshold = field.add("Threshold")
    field.setNumber(threshold, "InField", dist)
    field.setNumber(threshold, "SizeMin", h)
    field.setNumber(threshold, "SizeMax", float(options.size))
    field.setNumber(threshold, "DistMin", h)
    field.setNumber(threshold, "DistMax", h + (float(options.size) - h) / GROWTH)
    return [threshold]


def _sample_curve(tag: int, spacing: float):
    """Points ``(n, 3)`` and parameters ``(n,)`` of curve ``tag``, about ``spacing`` apart."""
    lo, hi = gmsh.model.getParametrizationBounds(1, tag)
    t = np.linspace(lo[0], hi[0], 17)
    xyz = np.reshape(gmsh.model.getValue(1, tag, t), (-1, 3))
    length = float(np.linalg.norm(np.diff(xyz, axis=0), axis=1).sum())
    n = max(9, int(math.ceil(length / spacing)) + 1)
    t = np.linspace(lo[0], hi[0], n)
    return np.reshape(gmsh.model.getValue(1, tag, t), (-1, 3)), t


def _closest_approach(a: int, ta: float, b: int, tb: float, dt_a: float, dt_b: float):
    """Refine a close sampled pair of curves ``a``, ``b`` near parameters ``ta``, ``tb``
    (windows ``± dt``) by three rounds of dense sampling: ``(distance, midpoint)``."""
    lo_a, hi_a = gmsh.model.getParametrizationBounds(1, a)
    lo_b, hi_b = gmsh.model.getParametrizationBounds(1, b)
    for _ in range(3):
        sa = np.linspace(ta - dt_a, ta + dt_a, 33)
        sb = np.linspace(tb - dt_b, tb + dt_b, 33)
        sa = np.clip(sa, lo_a[0], hi_a[0])
        sb = np.clip(sb, lo_b[0], hi_b[0])
        pa = np.reshape(gmsh.model.getValue(1, a, sa), (-1, 3))
        pb = np.reshape(gmsh.model.getValue(1, b, sb), (-1, 3))
        d = np.linalg.norm(pa[:, None, :] - pb[None, :, :], axis=2)
        i, j = np.unravel_index(int(np.argmin(d)), d.shape)
        ta, tb = sa[i], sb[j]
        dt_a, dt_b = dt_a / 8.0, dt_b / 8.0
    return float(d[i, j]), 0.5 * (pa[i] + pb[j])


def _close_curve_fields(options: MeshOptions) -> list[int]:
    """3D: size fields that refine to ``size_min`` where two curves pass closer than
    ``size_min`` to each other away from any geometry vertex (two circles of a box face
    nearly touching): one Ball field per such place, growing at :data:`GROWTH`."""
    from scipy.spatial import cKDTree

    curves = [tag for _, tag in gmsh.model.getEntities(1)]
    vertices = gmsh.model.getEntities(0)
    if len(curves) < 2:
        return []
    h, size = float(options.size_min), float(options.size)
    spacing = 0.1 * size
    reach = h + spacing
    pts, owner, par, dpar = [], [], [], []
    for c in curves:
        xyz, t = _sample_curve(c, spacing)
        pts.append(xyz)
        owner.append(np.full(len(t), c))
        par.append(t)
        dpar.append(np.full(len(t), t[1] - t[0]))
    xyz, owner = np.concatenate(pts), np.concatenate(owner)
    par, dpar = np.concatenate(par), np.concatenate(dpar)
    if vertices:
        corners = np.array([gmsh.model.getValue(0, t, []) for _, t in vertices])
        near_vertex = cKDTree(corners).query(xyz, distance_upper_bound=reach)[0] < np.inf
    else:
        corners, near_vertex = np.zeros((0, 3)), np.zeros(len(xyz), bool)
    pairs = cKDTree(xyz).query_pairs(reach, output_type="ndarray")
    if len(pairs) == 0:
        return []
    i, j = pairs[:, 0], pairs[:, 1]
    keep = (owner[i] != owner[j]) & ~near_vertex[i] & ~near_vertex[j]
    i, j = i[keep], j[keep]
    best: dict[tuple[int, int], tuple[float, int, int]] = {}
    for p, q in zip(i, j, strict=True):
        key = (int(min(owner[p], owner[q])), int(max(owner[p], owner[q])))
        d = float(np.linalg.norm(xyz[p] - xyz[q]))
        if key not in best or d < best[key][0]:
            best[key] = (d, int(p), int(q))
    places = []
    for _d, p, q in (best[k] for k in sorted(best)):
        d, mid = _closest_approach(int(owner[p]), par[p], int(owner[q]), par[q], dpar[p], dpar[q])
        far = len(corners) == 0 or np.min(np.linalg.norm(corners - mid, axis=1)) > 2.0 * d
        if d < h and far:
            places.append(mid)
    if not places:
        return []
    log.info("mesh: %d places where two curves pass closer than %g µm", len(places), h)
    field = gmsh.model.mesh.field
    balls = []
    for mid in places:
        ball = field.add("Ball")
        for name, value in zip(("XCenter", "YCenter", "ZCenter"), mid, strict=True):
            field.setNumber(ball, name, float(value))
        field.setNumber(ball, "Radius", h)
        field.setNumber(ball, "Thickness", (size - h) / GROWTH)
        field.setNumber(ball, "VIn", h)
        field.setNumber(ball, "VOut", size)
        balls.append(ball)
    return balls


def mesh_geometry(
    options: MeshOptions,
    particles: Particles,
    *,
    gmsh_options: dict | None = None,
) -> MeshStats:
    """Set the size field and generate the mesh of the current model (from build_geometry).

    Element size: ``min(size, radius_factor * r)`` (and at most the shell thickness for
    core-shell particles) on each particle's surfaces, ``max(size_min, neck_factor * a)`` on
    contact necks and on the circles where box faces cut particles, growing linearly with the
    distance (gradient :data:`GROWTH`) to ``size``. The size is sampled on a regular grid and
    handed to gmsh as a 'Structured' background field. Any previous mesh and size fields of
    the model are discarded.

    ``gmsh_options`` (name -> number) override the gmsh options set here (benchmarks). In 3D
    the surface mesh and the volume mesh are timed apart (``MeshStats.seconds_split``,
    :func:`.tetra.generate_3d`).

    Raises RuntimeError when gmsh fails or the model is not the particles' geometry.
    """
    options.validate()
    if not gmsh.isInitialized():
        raise RuntimeError("mesh: gmsh is not initialised; call gmsh.initialize() first")
    info = _load_info()
    dim = info["dim"]
    if info.get("route") == "discrete":
        raise RuntimeError(
            "mesh: the discrete route meshes in build_and_mesh; this model cannot be re-meshed"
        )
    if info["particles"] != _fingerprint(particles):
        raise RuntimeError(
            "mesh: the particles are not the ones the current geometry was built from"
        )
    _set_mesh_options(options, dim)
    for name, value in (gmsh_options or {}).items():
        gmsh.option.setNumber(name, float(value))
    gmsh.model.mesh.clear()
    field = gmsh.model.mesh.field
    for fid in field.list():
        field.remove(fid)
    t0 = time.perf_counter()
    split: dict[str, float] = {}
    straightened = 0
    grid = _size_grid(options, particles, _plan(particles, quiet=True))
    path = None
    rounds = options.mend_rounds if dim == 3 and grid is not None else 0
    try:
        for attempt in range(rounds + 1):
            t_pass = t0 if attempt == 0 else time.perf_counter()
            path = _background_field(options, grid, dim)
            split["size_field"] = time.perf_counter() - t_pass
            if dim == 3:
                generate_3d(split, optimize=options.optimize)
            else:
                t = time.perf_counter()
                gmsh.model.mesh.generate(dim)
                split["surface"] = time.perf_counter() - t
            refined = mend_grid(grid, options, attempt) if attempt < rounds else None
            if refined is None:
                break
            grid = refined
            gmsh.model.mesh.clear()
            _remove_fields(path)
            path = None
            split["mend"] = split.get("mend", 0.0) + time.perf_counter() - t_pass
        if options.order == 2:
            t = time.perf_counter()
            straightened = curve_mesh(dim)["straightened"]
            split["curve"] = time.perf_counter() - t
    except Exception as err:
        raise RuntimeError(
            f"mesh: gmsh failed to generate the {dim}D mesh: {err}{_hint_text(info['hints'])}"
        ) from err
    finally:
        _remove_fields(path)
    return mesh_stats(options, info, time.perf_counter() - t0, split, straightened)


def _background_field(options: MeshOptions, grid, dim: int) -> str | None:
    """Set the model's background size field: the structured ``grid`` (None: uniform) and, in
    3D, the close-vertex and close-curve refinements. Returns the grid file's path (or None),
    which :func:`_remove_fields` deletes."""
    field = gmsh.model.mesh.field
    fields: list[int] = []
    path = None
    if grid is not None:
        fid, path = structured_field(grid)
        fields.append(fid)
    if dim == 3:
        fields.extend(_close_vertex_fields(options))
        fields.extend(_close_curve_fields(options))
    if len(fields) == 1:
        field.setAsBackgroundMesh(fields[0])
    elif fields:
        smallest = field.add("Min")
        field.setNumbers(smallest, "FieldsList", fields)
        field.setAsBackgroundMesh(smallest)
    return path


def _remove_fields(path: str | None) -> None:
    """Remove the model's size fields and the grid file ``path`` of :func:`_background_field`."""
    for fid in gmsh.model.mesh.field.list():
        gmsh.model.mesh.field.remove(fid)
    if path is not None and os.path.exists(path):
        os.remove(path)


def mend_grid(grid, options: MeshOptions, attempt: int):
    """None when the current model's minimum quality meets ``quality_warn``; else log the
    mend and return the grid refined around its cells below :data:`MEND_BELOW` (both
    routes)."""
    quality, centres = cell_quality()
    if quality.min() >= options.quality_warn:
        return None
    poor = centres[quality < MEND_BELOW]
    log.info(
        "mesh: minimum quality %.3g below %.3g: meshing again with the sizes refined "
        "around the %d cells below %.2g (round %d of %d)",
        quality.min(),
        options.quality_warn,
        len(poor),
        MEND_BELOW,
        attempt + 1,
        options.mend_rounds,
    )
    return refined_grid(grid, poor)


def mesh_stats(
    options: MeshOptions, info: dict, seconds: float, split: dict, straightened: int = 0
) -> MeshStats:
    """Check that the current model's cells fill the box, and measure them (quality minSICN,
    counts, times). Raises RuntimeError when gmsh made no cell or left part of the box out."""
    dim = info["dim"]
    types, etags, enodes = gmsh.model.mesh.getElements(dim)
    cell_tags = np.concatenate(etags) if len(etags) else np.zeros(0, np.uint64)
    if cell_tags.size == 0:
        raise RuntimeError(f"mesh: gmsh produced no {dim}D elements{_hint_text(info['hints'])}")
    node_tags, coords, _ = gmsh.model.mesh.getNodes()
    filled = _cells_measure(dim, types, enodes, node_tags, coords)
    # the box, or the regions meshed (the discrete route's electrolyte_only)
    target = info.get("meshed_volume", info.get("box_volume"))
    if target is not None and abs(filled - target) > 1e-6 * target:
        raise RuntimeError(
            f"mesh: the cells fill {filled:.9g} of the {target:.9g} to mesh "
            f"(a region was left unmeshed or meshed twice){_hint_text(info['hints'])}"
        )
    quality = np.asarray(gmsh.model.mesh.getElementQualities(cell_tags, "minSICN"))
    stats = MeshStats(
        n_nodes=int(len(node_tags)),
        n_cells=int(cell_tags.size),
        min_quality=float(quality.min()),
        mean_quality=float(quality.mean()),
        seconds_geometry=float(info.get("seconds_geometry", 0.0)),
        seconds_mesh=seconds,
        seconds_split=split,
        straightened_cells=straightened,
    )
    log.info(
        "mesh: %d nodes, %d cells, quality min %.3f mean %.3f in %.2f s",
        stats.n_nodes,
        stats.n_cells,
        stats.min_quality,
        stats.mean_quality,
        seconds,
    )
    if stats.min_quality < options.quality_warn:
        log.warning(
            "mesh: minimum element quality (minSICN) %.3g is below %.3g%s",
            stats.min_quality,
            options.quality_warn,
            _hint_text(info["hints"]),
        )
    return stats


def _cells_measure(dim: int, types, element_nodes, node_tags, coords) -> float:
    """Total volume (area in 2D) of the cells, on their vertices: the cells of every phase
    tile the box, whatever the facets do to each phase. The arguments are what gmsh's
    ``getElements(dim)`` (types, node tags per type) and ``getNodes()`` returned."""
    xyz = np.zeros((int(node_tags.max()) + 1, 3))
    xyz[node_tags.astype(np.int64)] = np.asarray(coords).reshape(-1, 3)
    total = 0.0
    for t, nodes in zip(types, element_nodes, strict=True):
        n = gmsh.model.mesh.getElementProperties(int(t))[3]
        cells = np.asarray(nodes, np.int64).reshape(-1, n)[:, : dim + 1]
        for i in range(0, len(cells), 1 << 20):  # bounded memory on large meshes
            p = xyz[cells[i : i + (1 << 20)], :dim]
            e = p[:, 1:] - p[:, :1]
            total += float(np.abs(np.linalg.det(e)).sum()) / (2.0 if dim == 2 else 6.0)
    return total
