"""Gmsh (OpenCASCADE) geometry of particles in a box, its physical groups and its mesh.

Pure gmsh, no dolfinx. The caller owns ``gmsh.initialize()``/``gmsh.finalize()``; every function
works on the current gmsh model.

Construction (:func:`build_geometry`):

1. the box ``[0, Lx] x [0, H]`` (2D, plane z = 0) or ``[0, Lx] x [0, Ly] x [0, H]`` (3D);
2. periodic images of particles that cross a lateral face (when ``box.periodic``);
3. overlapping particles are split on their **radical plane** (power diagram): particle ``i``
   keeps the part of its ball on its side of the radical plane with every overlapping
   neighbour, so two particles meet on a flat contact disk of radius ``a`` (area ``pi a^2``;
   a segment of length ``2a`` in 2D). The truncated balls are disjoint and tile the union;
4. core-shell particles: the core (radius ``r - t``, truncated by the same planes) has the
   particle's ``phase``, the rest of the truncated ball its ``shell_phase``;
5. ``occ.fragment`` of the box with all pieces; pieces outside the box are removed (from the
   gmsh model only, see :func:`build_geometry`);
6. physical groups: one per phase (tag = phase id), one per box face (``tags.BOTTOM`` ...) and
   one per interface type (``tags.interface_tag(a, b)``; ``interface_tag(p, p)`` for contacts
   between two particles of phase ``p``). Every dim-1 entity is in exactly one group.

The cuts run in small scratch models, in batches of particles that cannot touch each other
(OCC booleans slow down with the size of the model). Each OCC sphere (disk) is rotated about
its centre so that its seam and poles stay away from the contact necks and box faces that cut
it: a seam grazing a neck makes sliver elements.

Meshing (:func:`mesh_geometry`): the element size (``min(size, radius_factor * r)`` on particle
surfaces, ``neck_factor * a`` on contact necks and on the circles where box faces cut
particles, growing linearly away from them) is sampled on a regular grid from the exact
distances to spheres and neck circles, and handed to gmsh as a 'Structured' background field.
Distance fields on the OCC surfaces gave similar meshes but cost seconds per hundred
particles. 2D: Frontal-Delaunay; 3D: Delaunay, gmsh's
optimiser and (``optimize``) Netgen's; one thread, fixed seed: the same particles give the same
mesh.

:func:`build_geometry` leaves a JSON record (dimension, a hash of the particles, near-tangency
hints, build time) in the gmsh model attribute ``electrofem.geometry`` for
:func:`mesh_geometry`.
"""

from __future__ import annotations

import json
import logging
import math
import numbers
import os
import tempfile
import time
from dataclasses import dataclass, field

import gmsh
import numpy as np

from .. import tags
from ..microstructure.particles import Particles

log = logging.getLogger("electrofem.mesh")

#: gmsh model attribute holding the geometry bookkeeping (JSON).
ATTRIBUTE = "electrofem.geometry"
#: Relative distance below which a contact or a wall crossing counts as near-tangent.
TANGENT_TOL = 1e-3
#: Growth rate of the element size away from refined surfaces (size increase per unit length).
GROWTH = 0.5
#: Largest number of points of the structured size-field grid.
GRID_MAX_POINTS = 4_000_000
#: Largest number of particles cut in one scratch model (see ``_build_pieces``).
CUT_BATCH = 32
#: Fixed seed of gmsh's random perturbations (determinism).
RANDOM_SEED = 1


def _is_number(v) -> bool:
    return isinstance(v, numbers.Real) and not isinstance(v, bool)


