"""The discrete route: the packing's surface triangulated directly, then gmsh's volume mesh.

``MeshOptions.geometry_route = "discrete"`` (3D). No OpenCASCADE boolean: :mod:`.union`
triangulates the union of the particles and the box faces with numpy and scipy, and gmsh's HXT
meshes the volumes bounded by those triangles, with the size field of :mod:`.sizing`. On the
issue-14 benchmarks it is 1.7-2.7x faster end to end than the OCC route (BENCHMARKS.md).

The regions HXT needs, each named by the surfaces around it, are found here
(:func:`regions`): every connected part of a sphere patch or of a box face's pore or solid part
is its own gmsh surface; the surfaces with a pore side that share an edge form pore shells, and
those with a solid side solid shells. A shell whose outward volume is positive bounds a region;
one whose volume is negative is a hole (a floating cluster in the pore, a pore pocket in a
cluster), placed in the smallest region around it by a ray-parity test.

The model then holds the same physical groups as the OCC route's (phase volumes, box faces,
``electrolyte|<phase>`` interface), so the import, the files and the solvers do not change.
With ``MeshOptions.order = 2`` the cells are curved: the model has no CAD for gmsh to put the
edge midpoints on, so :func:`_place_midpoints` moves them onto the exact spheres and circles
(then :func:`.curved.curve_mesh` pulls back any that invert a cell). With
``MeshOptions.electrolyte_only`` only the pore regions are meshed (:func:`pore_regions`).
Particles of different solid phases meet on contact faces (:mod:`.contacts`): each solid
phase's regions are bounded by its sphere patches, its part of the box faces and its contact
faces (:func:`regions`), and the faces carry ``interface_tag(a, b)``. With
``MeshOptions.same_phase_contacts`` particles of one phase meet on faces too
(``interface_tag(p, p)``, as on the OCC route) and every particle instance is its own region;
where those faces cannot be made (exactly symmetric arrangements: four radical planes through
one line), the route warns and meshes each phase's clusters as one region without them. What
it does not do (use the default ``"auto"`` route): core-shell particles, 2D; the pore alone
(``electrolyte_only``) with several solid phases.
"""

from __future__ import annotations

import json
import logging
import os
import time
from typing import TYPE_CHECKING

import gmsh
import numpy as np

from .. import tags
from .contacts import ContactError
from .curved import curve_mesh
from .occ import ATTRIBUTE
from .options import GeometryReport, MeshOptions, MeshStats
from .plan import _effective_shell, _fingerprint, _hint_text, _plan
from .sizing import (
    SIZE_FACTOR_3D,
    _set_mesh_options,
    _size_grid,
    mend_grid,
    mesh_stats,
    node_xyz,
    structured_field,
)
from .trisphere import edge_codes, join_by_codes
from .union import SurfaceError, UnionSurface

if TYPE_CHECKING:
    from ..microstructure.particles import Particles

log = logging.getLogger("electrofem.mesh")

#: HXT's optimiser works on the cells below this quality (gmsh's default 0.3). On these
#: surfaces it spent most of the volume step lifting cells between 0.2 and 0.3: at 0.2 the
#: volume step is 4.8x faster on the tortuosity pack at h = 2 µm (2.0 s against 9.7 s), 1.4x on
#: box400, 1.6x on pack40 and 3.2x on paper 002's section (41 s against 128 s), with the same
#: minimum quality but box400's (0.19 against 0.23) and under 1e-4 of the cells below 0.2;
#: 1-2 % fall below 0.3 (BENCHMARKS.md, issue 14, seventh part).
OPTIMIZE_THRESHOLD = 0.2

#: Box face tags by ``2 * axis + side``.
FACE_TAGS = (tags.LEFT, tags.RIGHT, tags.FRONT, tags.BACK, tags.BOTTOM, tags.TOP)


