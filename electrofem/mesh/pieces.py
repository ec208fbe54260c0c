"""The truncated balls: OCC solids of every particle instance, cut by its radical planes.

Gmsh OCC, on the current model (see :func:`_build_pieces`): each instance's ball (and its
core, for core-shell particles) is cut by the half-spaces beyond its radical planes
(:mod:`.plan`), in small scratch models and batches of instances that cannot touch each
other, and brought back through BREP files. Each OCC sphere (disk) is first rotated about its
centre so that its seam and poles stay away from the caps cut off it (:func:`_seam_rotation`).
"""

from __future__ import annotations

import math
import os
import tempfile
from dataclasses import dataclass
from typing import Protocol

import gmsh
import numpy as np

from .plan import _Instance, _Plan

#: Smallest angular clearance (rad) of a sphere seam from every cap rim it does not cross.
SEAM_CLEARANCE = 0.05

#: Largest number of particles cut in one scratch model (see ``_build_pieces``). Cut stage of
#: box400 (400 spheres): 11.4 s with 8, 11.6 s with 4 or 16, 12.1 s with 32, 12.6 s with 64.
CUT_BATCH = 8


def _half_space_tool(dim: int, c: np.ndarray, r: float, p: np.ndarray, u: np.ndarray) -> tuple:
    """An OCC entity covering the part of ball (c, r) beyond the plane through p, normal u."""
    occ = gmsh.model.occ
    # from the plane to 0.1 r beyond the far side of the ball; wider than any chord
    depth = float(np.dot(c - p, u)) + 1.1 * r
    width = 1.1 * r
    if dim == 3:
        tag = occ.addCylinder(*p, *(u * depth), width)
        return (3, tag)
    v = np.array([-u[1], u[0]])
    corners = [p + v * width, p - v * width, p - v * width + u * depth, p + v * width + u * depth]
    pts = [occ.addPoint(q[0], q[1], 0.0) for q in corners]
    lines = [occ.addLine(pts[k], pts[(k + 1) % 4]) for k in range(4)]
    tag = occ.addPlaneSurface([occ.addCurveLoop(lines)])
    return (2, tag)


def _colour_groups(inst: list[_Instance], keys: list[int], reach: dict[int, float]) -> list:
    """Greedy colouring of ``keys``: two instances share a colour only if the region each one
    touches (ball of radius ``reach`` around its centre) misses the other's."""
    if not keys:
        return []
    from scipy.spatial import cKDTree

    x = np.array([inst[k].center for k in keys])
    rr = np.array([max(reach[k], inst[k].radius) for k in keys])
    conflicts: list[set[int]] = [set() for _ in keys]
    for a, b in cKDTree(x).query_pairs(2.0 * float(rr.max()) * 1.01):
        if np.linalg.norm(x[a] - x[b]) < (rr[a] + rr[b]) * 1.01:
            conflicts[a].add(b)
            conflicts[b].add(a)
    colour = [-1] * len(keys)
    groups: list[list[int]] = []
    for a in range(len(keys)):
        used = {colour[b] for b in conflicts[a] if colour[b] >= 0}
        c = next(c for c in range(len(groups) + 1) if c not in used)
        colour[a] = c
        if c == len(groups):
            groups.append([])
        groups[c].append(keys[a])
    return groups


def _regroup(dim: int, solids: dict, keys: list[int], out_map: list) -> None:
    """Replace ``solids[k]`` (in place) by what an OCC boolean made of them: ``out_map`` is
    the boolean's map, whose first entries are the objects ``solids[k]`` of ``keys`` in
    order."""
    pos = 0
    for k in keys:
        n = len(solids[k])
        solids[k] = [e for m in out_map[pos : pos + n] for e in m if e[0] == dim]
        pos += n