# --------------------------------------------------------------------------------------------
# Public data classes
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class MeshOptions:
    """Element sizes and meshing switches (lengths in µm).

    Attributes:
        size: global maximum element size (electrolyte far from particles).
        radius_factor: element size at a particle surface = ``min(size, radius_factor * r)``.
        neck_factor: element size at a contact neck of radius ``a`` (and at the circle where a
            box face cuts a particle) = ``max(size_min, neck_factor * a)``.
        size_min: lower bound on any element size.
        optimize: 3D: Netgen optimisation of the tetrahedra.
        quality_warn: log a warning when the minimum element quality (minSICN) is below this.
        verbose: print gmsh's own output.
    """

    size: float = 1.0
    radius_factor: float = 0.25
    neck_factor: float = 0.5
    size_min: float = 0.05
    optimize: bool = True
    quality_warn: float = 0.1
    verbose: bool = False

    def validate(self) -> None:
        """Raise ValueError naming the offending field."""
        for name in ("size", "radius_factor", "neck_factor", "size_min"):
            v = getattr(self, name)
            if not (_is_number(v) and math.isfinite(v) and v > 0):
                raise ValueError(f"mesh.{name}: must be > 0, got {v!r}")
        if self.size_min > self.size:
            raise ValueError(
                f"mesh.size_min: must be <= mesh.size ({self.size}), got {self.size_min}"
            )
        q = self.quality_warn
        if not (_is_number(q) and 0 <= q <= 1):
            raise ValueError(f"mesh.quality_warn: must be in [0, 1], got {q!r}")


@dataclass
class GeometryReport:
    """What :func:`build_geometry` built (JSON-serialisable via ``dataclasses.asdict``).

    Attributes:
        n_volumes: number of gmsh entities of the top dimension.
        phase_volumes: phase id -> total volume (area in 2D), µm^3, from OCC.
        interface_areas: interface facet tag -> total area (length in 2D), µm^2.
        boundary_areas: box-face tag (``tags.BOTTOM`` ...) -> area (length in 2D), µm^2.
    """

    n_volumes: int
    phase_volumes: dict[int, float] = field(default_factory=dict)
    interface_areas: dict[int, float] = field(default_factory=dict)
    boundary_areas: dict[int, float] = field(default_factory=dict)


@dataclass
class MeshStats:
    """Size, quality (gmsh minSICN of the top-dimensional elements) and timings of a mesh."""

    n_nodes: int
    n_cells: int
    min_quality: float
    mean_quality: float
    seconds_geometry: float
    seconds_mesh: float


# --------------------------------------------------------------------------------------------
# Particle instances (periodic images) and radical planes
# --------------------------------------------------------------------------------------------
@dataclass
class _Instance:
    particle: int
    center: np.ndarray
    radius: float


def _instances(particles: Particles) -> list[_Instance]:
    """Particle copies that intersect the box: the particles and their periodic images."""
    box = particles.box
    size = np.asarray(box.size)
    dim = box.dim
    out: list[_Instance] = []
    for i in range(len(particles)):
        c, r = particles.centers[i], float(particles.radii[i])
        shifts_per_axis = []
        for k in range(dim - 1):
            s = [0.0]
            if box.periodic:
                if c[k] - r < 0:
                    s.append(size[k])
                if c[k] + r > size[k]:
                    s.append(-size[k])
            shifts_per_axis.append(s)
        for shift in np.array(np.meshgrid(*shifts_per_axis, indexing="ij")).reshape(dim - 1, -1).T:
            cc = c.copy()
            cc[: dim - 1] += shift
            # keep only copies whose ball intersects the box (distance to the box < r)
            gap = np.maximum(np.maximum(-cc, cc - size), 0.0)
            if float(np.sqrt(np.sum(gap**2))) < r:
                out.append(_Instance(i, cc, r))
    return out


def _overlapping_pairs(inst: list[_Instance]) -> list[tuple[int, int, float]]:
    """Sorted instance pairs ``(a, b, d)`` whose balls overlap."""
    if len(inst) < 2:
        return []
    from scipy.spatial import cKDTree

    x = np.array([q.center for q in inst])
    r = np.array([q.radius for q in inst])
    pairs = cKDTree(x).query_pairs(2.0 * float(r.max()), output_type="ndarray")
    out = []
    for a, b in sorted(map(tuple, pairs)):
        d = float(np.linalg.norm(x[b] - x[a]))
        if d < r[a] + r[b]:
            out.append((int(a), int(b), d))
    return out