def check_supported(particles: Particles, options: MeshOptions) -> None:
    """Raise ValueError when the discrete route cannot mesh these particles."""
    why = None
    if particles.dim != 3:
        why = "it is 3D only"
    elif np.any(_effective_shell(particles) > 0):
        why = "core-shell particles are not supported"
    if why and options.electrolyte_only:
        raise ValueError(f"mesh.electrolyte_only: the discrete route makes it, and {why}")
    if why:
        raise ValueError(f"mesh.geometry_route = 'discrete': {why}; use 'auto'")
    if options.electrolyte_only and len(np.unique(particles.phase)) > 1:
        raise ValueError(
            "mesh.electrolyte_only: the particles must all be of one phase (without the "
            "solid's cells, the volume of each solid phase is not known)"
        )


def _signed_volume(x: np.ndarray, tri: np.ndarray) -> float:
    a, b, c = x[tri[:, 0]], x[tri[:, 1]], x[tri[:, 2]]
    return float(np.einsum("ij,ij->i", a, np.cross(b, c)).sum() / 6.0)


def _inside(x: np.ndarray, tri: np.ndarray, point: np.ndarray) -> bool:
    """Ray parity: is ``point`` inside the closed triangulated surface ``tri``?"""
    d = np.array([0.577, 0.578, 0.5767])
    d /= np.linalg.norm(d)
    v0 = x[tri[:, 0]]
    e1, e2 = x[tri[:, 1]] - v0, x[tri[:, 2]] - v0
    p = np.cross(d, e2)
    det = np.einsum("ij,ij->i", e1, p)
    ok = np.abs(det) > 1e-300
    inv = np.where(ok, 1.0 / np.where(ok, det, 1.0), 0.0)
    s = point - v0
    u = np.einsum("ij,ij->i", s, p) * inv
    q = np.cross(s, e1)
    v = (q @ d) * inv
    t = np.einsum("ij,ij->i", e2, q) * inv
    return bool(np.sum(ok & (u >= 0) & (v >= 0) & (u + v <= 1) & (t > 0)) % 2)


def _side_sign(surface: tuple, side: int) -> float:
    """+1 when the triangles of ``surface`` point out of the regions of ``side`` (0: the
    pore, else a solid phase), -1 when they point in, 0 when it does not bound them."""
    kind, _, _, phase = surface
    if side == 0:
        return {"sphere": -1.0, "pore": 1.0}.get(kind, 0.0)
    if kind in ("sphere", "solid"):
        return 1.0 if phase == side else 0.0
    if kind == "contact":  # oriented out of its first instance
        return 1.0 if phase[0] == side else (-1.0 if phase[1] == side else 0.0)
    return 0.0


