"""Deterministic release of PETSc objects under MPI.

Destroying a parallel PETSc object is collective. dolfinx's ``LinearProblem`` and
``NonlinearProblem`` destroy theirs in ``__del__``, and a ``NonlinearProblem`` sits in a reference
cycle (its SNES callbacks are its own bound methods), so without help it is freed by the
cyclic garbage collector, whose timing differs between ranks: one rank then blocks in a
destroy while the other waits in an unrelated collective (a deadlock seen in the test suite).
Solvers therefore free their PETSc objects explicitly, on every rank at the same point.
"""

from __future__ import annotations

import numpy as np

_PROBLEM_ATTRS = ("_snes", "_solver", "_A", "_b", "_x", "_P_mat")


def destroy(*objs) -> None:
    """Destroy PETSc objects (KSP, Mat, Vec, SNES) and dolfinx problems; ``None`` is skipped.

    Collective. Safe to call twice: destroying a destroyed petsc4py object is a no-op.
    """
    for obj in objs:
        if obj is None:
            continue
        if hasattr(obj, "destroy"):
            obj.destroy()
            continue
        for name in _PROBLEM_ATTRS:  # a dolfinx LinearProblem / NonlinearProblem
            inner = getattr(obj, name, None)
            if inner is not None and hasattr(inner, "destroy"):
                inner.destroy()


def fixed_operator_problem(a, L, u, petsc_options: dict, petsc_options_prefix: str):
    """A dolfinx ``LinearProblem`` for a bilinear form ``a`` that never changes between solves
    (no Dirichlet conditions): the matrix is assembled and the preconditioner set up on the
    first :meth:`solve` only; later solves assemble just ``L``. Same answers, bit for bit, as a
    plain ``LinearProblem`` (same matrix, same KSP, zero initial guess)."""
    from dolfinx.fem.petsc import LinearProblem, assemble_vector, assign
    from petsc4py import PETSc

    class _Fixed(LinearProblem):
        fresh = True

        def solve(self):
            if self.fresh:
                self.fresh = False
                return super().solve()
            with self.b.localForm() as loc:
                loc.set(0.0)
            assemble_vector(self.b, self.L)
            self.b.ghostUpdate(addv=PETSc.InsertMode.ADD, mode=PETSc.ScatterMode.REVERSE)
            self.solver.solve(self.b, self.x)
            self.x.ghostUpdate(addv=PETSc.InsertMode.INSERT, mode=PETSc.ScatterMode.FORWARD)
            assign(self.x, self.u)
            return self.u

    return _Fixed(a, L, u=u, petsc_options=petsc_options, petsc_options_prefix=petsc_options_prefix)


def drop_stored_zeros(mat):
    """A copy of an AIJ matrix without its explicitly stored zeros (diagonals kept).

    dolfinx keeps the full sparsity pattern of a form: the rows and columns it zeroes for
    Dirichlet conditions, and the couplings of a ``Real`` space, stay as stored zeros. GAMG's
    Galerkin products follow the pattern, so its coarse operators grow dense (the discharge's
    operator complexity was 25; the 3D flow velocity block stores 4× its non-zeros)."""
    from petsc4py import PETSc

    ia, ja, a = mat.getValuesCSR()
    r0, r1 = mat.getOwnershipRange()
    rows = np.repeat(np.arange(r0, r1), np.diff(ia))
    keep = (a != 0.0) | (ja == rows)
    kept = np.bincount(rows[keep] - r0, minlength=r1 - r0)
    ia2 = np.concatenate([[0], np.cumsum(kept)]).astype(PETSc.IntType)
    return PETSc.Mat().createAIJ(
        mat.getSizes(), csr=(ia2, ja[keep].astype(PETSc.IntType), a[keep]), comm=mat.getComm()
    )


def choose_linear_solver(choice: str, tdim: int, n_dofs: int, min_dofs: int) -> str:
    """Resolve a solver's ``linear_solver`` option: ``"lu"`` or ``"iterative"`` as given;
    ``"auto"`` is iterative in 3D from ``min_dofs`` global unknowns on, LU otherwise."""
    if choice != "auto":
        return choice
    return "iterative" if tdim == 3 and n_dofs >= min_dofs else "lu"