@dataclass
class _Plan:
    """Particle instances (with periodic images), radical planes and contacts."""

    inst: list[_Instance]
    live: list[int]  # instances not contained in another one
    planes: dict[int, list[tuple[np.ndarray, np.ndarray]]]  # k -> [(point, normal away from k)]
    contacts: list[tuple[int, int, np.ndarray, np.ndarray, float]]  # (a, b, centre, u_ab, radius)
    hints: list[str]


def _plan(particles: Particles, quiet: bool = False) -> _Plan:
    inst = _instances(particles)
    hints = _tangency_hints(particles, inst)
    pairs = _overlapping_pairs(inst)
    # an instance inside another one does not change the union: drop it
    contained = set()
    for a, b, d in pairs:
        ra, rb = inst[a].radius, inst[b].radius
        if d + min(ra, rb) <= max(ra, rb):
            small, big = (a, b) if ra <= rb else (b, a)
            if small not in contained:
                contained.add(small)
                if quiet:
                    continue
                log.warning(
                    "geometry: particle %d lies inside particle %d; ignored",
                    inst[small].particle,
                    inst[big].particle,
                )
    planes: dict[int, list] = {k: [] for k in range(len(inst))}
    contacts = []
    for a, b, d in pairs:
        if a in contained or b in contained:
            continue
        ca, cb = inst[a].center, inst[b].center
        ra, rb = inst[a].radius, inst[b].radius
        u = (cb - ca) / d
        x = (d * d + ra * ra - rb * rb) / (2 * d)
        p = ca + u * x  # the same point and plane for both sides
        planes[a].append((p, u))
        planes[b].append((p, -u))
        contacts.append((a, b, p, u, math.sqrt(max(ra * ra - x * x, 0.0))))
    live = [k for k in range(len(inst)) if k not in contained]
    return _Plan(inst, live, planes, contacts, hints)


def _tangency_hints(particles: Particles, inst: list[_Instance]) -> list[str]:
    """Near-tangent contacts/gaps and near-tangent wall crossings (they make slivers)."""
    hints = []
    if len(inst) >= 2:
        from scipy.spatial import cKDTree

        x = np.array([q.center for q in inst])
        r = np.array([q.radius for q in inst])
        pairs = cKDTree(x).query_pairs(2.0 * float(r.max()) * (1 + TANGENT_TOL))
        for a, b in sorted(pairs):
            d = float(np.linalg.norm(x[b] - x[a]))
            gap = d - r[a] - r[b]
            if abs(gap) < TANGENT_TOL * min(r[a], r[b]):
                i, j = inst[a].particle, inst[b].particle
                kind = "overlap" if gap < 0 else "gap"
                hints.append(
                    f"near-tangent contact between particles {i} and {j} ({kind} {abs(gap):.3g} µm)"
                )
    box = particles.box
    names = (
        [("left", "right"), ("bottom", "top")]
        if box.dim == 2
        else [("left", "right"), ("front", "back"), ("bottom", "top")]
    )
    for i in range(len(particles)):
        c, r = particles.centers[i], float(particles.radii[i])
        for k in range(box.dim):
            for dist, name in ((c[k], names[k][0]), (box.size[k] - c[k], names[k][1])):
                if abs(dist - r) < TANGENT_TOL * r:
                    hints.append(f"particle {i} nearly touches the {name} box face")
    return list(dict.fromkeys(hints))  # periodic images repeat pairs


def _hint_text(hints: list[str]) -> str:
    if not hints:
        return ""
    more = f" (and {len(hints) - 3} more)" if len(hints) > 3 else ""
    return "; likely cause: " + "; ".join(hints[:3]) + more


# --------------------------------------------------------------------------------------------
# OCC construction
# --------------------------------------------------------------------------------------------
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
        pos = 0
        for k in members:
            n = len(solids[k])
            solids[k] = [e for m in out_map[pos : pos + n] for e in m if e[0] == dim]
            pos += n


