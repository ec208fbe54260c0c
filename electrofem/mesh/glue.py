"""The glued 3D construction: one cheap boolean instead of fragmenting the box.

:func:`build_geometry` (:mod:`.occ`) uses it in 3D by default (``MeshOptions.geometry_route =
"auto"``). The pieces that cross the box boundary are also intersected with the box, and a
core-shell particle's core is cut out of its shell (:class:`.pieces.CutPlan`, ``glued``), so
the pieces lie inside the box and touch each other, and the six box faces, only on coincident
faces: radical-plane disks, core spheres and box planes. OCC's glue option
(``Geometry.OCCBooleanGlue``) fragments such shapes without intersecting them: on 400 spheres
(box400) the boolean takes 5 s, against 16 s for the fragment of the box solid with the
pieces.

The pore is then not an OCC solid: it is a gmsh *discrete* volume (:func:`pore_volumes`) whose
boundary is every face that bounds one piece off the box planes, and every part of a box face
that no piece covers. gmsh meshes it like any volume. Its shells are found from the faces'
shared curves:

* a shell with box faces bounds a pore region that reaches the box;
* a shell of a particle cluster that touches the box is a closed pocket of pore (own volume);
* a floating cluster (no piece on the box) has one outer shell, the one with the cluster's
  largest x, which is a hole in the pore region around it; its other shells are pockets.

Where that does not say which region a hole belongs to (two pore regions reach the box and a
cluster floats; or a cluster floats inside a pocket), :class:`PoreTopologyError` is raised, and
:func:`build_geometry` builds the geometry again with the box fragment.

The report's phase volumes come from the pieces' face areas (:func:`piece_volume`, the cone
rule), not from OCC's volume integrals; the pore's is the box's minus the pieces'.
"""

from __future__ import annotations

from collections.abc import Callable

import gmsh
import numpy as np


class PoreTopologyError(RuntimeError):
    """The pore's shells cannot be told apart from the faces alone; use the box fragment."""


def box_faces(size: tuple[float, ...]) -> list[tuple[int, int]]:
    """The six faces of the box ``[0, size]`` as plane surfaces sharing their edges (no solid)."""
    occ = gmsh.model.occ
    pts = {
        (i, j, k): occ.addPoint(i * size[0], j * size[1], k * size[2])
        for i in (0, 1)
        for j in (0, 1)
        for k in (0, 1)
    }
    lines: dict[tuple, int] = {}

    def line(a, b):
        key = (min(a, b), max(a, b))
        if key not in lines:
            lines[key] = occ.addLine(pts[key[0]], pts[key[1]])
        tag = lines[key]
        return tag if key == (a, b) else -tag

    def quad(*corners):
        loop = [line(corners[i], corners[(i + 1) % 4]) for i in range(4)]
        return (2, occ.addPlaneSurface([occ.addCurveLoop(loop)]))

    out = []
    for axis in range(3):
        for side in (0, 1):
            corners = []
            for u, v in ((0, 0), (1, 0), (1, 1), (0, 1)):
                c = [0, 0, 0]
                c[axis] = side
                c[(axis + 1) % 3] = u
                c[(axis + 2) % 3] = v
                corners.append(tuple(c))
            out.append(quad(*corners))
    return out


def glue(pieces: list[tuple[int, int]], faces: list[tuple[int, int]]) -> list:
    """``occ.fragment(pieces, faces)`` with OCC's glue option; returns the fragment's map
    (one list per input, pieces first). The option is restored afterwards."""
    previous = gmsh.option.getNumber("Geometry.OCCBooleanGlue")
    gmsh.option.setNumber("Geometry.OCCBooleanGlue", 1)
    try:
        _, out_map = gmsh.model.occ.fragment(pieces, faces)
    finally:
        gmsh.option.setNumber("Geometry.OCCBooleanGlue", previous)
    return out_map


class _Sets:
    """Union-find over hashable keys."""

    def __init__(self, keys):
        self.parent = {k: k for k in keys}

    def find(self, a):
        while self.parent[a] != a:
            self.parent[a] = self.parent[self.parent[a]]
            a = self.parent[a]
        return a

    def join(self, a, b) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            self.parent[max(ra, rb)] = min(ra, rb)

    def groups(self) -> dict:
        out: dict = {}
        for k in sorted(self.parent):
            out.setdefault(self.find(k), []).append(k)
        return out


def _bbox(faces: list[int]) -> list[float]:
    boxes = [gmsh.model.getBoundingBox(2, s) for s in faces]
    return [min(b[i] for b in boxes) for i in range(3)] + [
        max(b[3 + i] for b in boxes) for i in range(3)
    ]


def _inside(inner: list[float], outer: list[float]) -> bool:
    return all(outer[i] <= inner[i] and inner[3 + i] <= outer[3 + i] for i in range(3))