def regions(
    x: np.ndarray, pieces: list, piece_instance: list | None = None, phase=None
) -> tuple[list, list]:
    """Split the pieces of :class:`.union.UnionSurface` into connected surfaces and find the
    regions they bound.

    Returns ``(surfaces, volumes)``: surfaces ``[(kind, owner, triangles, phase)]``, volumes
    ``[(side, [shell, ...])]`` with side 0 (pore) or the solid phase id, and each shell a
    list of surface indices, the outer one first. Raises RuntimeError when a hole lies in no
    region.

    With ``piece_instance`` (the particle instance of each piece, None but for sphere and
    solid box pieces; :attr:`.union.UnionSurface.piece_instance`) every particle instance is
    its own solid region, of phase ``phase[instance]``: its sphere patches, its contact faces
    and its part of the box faces close it (its kept part of the ball is convex).
    """
    m = len(x) + 1
    surfaces, source = [], []
    for i, (kind, owner, tri, ph) in enumerate(pieces):
        if len(tri):
            lab = join_by_codes(edge_codes(tri, m), np.tile(np.arange(len(tri)), 3), len(tri))
            surfaces += [(kind, owner, tri[lab == c], ph) for c in range(lab.max() + 1)]
            source += [i] * (lab.max() + 1)
    codes = [edge_codes(surf[2], m) for surf in surfaces]
    owners = np.concatenate([np.full(len(c), k) for k, c in enumerate(codes)])
    codes = np.concatenate(codes)
    solid = sorted({int(s[3]) for s in surfaces if s[0] in ("sphere", "solid")})
    volumes = []
    if piece_instance is not None:  # the pore's regions here, the particles' below
        solid = []
    for side in [0, *solid]:
        sign = np.array([_side_sign(surf, side) for surf in surfaces])
        member = sign != 0
        sel = member[owners]
        labels = join_by_codes(codes[sel], owners[sel], len(surfaces))
        shells: dict[int, list[int]] = {}
        for k in np.flatnonzero(member):
            shells.setdefault(int(labels[k]), []).append(int(k))
        outer, holes = [], []
        for members in shells.values():
            vol = sum(sign[k] * _signed_volume(x, surfaces[k][2]) for k in members)
            (outer if vol > 0 else holes).append((abs(vol), members))
        outer.sort(key=lambda a: a[1][0])
        inner: list[list] = [[] for _ in outer]
        for _, members in holes:
            best = 0 if len(outer) == 1 else None
            if best is None:
                k0 = members[0]
                tri = surfaces[k0][2][:1]
                a, b, cc = x[tri[0]]
                nrm = np.cross(b - a, cc - a)
                step = 1e-3 * np.linalg.norm(b - a) * nrm / np.linalg.norm(nrm)
                # a point just inside the region around the hole: against the region's
                # outward normal, which points into the hole
                point = (a + b + cc) / 3 - sign[k0] * step
                for i, (vol, shell) in enumerate(outer):
                    shell_tri = np.concatenate([surfaces[k][2] for k in shell])
                    if _inside(x, shell_tri, point) and (best is None or vol < outer[best][0]):
                        best = i
            if best is None:
                raise RuntimeError("discrete route: a closed shell lies in no region")
            inner[best].append(members)
        volumes += [(side, [shell, *inner[i]]) for i, (_, shell) in enumerate(outer)]
    if piece_instance is not None:
        volumes += _particle_regions(surfaces, source, piece_instance, phase)
    return surfaces, volumes


def _particle_regions(surfaces: list, source: list, piece_instance: list, phase) -> list:
    """Each particle instance's region: ``[(phase, [shell])]`` (see :func:`regions`)."""
    shells: dict[int, list[int]] = {}
    for k, (kind, owner, _, _) in enumerate(surfaces):
        if kind == "contact":
            for s in owner:
                shells.setdefault(int(s), []).append(k)
        elif kind in ("sphere", "solid"):
            shells.setdefault(int(piece_instance[source[k]]), []).append(k)
    return [(int(phase[s]), [shell]) for s, shell in sorted(shells.items())]


def _enclosed(x: np.ndarray, surfaces: list, volumes: list) -> float:
    """The volume of the pore regions ``volumes`` (their triangles': the straight geometry)."""
    total = 0.0
    for _, shells in volumes:
        for shell in shells:
            for k in shell:  # sphere patches point out of the solid, into the pore
                v = _signed_volume(x, surfaces[k][2])
                total += -v if surfaces[k][0] == "sphere" else v
    return total


def pore_regions(surfaces: list, volumes: list) -> tuple[list, list]:
    """The pore regions of :func:`regions` alone, with the surfaces they use (renumbered)."""
    volumes = [v for v in volumes if v[0] == 0]
    used = sorted({k for _, shells in volumes for shell in shells for k in shell})
    index = {k: i for i, k in enumerate(used)}
    volumes = [(side, [[index[k] for k in shell] for shell in shells]) for side, shells in volumes]
    return [surfaces[k] for k in used], volumes