def _build_pieces(dim: int, plan: _Plan, t_shell: np.ndarray, size: tuple[float, ...]):
    """Truncated balls (and cores) of all live instances, in the current model.

    Returns ``[(dimtag, instance, "outer" | "core")]``.

    OCC booleans get slower with the number of shapes in the model (about +1 ms per 100
    shapes per call) and with the number of arguments of one call, so the cuts are done in
    small scratch models, on batches of instances that cannot touch each other (greedy
    colouring), and each batch is brought back through a BREP file. 1000 particles: 27 s
    instead of 310 s.
    """
    occ = gmsh.model.occ
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

    pieces = []
    # balls without any cut need no boolean
    cut = [k for k in plan.live if planes[k] or core_planes.get(k)]
    for k in sorted(set(plan.live) - set(cut)):
        pieces.append((_ball(dim, inst[k].center, inst[k].radius, rotation[k]), k, "outer"))
        if k in core_radius:
            pieces.append((_ball(dim, inst[k].center, core_radius[k], rotation[k]), k, "core"))
    # a tool reaches at most sqrt((r + 0.1 r)^2 + (1.1 r)^2) < 1.6 r from the centre
    groups = _colour_groups(inst, cut, {k: 1.6 * inst[k].radius for k in cut})
    batches = [g[i : i + CUT_BATCH] for g in groups for i in range(0, len(g), CUT_BATCH)]
    main = gmsh.model.getCurrent()
    with tempfile.TemporaryDirectory(prefix="electrofem-") as tmp:
        for b, batch in enumerate(batches):
            gmsh.model.add(f"{main}-scratch-{b}")
            try:
                outer = {
                    k: [_ball(dim, inst[k].center, inst[k].radius, rotation[k])] for k in batch
                }
                core = {
                    k: [_ball(dim, inst[k].center, core_radius[k], rotation[k])]
                    for k in batch
                    if k in core_radius
                }
                _round_cuts(dim, inst, outer, {k: planes[k] for k in batch if planes[k]}, {})
                shrink = {k: inst[k].radius - core_radius[k] for k in core}
                _round_cuts(
                    dim, inst, core, {k: core_planes[k] for k in core if core_planes[k]}, shrink
                )
                made = sorted(
                    [(e, k, "outer") for k in batch for e in outer[k]]
                    + [(e, k, "core") for k in core for e in core[k]]
                )
                masses = [occ.getMass(*e) for e, _, _ in made]
                path = os.path.join(tmp, f"batch{b}.brep")
                if made:
                    occ.synchronize()
                    gmsh.write(path)
            finally:
                gmsh.model.remove()
                gmsh.model.setCurrent(main)
            if not made:
                continue
            imported = [e for e in occ.importShapes(path, highestDimOnly=True) if e[0] == dim]
            if len(imported) != len(made) or any(
                abs(occ.getMass(*e) - m) > 1e-9 * max(m, 1e-300)
                for e, m in zip(imported, masses, strict=False)
            ):
                raise RuntimeError("geometry: BREP round trip of truncated particles lost shapes")
            pieces.extend((e, k, kind) for e, (_, k, kind) in zip(imported, made, strict=True))
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
    """Rotation (axis, angle) that keeps the seam (and poles) of an OCC sphere or disk away
    from the caps cut off it: a seam running close to a contact neck or a box face makes
    sliver elements. ``None`` when nothing is cut."""
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
    # angular distance from each cap centre to the seam, the half great circle pole-e1-pole
    in_plane = np.arccos(np.sqrt(np.clip(a1 * a1 + a3 * a3, 0.0, 1.0)))
    to_pole = np.arccos(np.clip(np.abs(a3), 0.0, 1.0))
    dist = np.where(a1 >= 0, in_plane, to_pole)
    return rotations[int(np.argmax(np.min(dist - theta[:, None], axis=0)))]


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