def _round_cuts(dim, inst, solids: dict, planes: dict, shrink: dict) -> None:
    """Cut ``solids[k]`` (in place) by the half-spaces beyond ``planes[k]``, for instances
    whose balls and tools cannot touch each other: round t cuts every instance by its t-th
    tool in one call (tools that intersect each other make a multi-tool cut slow)."""
    occ = gmsh.model.occ
    keys = sorted(planes)
    for t in range(max((len(planes[k]) for k in keys), default=0)):
        members = [k for k in keys if t < len(planes[k]) and solids[k]]
        if not members:
            continue
        objects, tools = [], []
        for k in members:
            c, r = inst[k].center, inst[k].radius - shrink.get(k, 0.0)
            p, u = planes[k][t]
            objects.extend(solids[k])
            tools.append(_half_space_tool(dim, c, r, p, u))
        _, out_map = occ.cut(objects, tools, removeObject=True, removeTool=True)
        _regroup(dim, solids, members, out_map)


@dataclass
class CutPlan:
    """What :func:`_build_pieces` will make, the same on every rank that computes it.

    Attributes:
        rotation: instance -> seam rotation of its ball (:func:`_seam_rotation`).
        core_radius: instance -> core radius (core-shell particles whose core survives).
        core_planes: instance -> the radical planes that cut its core.
        uncut: instances whose ball (and core) need no boolean.
        batches: instances cut together in one scratch model (:data:`CUT_BATCH` at most).
        glued: for the glued construction (:mod:`.glue`), whose pieces may neither overlap
            nor leave the box: the pieces of the instances in ``clipped`` are intersected with
            the box, and the outer pieces have their cores cut out. Otherwise a core lies
            inside its outer piece, and the box fragment cuts what lies outside.
        clipped: instances whose ball crosses the box boundary (``glued`` only).
        size: the box (µm).
    """

    rotation: dict
    core_radius: dict[int, float]
    core_planes: dict[int, list]
    uncut: list[int]
    batches: list[list[int]]
    glued: bool = False
    clipped: frozenset = frozenset()
    size: tuple[float, ...] = ()

    def cost(self, plan: _Plan, b: int) -> int:
        """Relative cost of batch ``b``: its boolean cuts (one per radical plane)."""
        return sum(
            1 + len(plan.planes[k]) + len(self.core_planes.get(k, ())) for k in self.batches[b]
        )


def _cut_plan(
    plan: _Plan, t_shell: np.ndarray, size: tuple[float, ...], glued: bool = False
) -> CutPlan:
    """Seam rotations, cores, and the batches of instances that cannot touch each other
    (greedy colouring, then chunks of :data:`CUT_BATCH`). Pure numpy: deterministic.
    ``glued``: see :class:`CutPlan` (every instance with a core or across the box boundary is
    then cut)."""
    inst, planes = plan.inst, plan.planes
    rotation = {
        k: _seam_rotation(inst[k].center, inst[k].radius, planes[k], size) for k in plan.live
    }
    core_planes: dict[int, list] = {}
    core_radius: dict[int, float] = {}
    for k in plan.live:
        q = inst[k]
        t = float(t_shell[q.particle])
        if t <= 0:
            continue
        rc = q.radius - t
        dists = [float(np.dot(p - q.center, u)) for p, u in planes[k]]
        if any(x <= -rc for x in dists):
            continue  # the core lies entirely beyond one radical plane
        core_radius[k] = rc
        core_planes[k] = [pu for pu, x in zip(planes[k], dists, strict=True) if x < rc]
    clipped = frozenset()
    if glued:
        length = np.asarray(size)
        clipped = frozenset(
            k
            for k in plan.live
            if np.any(inst[k].center - inst[k].radius < 0)
            or np.any(inst[k].center + inst[k].radius > length)
        )
    cut = [
        k
        for k in plan.live
        if planes[k] or core_planes.get(k) or (glued and (k in core_radius or k in clipped))
    ]
    # a tool reaches at most sqrt((r + 0.1 r)^2 + (1.1 r)^2) < 1.6 r from the centre
    groups = _colour_groups(inst, cut, {k: 1.6 * inst[k].radius for k in cut})
    batches = [g[i : i + CUT_BATCH] for g in groups for i in range(0, len(g), CUT_BATCH)]
    uncut = sorted(set(plan.live) - set(cut))
    return CutPlan(rotation, core_radius, core_planes, uncut, batches, glued, clipped, size)


