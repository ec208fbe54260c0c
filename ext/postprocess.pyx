# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""Hot loops of :mod:`electrofem.analysis`: measures of tagged simplices, per tag and per slab.

Conventions (shared with the Python side):

* ``x`` is the ``(n_nodes, 3)`` float64 geometry array of a dolfinx mesh (``mesh.geometry.x``;
  2D meshes have z = 0). Affine P1 geometry only.
* ``nodes`` is a ``(rows, k)`` int32 array of geometry-node indices, one simplex per row:
  ``k = 2`` segments (facets of 2D meshes), ``k = 3`` triangles (facets of 3D meshes, cells of
  2D meshes), ``k = 4`` tetrahedra. ``entities`` picks the rows to use; ``values`` gives the tag
  of each of those rows.
* Results are aligned with ``utags``, a sorted array of unique tag values; a value not in
  ``utags`` is ignored.
* The kernels know nothing about MPI: the caller passes **owned** entities only and reduces.

**Slabs.** ``n`` slabs of equal thickness ``w = (z1 - z0) / n`` along ``axis``. The kernels
clip **exactly**: each simplex's measure is split between the slabs it crosses in proportion to
its part between the slab planes (the fraction of a simplex below a plane ``x_axis = t`` is a
piecewise polynomial of ``t`` in the sorted vertex coordinates; the closed forms used here have
only positive terms, so they are stable for nearly coplanar vertices). So per-slab sums add up
to the totals, and a slab's sum does not depend on how the mesh lines up with the slab planes.
A simplex lying flat in a slab plane (measure-zero in the axis direction) goes wholly to the
slab above the plane (up to rounding); the top face ``x_axis = z1`` goes to the last slab. Parts
below ``z0`` (above ``z1``) count in the first (last) slab.

