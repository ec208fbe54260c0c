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


cdef inline int _planes(double c, double Lk, bint periodic, double* out) noexcept nogil:
    """The face planes of axis k to test near coordinate ``c``: the two walls 0 and L, or the
    periodic images of the side on either side of ``c``."""
    cdef double base
    if periodic:
        base = Lk * floor(c / Lk)
        out[0] = base
        out[1] = base + Lk
    else:
        out[0] = 0.0
        out[1] = Lk
    return 2


cdef inline bint _on_face(double* X, int skip, double[::1] L, bint per, double w) noexcept nogil:
    """Whether the point X lies on the box's faces along every axis but ``skip`` (periodic
    lateral axes always; walls within ``w``)."""
    cdef int a
    for a in range(3):
        if a == skip or (per and a < 2):
            continue
        if X[a] < -w or X[a] > L[a] + w:
            return False
    return True


cdef inline void _occ_xdir(double A, double B, double C, double* D) noexcept nogil:
    """The X direction OpenCASCADE gives a frame of main direction (A, B, C) (``gp_Ax2(P, V)``):
    the start point of a circle cut from a sphere by a plane of that normal is ``c +- rho D``,
    whatever the sphere's orientation, unless the sphere's seam crosses the circle (checked on
    random cuts of rotated spheres: all 18 such start points of 60 cuts matched)."""
    cdef double Aa = fabs(A), Ba = fabs(B), Ca = fabs(C), nrm
    if Ba <= Aa and Ba <= Ca:
        if Aa > Ca:
            D[0] = -C; D[1] = 0.0; D[2] = A
        else:
            D[0] = C; D[1] = 0.0; D[2] = -A
    elif Aa <= Ba and Aa <= Ca:
        if Ba > Ca:
            D[0] = 0.0; D[1] = -C; D[2] = B
        else:
            D[0] = 0.0; D[1] = C; D[2] = -B
    else:
        if Aa > Ba:
            D[0] = -B; D[1] = A; D[2] = 0.0
        else:
            D[0] = B; D[1] = -A; D[2] = 0.0
    nrm = sqrt(D[0] * D[0] + D[1] * D[1] + D[2] * D[2])
    D[0] /= nrm
    D[1] /= nrm
    D[2] /= nrm


cdef inline double _circle_face(double[:, ::1] x, double[::1] r, double[::1] L, bint per,
                                Py_ssize_t i, Py_ssize_t j, double* dx, double d,
                                double[:, ::1] f, double frac, double viol,
                                bint occ_vertices) noexcept nogil:
    """Keep the contact circle of the overlapping pair (i, j) off every face plane (3D).

    The circle lies in the radical plane, centre ``c = x_i - a_i dx/d`` (``dx = x_i - x_j``),
    radius ``rho``; along axis k it spans ``c_k +- e``, ``e = rho sqrt(1 - n_k^2)``. A face plane
    (a wall, or a periodic side) must be clear of that span by ``w = frac * rmin``, or cross it
    with both ends ``w`` beyond it: a face grazing the circle, or cutting it close to its
    end, leaves a sliver (an absolute margin: one relative to ``rho`` left 0.02 µm gaps on
    small necks). Otherwise the pair moves rigidly along k by the smallest shift that
    restores one of the two. A circle that crosses the plane is also split by OCC at its start
    points ``c +- rho D`` (``D``: :func:`_occ_xdir` of the plane normal; the seam choice of
    ``electrofem.mesh.pieces`` keeps seams off the rims, so no other vertex splits it): those
    must lie ``w`` off the plane too, or two vertices of the geometry sit nm apart where the
    circle meets the face. Returns the updated largest violation (relative to rmin).
    """
    cdef double ai = (d * d + r[i] * r[i] - r[j] * r[j]) / (2.0 * d)
    cdef double rho2 = r[i] * r[i] - ai * ai, rho, w, wv, c, nk, ext, lo, hi, best, cand, v, vk, dk
    cdef double rmin = r[i] if r[i] < r[j] else r[j]
    cdef double pl[2]
    cdef double D[3]
    cdef int k, ip, sgn
    if rho2 <= 0.0:
        return viol
    rho = sqrt(rho2)
    w = frac * rho
    wv = frac * rmin
    _occ_xdir(dx[0] / d, dx[1] / d, dx[2] / d, D)
    for k in range(3):
        dk = D[k]
        nk = dx[k] / d
        ext = 1.0 - nk * nk
        ext = rho * sqrt(ext) if ext > 0.0 else 0.0
        c = x[i, k] - ai * nk
        _planes(c, L[k], per and k < 2, pl)
        for ip in range(2):
            lo = c - ext - pl[ip]
            hi = c + ext - pl[ip]
            if lo >= w or hi <= -w:
                continue  # clear of the plane
            if ext > w and lo <= -w and hi >= w:
                # crosses it cleanly; OCC also splits the circle at c +- rho D (below)
                if not occ_vertices:
                    continue
                best = 0.0
                for sgn in range(2):
                    vk = c + (rho if sgn == 0 else -rho) * dk - pl[ip]
                    if fabs(vk) < wv and fabs(vk) > fabs(best):
                        best = vk
                if best == 0.0:
                    continue
                best = (wv - best) if best > 0.0 else (-wv - best)
                f[i, k] += best
                f[j, k] += best
                v = fabs(best) / rmin
                if v > viol:
                    viol = v
                continue
            best = w - lo  # clear above
            cand = -w - hi  # clear below
            if fabs(cand) < fabs(best):
                best = cand
            if ext > w:
                cand = (-w - lo) if lo > -w else (w - hi)  # cross cleanly
                if fabs(cand) < fabs(best):
                    best = cand
            f[i, k] += best
            f[j, k] += best
            v = fabs(best) / rmin
            if v > viol:
                viol = v
    return viol