def _effective_shell(particles: Particles) -> np.ndarray:
    """Shell thickness, zero where the shell phase equals the core phase."""
    t = np.asarray(particles.shell_thickness, float).copy()
    t[particles.shell_phase == particles.phase] = 0.0
    return t


def _box_faces(dim: int) -> list[tuple[int, int]]:
    """(low, high) boundary tags per axis."""
    if dim == 2:
        return [(tags.LEFT, tags.RIGHT), (tags.BOTTOM, tags.TOP)]
    return [(tags.LEFT, tags.RIGHT), (tags.FRONT, tags.BACK), (tags.BOTTOM, tags.TOP)]


def _face_location(dim: int, ent: int, size: tuple[float, ...]) -> int | None:
    """Box-face tag of a dim-1 entity lying on a face of the box, else None."""
    bb = gmsh.model.getBoundingBox(dim - 1, ent)
    tol = max(1e-6 * max(size), 1e-6)  # OCC bounding boxes are padded by 1e-7
    for k, (lo_tag, hi_tag) in enumerate(_box_faces(dim)):
        lo, hi = bb[k], bb[3 + k]
        if hi - lo < 3 * tol:
            if abs(lo) < tol or abs(hi) < tol:
                return lo_tag
            if abs(hi - size[k]) < tol or abs(lo - size[k]) < tol:
                return hi_tag
    return None


