"""Interface curvature from local sphere fits to the smoothed fraction's level set.

The ``"fit"`` curvature of :class:`~electrofem.physics.vof.flow.TwoPhaseFlow`
(``InfiltrationOptions.curvature = "fit"``), in three steps, in 2D (triangles) and 3D
(tetrahedra):

1. **Interface points** (:meth:`CurvatureFit.interface_points`). The smoothed fraction α̃ is
   P1, so its level ``α̃ = 1/2`` is a plane in each cell it crosses; the point is the centroid
   of that cut (segment or polygon, :func:`plane_cuts`), with the cell's normal ``∇α̃/|∇α̃|``
   and the cut's measure as weight. These points move continuously as α changes.
2. **Local sphere fits** (:func:`fit_curvature`). Around each point, in the frame of its normal
   (z along n), the circle/sphere ``z = a + b·x_t + (k/2)|x|²`` is fitted by weighted least
   squares to the points within ``radius`` (weights ``(1 − (r/ρ)²)²``, times the cut measure,
   for points whose normals agree within 60°). This family contains every sphere and the plane,
   so a circle (2D) or sphere (3D) is fitted without the O((ρ/R)²) bias of a paraboloid, and a
   wide radius only averages noise; on a general surface the isotropic fit measures the mean
   curvature, averaged over the radius. The total curvature is ``(D − 1)/R`` of the fitted
   sphere, positive when its centre is on the liquid side (a liquid drop), as the solver's κ.
3. **Extension to the nodes** (:func:`extend_to_nodes`): every P1 node takes the weighted mean
   of the fitted κ of its nearest points (weights from the distance beyond the nearest one), so
   κ is constant along the normal through the smoothed band: the force ``σ κ ∇α̃`` is then the
   gradient ``∇(σ κ α̃)``, balanced exactly by the P1 pressure, wherever κ is constant along
   the interface.

Near walls the projected curvature (which carries the contact angle) is kept: the caller
blends with the weight ``beta`` (:class:`CurvatureFit`).

The fit of interface points follows Popinet (J. Comput. Phys. 228, 2009, §3.3: a parabola
fitted to interface centroids) and its use on unstructured meshes (Ivey & Moin, J. Comput.
Phys. 300, 2015), with a sphere instead of a quadric as the local model. PLIC centroids (the
plane cutting off α|K| in each cell) were tried first and dropped: the algebraic (FCT)
transport spreads α over ~3 cells, the centroids of the outer cells lie ±0.5 h off the
interface, and the fitted κ drove the static drop unstable (BENCHMARKS.md, issue 16).

Under MPI the interface points of the owned cells are gathered on every rank and sorted by
coordinates, so every rank fits the same point set in the same order: the curvature is the
same on any number of ranks (the interface is a codimension-1 set: O(N^{(D-1)/D}) points).
Only the points whose κ can reach a rank's nodes are fitted there.

numpy and scipy only (no dolfinx): the solver passes arrays.
"""

from __future__ import annotations

import numpy as np
from scipy.spatial import cKDTree

#: The interface: this level of the smoothed fraction α̃.
LEVEL = 0.5
#: Points whose normals differ by more than 60° from the fitted point's are not used.
NORMAL_AGREEMENT = 0.5


def _edge_points(verts, h, edges):
    """Crossing points of the plane (heights ``h`` = n·x − d per vertex) on the given edges,
    with a mask of the edges it crosses."""
    pts, mask = [], []
    for i, j in edges:
        hi, hj = h[:, i], h[:, j]
        cross = (hi > 0) != (hj > 0)
        with np.errstate(divide="ignore", invalid="ignore"):
            t = np.where(cross, hi / (hi - hj), 0.0)
        pts.append(verts[:, i] + t[:, None] * (verts[:, j] - verts[:, i]))
        mask.append(cross)
    return np.stack(pts, axis=1), np.stack(mask, axis=1)


