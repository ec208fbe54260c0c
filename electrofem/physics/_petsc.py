"""Deterministic release of PETSc objects under MPI.

Destroying a parallel PETSc object is collective. dolfinx's ``LinearProblem`` and
``NonlinearProblem`` destroy theirs in ``__del__``, and a ``NonlinearProblem`` sits in a reference
cycle (its SNES callbacks are its own bound methods), so without help it is freed by the
cyclic garbage collector, whose timing differs between ranks: one rank then blocks in a
destroy while the other waits in an unrelated collective (a deadlock seen in the test suite).
Solvers therefore free their PETSc objects explicitly, on every rank at the same point.
"""

from __future__ import annotations

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