cdef inline double _contact_edges(double[:, ::1] x, double[::1] r, double[::1] L, bint per,
                                  Py_ssize_t i, Py_ssize_t j, double* dx, double d,
                                  double[:, ::1] f, double band, double viol) noexcept nogil:
    """Keep the contact circle of the overlapping pair (i, j) off the box's edge lines (3D).

    Where the circle passes near an edge (two face planes meeting), the two spheres' face
    circles and the edge cross in nearly one point: geometry vertices nm apart, slivers. The
    radical plane meets the edge line at E; ``h^2 = r_i^2 - |x_i - E|^2`` (0 when E is on the
    circle) must stay out of ``+-(band rmin)^2``. Otherwise the pair moves rigidly along the
    gradient of h^2 to the nearer edge of that band. Periodic sides count as faces. Returns the
    updated largest violation (relative to rmin).
    """
    cdef double ai = (d * d + r[i] * r[i] - r[j] * r[j]) / (2.0 * d)
    cdef double rmin = r[i] if r[i] < r[j] else r[j]
    cdef double w = band * rmin
    cdef double n[3]
    cdef double c0[3]
    cdef double E[3]
    cdef double D[3]
    cdef double g[3]
    cdef double pa[2]
    cdef double pb[2]
    cdef double t, h2, target, g2, step, val, nd
    cdef int a, b, c, ia, ib, m
    for m in range(3):
        n[m] = dx[m] / d
        c0[m] = x[i, m] - ai * n[m]
    for c in range(3):  # the edge's direction
        if fabs(n[c]) < 1e-9:
            continue
        a = (c + 1) % 3
        b = (c + 2) % 3
        _planes(c0[a], L[a], per and a < 2, pa)
        _planes(c0[b], L[b], per and b < 2, pb)
        for ia in range(2):
            for ib in range(2):
                E[a] = pa[ia]
                E[b] = pb[ib]
                nd = n[0] * c0[0] + n[1] * c0[1] + n[2] * c0[2] - n[a] * E[a] - n[b] * E[b]
                t = nd / n[c]
                E[c] = t
                if not (per and c < 2) and (t < -w or t > L[c] + w):
                    continue
                h2 = r[i] * r[i]
                for m in range(3):
                    D[m] = x[i, m] - E[m]
                    h2 -= D[m] * D[m]
                if h2 <= -w * w or h2 >= w * w:
                    continue
                # grad of h^2 under a rigid move of the pair: -2 [D_a e_a + D_b e_b
                # + D_c (e_c - n / n_c)]
                for m in range(3):
                    g[m] = 2.0 * D[c] * n[m] / n[c]
                g[a] -= 2.0 * D[a]
                g[b] -= 2.0 * D[b]
                g[c] -= 2.0 * D[c]
                g2 = g[0] * g[0] + g[1] * g[1] + g[2] * g[2]
                if g2 <= 0.0:
                    continue
                target = w * w if h2 >= 0.0 else -w * w
                step = (target - h2) / g2
                for m in range(3):
                    f[i, m] += step * g[m]
                    f[j, m] += step * g[m]
                val = (w - sqrt(fabs(h2))) / rmin
                if val > viol:
                    viol = val
    return viol


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