def _clip_to_box(dim: int, pieces: dict, keys: list[int], size: tuple[float, ...]) -> None:
    """Intersect the pieces of ``keys`` with the box (in place), one boolean per batch. The box
    face cuts the sphere as in the box fragment, so the face circles get the vertices the
    packing's face rules (``ext/packing.pyx``) keep clear of the contact circles: a half-space
    tool on the face plane put their start points 4 nm from a neck's face crossing on the
    periodic 40 µm pack (minimum quality 0.015)."""
    keys = [k for k in keys if pieces.get(k)]
    if not keys:
        return
    occ = gmsh.model.occ
    box = (3, occ.addBox(0, 0, 0, *size)) if dim == 3 else (2, occ.addRectangle(0, 0, 0, *size))
    objects = [e for k in keys for e in pieces[k]]
    _, out_map = occ.intersect(objects, [box], removeObject=True, removeTool=True)
    _regroup(dim, pieces, keys, out_map)


def _hollow_out(dim: int, outer: dict, core: dict) -> None:
    """Cut each instance's core out of its outer piece (in place), one boolean per batch:
    the instances of a batch cannot touch each other."""
    keys = [k for k in sorted(core) if outer[k] and core[k]]
    if not keys:
        return
    objects = [e for k in keys for e in outer[k]]
    tools = [e for k in keys for e in core[k]]
    _, out_map = gmsh.model.occ.cut(objects, tools, removeObject=True, removeTool=False)
    _regroup(dim, outer, keys, out_map)


def cut_batch(dim: int, plan: _Plan, cp: CutPlan, b: int, path: str) -> list[tuple]:
    """Cut batch ``b`` in a scratch gmsh model and write its pieces to the BREP file ``path``.

    Returns ``[(instance, "outer" | "core", bounding box)]`` in the order of the file. Needs
    an initialised gmsh; leaves the current model as it found it.
    """
    occ = gmsh.model.occ
    inst, planes, batch = plan.inst, plan.planes, cp.batches[b]
    main = gmsh.model.getCurrent() if gmsh.model.list() else None
    gmsh.model.add(f"electrofem-scratch-{b}")
    try:
        outer = {k: [_ball(dim, inst[k].center, inst[k].radius, cp.rotation[k])] for k in batch}
        core = {
            k: [_ball(dim, inst[k].center, cp.core_radius[k], cp.rotation[k])]
            for k in batch
            if k in cp.core_radius
        }
        _round_cuts(dim, inst, outer, {k: planes[k] for k in batch if planes[k]}, {})
        shrink = {k: inst[k].radius - cp.core_radius[k] for k in core}
        _round_cuts(
            dim, inst, core, {k: cp.core_planes[k] for k in core if cp.core_planes[k]}, shrink
        )
        if cp.glued:
            _clip_to_box(dim, outer, [k for k in batch if k in cp.clipped], cp.size)
            _clip_to_box(dim, core, [k for k in core if k in cp.clipped], cp.size)
            _hollow_out(dim, outer, core)
        made = sorted(
            [(e, k, "outer") for k in batch for e in outer[k]]
            + [(e, k, "core") for k in core for e in core[k]]
        )
        # bounding boxes, not masses: 1.5 ms per getMass, 6 µs per box
        out = [(k, kind, occ.getBoundingBox(*e)) for e, k, kind in made]
        if made:
            occ.synchronize()
            gmsh.write(path)
    finally:
        gmsh.model.remove()
        if main is not None:
            gmsh.model.setCurrent(main)
    return out


def _import_batch(dim: int, path: str, made: list[tuple], size: tuple[float, ...]) -> list:
    """Import a batch's BREP file into the current model; ``[(dimtag, instance, kind)]``."""
    imported = [e for e in gmsh.model.occ.importShapes(path, highestDimOnly=True) if e[0] == dim]
    tol = 1e-9 * max(size)
    if len(imported) != len(made) or any(
        max(abs(a - b) for a, b in zip(gmsh.model.occ.getBoundingBox(*e), bb, strict=True)) > tol
        for e, (_, _, bb) in zip(imported, made, strict=False)
    ):
        raise RuntimeError("geometry: BREP round trip of truncated particles lost shapes")
    return [(e, k, kind) for e, (k, kind, _) in zip(imported, made, strict=True)]


