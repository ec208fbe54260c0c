"""The discharge's time discretisation: backward Euler (the default), or variable-step BDF2 with
a local-error estimate that sets the step.

Both write the storage terms as ``k0 (u − u_old) − k1 (u_old − u_old2)`` (:func:`weights`):
backward Euler is ``k0 = 1/dt, k1 = 0``; BDF2 on the steps ``dt`` after ``dt_prev``
(``ω = dt/dt_prev``) is ``k0 = (1 + 2ω)/((1 + ω) dt)``, ``k1 = ω²/((1 + ω) dt)``, second
order for any step ratio (Hairer, Nørsett & Wanner, *Solving ODEs I*, III.5). The first step
of a phase is backward Euler: BDF2 needs a past step, and a phase change is a kink in the
current, which BDF2 must not difference across.

The BDF2 local error is estimated with Milne's device: the new state against the quadratic
through the last three states, extrapolated to the new time. For a solution with a smooth third
derivative both differ from it by a multiple of ``u'''``, so their difference, times
:func:`milne_factor` (2/11 at a constant step), estimates the local error. It is measured on
``ĉ = c/c0`` and ``x`` (every node, the largest) and on the collector voltage, divided by
``DischargeOptions.time_tolerance`` (dimensionless for ``ĉ`` and ``x``, volts for the voltage).
An estimate above 1 rejects the step; the next step is ``dt · 0.9 / err^(1/3)``, at most
``growth`` times this one (and not more than this one after a hard Newton solve).

Newton starts a BDF2 step from the same predictor (:meth:`TimeScheme.predict`, linear through two
states, quadratic through three, every unknown), as the BDF codes do (CVODE, IDA; Hindmarsh et
al., ACM TOMS 31, 2005): the first iterate is then a step's local error away from the answer, not
a whole step's change. It changes where Newton starts, not what it converges to.
"""

from __future__ import annotations

import math
from collections import deque

import numpy as np
from mpi4py import MPI

#: the step control's safety factor and its smallest factor after a rejected step
SAFETY, MIN_FACTOR = 0.9, 0.2
#: a phase's largest step as a fraction of 3600/C s, when ``dt_max_fraction`` is not given: a
#: cap for backward Euler, whose error it bounds; a safeguard for BDF2, whose error control
#: sets its steps (BENCHMARKS.md, issue 16, eighth part: 0.1 took 28 steps for a 1C discharge)
DT_MAX_FRACTION = {"euler": 0.01, "bdf2": 0.1}
#: the predicted stoichiometry and concentration go at most this fraction of the way from the
#: last state to the bounds of the logarithms (x in (0, 1), ĉ > 0)
PREDICT_REACH = 0.5
#: BDF2's Newton tolerance (``snes_rtol``) is this times ``time_tolerance``, between
#: ``NEWTON_RTOL_RANGE``. Newton starts from the predictor, a few local errors from the
#: answer, so a residual cut by 1e-6 leaves a Newton error near 1e-6 of the local error. On
#: the f = 1 electrode at the default tolerance (1e-2) that balanced the currents to 1.6e-7 of
#: the applied current (the issue asks 1e-6; 8.7e-7 on the issue's 1.1 M-unknown electrode)
#: and the Li inventory to 3e-14 of the Li gained, as at 1e-10, in 21 % fewer Newton
#: iterations and 1.24x less wall time (BENCHMARKS.md, issue 16, tenth part). A tighter
#: ``time_tolerance`` (a reference run) tightens Newton with it. Backward Euler, which starts
#: Newton from the last state, keeps ``DEFAULT_PETSC_OPTIONS``' 1e-10.
NEWTON_RTOL_PER_TOLERANCE = 1e-4
NEWTON_RTOL_RANGE = (1e-10, 1e-6)