cdef inline double _edges_corners(double[:, ::1] x, double[::1] r, double[::1] L, bint per,
                                  Py_ssize_t i, double[:, ::1] f, double frac,
                                  double viol) noexcept nogil:
    """Keep the surface of particle i off the box's edges and corners (3D).

    A sphere grazing an edge line (two faces) or a corner (three) leaves a sliver there. Its
    distance to the nearest edge or corner must stay out of ``r (1 +- frac)``; otherwise the
    particle moves away from (or towards) it, to the nearer edge of that band. Periodic sides
    count as faces. Returns the updated largest violation (relative to r).
    """
    cdef double o[3]
    cdef double w = frac * r[i], d2, d, fm, target, v
    cdef int k, m, sel
    for k in range(3):
        if per and k < 2:
            o[k] = x[i, k] - L[k] * floor(x[i, k] / L[k] + 0.5)
        else:
            o[k] = x[i, k] if x[i, k] < L[k] - x[i, k] else x[i, k] - L[k]
    # the three edge directions (sel = the two axes that meet) and the corner (sel = 7)
    for sel in range(3, 8):
        if sel == 4:  # a single axis: a face, handled by the face rules
            continue
        d2 = 0.0
        for k in range(3):
            if sel & (1 << k):
                d2 += o[k] * o[k]
        d = sqrt(d2)
        if d <= 0.0 or d <= r[i] - w or d >= r[i] + w:
            continue
        target = r[i] - w if d < r[i] else r[i] + w
        fm = target - d
        for m in range(3):
            if sel & (1 << m):
                f[i, m] += fm * o[m] / d
        v = fabs(fm) / r[i]
        if v > viol:
            viol = v
    return viol


cdef inline bint _radical_centre(double* c1, double* c2, double r0, double r1, double r2,
                                 int dim, double* p) noexcept nogil:
    """The point ``p = s c1 + t c2`` of the centres' plane (ball 0 at the origin) with equal
    powers to the three balls (their radical centre); False for collinear centres."""
    cdef double uu = 0.0, uv = 0.0, vv = 0.0, det, b1, b2, s, t
    cdef int a
    for a in range(dim):
        uu += c1[a] * c1[a]
        uv += c1[a] * c2[a]
        vv += c2[a] * c2[a]
    det = uu * vv - uv * uv
    if det <= 1e-12 * uu * vv:
        return False
    b1 = 0.5 * (uu + r0 * r0 - r1 * r1)
    b2 = 0.5 * (vv + r0 * r0 - r2 * r2)
    s = (b1 * vv - b2 * uv) / det
    t = (b2 * uu - b1 * uv) / det
    for a in range(dim):
        p[a] = s * c1[a] + t * c2[a]
    return True