class CutSharing(Protocol):
    """Cuts shared with other processes (see :func:`_build_pieces`)."""

    def batches_here(self, plan: _Plan, cp: CutPlan) -> list[int]: ...

    def collect(self, cp: CutPlan, tmpdir: str) -> dict[int, list]: ...


def _build_pieces(
    dim: int,
    plan: _Plan,
    t_shell: np.ndarray,
    size: tuple[float, ...],
    sharing: CutSharing | None = None,
    glued: bool = False,
):
    """Truncated balls (and cores) of all live instances, in the current model.

    Returns ``[(dimtag, instance, "outer" | "core")]``.

    OCC booleans get slower with the number of shapes in the model (about +1 ms per 100
    shapes per call) and with the number of arguments of one call, so the cuts are done in
    small scratch models, on batches of instances that cannot touch each other (greedy
    colouring), and each batch is brought back through a BREP file. 1000 particles: 27 s
    instead of 310 s.

    ``sharing``, when given, has other processes cut some of the batches (the MPI ranks,
    :mod:`.parallel`): this process cuts ``sharing.batches_here(...)``, then
    ``sharing.collect(...)`` writes the others' files ``batch<b>.brep`` and returns their
    ``made`` lists. Batches are imported in order either way, so the model does not depend
    on who cut what. ``glued``: see :class:`CutPlan`.
    """
    cp = _cut_plan(plan, t_shell, size, glued)
    inst = plan.inst
    pieces = []
    for k in cp.uncut:
        pieces.append((_ball(dim, inst[k].center, inst[k].radius, cp.rotation[k]), k, "outer"))
        if k in cp.core_radius:
            pieces.append(
                (_ball(dim, inst[k].center, cp.core_radius[k], cp.rotation[k]), k, "core")
            )
    with tempfile.TemporaryDirectory(prefix="electrofem-") as tmp:
        here = sharing.batches_here(plan, cp) if sharing else range(len(cp.batches))
        made = {}
        try:
            for b in here:
                made[b] = cut_batch(dim, plan, cp, b, os.path.join(tmp, f"batch{b}.brep"))
        finally:
            if sharing:  # collective: also when a cut here failed
                made.update(sharing.collect(cp, tmp))
        for b in range(len(cp.batches)):
            if made[b]:
                pieces.extend(
                    _import_batch(dim, os.path.join(tmp, f"batch{b}.brep"), made[b], size)
                )
    return pieces


def _seam_frames(n_axes: int = 64, n_angles: int = 12):
    """Candidate sphere orientations: pole axes e3 (Fibonacci sphere) times seam directions
    e1 around each; returns ``(e1, e3, rotations)`` with the rotation (axis, angle) taking
    (x, z) to (e1, e3)."""
    from scipy.spatial.transform import Rotation

    k = np.arange(n_axes) + 0.5
    z = 1 - 2 * k / n_axes
    phi = math.pi * (3 - math.sqrt(5)) * k
    rho = np.sqrt(1 - z * z)
    axes = np.stack([rho * np.cos(phi), rho * np.sin(phi), z], axis=1)
    e1s, e3s, mats = [], [], []
    for e3 in axes:
        a = np.array([1.0, 0.0, 0.0]) if abs(e3[0]) < 0.9 else np.array([0.0, 1.0, 0.0])
        b1 = np.cross(e3, a)
        b1 /= np.linalg.norm(b1)
        b2 = np.cross(e3, b1)
        for ang in np.linspace(0.0, 2 * math.pi, n_angles, endpoint=False):
            e1 = math.cos(ang) * b1 + math.sin(ang) * b2
            e1s.append(e1)
            e3s.append(e3)
            mats.append(np.column_stack([e1, np.cross(e3, e1), e3]))
    rotvecs = Rotation.from_matrix(np.array(mats)).as_rotvec()
    angles = np.linalg.norm(rotvecs, axis=1)
    rotations = [
        (tuple(float(x) for x in v / a), float(a)) if a > 1e-12 else None
        for v, a in zip(rotvecs, angles, strict=True)
    ]
    return np.array(e1s), np.array(e3s), rotations


_SEAM_FRAMES = None