Every kernel is O(E) for E entities (plus O(slabs crossed) per entity, which is 1 or 2 unless
the slabs are thinner than the elements).
"""

import numpy as np

cimport numpy as cnp
from libc.math cimport fabs, floor, sqrt

cnp.import_array()


# ------------------------------------------------------------------------------------------------
# Geometry of one simplex
# ------------------------------------------------------------------------------------------------
cdef inline double _measure(const double[:, ::1] x, const int[:, ::1] nodes, Py_ssize_t r,
                            int k) noexcept nogil:
    """Length / area / volume of simplex ``nodes[r]`` (k = 2, 3, 4 vertices)."""
    cdef int a0 = nodes[r, 0], a1 = nodes[r, 1], a2, a3
    cdef double e1x = x[a1, 0] - x[a0, 0], e1y = x[a1, 1] - x[a0, 1], e1z = x[a1, 2] - x[a0, 2]
    cdef double e2x, e2y, e2z, e3x, e3y, e3z, cx, cy, cz
    if k == 2:
        return sqrt(e1x * e1x + e1y * e1y + e1z * e1z)
    a2 = nodes[r, 2]
    e2x = x[a2, 0] - x[a0, 0]
    e2y = x[a2, 1] - x[a0, 1]
    e2z = x[a2, 2] - x[a0, 2]
    cx = e1y * e2z - e1z * e2y
    cy = e1z * e2x - e1x * e2z
    cz = e1x * e2y - e1y * e2x
    if k == 3:
        return 0.5 * sqrt(cx * cx + cy * cy + cz * cz)
    a3 = nodes[r, 3]
    e3x = x[a3, 0] - x[a0, 0]
    e3y = x[a3, 1] - x[a0, 1]
    e3z = x[a3, 2] - x[a0, 2]
    return fabs(cx * e3x + cy * e3y + cz * e3z) / 6.0


cdef inline void _sort(double* z, int k) noexcept nogil:
    """Insertion sort of k <= 4 values."""
    cdef int i, j
    cdef double v
    for i in range(1, k):
        v = z[i]
        j = i - 1
        while j >= 0 and z[j] > v:
            z[j + 1] = z[j]
            j -= 1
        z[j + 1] = v


cdef inline double _below(const double* z, int k, double t) noexcept nogil:
    """Fraction of a simplex with sorted vertex coordinates ``z[0..k-1]`` lying below ``t``.

    The push-forward of the uniform measure on a (k-1)-simplex by an affine map is the B-spline
    with knots z; these are its cumulative forms, written with positive terms only.
    """
    cdef double a, b, c, e
    if t <= z[0]:
        return 0.0
    if t >= z[k - 1]:
        return 1.0
    if k == 2:
        return (t - z[0]) / (z[1] - z[0])
    if k == 3:
        if t <= z[1]:
            a = t - z[0]
            return a * a / ((z[1] - z[0]) * (z[2] - z[0]))
        c = z[2] - t
        return 1.0 - c * c / ((z[2] - z[0]) * (z[2] - z[1]))
    # k == 4
    if t <= z[1]:
        a = t - z[0]
        return a * a * a / ((z[1] - z[0]) * (z[2] - z[0]) * (z[3] - z[0]))
    if t >= z[2]:
        e = z[3] - t
        return 1.0 - e * e * e / ((z[3] - z[0]) * (z[3] - z[1]) * (z[3] - z[2]))
    # z1 < t < z2: a >= b > 0, c, e > 0
    a = t - z[0]
    b = t - z[1]
    c = z[2] - t
    e = z[3] - t
    return (a * a * b * b + a * b * (a + b) * (c + e) + c * e * (a * a + a * b + b * b)) / (
        (a + c) * (a + e) * (b + c) * (b + e))


cdef inline int _slab(double z, double z0, double w, int n) noexcept nogil:
    cdef int s = <int>floor((z - z0) / w)
    if s < 0:
        return 0
    if s >= n:
        return n - 1
    return s


cdef inline void _spread(const double* zs, int k, double value, double z0, double w, int n,
                         double* out) noexcept nogil:
    """Add ``value`` to ``out[slab]`` split by the fraction of the simplex in each slab."""
    cdef int lo = _slab(zs[0], z0, w, n), hi = _slab(zs[k - 1], z0, w, n), s
    cdef double prev = 0.0, f
    if lo == hi:
        out[lo] += value
        return
    for s in range(lo, hi):
        f = _below(zs, k, z0 + (s + 1) * w)
        out[s] += value * (f - prev)
        prev = f
    out[hi] += value * (1.0 - prev)


cdef inline int _axis_coords(const double[:, ::1] x, const int[:, ::1] nodes, Py_ssize_t r,
                             int k, int axis, double* zs) noexcept nogil:
    cdef int i
    for i in range(k):
        zs[i] = x[nodes[r, i], axis]
    _sort(zs, k)
    return 0


def _lookup(const int[::1] utags):
    """Table value - utags[0] -> position in utags (-1: not a listed tag)."""
    if utags.shape[0] == 0:
        return np.full(1, -1, np.int32), 0
    lo, hi = int(utags[0]), int(utags[utags.shape[0] - 1])
    lut = np.full(hi - lo + 1, -1, np.int32)
    lut[np.asarray(utags) - lo] = np.arange(utags.shape[0], dtype=np.int32)
    return lut, lo


def _check(x, nodes, entities, values):
    if x.shape[1] != 3:
        raise ValueError("x must be (n_nodes, 3)")
    if nodes.shape[1] not in (2, 3, 4):
        raise ValueError(f"nodes must have 2, 3 or 4 columns (simplices), got {nodes.shape[1]}")
    if entities.shape[0] != values.shape[0]:
        raise ValueError("entities and values must have the same length")


cdef void _by_tag(const double[:, ::1] x, const int[:, ::1] nodes, const int[::1] entities,
                  const int[::1] values, const int[::1] lut, int lo, int axis, double z0,
                  double z1, int nslab, double[::1] total, double[:, ::1] binned) noexcept nogil:
    cdef Py_ssize_t i, r, ne = entities.shape[0], nl = lut.shape[0]
    cdef int k = nodes.shape[1], t, v
    cdef double m, w = (z1 - z0) / nslab if nslab > 0 else 1.0
    cdef double zs[4]
    for i in range(ne):
        v = values[i] - lo
        if v < 0 or v >= nl:
            continue
        t = lut[v]
        if t < 0:
            continue
        r = entities[i]
        m = _measure(x, nodes, r, k)
        total[t] += m
        if nslab > 0:
            _axis_coords(x, nodes, r, k, axis, zs)
            _spread(zs, k, m, z0, w, nslab, &binned[t, 0])


def _measures(x, nodes, entities, values, utags, int axis, double z0, double z1, int nslab):
    _check(x, nodes, entities, values)
    cdef const int[::1] ut = np.ascontiguousarray(utags, dtype=np.int32)
    lut, lo = _lookup(ut)
    total = np.zeros(ut.shape[0])
    binned = np.zeros((ut.shape[0], max(nslab, 1)))
    if nslab > 0 and not (0 <= axis < 3 and z1 > z0):
        raise ValueError(f"bad slabs: axis {axis}, [{z0}, {z1}]")
    _by_tag(np.ascontiguousarray(x, dtype=np.float64),
            np.ascontiguousarray(nodes, dtype=np.int32),
            np.ascontiguousarray(entities, dtype=np.int32),
            np.ascontiguousarray(values, dtype=np.int32),
            lut, lo, axis, z0, z1, nslab, total, binned)
    return total, (binned if nslab > 0 else None)


# ------------------------------------------------------------------------------------------------
# Public kernels
# ------------------------------------------------------------------------------------------------
def facet_areas_by_tag(x, nodes, entities, values, utags):
    """Total measure per tag of the facets ``nodes[entities[i]]`` tagged ``values[i]``.

    Facets are segments (2D meshes) or triangles (3D meshes); lengths/areas in the units of
    ``x``. Returns a float64 array aligned with ``utags``. O(F) for F facets.
    """
    return _measures(x, nodes, entities, values, utags, 0, 0.0, 1.0, 0)[0]


def facet_areas_binned(x, nodes, entities, values, utags, int axis, double z0, double z1,
                       int nslab):
    """:func:`facet_areas_by_tag` plus the areas split into ``nslab`` slabs along ``axis``.

    Returns ``(total (T,), binned (T, nslab))``; exact clipping (see the module docstring), so
    ``binned.sum(1) == total`` up to rounding. O(F).
    """
    if nslab < 1:
        raise ValueError("nslab must be >= 1")
    return _measures(x, nodes, entities, values, utags, axis, z0, z1, nslab)


def cell_volumes_by_tag(x, nodes, entities, values, utags, int axis=0, double z0=0.0,
                        double z1=1.0, int nslab=0):
    """Volume (area in 2D) per tag of the cells ``nodes[entities[i]]`` tagged ``values[i]``.

    ``nodes`` is the geometry dofmap (triangles or tetrahedra). With ``nslab > 0`` the volumes
    are also split exactly into slabs along ``axis``. Returns ``(total (T,), binned (T, nslab)
    or None)``. O(C) for C cells.
    """
    return _measures(x, nodes, entities, values, utags, axis, z0, z1, nslab)


def p1_slab_integrals(x, nodes, dofs, u, coefficient, entities, int axis, double z0,
                      double z1, int nslab):
    """Per-slab integrals of a P1 field ``u`` over the cells ``entities`` (triangles/tets).

    ``nodes[c]`` are the geometry nodes and ``dofs[c]`` the P1 dofs of cell ``c``, in the same
    (reference-vertex) order; ``coefficient[c]`` a per-cell coefficient ``k``. The gradient of a
    P1 field is constant on an affine cell: ``grad u = J^{-T} (u_i - u_0)_i`` with ``J`` the
    cell's Jacobian, so each integral is that constant times the (exactly clipped) part of the
    cell's measure in the slab.

    Returns ``(volume, grad, energy)``, each ``(nslab,)``: the measure of the cells in the slab,
    ``int d u / d x_axis dx`` and ``int k |grad u|^2 dx`` over it. O(C).
    """
    if nslab < 1:
        raise ValueError("nslab must be >= 1")
    if not (0 <= axis < 3 and z1 > z0):
        raise ValueError(f"bad slabs: axis {axis}, [{z0}, {z1}]")
    cdef const double[:, ::1] xv = np.ascontiguousarray(x, dtype=np.float64)
    cdef const int[:, ::1] nv = np.ascontiguousarray(nodes, dtype=np.int32)
    cdef const int[:, ::1] dv = np.ascontiguousarray(dofs, dtype=np.int32)
    cdef const double[::1] uv = np.ascontiguousarray(u, dtype=np.float64)
    cdef const double[::1] kv = np.ascontiguousarray(coefficient, dtype=np.float64)
    cdef const int[::1] ev = np.ascontiguousarray(entities, dtype=np.int32)
    cdef int k = nv.shape[1]
    if k not in (3, 4) or dv.shape[1] != k:
        raise ValueError("p1_slab_integrals: triangles or tetrahedra with P1 dofs only")
    if axis >= k - 1:
        raise ValueError(f"axis {axis} is not an axis of a {k - 1}D mesh")
    vol_a = np.zeros(nslab)
    grad_a = np.zeros(nslab)
    en_a = np.zeros(nslab)
    cdef double[::1] vol = vol_a, gsum = grad_a, esum = en_a
    cdef Py_ssize_t i, c, ne = ev.shape[0]
    cdef int j
    cdef double w = (z1 - z0) / nslab, det, m, g[3], du[3], e[3][3], zs[4]
    with nogil:
        for i in range(ne):
            c = ev[i]
            for j in range(1, k):
                du[j - 1] = uv[dv[c, j]] - uv[dv[c, 0]]
                e[j - 1][0] = xv[nv[c, j], 0] - xv[nv[c, 0], 0]
                e[j - 1][1] = xv[nv[c, j], 1] - xv[nv[c, 0], 1]
                e[j - 1][2] = xv[nv[c, j], 2] - xv[nv[c, 0], 2]
            if k == 3:
                # rows e1, e2 of J^T; solve e_i . g = du_i in the plane
                det = e[0][0] * e[1][1] - e[0][1] * e[1][0]
                g[0] = (e[1][1] * du[0] - e[0][1] * du[1]) / det
                g[1] = (-e[1][0] * du[0] + e[0][0] * du[1]) / det
                g[2] = 0.0
                m = 0.5 * fabs(det)
            else:
                # g = (du0 (e2 x e3) + du1 (e3 x e1) + du2 (e1 x e2)) / det
                det = (e[0][0] * (e[1][1] * e[2][2] - e[1][2] * e[2][1])
                       - e[0][1] * (e[1][0] * e[2][2] - e[1][2] * e[2][0])
                       + e[0][2] * (e[1][0] * e[2][1] - e[1][1] * e[2][0]))
                for j in range(3):
                    g[j] = 0.0
                g[0] += du[0] * (e[1][1] * e[2][2] - e[1][2] * e[2][1])
                g[1] += du[0] * (e[1][2] * e[2][0] - e[1][0] * e[2][2])
                g[2] += du[0] * (e[1][0] * e[2][1] - e[1][1] * e[2][0])
                g[0] += du[1] * (e[2][1] * e[0][2] - e[2][2] * e[0][1])
                g[1] += du[1] * (e[2][2] * e[0][0] - e[2][0] * e[0][2])
                g[2] += du[1] * (e[2][0] * e[0][1] - e[2][1] * e[0][0])
                g[0] += du[2] * (e[0][1] * e[1][2] - e[0][2] * e[1][1])
                g[1] += du[2] * (e[0][2] * e[1][0] - e[0][0] * e[1][2])
                g[2] += du[2] * (e[0][0] * e[1][1] - e[0][1] * e[1][0])
                for j in range(3):
                    g[j] /= det
                m = fabs(det) / 6.0
            _axis_coords(xv, nv, c, k, axis, zs)
            _spread(zs, k, m, z0, w, nslab, &vol[0])
            _spread(zs, k, m * g[axis], z0, w, nslab, &gsum[0])
            _spread(zs, k, m * kv[c] * (g[0] * g[0] + g[1] * g[1] + g[2] * g[2]), z0, w,
                    nslab, &esum[0])
    return vol_a, grad_a, en_a