cdef Py_ssize_t _triangles(int n, int[::1] ptr, int[::1] nbr, int[::1] mark,
                           int[:, ::1] out) noexcept nogil:
    """The triangles ``i < j < k`` of the graph ``nbr[ptr[i]:ptr[i + 1]]`` (both directions)
    into ``out``; returns their number, or minus it when ``out`` is too small (then call again
    with room for that many). O(sum of degree^2), with a marker array."""
    cdef Py_ssize_t count = 0
    cdef int i, j, k, a1, a2
    for i in range(n):
        mark[i] = -1
    for i in range(n):
        for a1 in range(ptr[i], ptr[i + 1]):
            mark[nbr[a1]] = i
        for a1 in range(ptr[i], ptr[i + 1]):
            j = nbr[a1]
            if j <= i:
                continue
            for a2 in range(ptr[j], ptr[j + 1]):
                k = nbr[a2]
                if k <= j or mark[k] != i:
                    continue
                if count < out.shape[0]:
                    out[count, 0] = i
                    out[count, 1] = j
                    out[count, 2] = k
                count += 1
    return count if count <= out.shape[0] else -count


cdef inline bint _overlap(double[:, ::1] x, double[::1] r, double[::1] L, bint per,
                          Py_ssize_t i, Py_ssize_t j) noexcept nogil:
    """Do balls i and j overlap (minimum image on the periodic lateral axes)?"""
    cdef int a, last = x.shape[1] - 1
    cdef double d2 = 0.0, s
    for a in range(x.shape[1]):
        s = _min_image(x[i, a] - x[j, a], L[a], per and a < last)
        d2 += s * s
    return d2 < (r[i] + r[j]) * (r[i] + r[j])


cdef void _overlap_graph(double[:, ::1] x, double[::1] r, double[::1] L, bint per,
                         int[::1] pi, int[::1] pj, Py_ssize_t npair, int[::1] ptr,
                         int[::1] nbr, int[::1] fill) noexcept nogil:
    """The overlapping pairs among ``(pi, pj)`` as a CSR graph ``nbr[ptr[i]:ptr[i + 1]]``
    (both directions; ``nbr`` holds at least ``2 npair``)."""
    cdef Py_ssize_t n = x.shape[0], i, q
    for i in range(n + 1):
        ptr[i] = 0
    for q in range(npair):
        if _overlap(x, r, L, per, pi[q], pj[q]):
            ptr[pi[q] + 1] += 1
            ptr[pj[q] + 1] += 1
    for i in range(n):
        ptr[i + 1] += ptr[i]
        fill[i] = ptr[i]
    for q in range(npair):
        if _overlap(x, r, L, per, pi[q], pj[q]):
            nbr[fill[pi[q]]] = pj[q]
            fill[pi[q]] += 1
            nbr[fill[pj[q]]] = pi[q]
            fill[pj[q]] += 1


cdef double _face_triple(double[:, ::1] x, double[::1] L, bint per, Py_ssize_t i,
                         Py_ssize_t j, Py_ssize_t k, double* u, double* v, double* p,
                         double h, double w, double rmin, double[:, ::1] f,
                         double viol) noexcept nogil:
    """Keep the points where three overlapping spheres meet off the face planes (3D).

    The radical line of the three (direction ``l``, through ``F = x_i + p``) meets each face
    plane in the radical centre of the three face circles; their common half chord there is
    ``h_f^2 = h^2 - s^2``, with ``s`` the distance along the line from F to the plane and ``h``
    the half chord in 3D. ``h_f`` near 0 (the three face circles nearly meet in one point, so
    the triple point sits on the face) puts geometry vertices nm apart. A signed ``h_f`` inside
    ``+-w`` moves the three spheres rigidly along the plane's normal to the nearer edge of the
    band. Returns the updated largest violation (relative to rmin).
    """
    cdef double l[3]
    cdef double F[3]
    cdef double X[3]
    cdef double pl[2]
    cdef double ln, s, hf2, starget, ds, dmove, val
    cdef int a, b, ip
    l[0] = u[1] * v[2] - u[2] * v[1]
    l[1] = u[2] * v[0] - u[0] * v[2]
    l[2] = u[0] * v[1] - u[1] * v[0]
    ln = sqrt(l[0] * l[0] + l[1] * l[1] + l[2] * l[2])
    if ln <= 0.0:
        return viol
    for a in range(3):
        l[a] /= ln
        F[a] = x[i, a] + p[a]
    for a in range(3):
        if fabs(l[a]) < 1e-9:
            continue
        _planes(F[a], L[a], per and a < 2, pl)
        for ip in range(2):
            s = (pl[ip] - F[a]) / l[a]
            if fabs(s) >= h + w:
                continue
            for b in range(3):
                X[b] = F[b] + s * l[b]
            if not _on_face(X, a, L, per, w):
                continue
            hf2 = h * h - s * s
            if hf2 <= -w * w or hf2 >= w * w:
                continue
            starget = sqrt(h * h - w * w) if hf2 >= 0.0 else sqrt(h * h + w * w)
            ds = (starget - fabs(s)) if s >= 0.0 else (fabs(s) - starget)
            # a rigid move by dmove along axis a changes s by -dmove / l_a
            dmove = -ds * l[a]
            f[i, a] += dmove
            f[j, a] += dmove
            f[k, a] += dmove
            val = (w - sqrt(fabs(hf2))) / rmin
            if val > viol:
                viol = val
    return viol


