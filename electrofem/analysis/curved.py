"""Cell volumes and facet areas of curved (second-order geometry) simplex meshes.

The Cython kernels of ``electrofem._postprocess`` are exact on straight cells. On curved cells
(``MeshOptions.order = 2``) each cell is the image of the reference simplex under its
quadratic map ``x(X) = sum_k x_k phi_k(X)`` (basix Lagrange basis, the mesh's own variant and
node order). Then

* a cell's volume is ``sum_q w_q |det J(X_q)|``: ``det J`` is a polynomial of degree
  ``dim (k - 1)``, so the rule (degree 2 dim) is exact;
* a facet's area is ``sum_q w_q |det J| |J^-T n_ref|`` over the reference facet of one cell
  holding it (Nanson's formula), with a degree-8 rule (the integrand is not a polynomial:
  ~1e-9 relative on the benchmark meshes).

Pure numpy on owned entities; the callers sum over ranks.
"""

from __future__ import annotations

import numpy as np

#: Quadrature degrees of the volume and area rules.
VOLUME_DEGREE = 6
AREA_DEGREE = 8


def _element(msh):
    import basix

    cmap = msh.geometry.cmaps[0]
    cell = basix.CellType.triangle if msh.topology.dim == 2 else basix.CellType.tetrahedron
    return basix.create_element(
        basix.ElementFamily.P, cell, cmap.degree, basix.LagrangeVariant(cmap.variant)
    )


def _jacobians(msh, cells: np.ndarray, points: np.ndarray) -> np.ndarray:
    """``J[c, q, i, a] = dx_i/dX_a`` of ``cells`` at reference ``points``."""
    tdim = msh.topology.dim
    dphi = _element(msh).tabulate(1, points)[1 : tdim + 1, :, :, 0]  # (a, q, k)
    x = msh.geometry.x[:, :tdim][msh.geometry.dofmaps[0][cells]]  # (c, k, i)
    return np.einsum("cki,aqk->cqia", x, dphi)


def cell_volumes(msh, cells: np.ndarray, chunk: int = 100_000) -> np.ndarray:
    """Volumes (areas in 2D) of ``cells`` (local indices)."""
    import basix

    cell = basix.CellType.triangle if msh.topology.dim == 2 else basix.CellType.tetrahedron
    points, weights = basix.make_quadrature(cell, VOLUME_DEGREE)
    out = np.empty(len(cells))
    for s in range(0, len(cells), chunk):
        J = _jacobians(msh, cells[s : s + chunk], points)
        out[s : s + chunk] = np.abs(np.linalg.det(J)) @ weights
    return out


def facet_areas(msh, facets: np.ndarray, chunk: int = 100_000) -> np.ndarray:
    """Areas (lengths in 2D) of ``facets`` (local indices), each through one of its cells."""
    import basix

    tdim = msh.topology.dim
    ref = basix.CellType.triangle if tdim == 2 else basix.CellType.tetrahedron
    fcell = basix.CellType.interval if tdim == 2 else basix.CellType.triangle
    top = msh.topology
    top.create_connectivity(tdim - 1, tdim)
    top.create_connectivity(tdim, tdim - 1)
    f2c, c2f = top.connectivity(tdim - 1, tdim), top.connectivity(tdim, tdim - 1)
    first = f2c.offsets[facets]
    cells = f2c.array[first].astype(np.int64)
    nf = tdim + 1
    local = np.argmax(c2f.array.reshape(-1, nf)[cells] == facets[:, None], axis=1)
    # each reference facet: quadrature points mapped onto it, and its reference normal
    qp, qw = basix.make_quadrature(fcell, AREA_DEGREE)
    geom = basix.geometry(ref)
    normals = basix.cell.facet_outward_normals(ref)
    out = np.empty(len(facets))
    for f in range(nf):
        verts = geom[basix.topology(ref)[tdim - 1][f]]
        edges = verts[1:] - verts[0]
        pts = verts[0] + qp @ edges
        size = 0.5 * np.linalg.norm(np.cross(*edges)) if tdim == 3 else np.linalg.norm(edges[0])
        scale = size / qw.sum()  # the reference facet against the quadrature's cell
        sel = np.flatnonzero(local == f)
        for s in range(0, len(sel), chunk):
            rows = sel[s : s + chunk]
            J = _jacobians(msh, cells[rows], pts)
            det = np.linalg.det(J)
            jit = np.linalg.inv(J).transpose(0, 1, 3, 2)  # J^-T
            stretch = np.linalg.norm(jit @ normals[f], axis=-1)
            out[rows] = (np.abs(det) * stretch) @ qw * scale
    return out


def slab_integrals(
    msh,
    dofs: np.ndarray,
    degree: int,
    u: np.ndarray,
    coefficient: np.ndarray,
    cells: np.ndarray,
    axis: int,
    z0: float,
    z1: float,
    n: int,
    chunk: int = 50_000,
) -> tuple[np.ndarray, np.ndarray]:
    """Per-slab ``(volume, sum of coefficient |grad u|^2 dx)`` of a Lagrange field of
    ``degree`` (cell dofs ``dofs``, values ``u``) over ``cells``, by quadrature on the curved
    (or straight) cells; each quadrature point counts in the slab it falls in, so a cell cut
    by a slab plane is split to the rule's resolution (straight P1 cells have the exact
    :func:`electrofem._postprocess.p1_slab_integrals`)."""
    import basix

    tdim = msh.topology.dim
    cell = basix.CellType.triangle if tdim == 2 else basix.CellType.tetrahedron
    points, weights = basix.make_quadrature(cell, max(VOLUME_DEGREE, 2 * degree + 2))
    geo = _element(msh)
    phi = geo.tabulate(0, points)[0, :, :, 0]  # (q, k)
    dpsi = basix.create_element(basix.ElementFamily.P, cell, degree).tabulate(1, points)
    dpsi = dpsi[1 : tdim + 1, :, :, 0]  # (a, q, j)
    vol, energy = np.zeros(n), np.zeros(n)
    width = (z1 - z0) / n
    for s in range(0, len(cells), chunk):
        c = cells[s : s + chunk]
        J = _jacobians(msh, c, points)  # (c, q, i, a)
        xq = np.einsum("ck,qk->cq", msh.geometry.x[msh.geometry.dofmaps[0][c], axis], phi)
        grad_ref = np.einsum("cj,aqj->cqa", u[dofs[c]], dpsi)  # du/dX_a
        grad = np.einsum("cqai,cqa->cqi", np.linalg.inv(J), grad_ref)  # J^-T grad_ref
        dv = np.abs(np.linalg.det(J)) * weights
        slab = np.clip(((xq - z0) / width).astype(int), 0, n - 1)
        np.add.at(vol, slab.ravel(), dv.ravel())
        e = coefficient[c][:, None] * np.einsum("cqi,cqi->cq", grad, grad) * dv
        np.add.at(energy, slab.ravel(), e.ravel())
    return vol, energy
