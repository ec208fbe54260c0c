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
5. ``occ.fragment`` of the box with all pieces; pieces outside the box are removed;
6. physical groups: one per phase (tag = phase id), one per box face (``tags.BOTTOM`` ...) and
   one per interface type (``tags.interface_tag(a, b)``; ``interface_tag(p, p)`` for contacts
   between two particles of phase ``p``). Every dim-1 entity is in exactly one group.

Bookkeeping needed by :func:`mesh_geometry` (which volume belongs to which particle, contact
radii) is stored as a JSON string in the gmsh model attribute ``electrofem.geometry``.
"""

from __future__ import annotations

import json
import logging
import math
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
#: Element-size ratio between consecutive size-field bins.
BIN_RATIO = 1.15
#: Fixed seed of gmsh's random perturbations (determinism).
RANDOM_SEED = 1
import os
_STRATEGY = os.environ.get("EF_STRAT", "constant")


# --------------------------------------------------------------------------------------------
# Public data classes
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class MeshOptions:
    """Element sizes and meshing switches (lengths in µm).

    Attributes:
        size: global maximum element size (electrolyte far from particles).
        radius_factor: element size at a particle surface = ``min(size, radius_factor * r)``.
        neck_factor: element size at a contact neck = ``max(size_min, neck_factor * a)``.
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
            if not (isinstance(v, int | float) and math.isfinite(v) and v > 0):
                raise ValueError(f"mesh.{name}: must be > 0, got {v!r}")
        if self.size_min > self.size:
            raise ValueError(
                f"mesh.size_min: must be <= mesh.size ({self.size}), got {self.size_min}"
            )
        q = self.quality_warn
        if not (isinstance(q, int | float) and 0 <= q <= 1):
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
    return hints


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


def _batched_cuts(dim, inst, solids: dict, planes: dict, shrink: dict | None = None) -> None:
    """Cut ``solids[k]`` (in place) by the half-spaces beyond ``planes[k]``, in batches."""
    occ = gmsh.model.occ
    shrink = shrink or {}
    # a tool reaches at most sqrt((r + 0.1 r)^2 + (1.1 r)^2) < 1.6 r from the centre
    reach = {k: 1.6 * (inst[k].radius - shrink.get(k, 0.0)) for k in planes}
    for group in _colour_groups(inst, sorted(planes), reach):
        # round t cuts every instance of the group by its t-th tool (tools never intersect
        # each other within one call, which is what makes multi-tool cuts slow)
        for t in range(max(len(planes[k]) for k in group)):
            members = [k for k in group if t < len(planes[k]) and solids[k]]
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

def _fibonacci_sphere(n: int) -> np.ndarray:
    k = np.arange(n) + 0.5
    z = 1 - 2 * k / n
    phi = math.pi * (3 - math.sqrt(5)) * k
    rho = np.sqrt(1 - z * z)
    return np.stack([rho * np.cos(phi), rho * np.sin(phi), z], axis=1)