def plane_cuts(verts: np.ndarray, normals: np.ndarray, d: np.ndarray):
    """The cuts of simplices by the planes ``n·x = d``: the centroids (N, D) of the cut
    segments (2D) or polygons (3D) and their measures (length or area, m^(D-1); 0 where the
    plane misses the cell, whose centroid is then returned).

    ``verts``: (N, D+1, D) vertex coordinates; ``normals``: (N, D) unit normals; ``d``: (N,)."""
    verts = np.asarray(verts, dtype=float)
    n = len(d)
    dim = verts.shape[2]
    if n == 0:
        return np.zeros((0, dim)), np.zeros(0)
    h = np.einsum("nij,nj->ni", verts, normals) - d[:, None]
    if dim == 2:
        pts, mask = _edge_points(verts, h, ((0, 1), (1, 2), (2, 0)))
        cnt = mask.sum(axis=1)
        both = cnt == 2
        p = np.where(mask[:, :, None], pts, 0.0)
        cen = np.where(both[:, None], p.sum(axis=1) / np.maximum(cnt, 1)[:, None], verts.mean(1))
        # the segment's length: the two crossing points
        first = np.argmax(mask, axis=1)
        last = 2 - np.argmax(mask[:, ::-1], axis=1)
        ar = np.arange(n)
        meas = np.where(both, np.linalg.norm(pts[ar, last] - pts[ar, first], axis=1), 0.0)
        return cen, meas
    # 3D: sort the vertices by height; 1|3 or 3|1 split → triangle, 2|2 → quadrilateral
    order = np.argsort(h, axis=1)
    hs = np.take_along_axis(h, order, axis=1)
    vs = np.take_along_axis(verts, order[:, :, None], axis=1)
    nbelow = (hs <= 0).sum(axis=1)
    # polygon vertices in cyclic order on the edges of the sorted tet
    quad = ((0, 2), (0, 3), (1, 3), (1, 2))
    tri_lo = ((0, 1), (0, 2), (0, 3))  # one vertex below
    tri_hi = ((3, 0), (3, 1), (3, 2))  # one vertex above
    cen = vs.mean(axis=1)
    meas = np.zeros(n)
    for count, edges in ((1, tri_lo), (3, tri_hi), (2, quad)):
        sel = nbelow == count
        if not np.any(sel):
            continue
        hh, vv = hs[sel], vs[sel]
        P, _ = _edge_points(vv, hh, edges)  # every listed edge joins h <= 0 to h > 0
        # fan triangulation from P[0]: area-weighted centroid
        c = np.zeros((len(P), 3))
        a = np.zeros(len(P))
        for k in range(1, P.shape[1] - 1):
            ak = 0.5 * np.linalg.norm(np.cross(P[:, k] - P[:, 0], P[:, k + 1] - P[:, 0]), axis=1)
            c += ak[:, None] * (P[:, 0] + P[:, k] + P[:, k + 1]) / 3.0
            a += ak
        good = a > 0
        c[good] /= a[good, None]
        c[~good] = P[~good].mean(axis=1)
        cen[sel] = c
        meas[sel] = a
    return cen, meas


def _frames(normals: np.ndarray) -> np.ndarray:
    """Orthonormal frames (N, D, D) whose last row is the normal."""
    n = normals
    if n.shape[1] == 2:
        return np.stack([np.stack([n[:, 1], -n[:, 0]], axis=1), n], axis=1)
    helper = np.where(np.abs(n[:, :1]) < 0.9, [[1.0, 0.0, 0.0]], [[0.0, 1.0, 0.0]])
    t1 = np.cross(n, helper)
    t1 /= np.linalg.norm(t1, axis=1)[:, None]
    t2 = np.cross(n, t1)
    return np.stack([t1, t2, n], axis=1)


def fit_curvature(
    points: np.ndarray,
    normals: np.ndarray,
    weights: np.ndarray,
    radius: np.ndarray,
    which: np.ndarray | None = None,
    k_max: int | None = None,
    tree: cKDTree | None = None,
) -> np.ndarray:
    """Total curvature ``(D − 1)/R`` of the sphere fitted around each of ``points[which]``
    (all if None); NaN where fewer points than unknowns + 1 are in reach.

    ``normals``: unit, into the liquid; ``weights``: per point (e.g. the cut measure);
    ``radius``: the fit radius ρ per point (m). ``k_max``: neighbours examined (default
    32 in 2D, 160 in 3D); ``tree``: a ``cKDTree`` of ``points`` already built by the caller."""
    pts = np.asarray(points, dtype=float)
    dim = pts.shape[1]
    idx_all = np.arange(len(pts)) if which is None else np.asarray(which)
    out = np.full(len(idx_all), np.nan)
    if len(idx_all) == 0:
        return out
    k = min(len(pts), k_max or (32 if dim == 2 else 160))
    tree = tree if tree is not None else cKDTree(pts)
    n_unknown = dim + 1  # a, b (D−1), k
    for start in range(0, len(idx_all), 4096):  # bounded memory
        idx = idx_all[start : start + 4096]
        dist, nb = tree.query(pts[idx], k=k)
        dist, nb = dist.reshape(len(idx), -1), nb.reshape(len(idx), -1)
        rho = radius[idx][:, None]
        w = np.clip(1.0 - (dist / rho) ** 2, 0.0, None) ** 2 * weights[nb]
        w *= np.einsum("nkd,nd->nk", normals[nb], normals[idx]) > NORMAL_AGREEMENT
        F = _frames(normals[idx])
        loc = np.einsum("nij,nkj->nki", F, pts[nb] - pts[idx][:, None, :]) / rho[:, :, None]
        xt, z = loc[:, :, :-1], loc[:, :, -1]
        r2 = (loc**2).sum(axis=2)
        A = np.concatenate([np.ones_like(z)[:, :, None], xt, 0.5 * r2[:, :, None]], axis=2)
        AtW = A * w[:, :, None]
        M = np.einsum("nki,nkj->nij", AtW, A)
        rhs = np.einsum("nki,nk->ni", AtW, z)
        enough = (w > 0).sum(axis=1) > n_unknown
        M[~enough] = np.eye(n_unknown)
        M += 1e-12 * np.diagonal(M, axis1=1, axis2=2)[:, :, None] * np.eye(n_unknown)
        c = np.linalg.solve(M, rhs[:, :, None])[:, :, 0]
        a, b, kk = c[:, 0], c[:, 1:-1], c[:, -1]
        wn2 = 1.0 + (b**2).sum(axis=1)  # |w|² with w = (b, −1)
        den = wn2 - 2.0 * a * kk
        inv_r = np.where(den > 0, kk / np.sqrt(np.abs(den)), kk)  # (1/R)·sign, in units of 1/ρ
        kap = (dim - 1) * inv_r / radius[idx]
        out[start : start + len(idx)] = np.where(enough, kap, np.nan)
    return out