def pore_volumes(on_box: Callable[[int], bool]) -> list[int]:
    """Add the pore's discrete volumes to the synchronised, glued model; returns their tags.

    ``on_box(face)`` tells whether a face lies on a box face. Raises
    :class:`PoreTopologyError` when a face bounds no piece off the box, or when a hole cannot
    be placed (see the module docstring).
    """
    up: dict[int, list[int]] = {}
    down: dict[int, list[int]] = {}
    box: dict[int, bool] = {}
    for _, s in gmsh.model.getEntities(2):
        u, d = gmsh.model.getAdjacencies(2, s)
        up[s], down[s], box[s] = [int(v) for v in u], [abs(int(c)) for c in d], on_box(s)
    pore = []
    for s in sorted(up):
        if (not up[s] and box[s]) or (len(up[s]) == 1 and not box[s]):
            pore.append(s)
        elif not up[s]:
            raise PoreTopologyError(f"glued face {s} bounds no piece and is not on the box")
    # shells: pore faces joined by shared curves
    shells = _Sets(pore)
    first: dict[int, int] = {}
    for s in pore:
        for c in down[s]:
            shells.join(first.setdefault(c, s), s)
    # clusters: pieces joined by shared faces; which of them touch the box
    clusters = _Sets(sorted({v for s in up for v in up[s]}))
    on_wall = set()
    for s, vols in up.items():
        if len(vols) == 2:
            clusters.join(*vols)
        elif len(vols) == 1 and box[s]:
            on_wall.add(vols[0])
    wall_clusters = {clusters.find(v) for v in on_wall}

    outer, holes, pockets = [], [], []
    floating: dict[int, list[list[int]]] = {}
    for faces in shells.groups().values():
        if any(box[s] for s in faces):
            outer.append(faces)
            continue
        owners = {clusters.find(up[s][0]) for s in faces}
        if len(owners) != 1:
            raise PoreTopologyError("a pore shell bounds two particle clusters")
        (cluster,) = owners
        if cluster in wall_clusters:
            pockets.append(faces)
        else:
            floating.setdefault(cluster, []).append(faces)
    for shells_of in floating.values():
        # the cluster's outer shell holds its largest x
        top = max(range(len(shells_of)), key=lambda i: _bbox(shells_of[i])[3])
        holes.append(shells_of[top])
        pockets.extend(f for i, f in enumerate(shells_of) if i != top)
    if not outer:
        raise PoreTopologyError("no pore region reaches the box")
    if holes and len(outer) > 1:
        raise PoreTopologyError(
            f"{len(outer)} pore regions reach the box and {len(holes)} clusters float"
        )
    pocket_boxes = [_bbox(f) for f in pockets]
    for h in holes:
        hb = _bbox(h)
        if any(_inside(hb, pb) for pb in pocket_boxes):
            raise PoreTopologyError("a particle cluster may float inside a closed pocket")
    volumes = []
    for i, faces in enumerate(outer):
        bound = sorted(faces + ([s for h in holes for s in h] if i == 0 else []))
        volumes.append(gmsh.model.addDiscreteEntity(3, -1, bound))
    for faces in pockets:
        volumes.append(gmsh.model.addDiscreteEntity(3, -1, sorted(faces)))
    return volumes


def piece_volume(
    volume: int,
    center,
    radius: float,
    core_radius: float | None,
    planes: list,
    size: tuple[float, ...],
    area: Callable[[int], float],
) -> float | None:
    """The volume of a glued piece from its faces' areas, by the cone rule
    ``V = Σ_f h_f A_f / 3``, where ``h_f`` is the signed distance from the ball's centre to
    face ``f`` along its outward normal (6 µs a face, against 2 ms for OCC's ``getMass`` of a
    piece).

    A piece is its ball (``center``, ``radius``; a core's is ``core_radius``), cut by its
    radical planes ``planes`` (``(p, u)``, ``u`` pointing out of the piece) and clipped to the
    box ``[0, size]``; an outer piece may have its core (``core_radius``) cut out. Its sphere
    faces are centred on ``center``, so ``h`` is ``±`` their radius, and its plane faces lie on
    a radical plane or a box face, whose outward normals are known. Returns None when a face
    is neither (the caller then asks OCC). The areas are OCC's surface integrals, so the result
    is as accurate as OCC's volume integral: both are 2e-8 from the closed form on a piece with
    two caps, and they agree to 4e-6 on the worst piece of the periodic 40 µm pack.
    """
    c = np.asarray(center, float)
    tol = 1e-7 * max(size)
    total = 0.0
    for _, f in gmsh.model.getBoundary([(3, volume)], oriented=False):
        f = abs(int(f))
        lo, hi = gmsh.model.getParametrizationBounds(2, f)
        uv = [(lo[0] + hi[0]) / 2, (lo[1] + hi[1]) / 2]
        x = np.asarray(gmsh.model.getValue(2, f, uv))
        kind = gmsh.model.getType(2, f)
        if kind == "Sphere":
            rho = float(np.linalg.norm(x - c))
            inner = core_radius is not None and abs(rho - core_radius) < tol
            if not inner and abs(rho - radius) >= tol:
                return None
            total += (-rho if inner else rho) * area(f)
            continue
        if kind != "Plane":
            return None
        n = np.asarray(gmsh.model.getNormal(f, uv))
        h = None
        for axis, length in enumerate(size):
            if abs(abs(n[axis]) - 1.0) < 1e-9:
                if abs(x[axis]) < tol:
                    h = c[axis]
                elif abs(x[axis] - length) < tol:
                    h = length - c[axis]
        if h is None:
            for p, u in planes:
                if abs(abs(float(np.dot(n, u))) - 1.0) < 1e-9 and abs(np.dot(x - p, u)) < tol:
                    h = float(np.dot(p - c, u))
                    break
        if h is None:
            return None
        total += h * area(f)
    return total / 3.0