def build_geometry(
    particles: Particles, model_name: str = "electrofem", *, verbose: bool | None = None
) -> GeometryReport:
    """Build the conformal OCC geometry of ``particles`` in their box, with physical groups.

    Adds a new gmsh model ``model_name`` (replacing one of that name) and makes it current.
    ``verbose`` sets gmsh's terminal output (None: leave it as it is). Sets
    ``General.NumThreads = 1`` (determinism).

    The parts of periodic images outside the box are removed from the gmsh model but stay in
    its OCC kernel (removing them there costs O(n^2)): do not call
    ``gmsh.model.occ.synchronize()`` on the model afterwards.

    Raises RuntimeError when the OCC booleans fail or give an inconsistent result.
    """
    if not gmsh.isInitialized():
        raise RuntimeError("geometry: gmsh is not initialised; call gmsh.initialize() first")
    if verbose is not None:
        gmsh.option.setNumber("General.Terminal", 1 if verbose else 0)
    t0 = time.perf_counter()
    box = particles.box
    dim = box.dim
    size = tuple(float(s) for s in box.size)

    if model_name in gmsh.model.list():
        gmsh.model.setCurrent(model_name)
        gmsh.model.remove()
    gmsh.model.add(model_name)
    gmsh.option.setNumber("General.NumThreads", 1)
    occ = gmsh.model.occ

    plan = _plan(particles)
    inst, contacts, live = plan.inst, plan.contacts, plan.live
    hints = plan.hints
    for h in hints:
        log.warning("geometry: %s (expect sliver elements)", h)
    t_shell = _effective_shell(particles)

    # --- truncated balls (outer, core) ------------------------------------------------------
    try:
        box_tag = (
            occ.addRectangle(0, 0, 0, size[0], size[1])
            if dim == 2
            else occ.addBox(0, 0, 0, size[0], size[1], size[2])
        )
        made = _build_pieces(dim, plan, t_shell, size)
    except Exception as err:
        raise RuntimeError(
            f"geometry: OCC radical-plane cut failed: {err}{_hint_text(hints)}"
        ) from err
    made.sort(key=lambda m: (m[1], m[2] != "outer", m[0]))
    pieces = [e for e, _, _ in made]
    piece_info = [(k, kind) for _, k, kind in made]
    with_outer = {k for _, k, kind in made if kind == "outer"}
    for k in live:
        if k not in with_outer:
            # e.g. an image whose part inside the box belongs to a neighbour
            log.debug("geometry: particle %d: instance %d has nothing left", inst[k].particle, k)

    t_cut = time.perf_counter()
    log.debug("geometry: %d radical cuts in %.2f s", len(contacts), t_cut - t0)

    # --- fragment and classification --------------------------------------------------------
    try:
        if pieces:
            _, out_map = occ.fragment([(dim, box_tag)], pieces)
        else:
            out_map = [[(dim, box_tag)]]
    except Exception as err:
        raise RuntimeError(f"geometry: OCC fragment failed: {err}{_hint_text(hints)}") from err

    log.debug("geometry: fragment in %.2f s", time.perf_counter() - t_cut)
    inside = sorted({t for d, t in out_map[0] if d == dim})
    owner: dict[int, tuple[int, str]] = {}
    for (k, kind), outs in zip(piece_info, out_map[1:], strict=True):
        for d, t in outs:
            if d != dim:
                continue
            if t in owner and owner[t][0] != k:
                raise RuntimeError(
                    f"geometry: fragment gave a volume shared by particles "
                    f"{inst[owner[t][0]].particle} and {inst[k].particle}{_hint_text(hints)}"
                )
            if kind == "core" or t not in owner:
                owner[t] = (k, kind)
    all_out = {t for outs in out_map for d, t in outs if d == dim}
    outside = sorted(all_out - set(inside))
    occ.synchronize()
    if outside:
        # removing them from the gmsh model, not from the OCC kernel: occ.remove is O(n^2)
        # here (46 s against 6 s for 1000 particles). Do not synchronise the model again.
        gmsh.model.removeEntities([(dim, t) for t in outside], recursive=True)

    vol_phase: dict[int, int] = {}
    vol_inst: dict[int, int] = {}
    for v in inside:
        if v in owner:
            k, kind = owner[v]
            i = inst[k].particle
            shelled = t_shell[i] > 0
            if kind == "core" or not shelled:
                vol_phase[v] = int(particles.phase[i])
            else:
                vol_phase[v] = int(particles.shell_phase[i])
            vol_inst[v] = k
        else:
            vol_phase[v] = tags.ELECTROLYTE
            vol_inst[v] = -1

    log.debug("geometry: outside parts removed in %.2f s", time.perf_counter() - t_cut)
    # --- facets ------------------------------------------------------------------------------
    facet_groups: dict[int, list[int]] = {}
    orphans = []
    for _, s in gmsh.model.getEntities(dim - 1):
        up, _ = gmsh.model.getAdjacencies(dim - 1, s)
        vols = sorted(int(v) for v in up if int(v) in vol_phase)
        if len(vols) == 0:
            orphans.append(s)
            continue
        if len(vols) == 1:
            loc = _face_location(dim, s, size)
            if loc is None:
                bb = np.round(gmsh.model.getBoundingBox(dim - 1, s), 4).tolist()
                raise RuntimeError(
                    f"geometry: facet {s} (bounding box {bb}) bounds only volume {vols[0]} but "
                    f"is not on the box boundary: the OCC fragment is not conformal"
                    f"{_hint_text(hints)}"
                )
            facet_groups.setdefault(loc, []).append(s)
            continue
        if len(vols) > 2:
            raise RuntimeError(
                f"geometry: facet {s} is shared by {len(vols)} volumes (non-manifold)"
                f"{_hint_text(hints)}"
            )
        va, vb = vols
        pa, pb = vol_phase[va], vol_phase[vb]
        ia, ib = vol_inst[va], vol_inst[vb]
        if pa == pb and ia == ib:
            log.warning("geometry: facet %d lies inside one particle; left untagged", s)
            continue
        facet_groups.setdefault(tags.interface_tag(pa, pb), []).append(s)
    if orphans:
        gmsh.model.removeEntities([(dim - 1, s) for s in orphans], recursive=True)

    log.debug("geometry: facets classified in %.2f s", time.perf_counter() - t_cut)
    # --- physical groups ---------------------------------------------------------------------
    by_phase: dict[int, list[int]] = {}
    for v in sorted(vol_phase):
        by_phase.setdefault(vol_phase[v], []).append(v)
    report = GeometryReport(n_volumes=len(vol_phase))
    for p in sorted(by_phase):
        gmsh.model.addPhysicalGroup(dim, by_phase[p], tag=p, name=tags.phase_name(p))
        report.phase_volumes[p] = float(sum(occ.getMass(dim, v) for v in by_phase[p]))
    names = {v: k for k, v in tags.BOUNDARIES.items()}
    for ftag in sorted(facet_groups):
        ents = sorted(facet_groups[ftag])
        name = names[ftag] if ftag in names else tags.interface_name(ftag)
        gmsh.model.addPhysicalGroup(dim - 1, ents, tag=ftag, name=name)
        area = float(sum(occ.getMass(dim - 1, s) for s in ents))
        (report.boundary_areas if ftag in names else report.interface_areas)[ftag] = area

    total = sum(report.phase_volumes.values())
    if abs(total - box.volume) > 1e-4 * box.volume:
        raise RuntimeError(
            f"geometry: phase volumes add up to {total:.9g}, not the box volume "
            f"{box.volume:.9g}: the OCC fragment lost or duplicated material{_hint_text(hints)}"
        )

    # --- bookkeeping for mesh_geometry ------------------------------------------------------
    info = {
        "dim": dim,
        "particles": _fingerprint(particles),
        "hints": hints,
        "seconds_geometry": time.perf_counter() - t0,
    }
    gmsh.model.setAttribute(ATTRIBUTE, [json.dumps(info)])
    log.info(
        "geometry: %d volumes, %d particle instances, %d contacts in %.2f s",
        report.n_volumes,
        len(live),
        len(contacts),
        info["seconds_geometry"],
    )
    return report


