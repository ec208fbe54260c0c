"""The Cython FCT kernels (``ext/vof.pyx``) against the numpy formulation they replaced, bit for
bit, on a channel with an inlet, an outlet, walls, compression and the limiter active."""

import numpy as np
import pytest
from dolfinx import mesh
from mpi4py import MPI

from electrofem import tags
from electrofem.physics.vof import InfiltrationOptions, VOFSolver, tag_box_facets

pytestmark = pytest.mark.mpi
COMM = MPI.COMM_WORLD


def reference_advect(s: VOFSolver, Fc, dt, ncell):
    """The numpy FCT step (upwind + central/compressive flux, Zalesak limiter), without
    touching the solver's state. Returns (α on the owned cells, inflow, outflow)."""
    n, k = s.n_owned, s.tdim + 1
    g = s.geom
    hc, hf, sg, nb, kind = g.hf_cell, g.hf_face, g.hf_sign, g.hf_nb, g.hf_kind
    a = s.alpha_cells()
    F = sg * Fc[hf]
    a_nb = np.where(kind == 0, a[np.maximum(nb, 0)], np.where(kind == 2, 1.0, a[hc]))
    up = np.where(F > 0, a[hc], a_nb)
    flux_lo = F * up
    area = s.area[:n]
    bnd = kind != 0
    inflow = -float(np.sum(np.minimum(flux_lo[bnd], 0.0))) * dt
    outflow = float(np.sum(np.maximum(flux_lo[bnd], 0.0))) * dt
    a_lo = a[:n] - dt / area * flux_lo.reshape(n, k).sum(axis=1)
    inter = kind == 0
    af = 0.5 * (a[hc] + a_nb)
    nf = ncell[hc] + ncell[np.maximum(nb, 0)]
    nf = nf / np.maximum(np.linalg.norm(nf, axis=1), 1e-3)[:, None]
    ndot = np.einsum("ij,ij->i", nf, g.f_nrm[hf] * sg[:, None])
    ac = np.clip(af, 0.0, 1.0)
    flux_ho = F * af + s.options.compression * np.abs(F) * ndot * ac * (1.0 - ac)
    A = np.where(inter, flux_ho - flux_lo, 0.0)
    amax = np.minimum(np.maximum(np.maximum(a[:n], a_nb.reshape(n, k).max(axis=1)), a_lo), 1.0)
    amin = np.maximum(np.minimum(np.minimum(a[:n], a_nb.reshape(n, k).min(axis=1)), a_lo), 0.0)
    Pp = np.maximum(-A, 0.0).reshape(n, k).sum(axis=1)
    Pm = np.maximum(A, 0.0).reshape(n, k).sum(axis=1)
    Qp = np.maximum(amax - a_lo, 0.0) * area / dt
    Qm = np.maximum(a_lo - amin, 0.0) * area / dt
    Rp = np.where(Pp > 0, np.minimum(1.0, Qp / np.where(Pp > 0, Pp, 1.0)), 0.0)
    Rm = np.where(Pm > 0, np.minimum(1.0, Qm / np.where(Pm > 0, Pm, 1.0)), 0.0)
    R = s.transport.phi
    R.x.array[s.c2d[:n]] = Rp
    R.x.scatter_forward()
    Rp_all = R.x.array[s.c2d].copy()
    R.x.array[s.c2d[:n]] = Rm
    R.x.scatter_forward()
    Rm_all = R.x.array[s.c2d].copy()
    nbi = np.maximum(nb, 0)
    C = np.where(A > 0, np.minimum(Rm_all[hc], Rp_all[nbi]), np.minimum(Rp_all[hc], Rm_all[nbi]))
    a_new = a_lo - dt / area * np.where(inter, C * A, 0.0).reshape(n, k).sum(axis=1)
    return a_new, inflow, outflow


def shear(x):
    """Divergence-free, tangential on y = 0 and y = 1: a plug flow plus a vertical shear."""
    return np.stack([1.0 + 0.5 * np.sin(np.pi * x[1]) ** 2, 0.0 * x[0]])


def test_fct_kernel_matches_numpy_bit_for_bit():
    m = mesh.create_rectangle(
        COMM, [[0.0, 0.0], [1.0, 1.0]], [24, 20], ghost_mode=mesh.GhostMode.shared_facet
    )
    ft = tag_box_facets(m, 1.0, 1.0)
    s = VOFSolver(
        m,
        ft,
        {tags.LEFT: "inlet", tags.RIGHT: "outlet"},
        options=InfiltrationOptions(compression=1.0, dt_max_s=1.0),
        velocity=shear,
    )
    s.set_alpha_fraction(lambda x: (x[0] - 0.45) ** 2 + (x[1] - 0.5) ** 2 < 0.2**2)
    tr = s.transport
    Fc, _, _ = tr.face_fluxes()
    n = s.n_owned
    checked = 0
    rate = COMM.allreduce(float(np.max(tr.courant_rate(Fc))), op=MPI.MAX)
    for dt in (0.1 / rate, 0.5 / rate, 0.95 / rate):  # up to the boundedness limit Co = 1
        for _ in range(3):
            ncell = tr.normals_p0()
            ref, i_ref, o_ref = reference_advect(s, Fc, dt, ncell)
            i_k, o_k = tr.advect(Fc, dt, weight=tr.compression_weight(Fc, ncell))
            got = s.alpha_cells()[:n]
            assert np.array_equal(got, ref), np.max(np.abs(got - ref))
            tot = COMM.allreduce(np.array([i_ref, o_ref, i_k, o_k]), op=MPI.SUM)
            assert np.allclose(tot[2:], tot[:2], rtol=1e-13, atol=1e-300)
            checked += n
    assert COMM.allreduce(checked, op=MPI.SUM) > 0
    a = s.alpha_cells()[:n]
    # the run did something: liquid entered and the limiter kept α in [0, 1]
    assert COMM.allreduce(float(a.min()), op=MPI.MIN) > -1e-12
    assert COMM.allreduce(float(a.max()), op=MPI.MAX) < 1 + 1e-12
    assert tot[0] > 0