_SEAM_AXES = _fibonacci_sphere(64)
_SEAM_ANGLES = np.linspace(0.0, 2 * math.pi, 12, endpoint=False)


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
    best, best_frame = -np.inf, None
    for e3 in _SEAM_AXES:
        a = np.array([1.0, 0.0, 0.0]) if abs(e3[0]) < 0.9 else np.array([0.0, 1.0, 0.0])
        b1 = np.cross(e3, a)
        b1 /= np.linalg.norm(b1)
        b2 = np.cross(e3, b1)
        a3 = normals @ e3
        n1, n2 = normals @ b1, normals @ b2
        for ang in _SEAM_ANGLES:
            a1 = math.cos(ang) * n1 + math.sin(ang) * n2
            # angular distance from each cap centre to the half great circle (pole-e1-pole)
            in_plane = np.sqrt(np.clip(a1 * a1 + a3 * a3, 0.0, 1.0))
            dist = np.where(a1 >= 0, np.arccos(in_plane), np.arccos(np.clip(np.abs(a3), 0, 1)))
            score = float(np.min(dist - theta))
            if score > best + 1e-12:
                e1 = math.cos(ang) * b1 + math.sin(ang) * b2
                best, best_frame = score, (e1, np.cross(e3, e1), e3)
    from scipy.spatial.transform import Rotation

    rotvec = Rotation.from_matrix(np.column_stack(best_frame)).as_rotvec()
    angle = float(np.linalg.norm(rotvec))
    if angle < 1e-12:
        return None
    return tuple(float(x) for x in rotvec / angle), angle


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
    tol = 1e-6 * max(size)
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
    ``verbose`` sets gmsh's terminal output (None: leave it as it is).

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

    inst = _instances(particles)
    hints = _tangency_hints(particles, inst)
    for h in hints:
        log.warning("geometry: %s (expect sliver elements)", h)
    t_shell = _effective_shell(particles)

    # --- drop instances contained in another one (they do not change the union) --------------
    pairs = _overlapping_pairs(inst)
    contained = set()
    for a, b, d in pairs:
        ra, rb = inst[a].radius, inst[b].radius
        if d + min(ra, rb) <= max(ra, rb):
            small = a if ra <= rb else b
            contained.add(small)
            log.warning(
                "geometry: particle %d lies inside particle %d; ignored",
                inst[small].particle,
                inst[b if small == a else a].particle,
            )
    pairs = [(a, b, d) for a, b, d in pairs if a not in contained and b not in contained]

    # --- radical planes -------------------------------------------------------------------
    # planes[a] = list of (point on plane, unit normal pointing away from a)
    planes: dict[int, list[tuple[np.ndarray, np.ndarray]]] = {k: [] for k in range(len(inst))}
    contacts = []  # (instance a, instance b, contact radius)
    for a, b, d in pairs:
        ca, cb = inst[a].center, inst[b].center
        ra, rb = inst[a].radius, inst[b].radius
        u = (cb - ca) / d
        x = (d * d + ra * ra - rb * rb) / (2 * d)
        p = ca + u * x
        planes[a].append((p, u))
        planes[b].append((p, -u))
        contacts.append((a, b, math.sqrt(max(ra * ra - x * x, 0.0))))

    # --- truncated balls (outer, core) ------------------------------------------------------
    # Booleans have a large fixed cost, so the cuts are batched: instances whose balls and
    # cut tools cannot touch each other share one occ.cut call (greedy colouring).
    live = [k for k in range(len(inst)) if k not in contained]
    outer: dict[int, list[tuple[int, int]]] = {}
    core: dict[int, list[tuple[int, int]]] = {}
    try:
        box_tag = (
            occ.addRectangle(0, 0, 0, size[0], size[1])
            if dim == 2
            else occ.addBox(0, 0, 0, size[0], size[1], size[2])
        )
        rotation = {
            k: _seam_rotation(inst[k].center, inst[k].radius, planes[k], size) for k in live
        }
        for k in live:
            outer[k] = [_ball(dim, inst[k].center, inst[k].radius, rotation[k])]
        _batched_cuts(dim, inst, outer, {k: planes[k] for k in live if planes[k]})
        core_planes = {}
        for k in live:
            q = inst[k]
            t = float(t_shell[q.particle])
            if t <= 0:
                continue
            rc = q.radius - t
            dists = [float(np.dot(p - q.center, u)) for p, u in planes[k]]
            if any(x <= -rc for x in dists):
                continue  # the core lies entirely beyond one radical plane
            core[k] = [_ball(dim, q.center, rc, rotation[k])]
            cutting = [pu for pu, x in zip(planes[k], dists, strict=True) if x < rc]
            if cutting:
                core_planes[k] = cutting
        _batched_cuts(
            dim, inst, core, core_planes, shrink={k: t_shell[inst[k].particle] for k in core}
        )
    except Exception as err:
        raise RuntimeError(
            f"geometry: OCC radical-plane cut failed: {err}{_hint_text(hints)}"
        ) from err
    pieces: list[tuple[int, int]] = []
    piece_info: list[tuple[int, str]] = []  # (instance, "outer" | "core")
    for k in live:
        if not outer[k]:
            log.warning("geometry: particle %d vanished after radical cuts", inst[k].particle)
        for e in outer[k]:
            pieces.append(e)
            piece_info.append((k, "outer"))
        for e in core.get(k, []):
            pieces.append(e)
            piece_info.append((k, "core"))

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
    if outside:
        occ.remove([(dim, t) for t in outside], recursive=True)
    occ.synchronize()

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

    # --- facets ------------------------------------------------------------------------------
    facet_groups: dict[int, list[int]] = {}
    neck_entities: list[tuple[int, int, int]] = []  # (facet, inst a, inst b)
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
        if ia >= 0 and ib >= 0 and ia != ib:
            neck_entities.append((s, ia, ib))
    if orphans:
        occ.remove([(dim - 1, s) for s in orphans], recursive=True)
        occ.synchronize()

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
    if abs(total - box.volume) > 1e-6 * box.volume:
        raise RuntimeError(
            f"geometry: phase volumes add up to {total:.9g}, not the box volume "
            f"{box.volume:.9g}: the OCC fragment lost or duplicated material{_hint_text(hints)}"
        )

    # --- bookkeeping for mesh_geometry ------------------------------------------------------
    contact_radius = {(a, b): ra for a, b, ra in contacts}
    necks = []
    for s, ia, ib in neck_entities:
        key = (min(ia, ib), max(ia, ib))
        a = contact_radius.get(key)
        if a is None:  # should not happen; estimate from the facet measure
            m = occ.getMass(dim - 1, s)
            a = math.sqrt(m / math.pi) if dim == 3 else 0.5 * m
        necks.append([int(s), float(a), inst[ia].particle, inst[ib].particle])
    info = {
        "dim": dim,
        "n_particles": len(particles),
        "volumes": {str(v): inst[k].particle if k >= 0 else -1 for v, k in vol_inst.items()},
        "necks": necks,
        "hints": hints,
        "seconds_geometry": time.perf_counter() - t0,
    }
    gmsh.model.setAttribute(ATTRIBUTE, [json.dumps(info)])
    log.info(
        "geometry: %d volumes, %d particle instances, %d contacts in %.2f s",
        report.n_volumes,
        len(inst) - len(contained),
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


def _bin_key(h: float) -> int:
    return int(math.floor(math.log(h) / math.log(BIN_RATIO) + 1e-9))


def _add_threshold(dim_ent: int, ents: list[int], h: float, dist_max: float, size: float, samp):
    """Distance + Threshold fields: size h on the entities, growing to ``size`` at dist_max."""
    f = gmsh.model.mesh.field
    dist = f.add("Distance")
    key = {0: "PointsList", 1: "CurvesList", 2: "SurfacesList"}[dim_ent]
    f.setNumbers(dist, key, sorted(ents))
    if dim_ent > 0:
        f.setNumber(dist, "Sampling", int(samp))
    thr = f.add("Threshold")
    f.setNumber(thr, "InField", dist)
    f.setNumber(thr, "SizeMin", h)
    f.setNumber(thr, "SizeMax", size)
    f.setNumber(thr, "DistMin", 0.0)
    f.setNumber(thr, "DistMax", dist_max)
    return thr


def _add_constant(dim_ent: int, ents: list[int], h: float):
    """Constant field: size h on the entities and their boundaries, no constraint elsewhere."""
    f = gmsh.model.mesh.field
    fid = f.add("Constant")
    key = {1: "CurvesList", 2: "SurfacesList"}[dim_ent]
    f.setNumbers(fid, key, sorted(ents))
    f.setNumber(fid, "IncludeBoundary", 1)
    f.setNumber(fid, "VIn", h)
    f.setNumber(fid, "VOut", 1e22)
    return fid


def _binned(items, size: float) -> list[dict]:
    """Group ``(entities, h, length)`` items into bins of similar h (h < size only).

    A bin keeps the smallest h and the smallest length (radius) of its members.
    """
    bins: dict[int, dict] = {}
    for ents, h, length in items:
        if h >= size * (1 - 1e-12) or not ents:
            continue
        b = bins.setdefault(_bin_key(h), {"ents": set(), "h": h, "len": length})
        b["ents"] |= set(ents)
        b["h"] = min(b["h"], h)
        b["len"] = min(b["len"], length)
    return [bins[k] for k in sorted(bins)]


def _setup_size_fields(options: MeshOptions, particles: Particles, info: dict) -> int:
    """Create the background size field; returns the number of fields combined.

    2D: Distance + Threshold fields from the particle boundaries (and neck points): the size
    grows linearly from the surface value to ``size`` (gradient :data:`GROWTH`, at least over
    one radius). 3D: Distance fields to OCC surfaces are far too slow (an exact projection per
    evaluation), so particle surfaces get a Constant field and the volume size is interpolated
    from the surface mesh (``Mesh.MeshSizeExtendFromBoundary``); necks get Distance +
    Threshold fields to their curves.
    """
    f = gmsh.model.mesh.field
    for fid in f.list():
        f.remove(fid)
    dim = info["dim"]
    size, smin = float(options.size), float(options.size_min)
    radii = np.asarray(particles.radii, float)
    t_shell = _effective_shell(particles)

    # element size at each particle's surface
    h_part = np.minimum(size, options.radius_factor * radii)
    h_part = np.where(t_shell > 0, np.minimum(h_part, t_shell), h_part)
    h_part = np.maximum(h_part, smin)

    # facets of each particle (all facets of its volumes, core|shell included)
    facets: dict[int, set[int]] = {}
    for v, i in info["volumes"].items():
        if i < 0:
            continue
        bnd = gmsh.model.getBoundary([(dim, int(v))], combined=False, oriented=False)
        facets.setdefault(i, set()).update(abs(t) for _, t in bnd)
    part_bins = _binned(
        ((sorted(e), float(h_part[i]), float(radii[i])) for i, e in sorted(facets.items())), size
    )

    # contact necks: boundary of contact facets (curves in 3D, points in 2D)
    neck_items = []
    for s, a, i, j in info["necks"]:
        h = max(smin, options.neck_factor * a)
        if h < min(h_part[i], h_part[j]) * (1 - 1e-12):
            _, down = gmsh.model.getAdjacencies(dim - 1, int(s))
            neck_items.append(([int(abs(e)) for e in down], h, a))
    neck_bins = _binned(neck_items, size)

    fields = []
    for b in part_bins:
        h, r = b["h"], b["len"]
        if dim == 3 and _STRATEGY == "constant":
            fields.append(_add_constant(2, sorted(b["ents"]), h))
        elif dim == 3:
            dist_max = max(r, (size - h) / GROWTH)
            fields.append(_add_threshold(2, sorted(b["ents"]), h, dist_max, size, 20))
        else:
            samp = min(max(math.ceil(4 * math.pi * r / h), 20), 200)
            dist_max = max(r, (size - h) / GROWTH)
            fields.append(_add_threshold(1, sorted(b["ents"]), h, dist_max, size, samp))
    for b in neck_bins:
        h, a = b["h"], b["len"]
        dist_max = max(a, (size - h) / GROWTH)
        samp = min(max(math.ceil(4 * math.pi * a / h), 20), 200)
        fields.append(_add_threshold(dim - 2, sorted(b["ents"]), h, dist_max, size, samp))

    if fields:
        fmin = f.add("Min")
        f.setNumbers(fmin, "FieldsList", fields)
        f.setAsBackgroundMesh(fmin)
    return len(fields)


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
    opt("Mesh.Optimize", 1 if (options.optimize and dim == 3) else 0)
    opt("Mesh.OptimizeNetgen", 1 if (options.optimize and dim == 3) else 0)
    opt("Mesh.ElementOrder", 1)
    opt("Mesh.LcIntegrationPrecision", 1e-3)
    opt("Mesh.MeshSizeMax", float(options.size))
    opt("Mesh.MeshSizeMin", float(options.size_min))
    opt("Mesh.MeshSizeFromPoints", 0)
    opt("Mesh.MeshSizeFromCurvature", 0)
    opt("Mesh.MeshSizeExtendFromBoundary", 1 if dim == 3 and _STRATEGY == "constant" else 0)


def mesh_geometry(options: MeshOptions, particles: Particles) -> MeshStats:
    """Set the size fields and generate the mesh of the current model (from build_geometry).

    Element size: ``min(size, radius_factor * r)`` (and at most the shell thickness for
    core-shell particles) on each particle's surfaces, ``max(size_min, neck_factor * a)`` on
    contact necks, growing to ``size`` with a gradient of :data:`GROWTH`. Any previous mesh
    and size fields of the model are discarded.

    Raises RuntimeError when gmsh fails.
    """
    options.validate()
    if not gmsh.isInitialized():
        raise RuntimeError("mesh: gmsh is not initialised; call gmsh.initialize() first")
    info = _load_info()
    dim = info["dim"]
    if dim != particles.dim or info["n_particles"] != len(particles):
        raise RuntimeError(
            f"mesh: the particles ({len(particles)} in {particles.dim}D) are not the ones the "
            f"geometry was built from ({info['n_particles']} in {dim}D)"
        )
    _set_mesh_options(options, dim)
    gmsh.model.mesh.clear()
    t0 = time.perf_counter()
    try:
        n_fields = _setup_size_fields(options, particles, info)
        log.debug("mesh: size fields set up in %.2f s", time.perf_counter() - t0)
        gmsh.model.mesh.generate(dim)
        log.debug("mesh: generated in %.2f s", time.perf_counter() - t0)
    except Exception as err:
        raise RuntimeError(
            f"mesh: gmsh failed to generate the {dim}D mesh: {err}{_hint_text(info['hints'])}"
        ) from err
    seconds = time.perf_counter() - t0

    etypes, etags, _ = gmsh.model.mesh.getElements(dim)
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
        "mesh: %d nodes, %d cells, quality min %.3f mean %.3f, %d size fields, %.2f s",
        stats.n_nodes,
        stats.n_cells,
        stats.min_quality,
        stats.mean_quality,
        n_fields,
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