def extend_to_nodes(
    nodes: np.ndarray,
    points: np.ndarray,
    kappa: np.ndarray,
    width: np.ndarray,
    k_max: int | None = None,
    neighbours: tuple[np.ndarray, np.ndarray] | None = None,
) -> np.ndarray:
    """κ at ``nodes``: the mean of the finite ``kappa`` among the node's
    :func:`extension_neighbours`, weighted by ``(1 − ((r − r_min)/width)²)²`` with ``r_min``
    the node's distance to the nearest of them with a finite κ and ``width`` per node (m). So
    κ is continuous, constant along the normal of a surface of constant κ, and defined
    everywhere (far from the interface it only meets ``∇α̃ ≈ 0``); 0 where no neighbour has a
    finite κ. Only the neighbours' κ is read, so the other points may be left NaN (unfitted).
    ``neighbours``: the result of :func:`extension_neighbours`, if the caller has it."""
    out = np.zeros(len(nodes))
    if len(nodes) == 0 or len(points) == 0:
        return out
    if neighbours is None:
        neighbours = extension_neighbours(nodes, points, k_max)
    dist, nb = neighbours
    kap = kappa[nb]
    good = np.isfinite(kap)
    dmin = np.where(good, dist, np.inf).min(axis=1)
    rel = (dist - np.where(np.isfinite(dmin), dmin, 0.0)[:, None]) / width[:, None]
    w = np.where(good, np.clip(1.0 - rel**2, 0.0, None) ** 2, 0.0)
    den = w.sum(axis=1)
    num = (w * np.where(good, kap, 0.0)).sum(axis=1)
    np.divide(num, den, out=out, where=den > 0)
    return out


def extension_neighbours(
    nodes: np.ndarray,
    points: np.ndarray,
    k_max: int | None = None,
    tree: cKDTree | None = None,
):
    """Distances and indices ``(M, k)`` of the ``k`` points nearest to each node (``k_max``,
    default 8 in 2D and 24 in 3D): the points whose κ :func:`extend_to_nodes` reads. They
    depend on the whole point set only, not on which points were fitted, so the extension is
    the same on any number of ranks. ``tree``: a ``cKDTree`` of ``points`` already built."""
    dim = points.shape[1]
    k = min(len(points), k_max or (8 if dim == 2 else 24))
    tree = tree if tree is not None else cKDTree(points)
    dist, nb = tree.query(nodes, k=k)
    return dist.reshape(len(nodes), -1), nb.reshape(len(nodes), -1)