def build_and_mesh_discrete(
    particles: Particles,
    options: MeshOptions,
    model_name: str = "electrofem",
    *,
    gmsh_options: dict | None = None,
) -> tuple[GeometryReport, MeshStats]:
    """The discrete route of :func:`.build.build_and_mesh`: triangulate, find the regions,
    mesh them with HXT, and leave the model with the OCC route's physical groups."""
    options.validate()
    check_supported(particles, options)
    t0 = time.perf_counter()
    plan = _plan(particles)
    grid = _size_grid(options, particles, plan)
    phases = particles.phase[[plan.inst[k].particle for k in plan.live]]
    t_prep = time.perf_counter() - t0  # the plan and the size grid
    mended = []
    for attempt in range(options.mend_rounds + 1):
        t_start = time.perf_counter()
        built = _mesh_once(particles, options, plan, grid, phases, model_name, gmsh_options)
        if attempt == options.mend_rounds or grid is None:
            break
        refined = mend_grid(grid, options, attempt)
        if refined is None:
            break
        grid = refined
        mended.append(time.perf_counter() - t_start)
    surface, x, surfaces, volumes, by_phase, by_facet = built["model"]
    t_surface, t_regions, t_mesh = (t_start + built[k] for k in ("surface", "regions", "mesh"))
    straightened = 0
    if options.order == 2:
        t = time.perf_counter()
        straightened = curve_mesh(3, place=lambda: _place_midpoints(surface, surfaces))[
            "straightened"
        ]
        t_curve = time.perf_counter() - t
    t_end = time.perf_counter()

    info = {
        "dim": 3,
        "particles": _fingerprint(particles),
        "hints": plan.hints,
        "seconds_geometry": t_prep + t_regions - t_start,
        "seconds_cut": 0.0,
        "seconds_fragment": 0.0,
        "route": "discrete",
        "box_volume": particles.box.volume,
    }
    pore_volume = _enclosed(x, surfaces, [v for v in volumes if v[0] == 0])
    if options.electrolyte_only:
        info["meshed_volume"] = pore_volume
    gmsh.model.setAttribute(ATTRIBUTE, [json.dumps(info)])
    split = {
        "surface": t_prep + t_surface - t_start,
        "regions": t_regions - t_surface,
        "volume": t_end - t_mesh,
    }
    if options.order == 2:
        split["volume"] -= t_curve
        split["curve"] = t_curve
    if mended:  # the passes meshed again (their surfaces, regions and volumes)
        split["mend"] = sum(mended)
    stats = mesh_stats(options, info, t_end - t_mesh + sum(mended), split, straightened)
    report = _report(x, surfaces, by_phase, by_facet)
    _check_embedded(report, pore_volume, particles.box.volume)
    log.info(
        "geometry: discrete surface of %d particle instances, %d surfaces, %d regions in %.2f s",
        surface.n,
        len(surfaces),
        len(volumes),
        t_prep + t_regions - t_start,
    )
    return report, stats


def _union(particles, options, plan, grid, phases, same: bool) -> UnionSurface:
    return UnionSurface(
        plan,
        particles.box.size,
        grid,
        options.size,
        SIZE_FACTOR_3D,
        options.neck_factor,
        phase=phases,
        same_phase_contacts=same,
    )


