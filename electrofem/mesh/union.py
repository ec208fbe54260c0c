"""The surface of a sphere packing triangulated directly: the discrete route's first half.

Numpy and scipy only (no gmsh). :class:`UnionSurface` triangulates the boundary of the union
of the particles clipped by the box, and the six box faces split into their pore and solid
parts, as one watertight set of triangles; :mod:`.discrete` hands it to gmsh's volume mesher.

**Why it is simple.** A point of sphere ``s`` lies on the union's boundary exactly when it is
on ``s``'s side of the radical plane with every overlapping neighbour (the power diagram of
:mod:`.plan`) and inside the box. So the kept part of each sphere is the sphere cut by a
*convex* set of half-spaces ("cutters": radical planes and box planes), and every curve of the
surface is a circle where a sphere meets one cutter:

* **triple points** are where a sphere meets two cutters (the radical axis of three spheres,
  or a radical plane and a box plane, or two box planes). Each is computed once, from its
  sorted key of three cutters, so every patch that shares it gets the same point;
* **arcs**: each circle is split at its triple points; an arc is kept when its middle lies
  outside every other particle and inside the box. Arcs are divided at the local element size
  (the size field of :mod:`.sizing`, which gmsh uses for the volume) and shared by the two
  patches that meet on them (two spheres, or a sphere and a box face), point for point;
* **sphere patches**: the arc points and graded points of an icosahedral subdivision of the
  sphere (split where an edge is longer than 1.5 local sizes), less those too close to an arc,
  triangulated by their convex hull (the spherical Delaunay triangulation). A facet is kept
  when it faces away from the centre and its centroid, projected on the sphere, is in the
  cell. An arc chord missing from the hull is split at the arc's exact midpoint (in every
  patch that shares the arc) until none is missing;
* **box faces** (:mod:`.boxfaces`, mixed in): the same in the plane (scipy's Delaunay), each
  triangle solid when its centroid is inside a particle.

Overlapping particles meet on contact faces (:mod:`.contacts`, mixed in). Limits: no
core-shell particles, straight cells (the nodes lie on the
exact spheres, circles and planes, the facets between them are flat), 3D.
"""

from __future__ import annotations

import math
import time
from typing import TYPE_CHECKING

import numpy as np
from scipy.interpolate import RegularGridInterpolator
from scipy.spatial import ConvexHull, cKDTree

from .. import tags
from . import trisphere as ts
from .boxfaces import BoxFaces
from .contacts import ContactFaces
from .trisphere import TOL, cross

if TYPE_CHECKING:
    from .plan import _Plan

#: A patch point is split off an arc when its edge is longer than SPLIT local sizes.
SPLIT = 1.5
#: Interior points keep this many chord lengths away from the arc points (protection: no
#: point inside an arc chord's diametral ball, so the chord is a Delaunay edge).
GUARD = 0.75
#: ... and this many local sizes.
HALO = 0.5
#: A row point keeps this many chord lengths off every arc chord: at a corner, one as near to
#: a long chord's end as to a short one's passes the nearest point's guard (GUARD).
OFF_CHORD = 0.25
#: Rounds of chord splitting before the surface is declared not closed.
ROUNDS = 12
#: Triple points closer than this are one point, µm.
MERGE = 1e-6


class SurfaceError(RuntimeError):
    """The union's surface could not be closed (a chord stayed missing)."""


