"""The iterative linear solver of the half cell: GMRES with a bordered block preconditioner.

The Newton systems of :class:`~electrofem.physics.electrochem.HalfCell` couple five (six with
the carbon-binder network) fields in one monolithic matrix (dolfinx ``kind="mpi"``): on every
rank the owned rows of ``c_hat``, ``phi``, ``x``, ``phi_s``, ``V`` (and ``phi_cb``), in that
order. The preconditioner, applied inside PETSc's GMRES (right-preconditioned, so the
tolerance is on the true residual), is a *bordered* block factorisation:

* ``V`` (the collector potential, one ``Real`` dof whose row and column couple to every
  collector facet) is eliminated exactly: with ``P`` the preconditioner of the field block
  ``A00`` (everything but ``V``), ``w = P⁻¹ a01`` and the scalar Schur complement
  ``S = a11 − a10·w`` are formed once per Newton matrix; one application is
  ``y0 = P⁻¹ r0``, ``yV = (rV − a10·y0)/S``, ``y0 ← y0 − w yV``, the exact inverse of
  ``[[P, a01], [a10, a11]]``. The rank-one collector coupling (which stalls a block
  Gauss--Seidel) costs no iteration. Without a collector field (``collector=None``, e.g. a
  manufactured problem with Dirichlet data) ``P`` is applied alone.
* ``P`` is PETSc's multiplicative ``fieldsplit`` of two physical groups, the potentials
  ``{phi, phi_s, phi_cb}`` and the concentrations ``{c_hat, x}``, each with one V-cycle of
  smoothed-aggregation GAMG (threshold 0.02). The per-field split and the electrolyte/solid
  split need 1.6x to > 20x the iterations (BENCHMARKS.md, issue 16).
* GAMG sees ``A00`` without its stored zeros (:func:`drop_stored_zeros`): dolfinx's block
  sparsity gives the first row and column of every field a dense pattern of zeros, and the
  Galerkin products of smoothed aggregation follow the pattern (coarse operators became
  dense: operator complexity 25, setup 80x slower).

* **The preconditioner is kept** across Newton matrices and time steps while it stays good:
  it is set up again only when a linear solve took more than ``rebuild_growth`` times the
  iterations of the first solve after the last set-up (or after :meth:`BorderedPC.invalidate`:
  a failed step, which the half cell then retries once with a fresh one, and a switch between
  constant current and voltage). GMRES still solves every Newton system to ``ksp_rtol`` with
  the *current* matrix, so Newton's iterates are unchanged within that tolerance; only the
  iteration count moves. On the issue-16 electrode class
  (4·10⁵ unknowns) the smoothed-aggregation set-up (dense coarse Galerkin products) was 28 %
  of a Newton step (BENCHMARKS.md, issue 16, seventh part).

Options live under the problem's PETSc prefix + ``bordered_`` (e.g.
``-<prefix>bordered_fieldsplit_P_pc_gamg_threshold``); ``DischargeOptions.petsc_options``
sets them without the prefix (``{"bordered_fieldsplit_P_pc_gamg_threshold": 0.05}``).
MPI-collective.
"""

from __future__ import annotations

import numpy as np
from mpi4py import MPI

from .._petsc import drop_stored_zeros

#: GMRES + bordered block preconditioner (SNES/KSP options of the problem's prefix).
ITERATIVE_PETSC_OPTIONS = {
    "ksp_type": "gmres",
    "ksp_pc_side": "right",
    "ksp_gmres_restart": 100,
    "ksp_rtol": 1e-8,
    "ksp_atol": 1e-14,
    "ksp_max_it": 1000,
    "pc_type": "python",
}
#: The options of the field-block preconditioner P (prefix ``<problem prefix>bordered_``).
BLOCK_PC_OPTIONS = {
    "pc_type": "fieldsplit",
    "pc_fieldsplit_type": "multiplicative",
    **{
        f"fieldsplit_{g}_{k}": v
        for g in ("P", "C")
        for k, v in (
            ("ksp_type", "preonly"),
            ("pc_type", "gamg"),
            ("pc_gamg_threshold", 0.02),
            ("pc_gamg_agg_nsmooths", 1),
        )
    },
}
#: Field positions of the half cell: the potential and concentration groups, the collector.
POTENTIALS, CONCENTRATIONS, COLLECTOR = (1, 3, 5), (0, 2), 4