def _mesh_once(particles, options, plan, grid, phases, model_name, gmsh_options) -> dict:
    """One pass of the route: the union's surface on ``grid``'s sizes, its regions, the gmsh
    model and its volume mesh. Returns ``{"model": (surface, x, surfaces, volumes,
    by_phase, by_facet), "surface" | "regions" | "mesh": seconds from the start to the end
    of the surface, of the regions, and to the start of the volume mesh}``."""
    t0 = time.perf_counter()
    same = options.same_phase_contacts and not options.electrolyte_only
    surface = _union(particles, options, plan, grid, phases, same)
    if surface.n == 0:
        raise ValueError("mesh.geometry_route = 'discrete': no particle in the box; use 'auto'")
    try:
        x = surface.build()
    except (ContactError, SurfaceError) as err:
        if not same:
            raise
        log.warning(
            "mesh: the contact faces between particles of one phase could not be made (%s); "
            "the discrete route meshes each phase's clusters as one volume, without "
            "interface_tag(p, p) facets",
            err,
        )
        surface = _union(particles, options, plan, grid, phases, False)
        x = surface.build()
    t_surface = time.perf_counter()
    particles_of = surface.piece_instance if surface.same_phase_contacts else None
    surfaces, volumes = regions(x, surface.pieces, particles_of, surface.phase)
    if options.electrolyte_only:
        surfaces, volumes = pore_regions(surfaces, volumes)
    t_regions = time.perf_counter()

    if model_name in gmsh.model.list():
        gmsh.model.setCurrent(model_name)
        gmsh.model.remove()
    gmsh.model.add(model_name)
    used = np.unique(np.concatenate([surf[2].ravel() for surf in surfaces]))
    new = np.full(len(x), -1)
    new[used] = np.arange(1, len(used) + 1)
    for k in range(len(surfaces)):
        gmsh.model.addDiscreteEntity(2, k + 1)
    gmsh.model.mesh.addNodes(2, 1, np.arange(1, len(used) + 1), x[used].ravel())
    for k, surf in enumerate(surfaces):
        gmsh.model.mesh.addElementsByType(k + 1, 2, [], new[surf[2]].ravel())
    for v, (_, shells) in enumerate(volumes):
        loops = [gmsh.model.geo.addSurfaceLoop([k + 1 for k in shell]) for shell in shells]
        gmsh.model.geo.addVolume(loops, v + 1)
    gmsh.model.geo.synchronize()
    by_phase: dict[int, list[int]] = {}
    for v, (side, _) in enumerate(volumes):
        by_phase.setdefault(tags.ELECTROLYTE if side == 0 else side, []).append(v + 1)
    for p in sorted(by_phase):
        gmsh.model.addPhysicalGroup(3, by_phase[p], tag=p, name=tags.phase_name(p))
    by_facet: dict[int, list[int]] = {}
    for k, (kind, owner, _, phase) in enumerate(surfaces):
        if kind == "sphere":
            ftag = tags.interface_tag(tags.ELECTROLYTE, phase)
        elif kind == "contact":
            ftag = tags.interface_tag(*phase)
        else:
            ftag = FACE_TAGS[owner]
        by_facet.setdefault(ftag, []).append(k + 1)
    names = {v: k for k, v in tags.BOUNDARIES.items()}
    for ftag in sorted(by_facet):
        name = names.get(ftag) or tags.interface_name(ftag)
        gmsh.model.addPhysicalGroup(2, by_facet[ftag], tag=ftag, name=name)

    _set_mesh_options(options, 3)
    gmsh.option.setNumber("Mesh.OptimizeThreshold", OPTIMIZE_THRESHOLD)
    for name, value in (gmsh_options or {}).items():
        gmsh.option.setNumber(name, float(value))
    path = None
    if grid is not None:
        fid, path = structured_field(grid)
        gmsh.model.mesh.field.setAsBackgroundMesh(fid)
    t_mesh = time.perf_counter()
    try:
        gmsh.model.mesh.generate(3)
    except Exception as err:
        raise RuntimeError(
            f"mesh: gmsh failed on the discrete route's volumes: {err}{_hint_text(plan.hints)}"
        ) from err
    finally:
        for fid in gmsh.model.mesh.field.list():
            gmsh.model.mesh.field.remove(fid)
        if path is not None:
            os.remove(path)
    return {
        "model": (surface, x, surfaces, volumes, by_phase, by_facet),
        "surface": t_surface - t0,
        "regions": t_regions - t0,
        "mesh": t_mesh - t0,
    }


def _check_embedded(report: GeometryReport, pore_volume: float, box_volume: float) -> None:
    """Warn when the pore's cells do not fill what its triangles enclose (``pore_volume``,
    :func:`_enclosed`), to 1e-6 of the box: the surface crosses itself somewhere (very coarse
    meshes, README), and the solid takes up the difference, which the box-volume check
    cannot see."""
    leak = report.phase_volumes.get(tags.ELECTROLYTE, 0.0) - pore_volume
    if abs(leak) > 1e-6 * box_volume:
        log.warning(
            "mesh: the electrolyte's cells fill %.3g µm³ %s than its surface encloses "
            "(%.1e of the box): the discrete surface is not embedded at this size; a finer "
            "mesh.size mends it",
            abs(leak),
            "less" if leak < 0 else "more",
            abs(leak) / box_volume,
        )