class UnionSurface(ContactFaces, BoxFaces):
    """The triangulated boundary of the particles' union in the box, and the box faces.

    Args:
        plan: the particles' instances and radical planes (:func:`.plan._plan`).
        box: the box size ``(Lx, Ly, H)``, µm.
        size_grid: ``(spacing, values)`` of the element size on a regular grid over the box
            (:func:`.sizing._size_grid`), or None for a uniform ``size``.
        size: the largest element size, µm.
        size_factor: factor on every size (gmsh's ``Mesh.MeshSizeFactor``).

    After :meth:`build`: ``points`` (n, 3) and ``pieces``, a list of ``(kind, owner,
    triangles)`` with kind ``"sphere"`` (owner: the live instance's index; triangles oriented
    out of the solid), ``"pore"`` or ``"solid"`` (owner: the box face ``2 * axis + side``;
    oriented out of the box). ``seconds`` splits the time.
    """

    def __init__(
        self,
        plan: _Plan,
        box,
        size_grid,
        size: float,
        size_factor: float = 1.0,
        neck_factor: float = 0.5,
        phase: np.ndarray | None = None,
        same_phase_contacts: bool = False,
    ):
        t0 = time.perf_counter()
        self.L = np.asarray(box, float)
        live = plan.live
        index = {k: n for n, k in enumerate(live)}
        self.c = np.array([plan.inst[k].center for k in live]).reshape(-1, 3)
        self.r = np.array([plan.inst[k].radius for k in live])
        self.n = len(live)
        #: solid phase id of each live instance
        self.phase = np.full(self.n, tags.ACTIVE) if phase is None else np.asarray(phase, int)
        #: contact faces between particles of one phase too (``interface_tag(p, p)``)
        self.same_phase_contacts = same_phase_contacts
        self.tree = cKDTree(self.c)
        self.rmax = float(self.r.max()) if self.n else 0.0
        #: cutters of each sphere: cutter id -> (point, normal pointing out of the cell);
        #: ids 0..n-1 are spheres, n + 2 * axis + side the box planes
        self.cut: list[dict[int, tuple[np.ndarray, np.ndarray]]] = [{} for _ in range(self.n)]
        self.plane: dict[tuple[int, int], tuple[np.ndarray, np.ndarray]] = {}
        for ka, kb, p, u, _ in plan.contacts:
            a, b = index[ka], index[kb]
            if a > b:
                a, b, u = b, a, -u
            self.cut[a][b] = (p, u)
            self.cut[b][a] = (p, -u)
            self.plane[(a, b)] = (p, u)
        for s in range(self.n):
            for ax in range(3):
                for side in (0, 1):
                    if abs(self.c[s][ax] - side * self.L[ax]) < self.r[s]:
                        p, nrm = self.box_plane(self.n + 2 * ax + side)
                        self.cut[s][self.n + 2 * ax + side] = (p, nrm if side else -nrm)
        self.size = float(size) * size_factor
        # at least 7 segments per full circle (gmsh's Mesh.MinimumCirclePoints) and at most
        # 12, as many as the neck size neck_factor * a gives a circle of radius a
        self.per_circle = min(max(math.ceil(2 * math.pi / (neck_factor * size_factor)), 7), 12)
        if size_grid is None:
            self._interp = None
        else:
            spacing, values = size_grid
            axes = [np.arange(m) * h for m, h in zip(values.shape, spacing, strict=True)]
            self._interp = RegularGridInterpolator(
                axes, values * size_factor, bounds_error=False, fill_value=None
            )
        self.points: list[np.ndarray] = []
        self._triple: dict[tuple, list] = {}
        self.arcs: dict[tuple, list[np.ndarray]] = {}  # circle key -> kept arcs (point ids)
        self.edges: dict[tuple, list[int]] = {}  # box edge (B1, B2) -> point ids along it
        self._corners: dict[tuple, int] = {}
        self._vertices: dict[tuple, list[int]] = {}
        self.pieces: list[tuple[str, int, np.ndarray]] = []
        #: the particle instance of each piece (sphere pieces, and solid box pieces when
        #: ``same_phase_contacts``), else None
        self.piece_instance: list[int | None] = []
        self.rounds = 0
        self.seconds = {"setup": time.perf_counter() - t0}

    # -- helpers ---------------------------------------------------------------------------
    def local_size(self, x: np.ndarray) -> np.ndarray:
        """Element size at points ``x`` (n, 3), µm."""
        x = np.atleast_2d(x)
        if self._interp is None:
            return np.full(len(x), self.size)
        return self._interp(np.clip(x, 0.0, self.L))

    def add_point(self, x) -> int:
        self.points.append(np.asarray(x, float))
        return len(self.points) - 1

    def _is_box(self, cutter: int) -> bool:
        return cutter >= self.n

    def box_plane(self, cutter: int) -> tuple[np.ndarray, np.ndarray]:
        ax, side = divmod(cutter - self.n, 2)
        p = np.zeros(3)
        p[ax] = side * self.L[ax]
        return p, np.eye(3)[ax]

    def _plane(self, s: int, cutter: int) -> tuple[np.ndarray, np.ndarray]:
        """Canonical plane of a cutter of sphere ``s`` (orientation independent of ``s``)."""
        if self._is_box(cutter):
            return self.box_plane(cutter)
        return self.plane[(min(s, cutter), max(s, cutter))]

    def _key(self, s: int, cutter: int) -> tuple[int, int]:
        return (min(s, cutter), max(s, cutter))

    def outside(self, x: np.ndarray, exclude) -> bool:
        """``x`` lies outside every particle not in ``exclude`` and inside the box."""
        if np.any(x < -TOL) or np.any(x > self.L + TOL):
            return False
        for m in self.tree.query_ball_point(x, self.rmax):
            if m not in exclude and np.sum((x - self.c[m]) ** 2) < self.r[m] ** 2 - TOL:
                return False
        return True

    def in_cell(self, s: int, x: np.ndarray) -> np.ndarray:
        """Points ``x`` (n, 3) strictly on ``s``'s side of all its cutters."""
        ok = np.ones(len(x), bool)
        for p, nrm in self.cut[s].values():
            ok &= (x - p) @ nrm < 0.0
        return ok

    # -- triple points and arcs ------------------------------------------------------------
    def triples(self, key: tuple[int, int, int]) -> list:
        """The (up to two) points where the three cutters of ``key`` meet on the surface."""
        if key in self._triple:
            return self._triple[key]
        spheres = [k for k in key if not self._is_box(k)]
        out: list = [None, None]
        self._triple[key] = out
        if any((a, b) not in self.plane for i, a in enumerate(spheres) for b in spheres[i + 1 :]):
            return out  # two of them do not overlap: they share no point
        s, x, y = key
        p1, n1 = self._plane(s, x)
        p2, n2 = self._plane(s, y)
        d = cross(n1, n2)
        norm = np.linalg.norm(d)
        if norm < 1e-12:
            return out
        d /= norm
        x0 = np.linalg.solve(np.array([n1, n2, d]), [n1 @ p1, n2 @ p2, d @ self.c[s]])
        disc = self.r[s] ** 2 - np.sum((x0 - self.c[s]) ** 2)
        if disc <= 0:
            return out
        h = math.sqrt(disc)
        for w, t in enumerate((-h, h)):
            pt = x0 + t * d
            if self.outside(pt, set(spheres)):
                out[w] = self.vertex(pt)
        return out

    def vertex(self, x: np.ndarray) -> int:
        """A triple point's id; four or more surfaces through one point (a degenerate packing,
        e.g. four equal spheres on a square) give it once, within MERGE."""
        cell = np.floor(x / MERGE).astype(int)
        for off in np.ndindex(3, 3, 3):
            for pid in self._vertices.get(tuple(cell + np.array(off) - 1), ()):
                if np.linalg.norm(self.points[pid] - x) < MERGE:
                    return pid
        pid = self.add_point(x)
        self._vertices.setdefault(tuple(cell), []).append(pid)
        return pid

    def circle(self, key: tuple[int, int]):
        """Centre, normal, radius and in-plane axes of the circle where the cutters meet."""
        s, cutter = key
        p, nrm = self._plane(s, cutter)
        dist = (self.c[s] - p) @ nrm
        cen = self.c[s] - dist * nrm
        rad = math.sqrt(max(self.r[s] ** 2 - dist * dist, 0.0))
        e1 = cross(nrm, np.eye(3)[int(np.argmin(np.abs(nrm)))])
        e1 /= np.linalg.norm(e1)
        return cen, nrm, rad, e1, cross(nrm, e1)

    def divisions(self, xs: np.ndarray, length: float, angle: float) -> int:
        """Segments of a curve of ``length`` (sampled at ``xs``): one smallest local size
        each, and for an arc of ``angle`` at least ``per_circle`` per full circle: 12 with
        the default ``neck_factor`` (0.5), down to 7 for a neck factor of 1 or more. The size
        grid smooths a small neck's size, so this floor is what divides small circles: 12 for
        every neck factor made HXT's optimiser 4x slower on coarse meshes of small particles,
        7 for every one left paper 002's section at a minimum quality of 0.084
        (BENCHMARKS.md)."""
        h = float(np.min(self.local_size(xs)))
        return max(math.ceil(length / h), math.ceil(angle / (2 * math.pi / self.per_circle)), 1)

    def arcs_of(self, key: tuple[int, int]) -> list[np.ndarray]:
        """The kept arcs of the circle ``key`` (sphere, cutter), as point ids, made once."""
        if key in self.arcs:
            return self.arcs[key]
        s, cutter = key
        cen, _, rad, e1, e2 = self.circle(key)
        ids = sorted(
            {
                pid
                for other in self.cut[s]
                if other != cutter
                for pid in self.triples(tuple(sorted((s, cutter, other))))
                if pid is not None
            }
        )
        exclude = {k for k in key if not self._is_box(k)}

        def at(theta):
            return cen + rad * (np.cos(theta)[..., None] * e1 + np.sin(theta)[..., None] * e2)

        out = []
        if not ids:
            if rad > 0 and self.outside(at(np.float64(0.0)), exclude):
                th = np.linspace(0, 2 * math.pi, 9)
                m = max(self.divisions(at(th), 2 * math.pi * rad, 2 * math.pi), 3)
                loop = [self.add_point(x) for x in at(2 * math.pi * np.arange(m) / m)]
                out.append(np.array(loop + loop[:1]))
        else:
            th = [math.atan2((self.points[i] - cen) @ e2, (self.points[i] - cen) @ e1) for i in ids]
            order = np.argsort(th)
            th = [th[o] for o in order]
            ids = [ids[o] for o in order]
            for j in range(len(ids)):
                a0, a1 = th[j], th[(j + 1) % len(ids)] + (2 * math.pi if j == len(ids) - 1 else 0)
                if a1 - a0 < 1e-12 or not self.outside(at(np.float64(0.5 * (a0 + a1))), exclude):
                    continue
                k = self.divisions(at(np.linspace(a0, a1, 9)), rad * (a1 - a0), a1 - a0)
                inner = [self.add_point(x) for x in at(a0 + (a1 - a0) * np.arange(1, k) / k)]
                out.append(np.array([ids[j], *inner, ids[(j + 1) % len(ids)]]))
        self.arcs[key] = out
        return out

    # -- patches ---------------------------------------------------------------------------
    def boundary(self, arcs: list) -> tuple[np.ndarray, np.ndarray]:
        """The distinct point ids of ``arcs`` and the longest chord at each (µm)."""
        ids = np.concatenate(arcs)
        x = np.array([self.points[i] for i in ids])
        chord = np.zeros(len(ids))
        ends = np.cumsum([len(a) for a in arcs])
        seg = np.linalg.norm(np.diff(x, axis=0), axis=1)
        seg[ends[:-1] - 1] = 0.0  # across two arcs
        chord[:-1] = seg
        chord[1:] = np.maximum(chord[1:], seg)
        uniq, inv = np.unique(ids, return_inverse=True)
        ell = np.zeros(len(uniq))
        np.maximum.at(ell, inv, chord)
        return uniq, ell

    def guarded(self, cand: np.ndarray, ids: np.ndarray, ell: np.ndarray) -> np.ndarray:
        """The candidates farther than GUARD chords (and half a local size) from the arcs."""
        if len(ids) == 0 or len(cand) == 0:
            return cand
        x = np.array([self.points[i] for i in ids])
        dist, near = cKDTree(x).query(cand)
        return cand[dist > np.maximum(GUARD * ell[near], HALO * self.local_size(cand))]

    def _row(self, s: int, arcs: list, ids: np.ndarray, ell: np.ndarray):
        """A row of points along the arcs, one per chord, an equilateral height inside the
        cell: the patch's triangles next to an arc take the arc's spacing."""
        c, r = self.c[s], self.r[s]
        p = np.array([self.points[i] for arc in arcs for i in arc[:-1]])
        q = np.array([self.points[i] for arc in arcs for i in arc[1:]])
        mid = 0.5 * (p + q)
        chord = np.linalg.norm(q - p, axis=1)
        d = cross(q - p, mid - c)
        d /= np.linalg.norm(d, axis=1)[:, None]
        out = []
        for sign in (1.0, -1.0):
            y = mid + sign * 0.866 * chord[:, None] * d
            y = c + r * (y - c) / np.linalg.norm(y - c, axis=1)[:, None]
            out.append(np.where(self.in_cell(s, y)[:, None], y, np.nan))
        y = np.where(np.isnan(out[0]), out[1], out[0])
        ok = ~np.isnan(y[:, 0])
        y, chord = y[ok], chord[ok]
        if len(y) == 0:
            return np.zeros((0, 3)), np.zeros(0)
        x = np.array([self.points[i] for i in ids])
        dist, near = cKDTree(x).query(y)
        ok = dist > GUARD * np.maximum(ell[near], chord)
        ok[ok] = ts.off_chords(y[ok], p, q, OFF_CHORD)
        y, chord = y[ok], chord[ok]
        keep = []  # greedy: no two row points closer than GUARD chords
        tree = cKDTree(y) if len(y) else None
        taken = np.zeros(len(y), bool)
        for k in np.argsort(chord):
            if taken[k]:
                continue
            keep.append(k)
            taken[tree.query_ball_point(y[k], GUARD * chord[k])] = True
        keep = np.array(sorted(keep), int)
        return y[keep], chord[keep]

    def sphere_patch(self, s: int):
        """``(ids, interior points, triangles, missing chords)`` of sphere ``s``, or None."""
        arcs = [a for cutter in self.cut[s] for a in self.arcs_of(self._key(s, cutter))]
        c, r = self.c[s], self.r[s]
        v, f = ts.icosahedron()

        def split_where(t):
            cen = t.mean(axis=1)
            cen = c + r * cen / np.linalg.norm(cen, axis=1)[:, None]
            return np.linalg.norm(t[:, 0] - t[:, 1], axis=1) * r > SPLIT * self.local_size(cen)

        base = ts.geodesic(v, f, math.ceil(1.3 * r / float(np.max(self.local_size(c + r * v)))))
        cand = c + r * ts.subdivide(base, split_where, unit=True)
        cand = cand[self.in_cell(s, cand)]
        ids, ell = self.boundary(arcs) if arcs else (np.zeros(0, int), np.zeros(0))
        cand = self.guarded(cand, ids, ell)
        if arcs:
            row, row_ell = self._row(s, arcs, ids, ell)
            if len(row):
                dist, near = cKDTree(row).query(cand)
                cand = np.vstack([row, cand[dist > GUARD * row_ell[near]]])
        x = np.vstack([np.array([self.points[i] for i in ids]).reshape(-1, 3), cand])
        if len(x) < 4:
            return None
        gid = np.concatenate([ids, -1 - np.arange(len(cand))])
        hull = ConvexHull(x - c)
        tri = hull.simplices
        # a facet facing the centre is a lid over a removed part; the others are kept when
        # their centroid, projected on the sphere, lies in the cell
        cen = x[tri].mean(axis=1) - c
        facing_out = np.einsum("ij,ij->i", hull.equations[:, :3], cen) > 0
        proj = c + r * cen / np.linalg.norm(cen, axis=1)[:, None]
        keep = facing_out & self.in_cell(s, proj)
        if arcs:
            keep = ts.vote(tri, x, ts.chord_codes(arcs, gid), len(x) + 1, keep)
        tri = tri[keep]
        nrm = cross(x[tri[:, 1]] - x[tri[:, 0]], x[tri[:, 2]] - x[tri[:, 0]])
        flip = np.einsum("ij,ij->i", nrm, x[tri[:, 0]] - c) < 0
        tri[flip] = tri[flip][:, [0, 2, 1]]
        return gid, cand, tri, (ts.missing_chords(arcs, gid, tri, len(self.points)) if arcs else [])

    def planar_seeds(self, lo: np.ndarray, hi: np.ndarray, to3) -> np.ndarray:
        """Seed points over the rectangle ``lo``-``hi`` of a plane (2D coordinates; ``to3``
        maps them to space): a grid of the largest size, its squares split in two triangles
        and those split where an edge is longer than SPLIT local sizes."""
        n0 = max(1, math.ceil(float(np.max(hi - lo)) / self.size))
        axes = [np.linspace(lo[k], hi[k], n0 + 1) for k in range(2)]
        q0 = np.stack(np.meshgrid(*axes), -1).reshape(-1, 2)

        def split_where(t):
            e = np.max(np.linalg.norm(t - np.roll(t, 1, axis=1), axis=2), axis=1)
            return e > SPLIT * self.local_size(to3(t.mean(axis=1)))

        i, j = divmod(np.arange(n0 * n0), n0)  # square (i, j): corners a, b (row i), c, d
        a = i * (n0 + 1) + j
        b, c = a + 1, a + n0 + 1
        d = c + 1
        squares = np.concatenate([np.stack([a, b, d], 1), np.stack([a, d, c], 1)])
        return ts.subdivide(q0[squares], split_where, unit=False)

    def _split(self, chords) -> set:
        """Insert the exact midpoint of each missing chord into its arc (or box edge); returns
        the patches that use a changed arc."""
        where: dict[tuple[int, int], tuple] = {}
        for key, arcs in self.arcs.items():
            for k, arc in enumerate(arcs):
                for i, j in zip(arc[:-1].tolist(), arc[1:].tolist(), strict=True):
                    where[(min(i, j), max(i, j))] = (key, k)
        for key, pts in self.edges.items():
            for i, j in zip(pts[:-1], pts[1:], strict=True):
                where[(min(i, j), max(i, j))] = (("edge",) + key, 0)
        for key, pts in self.segs.items():
            for i, j in zip(pts[:-1].tolist(), pts[1:].tolist(), strict=True):
                where[(min(i, j), max(i, j))] = (("seg",) + key, 0)
        dirty = set()
        for chord in sorted(set(chords)):
            if chord not in where:
                continue
            key, k = where[chord]
            straight = {"edge": self.edges, "seg": self.segs}.get(key[0])
            arc = list(straight[key[1:]] if straight is not None else self.arcs[key][k])
            pos = next(q for q in range(len(arc) - 1) if {arc[q], arc[q + 1]} == set(chord))
            mid = 0.5 * (self.points[arc[pos]] + self.points[arc[pos + 1]])
            if key[0] == "edge":
                dirty |= {("f", key[1]), ("f", key[2])}
            elif key[0] == "seg":
                dirty |= self.contact_dirty(key)
            else:
                cen, nrm, rad, _, _ = self.circle(key)
                w = mid - cen - ((mid - cen) @ nrm) * nrm
                mid = cen + rad * w / np.linalg.norm(w)
                s, cutter = key
                dirty |= {("s", s), ("f", cutter) if self._is_box(cutter) else ("s", cutter)}
                dirty |= self.contact_dirty(key)
            arc.insert(pos + 1, self.add_point(mid))
            if straight is not None:
                straight[key[1:]] = arc if key[0] == "edge" else np.array(arc)
            else:
                self.arcs[key][k] = np.array(arc)
        return dirty

    def build(self) -> np.ndarray:
        """Triangulate everything; returns the points (n, 3). Raises :class:`SurfaceError`."""
        t0 = time.perf_counter()
        for s in range(self.n):  # every arc first, so that their points are global
            for cutter in self.cut[s]:
                self.arcs_of(self._key(s, cutter))
        self.prepare_contacts()  # before the box edges: a contact face can end on one
        for b in range(self.n, self.n + 6):
            for e in self.face_edges(b):
                self.edge(*e)
        t1 = time.perf_counter()
        self.seconds["arcs"] = t1 - t0
        todo = {("s", s) for s in range(self.n)} | {("f", b) for b in range(self.n, self.n + 6)}
        todo |= {("c", f) for f in range(len(self.faces))}
        patches: dict = {}
        for _ in range(ROUNDS + 1):
            missing = []
            for kind, w in sorted(todo):
                make = {"s": self.sphere_patch, "f": self.face, "c": self.contact_patch}[kind]
                got = make(w)
                patches[(kind, w)] = got
                missing += [] if got is None else got[-1]
            if not missing:
                break
            if self.rounds == ROUNDS:
                raise SurfaceError(
                    f"discrete surface: {len(missing)} arc chords stay out of the "
                    f"triangulation after {ROUNDS} rounds of splitting (first between "
                    f"{np.round(self.points[missing[0][0]], 4).tolist()} and "
                    f"{np.round(self.points[missing[0][1]], 4).tolist()} µm)"
                )
            self.rounds += 1
            todo = self._split(missing)
        self.seconds["patches"] = time.perf_counter() - t1
        for (kind, w), got in sorted(patches.items()):
            if got is None:
                continue
            gid, cand, tri = got[:3]
            base = len(self.points)
            self.points.extend(cand)
            g = np.where(gid >= 0, gid, base - 1 - gid)[tri]
            if kind == "s":
                self.pieces.append(("sphere", w, g, int(self.phase[w])))
                self.piece_instance.append(w)
            elif kind == "c":
                a, b = self.faces[w].a, self.faces[w].b
                self.pieces.append(("contact", (a, b), g, (int(self.phase[a]), int(self.phase[b]))))
                self.piece_instance.append(None)
            else:
                own = got[3]
                self.pieces.append(("pore", w - self.n, g[own < 0], None))
                self.piece_instance.append(None)
                phase = np.where(own >= 0, self.phase[own], -1)
                if self.same_phase_contacts:  # a piece per particle instance
                    for s in np.unique(own[own >= 0]):
                        self.pieces.append(("solid", w - self.n, g[own == s], int(self.phase[s])))
                        self.piece_instance.append(int(s))
                else:
                    for p in np.unique(phase[phase >= 0]):
                        self.pieces.append(("solid", w - self.n, g[phase == p], int(p)))
                        self.piece_instance.append(None)
        self.seconds["surface"] = time.perf_counter() - t0
        return np.array(self.points)
