# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""The 3D clearance rules of ``packing.pyx``'s relaxation (cimported, compiled inline).

Each keeps a configuration that meshes into slivers one band away, by adding a displacement
to the force array ``f`` and returning the updated largest violation (relative to a radius):

* :func:`_circle_face` — a contact circle and a face plane (wall or periodic side): clear of
  it or crossing it cleanly, and the start points OCC gives the circle (:func:`_occ_xdir`)
  off it;
* :func:`_contact_edges` — a contact circle and a box edge line;
* :func:`_edges_corners` — a sphere and a box edge or corner;
* :func:`_triples` — three mutually overlapping spheres nearly meeting in one point, and
  :func:`_face_triple` — that point and a face plane; the triangles of the overlap graph
  (:func:`_overlap_graph`, :func:`_triangles`) list the triples.

Lateral axes are periodic (their face planes are the images of the sides, :func:`_planes`) or
walls; the last axis always has walls.
"""

from libc.math cimport fabs, floor, sqrt

from cells cimport _min_image


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


cdef inline double _face_triple(double[:, ::1] x, double[::1] L, bint per, Py_ssize_t i,
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


cdef inline Py_ssize_t _triangles(int n, int[::1] ptr, int[::1] nbr, int[::1] mark,
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


cdef inline void _overlap_graph(double[:, ::1] x, double[::1] r, double[::1] L, bint per,
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


cdef inline double _triples(double[:, ::1] x, double[::1] r, double[::1] L, bint per,
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
