"""Newton's pieces that the half cell hands to PETSc's SNES: a lagged Jacobian callback, and
SNES's reasons in words."""

from __future__ import annotations


class LaggedJacobian:
    """The Jacobian callback of a dolfinx ``NonlinearProblem``'s SNES, reassembled only at
    the Newton iterations ``0, lag, 2 lag, ...`` of each solve (``lag``, settable; 1: every
    iteration). In between, the matrix is left as it is, so PETSc also keeps its
    preconditioner (a factorisation, or the GAMG hierarchy): the iterations in between are a
    chord (modified) Newton method. The residual is exact at every iteration, so the converged
    state is the same within the Newton tolerance. The residual callback has already written
    the iterate into the unknowns when the Jacobian is asked for."""

    def __init__(self, snes, lag: int):
        J, P, (func, args, kargs) = snes.getJacobian()
        self.func, self.args, self.kargs = func, args or (), kargs or {}
        self.lag = int(lag)
        self.assembled = 0  #: Jacobians assembled so far
        snes.setJacobian(self, J, P)

    def __call__(self, snes, x, J, P):
        if self.lag <= 1 or snes.getIterationNumber() % self.lag == 0:
            self.func(snes, x, J, P, *self.args, **self.kargs)
            self.assembled += 1


def snes_reason(reason: int) -> str:
    names = {
        -1: "function domain error",
        -2: "function count exceeded",
        -3: "linear solve failed",
        -4: "residual is NaN",
        -5: "maximum Newton iterations reached",
        -6: "line search failed",
        -7: "inner solve failed",
        -8: "local minimum",
        -9: "dtol (divergence)",
        -10: "Jacobian domain error",
        -11: "trust region delta",
    }
    return f"SNES diverged: {names.get(reason, 'reason')} ({reason})"