cdef double _triples(double[:, ::1] x, double[::1] r, double[::1] L, bint per,
                     int[:, ::1] tri, Py_ssize_t ntri, double[:, ::1] f, double band,
                     double viol) noexcept nogil:
    """Keep triples of mutually overlapping balls off their degenerate point (3D).

    The radical line of three overlapping balls meets all three spheres in two points at
    ``+-h`` from the radical centre F of the centres' plane, ``h^2 = r_m^2 - |c_m - F|^2``
    (the same for the three). ``h`` near 0 (the three spheres nearly meet in one point) puts two
    vertices of the geometry a few nm apart: slivers. A signed ``h`` (``-sqrt(-h^2)`` when the
    line misses) inside ``+-band * rmin`` moves the three centres along ``c_m - F`` to the
    nearer edge. ``tri[:ntri]``: the triangles of the overlap graph (:func:`_triangles`).
    Returns the updated largest violation (relative to rmin).
    """
    cdef Py_ssize_t i, j, k, q, t
    cdef int a, m, last = 2
    cdef double u[3]
    cdef double v[3]
    cdef double p[3]
    cdef double h2, h, w, rmin, target, dh2, dm, fm, val
    cdef double* cm[3]
    cdef double zero[3]
    for a in range(3):
        zero[a] = 0.0
    for t in range(ntri):
        i = tri[t, 0]
        j = tri[t, 1]
        k = tri[t, 2]
        for a in range(3):  # centres relative to i
            u[a] = _min_image(x[j, a] - x[i, a], L[a], per and a < last)
            v[a] = _min_image(x[k, a] - x[i, a], L[a], per and a < last)
        if not _radical_centre(u, v, r[i], r[j], r[k], 3, p):
            continue  # collinear centres: no radical line
        h2 = r[i] * r[i]
        for a in range(3):
            h2 -= p[a] * p[a]
        rmin = r[i] if r[i] < r[j] else r[j]
        rmin = rmin if rmin < r[k] else r[k]
        w = band * rmin
        h = sqrt(h2) if h2 >= 0.0 else -sqrt(-h2)
        if h >= w:
            viol = _face_triple(x, L, per, i, j, k, u, v, p, h, w, rmin, f, viol)
        if h <= -w or h >= w:
            continue
        target = w * w if h >= 0.0 else -w * w
        dh2 = target - h2  # > 0: pull the centres towards F
        val = (w - fabs(h)) / rmin
        if val > viol:
            viol = val
        cm[0] = zero
        cm[1] = u
        cm[2] = v
        for m in range(3):
            q = i if m == 0 else (j if m == 1 else k)
            dm = 0.0
            for a in range(3):
                dm += (cm[m][a] - p[a]) * (cm[m][a] - p[a])
            dm = sqrt(dm)
            if dm <= 1e-12 * rmin:
                continue
            # d(h^2)/d|c_m - F| = -2 |c_m - F|: the move along c_m - F
            fm = -dh2 / (2.0 * dm) / 3.0
            for a in range(3):
                f[q, a] += fm * (cm[m][a] - p[a]) / dm
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