# --------------------------------------------------------------------------------------------
# Meshing
# --------------------------------------------------------------------------------------------
def _load_info() -> dict:
    if ATTRIBUTE not in gmsh.model.getAttributeNames():
        raise RuntimeError(
            "mesh: the current gmsh model was not made by build_geometry (no "
            f"{ATTRIBUTE!r} attribute)"
        )
    return json.loads(gmsh.model.getAttribute(ATTRIBUTE)[0])


def _fingerprint(particles: Particles) -> str:
    """Hash of everything in ``particles`` that shapes the geometry."""
    import hashlib

    h = hashlib.sha1()
    h.update(np.asarray(particles.box.size, float).tobytes())
    h.update(bytes([int(particles.box.periodic)]))
    for arr in (particles.centers, particles.radii, particles.shell_thickness):
        h.update(np.ascontiguousarray(arr, float).tobytes())
    for arr in (particles.phase, particles.shell_phase):
        h.update(np.ascontiguousarray(arr, np.int64).tobytes())
    return h.hexdigest()


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


def _write_structured(path: str, spacing: np.ndarray, grid: np.ndarray) -> None:
    """gmsh 'Structured' field file (binary): origin, spacing, counts, values (x slowest)."""
    import struct

    if grid.ndim == 2:
        grid = grid[:, :, None]
        spacing = np.array([spacing[0], spacing[1], 1.0])
    with open(path, "wb") as fh:
        fh.write(struct.pack("=3d3d3i", 0.0, 0.0, 0.0, *map(float, spacing), *grid.shape))
        fh.write(np.ascontiguousarray(grid, dtype="=f8").tobytes())


def _set_mesh_options(options: MeshOptions, dim: int) -> None:
    opt = gmsh.option.setNumber
    opt("General.Terminal", 1 if options.verbose else 0)
    opt("General.NumThreads", 1)
    opt("Mesh.MaxNumThreads1D", 1)
    opt("Mesh.MaxNumThreads2D", 1)
    opt("Mesh.MaxNumThreads3D", 1)
    opt("Mesh.RandomSeed", RANDOM_SEED)
    opt("Mesh.Algorithm", 6)  # Frontal-Delaunay (2D, and the 3D surface mesh)
    opt("Mesh.Algorithm3D", 1)  # Delaunay: deterministic (HXT is not)
    opt("Mesh.Optimize", 1 if dim == 3 else 0)  # gmsh's cheap sliver removal
    opt("Mesh.OptimizeNetgen", 1 if (options.optimize and dim == 3) else 0)
    opt("Mesh.ElementOrder", 1)
    opt("Mesh.LcIntegrationPrecision", 1e-3)
    opt("Mesh.MeshSizeMax", float(options.size))
    opt("Mesh.MeshSizeMin", float(options.size_min))
    opt("Mesh.MeshSizeFromPoints", 0)
    opt("Mesh.MeshSizeFromCurvature", 0)
    opt("Mesh.MeshSizeExtendFromBoundary", 0)