def owned_sizes(spaces) -> list[int]:
    """The owned dofs of each space on this rank (block size included)."""
    return [V.dofmap.index_map.size_local * V.dofmap.index_map_bs for V in spaces]


def field_ranges(sizes: list[int], comm: MPI.Comm) -> list[np.ndarray]:
    """Global row indices of each field's owned dofs in the monolithic matrix (this rank)."""
    offset = comm.exscan(sum(sizes)) or 0
    starts = np.cumsum([0, *sizes])
    return [
        np.arange(offset + starts[i], offset + starts[i + 1], dtype=np.int32)
        for i in range(len(sizes))
    ]


class BorderedPC:
    """A petsc4py ``python`` PC: the bordered block factorisation of the module docstring."""

    def __init__(
        self,
        sizes: list[int],
        comm: MPI.Comm,
        prefix: str,
        collector: int | None,
        rebuild_growth: float = 0.0,
    ):
        from petsc4py import PETSc

        self.comm = comm
        #: set up again when a solve takes > rebuild_growth x the baseline its (0: always)
        self.rebuild_growth = float(rebuild_growth)
        self.last_its = 0  #: iterations of the last linear solve
        self.baseline: int | None = None  #: its of the first solve after the last set-up
        self.built = 0  #: set-ups done
        self.kept = 0  #: Newton matrices that kept the preconditioner
        self._fresh = False  # the last setUp call built
        self._stale = True
        rows = field_ranges(sizes, comm)
        field = [k for k in range(len(sizes)) if k != collector]
        self.is_u = PETSc.IS().createGeneral(np.concatenate([rows[k] for k in field]), comm=comm)
        self.is_v = None
        if collector is not None:
            self.is_v = PETSc.IS().createGeneral(rows[collector], comm=comm)
        # the groups in the numbering of the field block A00 (the fields stay in order)
        sub_rows = dict(zip(field, field_ranges([sizes[k] for k in field], comm), strict=True))
        self.groups = [
            (name, np.concatenate([sub_rows[k] for k in ks if k in sub_rows]))
            for name, ks in (("P", POTENTIALS), ("C", CONCENTRATIONS))
        ]
        self.prefix = prefix + "bordered_"
        self.A00 = self.P00 = self.w = self.a10 = self.inner = None
        self.y0 = None
        self.S = 1.0

    def invalidate(self) -> None:
        """Set the preconditioner up again at the next Newton matrix."""
        self._stale = True

    def _keep(self) -> bool:
        """Whether the next Newton matrix keeps the current preconditioner (see module)."""
        last = self.last_its
        if self._fresh:
            self.baseline = max(last, 1)
        self._fresh = False
        if self._stale or self.rebuild_growth <= 0 or self.baseline is None:
            return False
        return last <= self.rebuild_growth * self.baseline

    def setUp(self, pc) -> None:
        from petsc4py import PETSc

        if self._keep():
            self.kept += 1
            return
        self._stale, self._fresh = False, True
        self.built += 1
        A, _ = pc.getOperators()
        reuse = self.A00 is not None
        self.A00 = A.createSubMatrix(self.is_u, self.is_u, submat=self.A00 if reuse else None)
        if self.P00 is not None:
            self.P00.destroy()
        self.P00 = drop_stored_zeros(self.A00)
        if self.inner is None:
            self.inner = PETSc.PC().create(self.comm)
            self.inner.setOptionsPrefix(self.prefix)
            opts = PETSc.Options()
            for k, v in BLOCK_PC_OPTIONS.items():
                if not opts.hasName(self.prefix + k):
                    opts[self.prefix + k] = v
            self.inner.setOperators(self.A00, self.P00)
            self.inner.setType("fieldsplit")
            self.inner.setFieldSplitIS(
                *[(n, PETSc.IS().createGeneral(ix, comm=self.comm)) for n, ix in self.groups]
            )
            self.inner.setFromOptions()
        else:
            self.inner.setOperators(self.A00, self.P00)
        self.inner.setUp()
        if self.y0 is None:
            self.y0 = self.A00.createVecLeft()
        if self.is_v is not None:
            self._border(A)

    def _border(self, A) -> None:
        """``w = P⁻¹ a01``, ``a10`` and the scalar Schur complement ``S`` of the collector.
        The first apply of the inner PC sets up its GAMG hierarchies."""
        a01 = A.createSubMatrix(self.is_u, self.is_v)
        a10 = A.createSubMatrix(self.is_v, self.is_u)
        a11 = A.createSubMatrix(self.is_v, self.is_v)
        col = self.A00.createVecLeft()
        e = a01.createVecRight()
        e.set(1.0)
        a01.mult(e, col)
        if self.a10 is None:
            self.a10 = self.A00.createVecLeft()
        f = a10.createVecLeft()
        f.set(1.0)
        a10.multTranspose(f, self.a10)
        d = a11.createVecLeft()
        a11.mult(e, d)
        a11_value = d.sum()  # collective: the one entry, on every rank
        if self.w is None:
            self.w = self.A00.createVecLeft()
        self.inner.apply(col, self.w)
        self.S = a11_value - self.a10.dot(self.w)
        for obj in (a01, a10, a11, col, e, f, d):
            obj.destroy()
        if not np.isfinite(self.S) or self.S == 0.0:
            raise RuntimeError(f"bordered preconditioner: collector Schur complement {self.S}")

    def postSolve(self, pc, ksp, b, x) -> None:  # noqa: N802 (petsc4py's name)
        self.last_its = ksp.getIterationNumber()

    def apply(self, pc, r, y) -> None:
        r0 = r.getSubVector(self.is_u)
        self.inner.apply(r0, self.y0)
        r.restoreSubVector(self.is_u, r0)
        if self.is_v is not None:
            rv = r.getSubVector(self.is_v)
            rv_value = rv.sum()
            r.restoreSubVector(self.is_v, rv)
            yv_value = (rv_value - self.a10.dot(self.y0)) / self.S
            self.y0.axpy(-yv_value, self.w)
            yv = y.getSubVector(self.is_v)
            yv.set(yv_value)
            y.restoreSubVector(self.is_v, yv)
        y0 = y.getSubVector(self.is_u)
        self.y0.copy(y0)
        y.restoreSubVector(self.is_u, y0)

    def destroy(self, pc=None) -> None:
        for obj in (
            self.inner,
            self.A00,
            self.P00,
            self.w,
            self.a10,
            self.y0,
            self.is_u,
            self.is_v,
        ):
            if obj is not None:
                obj.destroy()
        self.inner = self.A00 = self.P00 = self.w = self.a10 = self.y0 = None
        self.is_u = self.is_v = None


def use_bordered_preconditioner(
    problem, spaces, collector: int | None, rebuild_growth: float = 0.0
) -> BorderedPC:
    """Give a dolfinx ``NonlinearProblem`` (``kind="mpi"``, created with
    :data:`ITERATIVE_PETSC_OPTIONS`) its :class:`BorderedPC`. Call before the first solve."""
    ksp = problem.solver.getKSP()
    ctx = BorderedPC(
        owned_sizes(spaces),
        spaces[0].mesh.comm,
        ksp.getOptionsPrefix(),
        collector,
        rebuild_growth,
    )
    pc = ksp.getPC()
    if pc.getType() != "python":
        raise ValueError(f"the problem's PC type is {pc.getType()!r}, not 'python'")
    pc.setPythonContext(ctx)
    return ctx