def _place_midpoints(surface: UnionSurface, surfaces: list) -> None:
    """Move the midpoint of every surface edge onto the exact geometry: onto its sphere
    (radially) inside a sphere patch, onto the circle where two spheres or a sphere and a box
    face meet on an arc chord. A projection that leaves the sphere's patch (a chord across a
    small patch) and edges on box faces stay straight."""
    n = surface.n
    nodes, owners = [], []
    for k, (kind, owner, _, _) in enumerate(surfaces):
        if kind == "contact":  # flat: its midpoints stay, but those on arcs (spheres')
            continue
        _, tri = gmsh.model.mesh.getElementsByType(9, k + 1)
        mid = np.asarray(tri, np.int64).reshape(-1, 6)[:, 3:].ravel()
        nodes.append(mid)
        owners.append(np.full(len(mid), owner if kind == "sphere" else n + owner))
    nodes, owners = np.concatenate(nodes), np.concatenate(owners)
    pairs = np.unique(np.stack([nodes, owners], axis=1), axis=0)
    node, first, count = np.unique(pairs[:, 0], return_index=True, return_counts=True)
    a = pairs[first, 1]
    b = np.where(count == 2, pairs[np.minimum(first + 1, len(pairs) - 1), 1], -1)
    one = (count == 1) & (a < n)  # inside a sphere patch
    two = (count == 2) & (a < n)  # an arc: sphere-sphere or sphere-box (a < b)
    p = node_xyz()[node]
    new = p.copy()
    sa = np.where(a < n, a, 0)
    c, r = surface.c[sa], surface.r[sa]
    d = p - c
    radial = c + r[:, None] * d / np.linalg.norm(d, axis=1)[:, None]
    new[one] = radial[one]
    for i in np.flatnonzero(two):  # circles: few per patch
        s, t = int(a[i]), int(b[i])
        plane = surface.plane.get((s, t)) if t < n else surface.box_plane(t)
        if plane is None:  # not an arc of these two (cannot happen on a closed surface)
            continue
        q, u = plane
        cc = c[i] - ((c[i] - q) @ u) * u
        rc = np.sqrt(max(r[i] ** 2 - np.sum((c[i] - cc) ** 2), 0.0))
        w = p[i] - cc
        w -= (w @ u) * u
        new[i] = cc + rc * w / np.linalg.norm(w)
    # a radial projection must stay in its sphere's patch
    for s in np.unique(a[one]):
        rows = np.flatnonzero(one & (a == s))
        inside = surface.in_cell(int(s), new[rows])
        new[rows[~inside]] = p[rows[~inside]]
    moved = np.flatnonzero(np.any(new != p, axis=1))
    for tag, q in zip(node[moved], new[moved], strict=True):
        gmsh.model.mesh.setNode(int(tag), q.tolist(), [])


def _report(x, surfaces, by_phase, by_facet) -> GeometryReport:
    """Phase volumes from the cells, facet areas from the triangles (the straight geometry)."""
    report = GeometryReport(n_volumes=sum(len(v) for v in by_phase.values()))
    xyz = node_xyz()
    for p, vols in by_phase.items():
        total = 0.0
        for v in vols:
            _, etags, nodes = gmsh.model.mesh.getElements(3, v)
            for tags_t, nodes_t in zip(etags, nodes, strict=True):
                tet = np.asarray(nodes_t, np.int64).reshape(len(tags_t), -1)[:, :4]
                e = xyz[tet[:, 1:]] - xyz[tet[:, :1]]
                total += float(np.abs(np.linalg.det(e)).sum()) / 6.0
        report.phase_volumes[p] = total
    for ftag, ents in by_facet.items():
        area = 0.0
        for k in ents:
            tri = surfaces[k - 1][2]
            a, b, c = x[tri[:, 0]], x[tri[:, 1]], x[tri[:, 2]]
            area += float(np.linalg.norm(np.cross(b - a, c - a), axis=1).sum()) / 2.0
        target = report.boundary_areas if ftag in FACE_TAGS else report.interface_areas
        target[ftag] = area
    return report
