# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""Hot loops of the particle packer: overlap relaxation with cell lists, and phase counting.

Geometry conventions (shared with ``electrofem.microstructure``): ``x`` is ``(N, dim)`` with
``dim`` in {2, 3}; the last axis is the through-plane axis bounded by walls at 0 and H; the
lateral axes are periodic (minimum image) or bounded by walls.

Every routine is O(N) per sweep: particles are binned into a grid of cells at least one
interaction range wide (a linked-cell list, ``cells.pxd``), so each particle only visits the
3^dim neighbouring cells.
"""

import numpy as np

cimport numpy as cnp
from libc.math cimport fabs, floor, sqrt

cnp.import_array()

from cells cimport (
    Cells,
    Grid,
    _build_cells,
    _collect_pairs,
    _make_grid,
    _min_image,
    _owner,
)
from clearance cimport (
    _circle_face,
    _contact_edges,
    _edges_corners,
    _overlap_graph,
    _radical_centre,
    _triangles,
    _triples,
)


cdef inline double _pair_force(double d, double s, double rmin, double hard_frac,
                               double band, double* viol) noexcept nogil:
    """Signed force magnitude along the outward normal (positive = repulsive).

    Hard core: ``d >= s - hard_frac*rmin``. Near-tangent band: ``|d - s| >= band*rmin``, a
    pair inside the band is moved to the nearer edge (a finite overlap or a finite gap).
    """
    cdef double lim = s - hard_frac * rmin, v, w
    if d < lim:
        v = (lim - d) / rmin
        if v > viol[0]:
            viol[0] = v
        return lim - d
    w = band * rmin
    if w > 0.0 and d > s - w and d < s + w:
        if d < s:
            v = (d - (s - w)) / rmin
            if v > viol[0]:
                viol[0] = v
            return (s - w) - d
        v = (s + w - d) / rmin
        if v > viol[0]:
            viol[0] = v
        return s + w - d
    return 0.0


cdef double _forces(double[:, ::1] x, double[::1] r, double[::1] zlo, double[::1] zhi,
                    double[::1] L, int dim, bint per, int[::1] pi, int[::1] pj,
                    Py_ssize_t npair, double[:, ::1] f, double hard_frac,
                    double band, bint occ_vertices) noexcept nogil:
    """Accumulate forces into f; return the largest constraint violation (relative to r)."""
    cdef Py_ssize_t i, j, k, n = x.shape[0]
    cdef int a, last = dim - 1
    cdef double dx[3]
    cdef double d2, d, s, rmin, fm, viol = 0.0, H = L[dim - 1], z, dist, lo, hi, v
    for i in range(n):
        for a in range(dim):
            f[i, a] = 0.0
    for k in range(npair):
        i = pi[k]
        j = pj[k]
        s = r[i] + r[j]
        rmin = r[i] if r[i] < r[j] else r[j]
        d2 = 0.0
        for a in range(dim):
            dx[a] = _min_image(x[i, a] - x[j, a], L[a], per and a < last)
            d2 += dx[a] * dx[a]
        if d2 > 0.0:
            d = sqrt(d2)
            fm = _pair_force(d, s, rmin, hard_frac, band, &viol)
            if fm != 0.0:
                for a in range(dim):
                    f[i, a] += fm * dx[a] / d
                    f[j, a] -= fm * dx[a] / d
            if dim == 3 and band > 0.0 and d < s:
                viol = _circle_face(x, r, L, per, i, j, dx, d, f, band, viol, occ_vertices)
                viol = _contact_edges(x, r, L, per, i, j, dx, d, f, band, viol)
        else:
            # coincident centres: separate along the last axis
            f[i, last] += r[i]
            f[j, last] -= r[j]
            viol = viol if viol > 1.0 else 1.0
    for i in range(n):
        # walls at 0 and H on the through-plane axis (particle surface vs wall)
        z = x[i, last]
        fm = _pair_force(z, r[i], r[i], hard_frac, band, &viol)
        f[i, last] += fm
        fm = _pair_force(H - z, r[i], r[i], hard_frac, band, &viol)
        f[i, last] -= fm
        # layer bounds on the centre
        if z < zlo[i]:
            f[i, last] += zlo[i] - z
            v = (zlo[i] - z) / r[i]
            if v > viol:
                viol = v
        elif z > zhi[i]:
            f[i, last] -= z - zhi[i]
            v = (z - zhi[i]) / r[i]
            if v > viol:
                viol = v
        # lateral faces
        for a in range(last):
            if per:
                # no sliver where a particle barely crosses a periodic face
                if band > 0.0:
                    dist = x[i, a] if x[i, a] < L[a] - x[i, a] else L[a] - x[i, a]
                    lo = r[i] * (1.0 - 3.0 * band)
                    hi = r[i] * (1.0 + 3.0 * band)
                    if dist > lo and dist < hi:
                        v = (dist - lo) if dist - lo < hi - dist else (hi - dist)
                        if v / r[i] > viol:
                            viol = v / r[i]
                        # fm > 0 pushes away from the nearest face
                        fm = -(dist - lo) if dist - lo < hi - dist else (hi - dist)
                        if x[i, a] < L[a] - x[i, a]:
                            f[i, a] += fm
                        else:
                            f[i, a] -= fm
            else:
                fm = _pair_force(x[i, a], r[i], r[i], hard_frac, band, &viol)
                f[i, a] += fm
                fm = _pair_force(L[a] - x[i, a], r[i], r[i], hard_frac, band, &viol)
                f[i, a] -= fm
        if dim == 3 and band > 0.0:
            viol = _edges_corners(x, r, L, per, i, f, band, viol)
    return viol


cdef tuple _pair_list(double[:, ::1] x, double[::1] r, double[::1] L, Grid* g,
                      int[::1] head, int[::1] nxt, double frac, double skin, pi_a, pj_a):
    """Pairs from :func:`_collect_pairs` into the int32 buffers ``(pi_a, pj_a)``, enlarged
    when too small; returns ``(pi_a, pj_a, npair)``. Cells must be built."""
    cdef int[::1] pi = pi_a
    cdef int[::1] pj = pj_a
    cdef Py_ssize_t npair = _collect_pairs(x, r, L, g, head, nxt, frac, skin, pi, pj)
    if npair < 0:
        pi_a = np.empty(-2 * npair, dtype=np.int32)
        pj_a = np.empty(-2 * npair, dtype=np.int32)
        pi = pi_a
        pj = pj_a
        npair = _collect_pairs(x, r, L, g, head, nxt, frac, skin, pi, pj)
    return pi_a, pj_a, npair


def relax(double[:, ::1] x, double[::1] r, double[::1] zlo, double[::1] zhi,
          double[::1] L, bint periodic, double hard_frac=0.0, double band=0.0,
          int max_iter=20000, double tol=1e-4, double dt_max=0.3, int stall=0,
          bint occ_vertices=True):
    """Move particles (in place) until no constraint is violated by more than ``tol``.

    FIRE minimisation (Bitzek et al., PRL 97, 170201, 2006) of harmonic penalties, unit mass:

    * pairs: centre distance ``d >= r_i + r_j - hard_frac * min(r_i, r_j)`` (a negative
      ``hard_frac`` demands a gap);
    * no near-tangent pair: ``|d - s| >= band * rmin``; a pair in the band moves to the nearer
      edge, a finite overlap or a finite gap (slivers and point contacts cannot mesh);
    * walls at 0 and H on the last axis: the same rules with the wall as partner;
    * centre bounds ``zlo <= z <= zhi`` (layers);
    * periodic lateral faces: no particle surface within ``3 * band * r`` of a face (a piece
      cut off by a face must be thick enough to mesh; moving one particle is cheap);
      otherwise (non-periodic) lateral walls as for the top/bottom;
    * 3D, with ``band``: no contact circle of an overlapping pair reaches to within
      ``band * rho`` (``rho`` its radius) of a face plane, wall or periodic side (a face
      grazing a contact disk cuts a sliver off it); the pair moves rigidly;
    * 3D, with ``band``: no particle surface within ``band * r`` of a box edge or corner
      (3 band, as for the periodic faces, made paper 002's 3D L-S section unreachable at
      porosity 0.40);
    * 3D, with ``band``: three mutually overlapping balls do not nearly meet in one point (the
      half chord of their radical line in the spheres stays out of ``+-band * rmin``);
    * 3D, with ``band``: no contact circle passes within that band of a box edge line, and no
      point where three spheres meet lies within it of a face plane (the face circles would
      cross each other or the edge nearly in one point);
    * 3D, with ``band`` and ``occ_vertices``: the start points OCC gives a contact circle that
      crosses a face plane lie ``band * rmin`` off it (calendering turns this off: in its
      dense final state it does not settle together with the other rules).

    Pairs come from a Verlet list (cell-list build, skin 0.3 r_min) rebuilt whenever a particle
    has moved more than half the skin: O(N) per iteration. With ``stall > 0`` the run stops
    early when the violation has not halved over ``stall`` iterations (a jammed state).

    Returns ``(iterations, max_violation)``; converged when ``max_violation < tol``
    (a length relative to the particle radius).
    """
    cdef Py_ssize_t n = x.shape[0], i, npair = 0
    cdef int dim = x.shape[1], a, it = 0, npos = 0, last_best_it = 0
    cdef double rmax = 0.0, rmin_all = 1e300, reach, viol = 0.0, P, vnorm, fnorm
    cdef double alpha = 0.1, dt = 0.05 * dt_max, ext, skin, disp, d2, best = 1e300
    if n == 0:
        return 0, 0.0
    for i in range(n):
        if r[i] > rmax:
            rmax = r[i]
        if r[i] < rmin_all:
            rmin_all = r[i]
    ext = -hard_frac if hard_frac < 0 else 0.0
    if band > ext:
        ext = band
    skin = 0.3 * rmin_all
    reach = (2.0 * rmax * (1.0 + ext) + skin) * 1.0001
    cdef Grid g = _make_grid(L, dim, periodic, reach)
    cdef int ncell = g.nc[0] * g.nc[1] * g.nc[2]
    head_a = np.empty(ncell, dtype=np.int32)
    nxt_a = np.empty(n, dtype=np.int32)
    pi_a = np.empty(16 * n, dtype=np.int32)
    pj_a = np.empty(16 * n, dtype=np.int32)
    f_a = np.zeros((n, dim))
    v_a = np.zeros((n, dim))
    x0_a = np.zeros((n, dim))
    cdef int[::1] head = head_a
    cdef int[::1] nxt = nxt_a
    cdef int[::1] pi = pi_a
    cdef int[::1] pj = pj_a
    cdef double[:, ::1] f = f_a
    cdef double[:, ::1] v = v_a
    cdef double[:, ::1] x0 = x0_a
    cdef bint rebuild = True
    ptr_a = np.zeros(n + 1, dtype=np.int32)
    fill_a = np.zeros(n, dtype=np.int32)
    mark_a = np.zeros(n, dtype=np.int32)
    nbr_a = np.zeros(32 * n, dtype=np.int32)
    cdef int[::1] ptr = ptr_a
    cdef int[::1] fill = fill_a
    cdef int[::1] mark = mark_a
    cdef int[::1] nbr = nbr_a
    tri_a = np.zeros((8 * n, 3), dtype=np.int32)
    cdef int[:, ::1] tri = tri_a
    cdef Py_ssize_t ntri
    for it in range(max_iter):
        if rebuild:
            if periodic:
                for i in range(n):
                    for a in range(dim - 1):
                        if x[i, a] < 0.0 or x[i, a] >= L[a]:
                            x[i, a] = x[i, a] - L[a] * floor(x[i, a] / L[a])
            _build_cells(x, L, &g, head, nxt)
            pi_a, pj_a, npair = _pair_list(x, r, L, &g, head, nxt, ext, skin, pi_a, pj_a)
            pi = pi_a
            pj = pj_a
            for i in range(n):
                for a in range(dim):
                    x0[i, a] = x[i, a]
            rebuild = False
        viol = _forces(x, r, zlo, zhi, L, dim, periodic, pi, pj, npair, f, hard_frac, band,
                       occ_vertices)
        if dim == 3 and band > 0.0:
            if nbr_a.shape[0] < 2 * npair:
                nbr_a = np.empty(4 * npair, dtype=np.int32)
                nbr = nbr_a
            _overlap_graph(x, r, L, periodic, pi, pj, npair, ptr, nbr, fill)
            ntri = _triangles(<int>n, ptr, nbr, mark, tri)
            if ntri < 0:
                tri_a = np.empty((-2 * ntri, 3), dtype=np.int32)
                tri = tri_a
                ntri = _triangles(<int>n, ptr, nbr, mark, tri)
            viol = _triples(x, r, L, periodic, tri, ntri, f, band, viol)
        if viol < tol:
            break
        if stall > 0:
            if viol < 0.5 * best:
                best = viol
                last_best_it = it
            elif it - last_best_it > stall:
                break
        P = 0.0
        vnorm = 0.0
        fnorm = 0.0
        for i in range(n):
            for a in range(dim):
                P += f[i, a] * v[i, a]
                vnorm += v[i, a] * v[i, a]
                fnorm += f[i, a] * f[i, a]
        vnorm = sqrt(vnorm)
        fnorm = sqrt(fnorm)
        if P > 0.0:
            if fnorm > 0.0:
                for i in range(n):
                    for a in range(dim):
                        v[i, a] = (1.0 - alpha) * v[i, a] + alpha * vnorm * f[i, a] / fnorm
            npos += 1
            if npos > 5:
                dt = dt * 1.1 if dt * 1.1 < dt_max else dt_max
                alpha *= 0.99
        else:
            for i in range(n):
                for a in range(dim):
                    v[i, a] = 0.0
            dt *= 0.5
            alpha = 0.1
            npos = 0
        disp = 0.0
        for i in range(n):
            d2 = 0.0
            for a in range(dim):
                v[i, a] += dt * f[i, a]
                x[i, a] += dt * v[i, a]
                d2 += (x[i, a] - x0[i, a]) * (x[i, a] - x0[i, a])
            if d2 > disp:
                disp = d2
        if disp > 0.25 * skin * skin:
            rebuild = True
    if periodic:
        for i in range(n):
            for a in range(dim - 1):
                x[i, a] = x[i, a] - L[a] * floor(x[i, a] / L[a])
    return it + 1, viol


def pairs_within(double[:, ::1] x, double[::1] r, double[::1] L, bint periodic,
                 double gap_frac=0.1):
    """All pairs with centre distance ``d < r_i + r_j + gap_frac * min(r_i, r_j)``.

    Returns ``(i, j, d)`` arrays with ``i < j`` (minimum image across periodic sides). O(N).
    """
    cdef Py_ssize_t n = x.shape[0], i, j, k, npair
    cdef int dim = x.shape[1], a, last = dim - 1
    cdef double rmax = 0.0, d2, dxa
    if n < 2:
        return (np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0))
    for i in range(n):
        if r[i] > rmax:
            rmax = r[i]
    cdef Grid g = _make_grid(L, dim, periodic, 2.0 * rmax * (1.0 + max(gap_frac, 0.0)) * 1.0001)
    head_a = np.empty(g.nc[0] * g.nc[1] * g.nc[2], dtype=np.int32)
    nxt_a = np.empty(n, dtype=np.int32)
    cdef int[::1] head = head_a
    cdef int[::1] nxt = nxt_a
    _build_cells(x, L, &g, head, nxt)
    pi_a, pj_a, npair = _pair_list(x, r, L, &g, head, nxt, gap_frac, 0.0,
                                   np.empty(8 * n, dtype=np.int32),
                                   np.empty(8 * n, dtype=np.int32))
    cdef int[::1] pi = pi_a
    cdef int[::1] pj = pj_a
    d_a = np.empty(npair)
    cdef double[::1] d = d_a
    with nogil:
        for k in range(npair):
            i = pi[k]
            j = pj[k]
            d2 = 0.0
            for a in range(dim):
                dxa = _min_image(x[i, a] - x[j, a], L[a], periodic and a < last)
                d2 += dxa * dxa
            d[k] = sqrt(d2)
    return pi_a[:npair].astype(np.int64), pj_a[:npair].astype(np.int64), d_a


def phase_counts(double[:, ::1] x, double[::1] r, double[::1] rcore, int[::1] core_phase,
                 int[::1] shell_phase, double[::1] L, bint periodic, double h, int nphase):
    """Sample the box on a regular grid of spacing ~h; count points per phase per plane.

    A point belongs to the particle of smallest power distance ``|p - c|^2 - r^2`` among those
    containing it (the radical-plane split used by the mesher), and to its core phase when
    inside the core radius, else to its shell phase; otherwise to phase 1 (electrolyte).

    Returns ``(counts, z)``: ``counts[k, p]`` is the number of points of phase ``p`` in plane
    ``k`` (at through-plane coordinate ``z[k]``). Cost: O(points * particles per cell).
    """
    cdef Py_ssize_t n = x.shape[0], i
    cdef int dim = x.shape[1], a, last = dim - 1
    cdef int npts[3]
    cdef double hh[3]
    for a in range(3):
        npts[a] = 1
        hh[a] = 1.0
    for a in range(dim):
        npts[a] = max(1, <int>(L[a] / h + 0.5))
        hh[a] = L[a] / npts[a]
    counts_a = np.zeros((npts[last], nphase + 1), dtype=np.int64)
    zs = (np.arange(npts[last]) + 0.5) * hh[last]
    cdef long long[:, ::1] counts = counts_a
    if n == 0:
        counts_a[:, 1] = int(np.prod([npts[a] for a in range(last)]))
        return counts_a, zs
    cdef double rmax = 0.0
    for i in range(n):
        if r[i] > rmax:
            rmax = r[i]
    cdef Grid g = _make_grid(L, dim, periodic, 2.0 * rmax * 1.0001)
    head_a = np.empty(g.nc[0] * g.nc[1] * g.nc[2], dtype=np.int32)
    nxt_a = np.empty(n, dtype=np.int32)
    cdef int[::1] head = head_a
    cdef int[::1] nxt = nxt_a
    _build_cells(x, L, &g, head, nxt)
    cdef Cells q
    q.cc[0] = -1
    cdef int ip, jp, kp, plane
    cdef double p[3]
    cdef double pw
    cdef Py_ssize_t best
    cdef int nk = npts[2] if dim == 3 else 1
    p[2] = 0.0
    with nogil:
        for ip in range(npts[0]):
            p[0] = (ip + 0.5) * hh[0]
            for jp in range(npts[1]):
                p[1] = (jp + 0.5) * hh[1]
                for kp in range(nk):
                    if dim == 3:
                        p[2] = (kp + 0.5) * hh[2]
                    plane = kp if dim == 3 else jp
                    best = _owner(p, x, r, L, &g, head, nxt, &q, False, &pw)
                    if best < 0:
                        counts[plane, 1] += 1
                    elif pw + r[best] * r[best] < rcore[best] * rcore[best]:
                        counts[plane, core_phase[best]] += 1
                    else:
                        counts[plane, shell_phase[best]] += 1
    return counts_a, zs


cdef inline unsigned long long _splitmix64(unsigned long long* s) noexcept nogil:
    """SplitMix64 (Steele, Lea & Flood 2014): a small, fast, seedable generator."""
    cdef unsigned long long z
    s[0] += 0x9E3779B97F4A7C15ULL
    z = s[0]
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL
    return z ^ (z >> 31)


cdef inline double _uniform(unsigned long long* s) noexcept nogil:
    """Uniform double in [0, 1) (53 random bits)."""
    return <double>(_splitmix64(s) >> 11) * (1.0 / 9007199254740992.0)


def union_samples(double[:, ::1] x, double[::1] r, double[::1] L, bint periodic,
                  int[::1] npts, double[::1] zedges, int nrep, unsigned long long seed):
    """Stratified Monte Carlo of the union of the balls: ``nrep`` independent replicates, each
    with one uniform random point in every cell of an ``npts[0] x npts[1] (x npts[2])`` grid
    over the box (a jittered grid). Points are in the box, so parts of particles beyond its
    faces are cut off; periodic sides use the minimum image.

    Returns ``(inside, total)``, int64 arrays ``(nrep, nslab)``: the number of points in any
    ball and of all points, per replicate and per slab ``zedges[s] <= z < zedges[s + 1]`` of
    the through-plane axis. Deterministic for a given ``seed``. O(N + points).
    """
    cdef Py_ssize_t n = x.shape[0], i
    cdef int dim = x.shape[1], a, last = dim - 1, nslab = zedges.shape[0] - 1
    cdef int rep, ip, jp, kp, s
    cdef int m[3]
    cdef double hh[3]
    cdef double p[3]
    cdef double pw, rmax = 0.0
    cdef unsigned long long state, mix
    for a in range(3):
        m[a] = 1
        hh[a] = 1.0
    for a in range(dim):
        m[a] = max(1, npts[a])
        hh[a] = L[a] / m[a]
    inside_a = np.zeros((nrep, nslab), dtype=np.int64)
    total_a = np.zeros((nrep, nslab), dtype=np.int64)
    cdef long long[:, ::1] inside = inside_a
    cdef long long[:, ::1] total = total_a
    for i in range(n):
        if r[i] > rmax:
            rmax = r[i]
    # a point query reaches r_max: cells one r_max wide (8x fewer candidates in 3D than 2 r_max)
    cdef Grid g = _make_grid(L, dim, periodic, rmax * 1.0001 if n else L[0])
    head_a = np.empty(g.nc[0] * g.nc[1] * g.nc[2], dtype=np.int32)
    nxt_a = np.empty(max(n, 1), dtype=np.int32)
    cdef int[::1] head = head_a
    cdef int[::1] nxt = nxt_a
    _build_cells(x, L, &g, head, nxt)
    cdef Cells q
    q.cc[0] = -1
    p[2] = 0.0
    with nogil:
        for rep in range(nrep):
            mix = seed ^ (<unsigned long long>rep * 0xD1B54A32D192ED03ULL)
            state = _splitmix64(&mix)  # one decorrelated stream per replicate
            for ip in range(m[0]):
                for jp in range(m[1]):
                    for kp in range(m[2]):
                        p[0] = (ip + _uniform(&state)) * hh[0]
                        p[1] = (jp + _uniform(&state)) * hh[1]
                        if dim == 3:
                            p[2] = (kp + _uniform(&state)) * hh[2]
                        s = 0
                        while s < nslab - 1 and p[last] >= zedges[s + 1]:
                            s += 1
                        total[rep, s] += 1
                        if n and _owner(p, x, r, L, &g, head, nxt, &q, True, &pw) >= 0:
                            inside[rep, s] += 1
    return inside_a, total_a


cdef inline double _worst(double* p, double* c0, double* c1, double* c2, double r0, double r1,
                          double r2, int dim) noexcept nogil:
    """max_k (|p - c_k|^2 - r_k^2): <= 0 when p lies in all three balls."""
    cdef double f0 = -r0 * r0, f1 = -r1 * r1, f2 = -r2 * r2
    cdef int a
    for a in range(dim):
        f0 += (p[a] - c0[a]) * (p[a] - c0[a])
        f1 += (p[a] - c1[a]) * (p[a] - c1[a])
        f2 += (p[a] - c2[a]) * (p[a] - c2[a])
    if f1 > f0:
        f0 = f1
    if f2 > f0:
        f0 = f2
    return f0


cdef bint _three_meet(double* c1, double* c2, double r0, double r1, double r2, int dim,
                      double tol) noexcept nogil:
    """Do the balls (0, r0), (c1, r1), (c2, r2) have a common point (up to ``tol``)?

    The balls' functions |p - c_k|^2 - r_k^2 share one Hessian, so the minimiser of their
    maximum is, for its set of active balls, the point of the centres' affine hull on their
    radical plane/line: a centre, a pair's radical point on the line of centres, or the
    triple's radical centre. The balls meet iff one of these candidates lies in all three.
    """
    cdef double c0[3]
    cdef double p[3]
    cdef double* cs[3]
    cdef double rs[3]
    cdef double t, dd, lim
    cdef int a, k, l
    for a in range(3):
        c0[a] = 0.0
        p[a] = 0.0
    cs[0] = c0
    cs[1] = c1
    cs[2] = c2
    rs[0] = r0
    rs[1] = r1
    rs[2] = r2
    lim = r0 if r0 < r1 else r1
    lim = tol * (lim if lim < r2 else r2) ** 2
    for k in range(3):  # centres
        if _worst(cs[k], c0, c1, c2, r0, r1, r2, dim) <= lim:
            return True
    for k in range(3):  # pairs: radical point on the line of centres
        l = (k + 1) % 3
        dd = 0.0
        for a in range(dim):
            dd += (cs[l][a] - cs[k][a]) ** 2
        if dd <= 0.0:
            continue
        t = (dd + rs[k] * rs[k] - rs[l] * rs[l]) / (2.0 * dd)
        for a in range(dim):
            p[a] = cs[k][a] + t * (cs[l][a] - cs[k][a])
        if _worst(p, c0, c1, c2, r0, r1, r2, dim) <= lim:
            return True
    # the triple: its radical centre in the centres' plane
    if _radical_centre(c1, c2, r0, r1, r2, dim, p):
        if _worst(p, c0, c1, c2, r0, r1, r2, dim) <= lim:
            return True
    return False


def triple_points(double[:, ::1] x, double[::1] r, double[::1] L, bint periodic,
                  long long[::1] ptr, long long[::1] nbr, double tol=1e-9):
    """Number of triples of balls with a common point, given the overlap graph as CSR
    (``nbr[ptr[i]:ptr[i + 1]]``: the balls overlapping ball i, both directions).

    Triangles of the graph come from :func:`_triangles`; each is tested exactly
    (:func:`_three_meet`) with minimum-image offsets from its first ball, which is exact when
    the periodic lengths are at least 4 r_max. ``tol`` (relative to r^2) counts
    nearly-meeting triples too.
    """
    cdef Py_ssize_t n = x.shape[0], t, i, j, k, ntri
    cdef int dim = x.shape[1], a, last = dim - 1
    cdef long long count = 0
    cdef double u[3]
    cdef double v[3]
    cdef int[::1] ptr32 = np.asarray(ptr, dtype=np.int32)
    cdef int[::1] nbr32 = np.asarray(nbr, dtype=np.int32) if len(nbr) else np.zeros(1, np.int32)
    cdef int[::1] mark = np.empty(max(n, 1), dtype=np.int32)
    tri_a = np.empty((max(4 * n, 1), 3), dtype=np.int32)
    cdef int[:, ::1] tri = tri_a
    ntri = _triangles(<int>n, ptr32, nbr32, mark, tri)
    if ntri < 0:
        tri_a = np.empty((-ntri, 3), dtype=np.int32)
        tri = tri_a
        ntri = _triangles(<int>n, ptr32, nbr32, mark, tri)
    with nogil:
        for t in range(ntri):
            i = tri[t, 0]
            j = tri[t, 1]
            k = tri[t, 2]
            for a in range(dim):
                u[a] = _min_image(x[j, a] - x[i, a], L[a], periodic and a < last)
                v[a] = _min_image(x[k, a] - x[i, a], L[a], periodic and a < last)
            if _three_meet(u, v, r[i], r[j], r[k], dim, tol):
                count += 1
    return count