def mesh_geometry(options: MeshOptions, particles: Particles) -> MeshStats:
    """Set the size field and generate the mesh of the current model (from build_geometry).

    Element size: ``min(size, radius_factor * r)`` (and at most the shell thickness for
    core-shell particles) on each particle's surfaces, ``max(size_min, neck_factor * a)`` on
    contact necks and on the circles where box faces cut particles, growing linearly with the
    distance (gradient :data:`GROWTH`) to ``size``. The size is sampled on a regular grid and
    handed to gmsh as a 'Structured' background field. Any previous mesh and size fields of
    the model are discarded.

    Raises RuntimeError when gmsh fails or the model is not the particles' geometry.
    """
    options.validate()
    if not gmsh.isInitialized():
        raise RuntimeError("mesh: gmsh is not initialised; call gmsh.initialize() first")
    info = _load_info()
    dim = info["dim"]
    if info["particles"] != _fingerprint(particles):
        raise RuntimeError(
            "mesh: the particles are not the ones the current geometry was built from"
        )
    _set_mesh_options(options, dim)
    gmsh.model.mesh.clear()
    field = gmsh.model.mesh.field
    for fid in field.list():
        field.remove(fid)
    t0 = time.perf_counter()
    grid = _size_grid(options, particles, _plan(particles, quiet=True))
    path = None
    try:
        if grid is not None:
            fd, path = tempfile.mkstemp(prefix="electrofem-size-", suffix=".bin")
            os.close(fd)
            _write_structured(path, *grid)
            fid = field.add("Structured")
            field.setString(fid, "FileName", path)
            field.setNumber(fid, "TextFormat", 0)
            field.setAsBackgroundMesh(fid)
            log.debug(
                "mesh: size grid %s in %.2f s",
                "x".join(map(str, grid[1].shape)),
                time.perf_counter() - t0,
            )
        gmsh.model.mesh.generate(dim)
    except Exception as err:
        raise RuntimeError(
            f"mesh: gmsh failed to generate the {dim}D mesh: {err}{_hint_text(info['hints'])}"
        ) from err
    finally:
        for fid in field.list():
            field.remove(fid)
        if path is not None:
            os.remove(path)
    seconds = time.perf_counter() - t0

    _, etags, _ = gmsh.model.mesh.getElements(dim)
    cell_tags = np.concatenate(etags) if len(etags) else np.zeros(0, np.uint64)
    if cell_tags.size == 0:
        raise RuntimeError(f"mesh: gmsh produced no {dim}D elements{_hint_text(info['hints'])}")
    quality = np.asarray(gmsh.model.mesh.getElementQualities(cell_tags, "minSICN"))
    node_tags, _, _ = gmsh.model.mesh.getNodes()
    stats = MeshStats(
        n_nodes=int(len(node_tags)),
        n_cells=int(cell_tags.size),
        min_quality=float(quality.min()),
        mean_quality=float(quality.mean()),
        seconds_geometry=float(info.get("seconds_geometry", 0.0)),
        seconds_mesh=seconds,
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


def build_and_mesh(
    particles: Particles, options: MeshOptions, model_name: str = "electrofem"
) -> tuple[GeometryReport, MeshStats]:
    """:func:`build_geometry` then :func:`mesh_geometry`."""
    options.validate()
    report = build_geometry(particles, model_name, verbose=options.verbose)
    return report, mesh_geometry(options, particles)
