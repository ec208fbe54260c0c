"""The box faces of :class:`.union.UnionSurface` (mixed in): the box edges, divided at the
local size and shared by the two faces on them, and each face triangulated in its plane.

Needs the surface's ``n``, ``L``, ``points``, ``cut``, ``c``, ``r``, ``phase``, ``edges``,
``edge_marks``, ``_corners``, ``add_point``, ``triples``, ``divisions``, ``arcs_of``,
``box_segments``, ``planar_seeds``, ``boundary`` and ``guarded``.
"""

from __future__ import annotations

import numpy as np
from scipy.spatial import cKDTree

from . import trisphere as ts
from .trisphere import TOL, cross


class BoxFaces:
    """The box-face half of :class:`.union.UnionSurface` (see the module docstring)."""

    def corner(self, x: np.ndarray) -> int:
        key = tuple(np.round(x, 9))
        if key not in self._corners:
            self._corners[key] = self.add_point(x)
        return self._corners[key]

    def edge(self, b1: int, b2: int) -> list[int]:
        """Point ids along the box edge where box planes ``b1 < b2`` meet."""
        if (b1, b2) in self.edges:
            return self.edges[(b1, b2)]
        (ax1, s1), (ax2, s2) = divmod(b1 - self.n, 2), divmod(b2 - self.n, 2)
        ax = 3 - ax1 - ax2
        base = np.zeros(3)
        base[ax1], base[ax2] = s1 * self.L[ax1], s2 * self.L[ax2]
        e = np.eye(3)[ax]
        marks = [(0.0, self.corner(base)), (self.L[ax], self.corner(base + self.L[ax] * e))]
        for s in range(self.n):
            if b1 in self.cut[s] and b2 in self.cut[s]:
                for pid in self.triples(tuple(sorted((s, b1, b2)))):
                    if pid is not None:
                        marks.append((float(self.points[pid][ax]), pid))
        for pid in self.edge_marks.get((b1, b2), []):  # contact faces ending on the edge
            if pid not in [m[1] for m in marks]:
                marks.append((float(self.points[pid][ax]), pid))
        marks.sort()
        out = [marks[0][1]]
        for (t0, _), (t1, pid) in zip(marks[:-1], marks[1:], strict=True):
            k = self.divisions(base + np.outer(np.linspace(t0, t1, 9), e), t1 - t0, 0.0)
            out += [self.add_point(base + e * (t0 + (t1 - t0) * q / k)) for q in range(1, k)]
            out.append(pid)
        self.edges[(b1, b2)] = out
        return out

    def face_edges(self, b: int) -> list[tuple[int, int]]:
        ax = divmod(b - self.n, 2)[0]
        others = [o for o in range(self.n, self.n + 6) if divmod(o - self.n, 2)[0] != ax]
        return [(min(b, o), max(b, o)) for o in others]

    def face(self, b: int):
        """``(ids, interior points, triangles, owner, missing chords)`` of box face ``b``: the
        owner of a solid triangle is the particle instance of least power, -1 in the pore."""
        ax, side = divmod(b - self.n, 2)
        u, v = (ax + 1) % 3, (ax + 2) % 3
        lu, lv = self.L[u], self.L[v]
        arcs = [np.array(self.edge(*e)) for e in self.face_edges(b)]
        inside = [s for s in range(self.n) if b in self.cut[s]]
        arcs += [a for s in inside for a in self.arcs_of((s, b))]
        arcs += self.box_segments(b)

        def to3(q):
            x = np.zeros((len(q), 3))
            x[:, ax], x[:, u], x[:, v] = side * self.L[ax], q[:, 0], q[:, 1]
            return x

        q = self.planar_seeds(np.zeros(2), np.array([lu, lv]), to3)
        q = q[(q[:, 0] > TOL) & (q[:, 0] < lu - TOL) & (q[:, 1] > TOL) & (q[:, 1] < lv - TOL)]
        ids, ell = self.boundary(arcs)
        cand = self.guarded(to3(q), ids, ell)
        x = np.vstack([np.array([self.points[i] for i in ids]), cand])
        gid = np.concatenate([ids, -1 - np.arange(len(cand))])
        tri = ts.planar_delaunay(x[:, [u, v]], np.zeros(2), np.array([lu, lv]))
        cen = x[tri].mean(axis=1)
        solid = np.zeros(len(tri), bool)
        power = np.full(len(tri), np.inf)  # each triangle's owner: the least power
        owner = np.zeros(len(tri), int)
        if inside and len(tri):
            # each cut sphere tests only the centroids within its radius (in the face's plane)
            near = cKDTree(cen[:, [u, v]]).query_ball_point(
                self.c[inside][:, [u, v]], self.r[inside]
            )
            for s, rows in zip(inside, near, strict=True):
                rows = np.asarray(rows, dtype=np.int64)
                pw = np.sum((cen[rows] - self.c[s]) ** 2, axis=1) - self.r[s] ** 2
                solid[rows] |= pw < 0
                better = pw < power[rows]
                power[rows[better]], owner[rows[better]] = pw[better], s
        solid = ts.vote(tri, x, ts.chord_codes(arcs, gid), len(x) + 1, solid)
        nrm = cross(x[tri[:, 1]] - x[tri[:, 0]], x[tri[:, 2]] - x[tri[:, 0]])[:, ax]
        flip = nrm * (1 if side else -1) < 0
        tri[flip] = tri[flip][:, [0, 2, 1]]
        lost = solid & ~np.isfinite(power)  # made solid by the vote: the least power of all
        if np.any(lost) and inside:
            pw = np.sum((cen[lost][:, None, :] - self.c[inside][None]) ** 2, axis=2)
            owner[lost] = np.asarray(inside)[np.argmin(pw - self.r[inside] ** 2, axis=1)]
        own = np.where(solid, owner, -1)
        return gid, cand, tri, own, ts.missing_chords(arcs, gid, tri, len(self.points))
