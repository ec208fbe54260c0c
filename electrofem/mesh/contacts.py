"""Contact faces between particles, for the discrete route.

Two overlapping particles meet on their radical plane, as on the
OCC route (:mod:`.geometry`, step 3): the face is the part of the plane inside both balls and
on both particles' sides of every other cutter (radical planes, box planes). It is the disk of
the two spheres' circle clipped by a convex polygon, so it is convex, and its boundary is

* the kept arcs of that circle (:meth:`.union.UnionSurface.arcs_of`): a point of the circle
  is on the union's surface exactly when it is on both sides of every other cutter;
* straight **segments** where the plane meets another cutter inside both balls. A segment
  that meets the circle ends at the triple point of the three cutters; one that ends inside
  the disk ends at a power vertex (three planes through one point, found by position like the
  triple points, so every face through it shares it). A segment on a box face is also a
  constraint of that face's triangulation, where it splits the solid between two phases.

:class:`ContactFaces` is mixed into :class:`.union.UnionSurface`: :meth:`prepare_contacts`
finds the faces and divides their segments once (every face along a segment gets the same
points), :meth:`contact_patch` triangulates a face like a box face (graded points, planar
Delaunay, kept by their centroid, missing chords split by the surface's rounds).
Faces between particles of one phase are made when the surface's ``same_phase_contacts`` is
set (``MeshOptions.same_phase_contacts``: every particle is then its own region).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from .trisphere import chord_codes, cross, missing_chords, planar_delaunay, vote

#: A clipping line whose normal, in the plane, is shorter than this is parallel to it.
PARALLEL = 1e-12
#: Polygon vertices closer than this fraction of the circle's radius are one vertex.
COINCIDE = 1e-9


class ContactError(RuntimeError):
    """A contact face's boundary did not meet the surface's arcs."""


@dataclass
class ContactFace:
    """The face where instances ``a < b`` meet; ``segs``: the keys of its
    straight segments in :attr:`ContactFaces.segs`, ``cutters`` the cutter each lies on (one
    segment per cutter: the face is convex). The normal ``nrm`` points out of ``a``."""

    a: int
    b: int
    cen: np.ndarray
    nrm: np.ndarray
    rad: float
    e1: np.ndarray
    e2: np.ndarray
    lines: list = field(default_factory=list)  # (c0, du, dv): inside where c0+u du+v dv < 0
    segs: list = field(default_factory=list)
    cutters: list = field(default_factory=list)  # the cutter of each segment

    def to3(self, q: np.ndarray) -> np.ndarray:
        return self.cen + q[:, :1] * self.e1 + q[:, 1:2] * self.e2

    def to2(self, x: np.ndarray) -> np.ndarray:
        d = x - self.cen
        return np.stack([d @ self.e1, d @ self.e2], axis=1)

    def inside(self, q: np.ndarray, margin: float = 0.0) -> np.ndarray:
        ok = np.sum(q * q, axis=1) < (self.rad - margin) ** 2
        for c0, du, dv in self.lines:
            ok &= c0 + q[:, 0] * du + q[:, 1] * dv < -margin * math.hypot(du, dv)
        return ok


def clip_polygon(poly: list, labels: list, line: tuple, label: int) -> tuple[list, list]:
    """Sutherland-Hodgman: the convex polygon ``poly`` (2D points; ``labels[i]`` names the
    cutter of the edge from vertex i) on the side ``c0 + u du + v dv < 0`` of ``line``."""
    c0, du, dv = line
    out, lab = [], []
    n = len(poly)
    for i in range(n):
        p, q = poly[i], poly[(i + 1) % n]
        gp, gq = c0 + p[0] * du + p[1] * dv, c0 + q[0] * du + q[1] * dv
        if gp < 0:  # the edge from p keeps its cutter
            out.append(p)
            lab.append(labels[i])
        if (gp < 0) != (gq < 0):  # it crosses the line: a new vertex
            out.append(p + (q - p) * (gp / (gp - gq)))
            lab.append(label if gp < 0 else labels[i])  # leaving: along the line
    return out, lab


class ContactFaces:
    """The contact-face half of :class:`.union.UnionSurface` (see the module docstring).

    Needs the surface's ``phase`` (per instance), ``plane``, ``cut``, ``arcs_of``,
    ``circle``, ``vertex``, ``add_point``, ``divisions``, ``boundary``, ``guarded`` and
    ``planar_seeds``.
    """

    def prepare_contacts(self) -> None:
        """Find the faces between instances (of different phases, and of one phase with
        ``same_phase_contacts``) and divide their segments;
        after every arc exists, before the box edges (a face can end on one)."""
        self.faces: list[ContactFace] = []
        self.segs: dict[tuple[int, int], np.ndarray] = {}
        self.seg_box: dict[tuple[int, int], int] = {}
        self.seg_users: dict[tuple[int, int], set] = {}
        self.edge_marks: dict[tuple[int, int], list[int]] = {}
        self.face_of: dict[tuple[int, int], int] = {}
        for a, b in sorted(self.plane):
            if self.phase[a] == self.phase[b] and not self.same_phase_contacts:
                continue
            face = self._contact_face(a, b)
            if face is not None:
                self.face_of[(a, b)] = len(self.faces)
                self.faces.append(face)
                for key in face.segs:
                    self.seg_users.setdefault(key, set()).add(len(self.faces) - 1)

    def _contact_face(self, a: int, b: int) -> ContactFace | None:
        cen, nrm, rad, e1, e2 = self.circle((a, b))
        if rad <= 0:
            return None
        face = ContactFace(a, b, cen, nrm, rad, e1, e2)
        big = 2.0 * rad
        poly = [np.array(p) for p in ((-big, -big), (big, -big), (big, big), (-big, big))]
        labels: list = [None] * 4
        seen = {a, b}
        for s in (a, b):
            for k, (p, n) in sorted(self.cut[s].items()):
                # a box plane cuts both; a sphere cutting both meets the plane on one line
                # (the radical axis), once from each: clipping twice on one line would put
                # a vertex anywhere along it
                if k in seen:
                    continue
                seen.add(k)
                line = (float((cen - p) @ n), float(e1 @ n), float(e2 @ n))
                if math.hypot(line[1], line[2]) < PARALLEL:
                    if line[0] >= 0:
                        return None  # the whole plane is beyond this cutter
                    continue
                face.lines.append(line)
                poly, labels = clip_polygon(poly, labels, line, k)
                if len(poly) < 3:
                    return None
        poly, labels = self._merge(poly, labels, COINCIDE * rad)
        ends = self._circle_ends(a, b)
        for i in range(len(poly)):
            p, q, k = poly[i], poly[(i + 1) % len(poly)], labels[i]
            d = q - p
            A, B, C = d @ d, 2 * p @ d, p @ p - rad * rad
            disc = B * B - 4 * A * C
            if A <= 0 or disc <= 0:
                continue
            t0 = max(0.0, (-B - math.sqrt(disc)) / (2 * A))
            t1 = min(1.0, (-B + math.sqrt(disc)) / (2 * A))
            if t1 - t0 < COINCIDE:
                continue
            m = len(poly)
            start = (
                self._power_vertex(face, p, (labels[i - 1], k))
                if t0 == 0.0
                else self._arc_end(face, p + t0 * d, ends)
            )
            end = (
                self._power_vertex(face, q, (k, labels[(i + 1) % m]))
                if t1 == 1.0
                else self._arc_end(face, p + t1 * d, ends)
            )
            face.segs.append(self._segment(start, end, k))
            face.cutters.append(k)
        if not face.segs and not len(ends) and not self.arcs_of((a, b)):
            return None  # the polygon misses the disk: the lens lies in other particles
        return face

    @staticmethod
    def _merge(poly: list, labels: list, tol: float) -> tuple[list, list]:
        """Drop a vertex within ``tol`` of the one before it (three cutters through one
        point leave an edge of round-off length between two of them)."""
        out, lab = [], []
        for p, k in zip(poly, labels, strict=True):
            if out and np.linalg.norm(p - out[-1]) < tol:
                lab[-1] = k
                continue
            out.append(p)
            lab.append(k)
        if len(out) > 1 and np.linalg.norm(out[0] - out[-1]) < tol:
            out.pop()
            lab.pop()
        return out, lab

    def _circle_ends(self, a: int, b: int) -> np.ndarray:
        """The end points (ids) of the kept arcs of the circle of ``a`` and ``b``."""
        arcs = self.arcs_of((a, b))
        ends = {int(arc[0]) for arc in arcs if arc[0] != arc[-1]}
        ends |= {int(arc[-1]) for arc in arcs if arc[0] != arc[-1]}
        return np.array(sorted(ends), int)

    def _arc_end(self, face: ContactFace, q: np.ndarray, ends: np.ndarray) -> int:
        """The id of the triple point where a segment meets the circle: an arc's end."""
        x = face.to3(q[None])[0]
        if len(ends):
            d = np.linalg.norm(np.array([self.points[i] for i in ends]) - x, axis=1)
            if d.min() < 1e-6 * max(face.rad, 1.0):
                return int(ends[int(np.argmin(d))])
        raise ContactError(
            f"contact face of instances {face.a} and {face.b}: a segment meets the circle at "
            f"{np.round(x, 4).tolist()} µm, where no arc ends"
        )

    def _power_vertex(self, face: ContactFace, q: np.ndarray, pair: tuple) -> int:
        """The id of a polygon vertex inside the disk (found by position, so every face
        through it shares it); one on two box planes is also a mark of that box edge."""
        pid = self.vertex(face.to3(q[None])[0])
        k1, k2 = pair
        if k1 is not None and k2 is not None and k1 >= self.n and k2 >= self.n:
            marks = self.edge_marks.setdefault((min(k1, k2), max(k1, k2)), [])
            if pid not in marks:
                marks.append(pid)
        return pid

    def _segment(self, i: int, j: int, cutter: int) -> tuple[int, int]:
        """Divide the segment between points ``i`` and ``j`` once (shared by its faces)."""
        key = (min(i, j), max(i, j))
        if key not in self.segs:
            p, q = self.points[key[0]], self.points[key[1]]
            length = float(np.linalg.norm(q - p))
            k = self.divisions(p + np.outer(np.linspace(0, 1, 9), q - p), length, 0.0)
            inner = [self.add_point(p + (q - p) * (m / k)) for m in range(1, k)]
            self.segs[key] = np.array([key[0], *inner, key[1]])
            if cutter >= self.n:
                self.seg_box[key] = cutter
        return key

    def box_segments(self, b: int) -> list[np.ndarray]:
        """The contact segments that lie on box face ``b`` (constraints of its triangles)."""
        return [self.segs[k] for k, box in sorted(self.seg_box.items()) if box == b]

    def contact_patch(self, f: int):
        """``(ids, interior points, triangles, missing chords)`` of contact face ``f``."""
        face = self.faces[f]
        arcs = list(self.arcs_of((face.a, face.b))) + [self.segs[k] for k in face.segs]
        ids, ell = self.boundary(arcs)
        rad = face.rad
        corner = np.array([rad, rad])
        q = self.planar_seeds(-corner, corner, face.to3)
        q = q[face.inside(q, 1e-9 * rad)]
        cand = self.guarded(face.to3(q), ids, ell) if len(q) else np.zeros((0, 3))
        x = np.vstack([np.array([self.points[i] for i in ids]), cand])
        gid = np.concatenate([ids, -1 - np.arange(len(cand))])
        tri = planar_delaunay(face.to2(x), -corner, corner)
        keep = face.inside(face.to2(x[tri].mean(axis=1)))
        keep = vote(tri, x, chord_codes(arcs, gid), len(x) + 1, keep)
        tri = tri[keep]
        nrm = cross(x[tri[:, 1]] - x[tri[:, 0]], x[tri[:, 2]] - x[tri[:, 0]])
        flip = nrm @ face.nrm < 0
        tri[flip] = tri[flip][:, [0, 2, 1]]
        return gid, cand, tri, missing_chords(arcs, gid, tri, len(self.points))

    def contact_dirty(self, chord_key) -> set:
        """The patches that a split of a chord on ``chord_key`` changes, beyond the spheres
        and box faces the surface knows: contact faces (and a segment's box face)."""
        if chord_key[0] == "seg":
            key = chord_key[1:]
            out = {("c", f) for f in self.seg_users.get(key, ())}
            if key in self.seg_box:
                out.add(("f", self.seg_box[key]))
            return out
        f = self.face_of.get(tuple(chord_key))
        return set() if f is None else {("c", f)}
