# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""Linked-cell lists shared by the kernels of ``packing.pyx`` (cimported, compiled inline).

Particles are binned into a grid of cells at least one interaction range wide, so a particle
(or a query point) only visits the 3^dim neighbouring cells: the pair loop
(:func:`_collect_pairs`) and the point query (:func:`_owner`) are the only neighbour loops.
Lateral axes are periodic (minimum image) or walls; the last axis always has walls.
"""

from libc.math cimport floor


cdef struct Grid:
    int nc[3]
    double cs[3]
    int dim
    int periodic


cdef inline int _cell_of(double[:, ::1] x, Py_ssize_t i, Grid* g, double[::1] L) noexcept nogil:
    cdef int a, c, idx = 0, stride = 1
    for a in range(g.dim):
        c = <int>floor(x[i, a] / g.cs[a])
        if c < 0:
            c = g.nc[a] - 1 if (g.periodic and a < g.dim - 1) else 0
        if c >= g.nc[a]:
            c = 0 if (g.periodic and a < g.dim - 1) else g.nc[a] - 1
        idx += c * stride
        stride *= g.nc[a]
    return idx


cdef inline void _build_cells(double[:, ::1] x, double[::1] L, Grid* g,
                              int[::1] head, int[::1] nxt) noexcept nogil:
    cdef Py_ssize_t i, n = x.shape[0]
    cdef int c
    head[:] = -1
    for i in range(n):
        c = _cell_of(x, i, g, L)
        nxt[i] = head[c]
        head[c] = <int>i


cdef inline Grid _make_grid(double[::1] L, int dim, bint periodic, double reach):
    cdef Grid g
    cdef int a
    g.dim = dim
    g.periodic = periodic
    for a in range(3):
        g.nc[a] = 1
        g.cs[a] = 1.0
    for a in range(dim):
        g.nc[a] = max(1, <int>floor(L[a] / reach))
        g.cs[a] = L[a] / g.nc[a]
    return g


cdef inline int _offsets(int nc, int periodic_axis, int* out) noexcept nogil:
    """Distinct neighbour-cell offsets along one axis."""
    if nc >= 3 or not periodic_axis:
        out[0] = -1
        out[1] = 0
        out[2] = 1
        return 3
    if nc == 2:
        out[0] = 0
        out[1] = 1
        return 2
    out[0] = 0
    return 1


cdef inline void _neighbour_axes(Grid* g, int* cc, int* n, int* nb) noexcept nogil:
    """Neighbour cells of the cell with coordinates ``cc``, axis by axis: ``n[a]`` distinct
    coordinates ``nb[3*a + k]`` along axis ``a``, wrapped across periodic sides, -1 beyond a
    wall (a single 0 on the unused third axis in 2D). The cell at ``(k0, k1, k2)`` is
    ``nb[k0] + nc0 * (nb[3 + k1] + nc1 * nb[6 + k2])``."""
    cdef int a, k, cn
    cdef int off[3]
    for a in range(3):
        if a >= g.dim:
            n[a] = 1
            nb[3 * a] = 0
            continue
        n[a] = _offsets(g.nc[a], g.periodic and a < g.dim - 1, off)
        for k in range(n[a]):
            cn = cc[a] + off[k]
            if cn < 0 or cn >= g.nc[a]:
                if g.periodic and a < g.dim - 1:
                    cn = (cn + g.nc[a]) % g.nc[a]
                else:
                    cn = -1
            nb[3 * a + k] = cn


cdef inline double _min_image(double dx, double L, bint periodic) noexcept nogil:
    if periodic:
        if dx > 0.5 * L:
            dx -= L
        elif dx < -0.5 * L:
            dx += L
    return dx


cdef inline Py_ssize_t _collect_pairs(double[:, ::1] x, double[::1] r, double[::1] L,
                                      Grid* g, int[::1] head, int[::1] nxt, double frac,
                                      double skin, int[::1] pi, int[::1] pj) noexcept nogil:
    """Fill (pi, pj) with pairs i<j closer than r_i + r_j + frac*rmin + skin (minimum image
    across periodic sides); return the count, or -(needed) when the buffers are too small.
    Cells must be built. The one neighbour loop over particle pairs (``relax`` and
    ``pairs_within``)."""
    cdef Py_ssize_t i, j, n = x.shape[0], cnt = 0, cap = pi.shape[0]
    cdef int a, ox, oy, oz, c, idx, dim = g.dim, last = g.dim - 1
    cdef int cc[3]
    cdef int nn[3]
    cdef int nb[9]
    cdef double d2, reach, rmin, dxa
    cdef bint per = g.periodic
    for i in range(n):
        idx = _cell_of(x, i, g, L)
        for a in range(dim):
            cc[a] = idx % g.nc[a]
            idx = idx // g.nc[a]
        _neighbour_axes(g, cc, nn, nb)
        for ox in range(nn[0]):
            if nb[ox] < 0:
                continue
            for oy in range(nn[1]):
                if nb[3 + oy] < 0:
                    continue
                for oz in range(nn[2]):
                    if nb[6 + oz] < 0:
                        continue
                    c = nb[ox] + g.nc[0] * (nb[3 + oy] + g.nc[1] * nb[6 + oz])
                    j = head[c]
                    while j >= 0:
                        if j > i:
                            rmin = r[i] if r[i] < r[j] else r[j]
                            reach = r[i] + r[j] + frac * rmin + skin
                            d2 = 0.0
                            for a in range(dim):
                                dxa = _min_image(x[i, a] - x[j, a], L[a], per and a < last)
                                d2 += dxa * dxa
                            if d2 < reach * reach:
                                if cnt < cap:
                                    pi[cnt] = <int>i
                                    pj[cnt] = <int>j
                                cnt += 1
                        j = nxt[j]
    return cnt if cnt <= cap else -cnt


cdef struct Cells:
    int cc[3]      # cell coordinates the neighbour lists below belong to (-1: none yet)
    int nn[3]
    int nb[9]


cdef inline Py_ssize_t _owner(double* p, double[:, ::1] x, double[::1] r, double[::1] L,
                              Grid* g, int[::1] head, int[::1] nxt, Cells* q, bint first,
                              double* pw_out) noexcept nogil:
    """The particle containing point ``p`` with the smallest power distance
    ``|p - c|^2 - r^2`` (the radical-plane split), or the first one found when ``first``;
    -1 when no particle contains it. The one neighbour loop over point queries
    (``phase_counts``, ``union_samples``). ``p`` must lie in the box; ``q`` caches the
    neighbour cells between calls (set ``q.cc[0] = -1`` before the first)."""
    cdef int a, ox, oy, oz, c, dim = g.dim, last = g.dim - 1
    cdef bint per = g.periodic
    cdef int cc[3]
    cdef bint same = True
    cdef int* nb = q.nb
    cdef double d2, dxa, pw, bestpw = 0.0
    cdef Py_ssize_t j, best = -1
    for a in range(dim):
        cc[a] = <int>floor(p[a] / g.cs[a])
        if cc[a] >= g.nc[a]:
            cc[a] = g.nc[a] - 1
        elif cc[a] < 0:
            cc[a] = 0
        if cc[a] != q.cc[a]:
            same = False
    if not same:
        for a in range(dim):
            q.cc[a] = cc[a]
        _neighbour_axes(g, cc, q.nn, nb)
    for ox in range(q.nn[0]):
        if nb[ox] < 0:
            continue
        for oy in range(q.nn[1]):
            if nb[3 + oy] < 0:
                continue
            for oz in range(q.nn[2]):
                if nb[6 + oz] < 0:
                    continue
                c = nb[ox] + g.nc[0] * (nb[3 + oy] + g.nc[1] * nb[6 + oz])
                j = head[c]
                while j >= 0:
                    d2 = 0.0
                    for a in range(dim):
                        dxa = _min_image(p[a] - x[j, a], L[a], per and a < last)
                        d2 += dxa * dxa
                    pw = d2 - r[j] * r[j]
                    if pw < 0.0 and (best < 0 or pw < bestpw):
                        best = j
                        bestpw = pw
                        if first:
                            pw_out[0] = pw
                            return best
                    j = nxt[j]
    pw_out[0] = bestpw
    return best