def newton_rtol(kind: str, time_tolerance: float) -> float | None:
    """The resolved scheme's Newton relative tolerance (``snes_rtol``): None for backward Euler
    (``DEFAULT_PETSC_OPTIONS``), :data:`NEWTON_RTOL_PER_TOLERANCE` × ``time_tolerance`` in
    :data:`NEWTON_RTOL_RANGE` for BDF2. ``petsc_options`` overrides it."""
    if kind != "bdf2":
        return None
    lo, hi = NEWTON_RTOL_RANGE
    return min(hi, max(lo, NEWTON_RTOL_PER_TOLERANCE * time_tolerance))


def resolve_time_scheme(choice: str, tdim: int, n_dofs: int, min_dofs: int) -> str:
    """``DischargeOptions.time_scheme`` resolved: ``"euler"`` or ``"bdf2"`` as given;
    ``"auto"`` is BDF2 in 3D from ``min_dofs`` global unknowns on (where ``linear_solver =
    "auto"`` turns iterative, and a step costs most, so its fewer steps pay: BENCHMARKS.md,
    issue 16, eighth part, 3.3× fewer Newton iterations at a smaller error), else backward
    Euler, whose pinned figures the paper studies reproduce."""
    if choice != "auto":
        return choice
    return "bdf2" if tdim == 3 and n_dofs >= min_dofs else "euler"


def weights(dt: float, dt_prev: float | None) -> tuple[float, float]:
    """``(k0, k1)`` of ``u' ≈ k0 (u − u_old) − k1 (u_old − u_old2)`` at the new time:
    backward Euler without ``dt_prev``, BDF2 with it."""
    if dt_prev is None:
        return 1.0 / dt, 0.0
    w = dt / dt_prev
    return (1.0 + 2.0 * w) / ((1.0 + w) * dt), w * w / ((1.0 + w) * dt)


def _extrapolate(times, t):
    """Lagrange weights of the polynomial through ``times`` (two: linear, three: quadratic)
    evaluated at ``t``."""
    return tuple(
        math.prod(t - tj for j, tj in enumerate(times) if j != i)
        / math.prod(ti - tj for j, tj in enumerate(times) if j != i)
        for i, ti in enumerate(times)
    )


def milne_factor(dt: float, dt1: float, dt2: float) -> float:
    """BDF2's local error ≈ this × (BDF2 − quadratic predictor), for the step ``dt`` after the
    steps ``dt1`` (last) and ``dt2`` (the one before): both errors are exact multiples of
    ``u'''`` on a cubic, so the factor is their ratio, computed on ``u = t³``."""
    times = (-(dt1 + dt2), -dt1, 0.0)
    pred = sum(w * s**3 for w, s in zip(_extrapolate(times, dt), times, strict=True))
    k0, k1 = weights(dt, dt1)
    # k0 (u − 0) − k1 (0 − (−dt1)³) = u'(dt) = 3 dt²
    u = (3.0 * dt * dt + k1 * dt1**3) / k0
    e_corr, e_pred = u - dt**3, pred - dt**3
    return e_corr / (e_corr - e_pred)