class CurvatureFit:
    """The ``"fit"`` curvature on one rank's part of a mesh, from arrays (no dolfinx).

    Args:
        comm: the mesh's communicator.
        verts: (N_owned, D+1, D) vertex coordinates of the owned cells (m).
        cell_p1: (N_owned, D+1) the P1 dofs of those vertices, in the same order.
        nodes: (M, D) coordinates of the local P1 dofs (owned and ghost).
        node_size: (M,) a length per node (m): the largest ``|K|^(1/D)`` of its cells.
        wall_nodes: (W, D) this rank's wall nodes (gathered here), for the blend near walls.
        radius: the fit radius in cell sizes ``|K|^(1/D)``.

    :meth:`kappa` returns κ at the local P1 dofs and the blend weight ``beta``: 1 where the
    fit is used, 0 where the caller's projected κ — which carries the contact angle — is kept:
    within ``radius`` node sizes of a contact point (an interface point within 2 cell sizes
    of a wall), ramping to 1 at twice that."""

    def __init__(self, comm, verts, cell_p1, nodes, node_size, wall_nodes, radius):
        self.comm = comm
        self.verts = np.asarray(verts, dtype=float)
        self.cell_p1 = np.asarray(cell_p1)
        self.dim = self.verts.shape[2]
        v = self.verts
        e = v[:, 1:] - v[:, :1]  # (N, D, D): rows are edges
        self.e_inv = np.linalg.inv(e)  # the P1 gradient g solves E g = Δa
        vol = np.abs(np.linalg.det(e)) / (2.0 if self.dim == 2 else 6.0)
        self.cell_size = vol ** (1.0 / self.dim)
        self.nodes = np.asarray(nodes, dtype=float)
        self.node_size = np.asarray(node_size, dtype=float)
        self.radius = float(radius)
        walls = np.concatenate(comm.allgather(np.asarray(wall_nodes, dtype=float)))
        self.walls = cKDTree(walls.reshape(-1, self.dim)) if len(walls) else None
        self.n_points = 0  # interface points of the last call (all ranks)
        self.n_contact = 0  # of which within 2 cell sizes of a wall

    def interface_points(self, alpha_s_nodes):
        """The cuts of the owned cells by the level ``α̃ = 1/2`` of the smoothed fraction (a
        plane in each cell, α̃ being P1): centroids, unit normals (into the liquid), measures in
        cell sizes, and cell sizes, gathered from every rank and sorted by coordinates (the same
        array on every rank)."""
        av = alpha_s_nodes[self.cell_p1]
        sel = np.nonzero((av.min(axis=1) < LEVEL) & (av.max(axis=1) > LEVEL))[0]
        av = av[sel]
        g = np.einsum("nij,nj->ni", self.e_inv[sel], av[:, 1:] - av[:, :1])
        gm = np.linalg.norm(g, axis=1)
        ok = gm > 0
        sel, g, gm, av = sel[ok], g[ok], gm[ok], av[ok]
        nrm = g / gm[:, None]
        x0 = self.verts[sel][:, 0]
        d = np.einsum("nd,nd->n", nrm, x0) + (LEVEL - av[:, 0]) / gm
        cen, meas = plane_cuts(self.verts[sel], nrm, d)
        size = self.cell_size[sel]
        wt = meas / size ** (self.dim - 1)
        mine = np.concatenate([cen, nrm, wt[:, None], size[:, None]], axis=1)
        allp = np.concatenate(self.comm.allgather(mine)).reshape(-1, 2 * self.dim + 2)
        order = np.lexsort(allp[:, : self.dim].T[::-1])
        return allp[order]

    def kappa(self, alpha_s_nodes):
        """κ at the local P1 dofs (1/m) from the smoothed fraction at those dofs (owned and
        ghost values), and ``beta`` (see the class)."""
        d = self.dim
        pts = self.interface_points(alpha_s_nodes)
        self.n_points = len(pts)
        if len(pts) == 0:  # no interface: κ = 0, and the projection is not needed
            return np.zeros(len(self.nodes)), np.ones(len(self.nodes))
        P, N, W, S = pts[:, :d], pts[:, d : 2 * d], pts[:, 2 * d], pts[:, 2 * d + 1]
        width = self.radius * self.node_size
        # the points whose κ reaches this rank's nodes (their extension neighbours): the
        # same set whatever the partition, so κ is the same on any number of ranks
        tree = cKDTree(P)
        near = extension_neighbours(self.nodes, P, tree=tree)
        which = np.unique(near[1])
        kap = np.full(len(P), np.nan)
        kap[which] = fit_curvature(P, N, W, self.radius * S, which, tree=tree)
        out = extend_to_nodes(self.nodes, P, kap, width, neighbours=near)
        beta = np.ones(len(self.nodes))
        self.n_contact = 0
        if self.walls is not None:
            dw, _ = self.walls.query(P, distance_upper_bound=2.0 * float(S.max()))
            contact = P[dw < 2.0 * S]
            self.n_contact = len(contact)
            if len(contact):
                dc, _ = cKDTree(contact).query(self.nodes)
                beta = np.clip(dc / width - 1.0, 0.0, 1.0)
        return out, beta
