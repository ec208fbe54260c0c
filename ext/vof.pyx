# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""The flux-corrected transport (FCT) step of the DG0 volume fraction of
:class:`electrofem.physics.vof.VOFSolver`, in two passes around one ghost exchange.

Conventions (shared with ``VOFSolver._advect``):

* Half-faces are stored cell by cell, ``k = tdim + 1`` per **owned** cell: half-face ``j``
  belongs to cell ``j // k``. ``F[j]`` is the volume flux (m³/s; m²/s in 2D) out of that cell,
  ``nb[j]`` the local index of the neighbour (ghosts included) and ``kind[j]`` 0 for an
  interior face, 2 for the inlet (upwind value ``a_in``), anything else for a boundary face
  whose outside value is the cell's own (walls carry ``F = 0``; the outlet lets α out).
* ``a`` holds α on the local cells (owned first, then ghosts); ``area`` the owned cells' sizes.
* ``w`` (optional, per half-face) is the compression weight ``c |F| (n̂_f · n)``: the
  high-order flux is ``F ᾱ + w ᾱ (1 - ᾱ)`` with ``ᾱ`` the face average clipped to [0, 1].

The arithmetic is the same, operation for operation and in the same order, as the numpy
formulation it replaces (the tests compare the two bit for bit). The kernels know nothing about
MPI: the caller exchanges the limiter ratios ``Rp``/``Rm`` of the ghosts between the passes.
"""

import numpy as np

cimport numpy as cnp

cnp.import_array()


def fct_predict(
    const double[::1] a,
    const double[::1] F,
    const int[::1] nb,
    const signed char[::1] kind,
    const double[::1] area,
    double dt,
    double a_in,
    w,
    int k,
):
    """Pass 1: the upwind (low-order) update, the antidiffusive fluxes and the Zalesak ratios.

    Returns ``(a_lo, A, Rp, Rm, inflow, outflow)``: ``a_lo`` (owned cells), ``A`` (per half-face,
    0 on boundary faces), ``Rp``/``Rm`` (owned cells), and the α volume that entered and left
    through the boundary over ``dt``.
    """
    cdef Py_ssize_t n = area.shape[0], i, j, m, jj
    cdef double[::1] a_lo = np.empty(n)
    cdef double[::1] A = np.zeros(n * k)
    cdef double[::1] Rp = np.empty(n)
    cdef double[::1] Rm = np.empty(n)
    cdef const double[::1] wv
    cdef bint comp = w is not None
    if comp:
        wv = w
    cdef double inflow = 0.0, outflow = 0.0
    cdef double f, up, anb, flo, net, af, ac, fho, amax, amin, pp, pm, qp, qm, ai, alo
    for i in range(n):
        ai = a[i]
        net = 0.0
        amax = ai
        amin = ai
        pp = 0.0
        pm = 0.0
        for m in range(k):
            j = i * k + m
            f = F[j]
            if kind[j] == 0:
                anb = a[nb[j]]
            elif kind[j] == 2:
                anb = a_in
            else:
                anb = ai
            up = ai if f > 0 else anb
            flo = f * up
            if kind[j] != 0:
                if flo < 0:
                    inflow = inflow + flo
                else:
                    outflow = outflow + flo
            net = net + flo
            if anb > amax:
                amax = anb
            if anb < amin:
                amin = anb
            if kind[j] == 0:
                af = 0.5 * (ai + anb)
                fho = f * af
                if comp:
                    ac = 0.0 if af < 0.0 else (1.0 if af > 1.0 else af)
                    fho = fho + wv[j] * ac * (1.0 - ac)
                A[j] = fho - flo
                if A[j] < 0:
                    pp = pp + (-A[j])
                else:
                    pm = pm + A[j]
        alo = ai - dt / area[i] * net
        a_lo[i] = alo
        if alo > amax:
            amax = alo
        if amax > 1.0:
            amax = 1.0
        if alo < amin:
            amin = alo
        if amin < 0.0:
            amin = 0.0
        qp = amax - alo
        qm = alo - amin
        qp = (qp if qp > 0 else 0.0) * area[i] / dt
        qm = (qm if qm > 0 else 0.0) * area[i] / dt
        Rp[i] = (1.0 if qp / pp > 1.0 else qp / pp) if pp > 0 else 0.0
        Rm[i] = (1.0 if qm / pm > 1.0 else qm / pm) if pm > 0 else 0.0
    return np.asarray(a_lo), np.asarray(A), np.asarray(Rp), np.asarray(Rm), -inflow * dt, outflow * dt


def fct_correct(
    const double[::1] a_lo,
    const double[::1] A,
    const double[::1] Rp,
    const double[::1] Rm,
    const int[::1] nb,
    const signed char[::1] kind,
    const double[::1] area,
    double dt,
    int k,
):
    """Pass 2: the limited antidiffusive update. ``Rp``/``Rm`` on the local cells (owned and
    ghosts, after the exchange). Returns α on the owned cells."""
    cdef Py_ssize_t n = area.shape[0], i, j, m, c
    cdef double[::1] out = np.empty(n)
    cdef double net, C, x
    for i in range(n):
        net = 0.0
        for m in range(k):
            j = i * k + m
            if kind[j] == 0:
                c = nb[j]
                x = A[j]
                if x > 0:
                    C = Rm[i] if Rm[i] < Rp[c] else Rp[c]
                else:
                    C = Rp[i] if Rp[i] < Rm[c] else Rm[c]
                net = net + C * x
        out[i] = a_lo[i] - dt / area[i] * net
    return np.asarray(out)
