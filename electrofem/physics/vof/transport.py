"""Transport of the electrolyte fraction α (DG0) on the face fluxes of the P2 velocity.

:class:`AlphaTransport` computes the exact normal fluxes of the P2 velocity through the facets,
makes them discretely divergence-free per cell (a finite-volume Helmholtz projection on the
two-point graph Laplacian, factorised once with MUMPS), and advances α by one FCT (Zalesak) step:
upwind low-order flux, central + interface-compression high-order flux, limited so that α stays
within its neighbours' bounds and in [0, 1] (the loops are the Cython kernels of
:mod:`electrofem._vof`). See :mod:`electrofem.physics.vof` for the method.
"""

from __future__ import annotations

import numpy as np
from mpi4py import MPI

from .._petsc import destroy
from .geometry import gmax


class AlphaTransport:
    """The face fluxes, their projection and the FCT update of α.

    Args:
        geom: the :class:`~electrofem.physics.vof.geometry.CellGeometry` of the mesh.
        alpha: α (DG0 Function), updated in place by :meth:`advect`.
        u: the P2 velocity (read).
        alpha_s: the smoothed fraction α̃ (P1; read for the interface normals).
        options: the :class:`~electrofem.physics.vof.InfiltrationOptions` (``compression``,
            ``inlet_alpha``; read at every call).
        prescribed: the velocity is prescribed (no α̃ solve): the compression normals come
            from a least-squares gradient of α instead (:meth:`normals_p0`).
    """

    def __init__(self, geom, alpha, u, alpha_s, options, prescribed: bool = False):
        from dolfinx import fem
        from petsc4py import PETSc

        self.geom = geom
        self.comm = geom.comm
        self.alpha, self.u, self.alpha_s = alpha, u, alpha_s
        self.options = options
        self.prescribed = prescribed
        # the two-point graph Laplacian on the cells (rows owned by their rank)
        g = geom
        cmap = g.mesh.topology.index_map(g.tdim)
        glob = cmap.local_to_global(np.arange(len(g.area), dtype=np.int32)).astype(np.int32)
        n, N = g.n_owned, cmap.size_global
        hc, hf, nb, kind = g.hf_cell, g.hf_face, g.hf_nb, g.hf_kind
        W = g.W[hf]
        diag = np.zeros(n)
        interior = kind == 0
        np.add.at(diag, hc[interior], W[interior])
        np.add.at(diag, hc[kind == 3], W[kind == 3])
        has_open = self.comm.allreduce(int(np.any(kind == 3)), op=MPI.MAX)
        self.ground = None  # the grounded cell of a closed domain (rank 0's first)
        if not has_open and self.comm.rank == 0 and n > 0:
            self.ground = 0
            diag[0] += float(np.max(W))
        # rows are owned cells only: each entry is set by its owner, no off-process values
        rows = np.concatenate([glob[:n], glob[hc[interior]]]).astype(PETSc.IntType)
        cols = np.concatenate([glob[:n], glob[nb[interior]]]).astype(PETSc.IntType)
        vals = np.concatenate([diag, -W[interior]]).astype(PETSc.ScalarType)
        A = PETSc.Mat().create(comm=self.comm)
        A.setSizes(((n, N), (n, N)))
        A.setType("aij")
        A.setPreallocationCOO(rows, cols)
        A.setValuesCOO(vals, addv=PETSc.InsertMode.ADD_VALUES)
        A.assemble()
        self._A = A
        ksp = PETSc.KSP().create(self.comm)
        ksp.setOperators(A)
        ksp.setType("preonly")
        ksp.getPC().setType("lu")
        ksp.getPC().setFactorSolverType("mumps")
        ksp.setOptionsPrefix("electrofem_vof_proj_")
        ksp.setFromOptions()
        self._ksp = ksp
        self._b, self._phi_vec = A.createVecs()
        #: the projection potential (DG0); also the ghost-exchange buffer of the limiter
        self.phi = fem.Function(alpha.function_space)

    def close(self) -> None:
        """Free the PETSc objects (collective; idempotent)."""
        destroy(self._ksp, self._A, self._b, self._phi_vec)

    def alpha_cells(self) -> np.ndarray:
        return self.alpha.x.array[self.geom.c2d]

    # ------------------------------------------------------------------ fluxes
    def fe_face_fluxes(self) -> np.ndarray:
        """The exact normal fluxes ∫_f u·n of the P2 velocity through the facets of the owned
        cells (outward of c0), before the wall/slip zeroing and the projection."""
        g = self.geom
        U = self.u.x.array.reshape(-1, g.gdim)
        fd, fw = g.fd, g.fw
        usum = fw[0] * U[fd[:, 0]]  # weights 1 are exact: 2D is Simpson's U0 + 4 U1 + U2
        for k in range(1, fd.shape[1]):
            usum = usum + fw[k] * U[fd[:, k]]
        return np.einsum("ij,ij->i", usum, g.fn)

    def face_fluxes(self) -> tuple[np.ndarray, float, float]:
        """Divergence-free facet fluxes F' (outward of c0), and the max per-cell |div| dt-free
        rates (1/s) before and after the projection."""
        g = self.geom
        F = self.fe_face_fluxes()
        F[(g.f_kind == 1) | (g.f_kind == 4)] = 0.0  # walls, slip: exactly zero
        hf, s = g.hf_face, g.hf_sign
        n = g.n_owned
        D = g.cell_sum(s * F[hf])
        self._b.array[:] = D
        self._ksp.solve(self._b, self._phi_vec)
        phi = self.phi
        phi.x.array[g.c2d[:n]] = self._phi_vec.array
        phi.x.scatter_forward()
        ph = phi.x.array[g.c2d]
        c0, c1, kind = g.f_c0, g.f_c1, g.f_kind
        corr = np.where(kind == 0, ph[c0] - ph[np.maximum(c1, 0)], 0.0)
        corr = np.where(kind == 3, ph[c0], corr)
        Fc = F - g.W * corr
        D2 = g.cell_sum(s * Fc[hf])
        if self.ground is not None:
            D2[self.ground] = 0.0  # the grounded cell absorbs Σ D (round-off of ∫∂Ω u·n)
        area = g.area[:n]
        return (
            Fc,
            gmax(self.comm, np.abs(D) / area, 0.0),
            gmax(self.comm, np.abs(D2) / area, 0.0),
        )

    def courant_rate(self, Fc) -> np.ndarray:
        """Per owned cell: the outflow Σ_out F' / |K| (1/s; × dt = the cell Courant number)."""
        g = self.geom
        out = g.cell_sum(np.maximum(g.hf_sign * Fc[g.hf_face], 0.0))
        return out / g.area[: g.n_owned]

    # ------------------------------------------------------------------ normals
    def normals_cells(self) -> np.ndarray:
        """Cell-wise interface normal ∇α̃/|∇α̃| (local cells), 0 where α̃ is flat."""
        g = self.geom
        a = self.alpha_s.x.array
        td = g.tdim
        msh = g.mesh
        x = msh.geometry.x[:, :td]
        nc = len(g.area)
        xc = x[msh.geometry.dofmaps[0][:nc, : td + 1]]
        d = self.alpha_s.function_space.dofmap.list[:nc]
        # vertex dofs of P1 follow the geometry node order for an affine P1 mesh
        J = np.stack([xc[:, i] - xc[:, 0] for i in range(1, td + 1)], axis=1)  # (nc, td, td)
        da = np.stack([a[d[:, i]] - a[d[:, 0]] for i in range(1, td + 1)], axis=1)
        grad = np.linalg.solve(J, da[..., None])[..., 0]
        mag = np.linalg.norm(grad, axis=1)
        tol = 1e-6 / g.h_min
        return grad / np.maximum(mag, tol)[:, None]  # continuous ramp below tol

    def normals_p0(self) -> np.ndarray:
        """Normals for prescribed-velocity runs (no α̃ solve): a cell-wise least-squares
        gradient of α from the neighbours."""
        g = self.geom
        a = self.alpha_cells()
        n = len(g.area)
        hc, nb, kind = g.hf_cell, g.hf_nb, g.hf_kind
        gd = g.gdim
        grad = np.zeros((n, gd))
        M = np.zeros((n, gd, gd))
        inter = kind == 0
        dxv = g.centroid[nb[inter]] - g.centroid[hc[inter]]
        da = a[nb[inter]] - a[hc[inter]]
        np.add.at(grad, hc[inter], dxv * da[:, None])
        np.add.at(M, hc[inter], dxv[:, :, None] * dxv[:, None, :])
        own = np.arange(g.n_owned)
        M[own] += 1e-12 * np.eye(gd) * g.h_min**2
        gg = np.zeros((n, gd))
        gg[own] = np.linalg.solve(M[own], grad[own][..., None])[..., 0]
        # ghosts: exchange each component
        buf = self.phi
        for k in range(gd):
            buf.x.array[g.c2d[: g.n_owned]] = gg[own, k]
            buf.x.scatter_forward()
            gg[:, k] = buf.x.array[g.c2d]
        mag = np.linalg.norm(gg, axis=1)
        tol = 1e-6 / g.h_min
        return gg / np.maximum(mag, tol)[:, None]

    def compression_weight(self, Fc, ncell) -> np.ndarray:
        """Per half-face ``c |F| (n̂_f · n)`` of the compressive flux (``n̂_f`` the normalised
        mean of the two cells' interface normals, ``n`` the outward facet normal)."""
        g = self.geom
        hc, hf, s, nb = g.hf_cell, g.hf_face, g.hf_sign, g.hf_nb
        nf = ncell[hc] + ncell[np.maximum(nb, 0)]
        nfm = np.linalg.norm(nf, axis=1)
        nf = nf / np.maximum(nfm, 1e-3)[:, None]
        nrm = g.f_nrm[hf] * s[:, None]  # outward of hc
        ndot = np.einsum("ij,ij->i", nf, nrm)
        # compression moves liquid along n̂ (towards α = 1): flux of α out of hc ∝ +n̂·n
        return self.options.compression * np.abs(s * Fc[hf]) * ndot

    # ------------------------------------------------------------------ the FCT step
    def advect(self, Fc, dt, weight=None) -> tuple[float, float]:
        """One FCT step of α with the fluxes ``Fc`` (outward of c0): upwind low-order flux,
        central + compressive high-order flux, Zalesak limiter. ``weight``: the compression
        weight (from :meth:`compression_weight`; computed here from the current normals if
        ``None``; α̃ is fixed within a step, so the sub-cycles of a step share it). Returns the
        electrolyte volume in/out through the boundary (this rank's facets)."""
        from ..._vof import fct_correct, fct_predict

        g = self.geom
        n, k = g.n_owned, g.tdim + 1
        area = g.area[:n]
        F = g.hf_sign * Fc[g.hf_face]  # outward of the cell
        if self.options.compression > 0 and weight is None:
            ncell = self.normals_cells() if not self.prescribed else self.normals_p0()
            weight = self.compression_weight(Fc, ncell)
        nb, kind = g.hf_nb0, g.hf_kind
        a_lo, A, Rp, Rm, inflow, outflow = fct_predict(
            self.alpha_cells(), F, nb, kind, area, dt, float(self.options.inlet_alpha), weight, k
        )
        R = self.phi  # reuse a DG0 function as a ghost-exchange buffer
        R.x.array[g.c2d[:n]] = Rp
        R.x.scatter_forward()
        Rp_all = R.x.array[g.c2d]  # fancy indexing: a contiguous copy
        R.x.array[g.c2d[:n]] = Rm
        R.x.scatter_forward()
        Rm_all = R.x.array[g.c2d]
        a_new = fct_correct(a_lo, A, Rp_all, Rm_all, nb, kind, area, dt, k)
        self.alpha.x.array[g.c2d[:n]] = a_new
        self.alpha.x.scatter_forward()
        return inflow, outflow