def _caps(c: np.ndarray, r: float, planes, size: tuple[float, ...]):
    """Unit normals and angular radii of the caps cut off the ball (c, r) by ``planes``
    (point, normal) and by the box faces."""
    normals, cosines = [], []
    for p, u in planes:
        normals.append(u)
        cosines.append(float(np.dot(p - c, u)) / r)
    for k, length in enumerate(size):
        for s, sign in ((c[k], -1.0), (length - c[k], 1.0)):
            if s < r:
                n = np.zeros(len(c))
                n[k] = sign
                normals.append(n)
                cosines.append(s / r)
    if not normals:
        return np.zeros((0, len(c))), np.zeros(0)
    return np.array(normals), np.arccos(np.clip(cosines, -1.0, 1.0))


def _seam_rotation(c: np.ndarray, r: float, planes, size: tuple[float, ...]):
    """Rotation (axis, angle) that keeps the seam and poles of an OCC sphere (disk) off the
    rims of the caps cut off it: a seam running along a contact neck or a box-face circle, or
    a pole on one, makes sliver elements. ``None`` when nothing is cut.

    3D: the seam is the half great circle pole-e1-pole. First choice: a frame whose seam
    crosses no rim, lying wholly outside each cap or inside it (then it is cut away), with
    the largest clearance, if that is at least :data:`SEAM_CLEARANCE`. Otherwise (e.g. an
    image mostly outside the box among many necks): along the seam the angle to a cap's centre
    has its critical values at the poles and at its interior extremum, and a rim (angle θ) is
    crossed cleanly when θ is far from all of them; the frame with the largest such margin
    wins. 2D: the seam point stays outside every cap.
    """
    normals, theta = _caps(c, r, planes, size)
    if len(theta) == 0:
        return None
    if len(c) == 2:  # the disk's seam is the point at angle 0
        phis = np.linspace(0.0, 2 * math.pi, 72, endpoint=False)
        alpha = np.arctan2(normals[:, 1], normals[:, 0])
        dist = np.abs((phis[:, None] - alpha[None, :] + math.pi) % (2 * math.pi) - math.pi)
        best = int(np.argmax(np.min(dist - theta[None, :], axis=1)))
        return (0.0, 0.0, 1.0), float(phis[best])
    global _SEAM_FRAMES
    if _SEAM_FRAMES is None:
        _SEAM_FRAMES = _seam_frames()
    e1, e3, rotations = _SEAM_FRAMES
    a1 = normals @ e1.T  # (caps, frames)
    a3 = normals @ e3.T
    th = theta[:, None]
    north = np.arccos(np.clip(a3, -1.0, 1.0))
    south = math.pi - north
    # the interior extremum: the nearest point (a1 >= 0) or the farthest one (a1 < 0)
    in_plane = np.arccos(np.sqrt(np.clip(a1 * a1 + a3 * a3, 0.0, 1.0)))
    extremum = np.where(a1 >= 0, in_plane, math.pi - in_plane)
    ends_min, ends_max = np.minimum(north, south), np.maximum(north, south)
    nearest = np.where(a1 >= 0, np.minimum(ends_min, extremum), ends_min)
    farthest = np.where(a1 < 0, np.maximum(ends_max, extremum), ends_max)
    # 1. a seam that crosses no rim: wholly outside each cap, or inside it (cut away)
    clear = np.min(np.maximum(nearest - th, th - farthest), axis=0)
    best = int(np.argmax(clear))
    if clear[best] >= SEAM_CLEARANCE:
        return rotations[best]
    # 2. else one that crosses rims cleanly: no critical value of the angle near a rim (two
    # neighbours' seams may still cross their common rim close together)
    margin = np.minimum(np.minimum(np.abs(th - north), np.abs(th - south)), np.abs(th - extremum))
    return rotations[int(np.argmax(np.min(margin, axis=0)))]


def _ball(dim: int, c: np.ndarray, r: float, rotation=None) -> tuple:
    occ = gmsh.model.occ
    if dim == 3:
        e = (3, occ.addSphere(c[0], c[1], c[2], r))
    else:
        e = (2, occ.addDisk(c[0], c[1], 0.0, r, r))
    if rotation is not None:
        axis, angle = rotation
        occ.rotate([e], c[0], c[1], c[2] if dim == 3 else 0.0, *axis, angle)
    return e