class TimeScheme:
    """The step weights, the history and (BDF2) the predictor and local-error estimate of one
    half cell.

    ``kind``: ``"euler"`` or ``"bdf2"``; ``tolerance``: see the module; ``measured``: the
    indices of ``ĉ`` and ``x`` among the unknowns (the fields the error is measured on). The
    history holds the last three accepted states ``(t, fields, V, charge)`` of the current phase
    (``fields``: every unknown's array, owned and ghost dofs, local to each rank);
    :meth:`reset` starts it again (the next step is backward Euler).
    """

    def __init__(self, kind: str, tolerance: float, comm, measured: tuple[int, int] = (0, 2)):
        self.kind = kind
        self.tolerance = float(tolerance)
        self.comm = comm
        self.measured = measured
        self.history: deque = deque(maxlen=3)
        self.steps = 0  #: steps accepted since the history started
        #: the last step's scaled local-error estimate (None: not estimated)
        self.error: float | None = None

    @property
    def bdf2(self) -> bool:
        return self.kind == "bdf2"

    @property
    def rejected(self) -> bool:
        """The last step's local-error estimate rejected it."""
        return self.error is not None and self.error > 1

    def reset(self, t: float, fields, v: float, charge: float) -> None:
        """Start a new history at the state ``(t, fields, V, charge)``."""
        self.history.clear()
        self.accept(t, fields, v, charge)
        self.error = None
        self.steps = 0

    def weights(self, dt: float) -> tuple[float, float]:
        """``(k0, k1)`` of the next step of ``dt``."""
        if not self.bdf2 or len(self.history) < 2:
            return weights(dt, None)
        return weights(dt, self.history[-1][0] - self.history[-2][0])

    def predict(self, t: float) -> list | None:
        """Every unknown extrapolated to ``t`` through the history (linear through two states,
        quadratic through three): Newton's first iterate. ``x`` and ``ĉ`` go at most
        ``PREDICT_REACH`` of the way to the bounds of their logarithms. None with backward Euler
        and before two steps of a history: its first state is before the phase's change of
        current, where the potentials jump."""
        if not self.bdf2 or self.steps < 2:
            return None
        states = list(self.history)[-min(self.steps, 3) :]
        w = _extrapolate(tuple(h[0] for h in states), t)
        last = states[-1][1]
        pred = [
            sum(wi * h[1][k] for wi, h in zip(w, states, strict=True)) for k in range(len(last))
        ]
        (ic, ix), r = self.measured, PREDICT_REACH
        np.maximum(pred[ic], (1 - r) * last[ic], out=pred[ic])
        np.clip(pred[ix], (1 - r) * last[ix], last[ix] + r * (1 - last[ix]), out=pred[ix])
        return pred

    def estimate(self, t: float, fields, v: float) -> float | None:
        """The scaled local error of the new state at ``t`` (collective), or None with backward
        Euler and for the first three steps of a history: the state it starts from is before
        the phase's change of current, where the voltage jumps and the concentrations kink, so
        the predictor must not use it."""
        if not self.bdf2 or self.steps < 3:
            return None
        times = tuple(h[0] for h in self.history)
        w = _extrapolate(times, t)
        factor = abs(milne_factor(t - times[2], times[2] - times[1], times[1] - times[0]))
        err = 0.0
        for k in self.measured:
            new = fields[k]
            pred = sum(wi * h[1][k] for wi, h in zip(w, self.history, strict=True))
            if new.size:
                err = max(err, float(np.max(np.abs(new - pred))))
        err = self.comm.allreduce(err, op=MPI.MAX)
        vpred = sum(wi * h[2] for wi, h in zip(w, self.history, strict=True))
        err = max(err, abs(v - vpred))
        return factor * err / self.tolerance

    def accept(self, t: float, fields, v: float, charge: float) -> None:
        """Append an accepted state (backward Euler keeps none: it uses no past state)."""
        if self.bdf2:
            self.history.append((t, [a.copy() for a in fields], float(v), float(charge)))
        self.steps += 1

    def next_dt(self, dt: float, growth: float, easy: bool) -> float:
        """The step after an accepted step of ``dt``: from the error estimate if there is one
        (at most ``growth`` times, and not more than ``dt`` after a hard Newton solve), else
        ``growth × dt`` after an easy solve and ``dt`` after a hard one."""
        cap = growth if easy else 1.0
        if self.error is None:
            return dt * cap
        factor = SAFETY / max(self.error, 1e-12) ** (1.0 / 3.0)
        return dt * min(cap, max(factor, MIN_FACTOR))

    def retry_dt(self, dt: float) -> float:
        """The step after a step of ``dt`` rejected for its local error."""
        factor = SAFETY / max(self.error or 1.0, 1e-12) ** (1.0 / 3.0)
        return dt * min(max(factor, MIN_FACTOR), SAFETY)
