"""The cycling protocol of a half cell as a list of phases, the events that end them, and the
observer hooks of :meth:`~electrofem.physics.electrochem.HalfCell.run`.

Per C-rate: *discharge* (constant current to ``v_min_V``) → optional *rest* (zero current for
``rest_s``) → optional *charge* (constant current to ``v_max_V``) → optional *cv* (CC-CV: the
voltage held at ``v_max_V`` until the current falls below ``cv_cutoff_c_rate``). 1C is
``specific_capacity_1C_mAh_g`` of the active mass. Every phase starts with the step
``dt_initial_fraction · 3600/C`` and is capped at ``dt_max_fraction · 3600/C`` (the rest at a
tenth of its length); a phase lasts at most 3× its nominal duration (the CV hold
``cv_max_s``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..materials import FARADAY
from .options import CellParams, DischargeOptions
from .records import StepRecord
from .timestep import DT_MAX_FRACTION

#: With a CV hold, the CC charge's last step is shortened until it ends within this of v_max.
CV_LANDING_TOL_V = 1e-3


def rate_label(c_rate: float) -> str:
    """``0.1`` → ``"0.1"`` (file names ``discharge_0.1C.csv``)."""
    return f"{float(c_rate):g}"


@dataclass
class Phase:
    """One constant-current or constant-voltage phase.

    Attributes:
        kind: ``"discharge"``, ``"rest"``, ``"charge"`` or ``"cv"``.
        index: position in its protocol.
        c_rate: the C-rate of the protocol (its discharge rate).
        rate: this phase's C-rate (0 for a rest).
        current_density_A_m2: applied current per box cross-section (+ discharge).
        duration_s: longest duration.
        dt_initial_s, dt_max_s: first and largest step.
        v_hold_V: ``cv``: the held voltage.
        land_at_V: a CC charge followed by a CV hold ends exactly at this voltage (the last
            step is shortened until it lands within :data:`CV_LANDING_TOL_V`).
        i_cutoff_A: ``cv``: the current (A, or A/m in 2D) below which the hold ends.
    """

    kind: str
    index: int = 0
    c_rate: float = 1.0
    rate: float = 1.0
    current_density_A_m2: float = 0.0
    duration_s: float = 3600.0
    dt_initial_s: float = 1.0
    dt_max_s: float = 60.0
    v_hold_V: float | None = None
    land_at_V: float | None = None
    i_cutoff_A: float = 0.0

    @property
    def label(self) -> str:
        return f"{rate_label(self.c_rate)}C {self.kind}"


@dataclass
class StepInfo:
    """What :meth:`Observer.on_step` gets after every accepted step."""

    record: StepRecord
    newton_iterations: int
    dt_s: float
    dt_next_s: float
    steps: int  # accepted steps of this phase
    start: dict  # the phase's start: time_s, charge_C, steps (records), wall_s
    stop: str | None  # the event that ends the phase after this step, if any


@dataclass
class PhaseOutcome:
    """How a phase ended."""

    phase: Phase
    stop_reason: str
    steps: int
    start: dict = field(default_factory=dict)
    wall_s: float = 0.0


class Observer:
    """Hooks of the time loop (override what you need); called on every rank."""

    def on_step(self, cell, phase: Phase, info: StepInfo) -> None:
        """After every accepted step."""

    def on_phase_end(self, cell, phase: Phase, outcome: PhaseOutcome) -> None:
        """After the last step of a phase."""


def protocol(
    options: DischargeOptions,
    c_rate: float,
    one_c_A: float,
    cross_section_m2: float,
    time_scheme: str = "euler",
) -> list[Phase]:
    """The phases of one C-rate (see the module docstring). ``one_c_A``: the 1C current (A, or
    A/m in 2D); ``cross_section_m2``: the box cross-section (m², or m in 2D); ``time_scheme``:
    the resolved scheme (``HalfCell.scheme.kind``), whose largest step applies when
    ``dt_max_fraction`` is not given."""
    o = options
    fraction = o.dt_max_fraction
    if fraction is None:
        fraction = DT_MAX_FRACTION[time_scheme]
    kinds = [("discharge", c_rate)]
    if o.rest_s > 0:
        kinds.append(("rest", 0.0))
    if o.charge:
        kinds.append(("charge", o.charge_c_rate or c_rate))
    if o.charge and o.cv_hold:
        kinds.append(("cv", o.charge_c_rate or c_rate))
    phases = []
    for k, (kind, rate) in enumerate(kinds):
        sign = {"discharge": 1.0, "rest": 0.0, "charge": -1.0, "cv": 0.0}[kind]
        ref = 3600.0 / (rate if rate > 0 else c_rate)
        dt_max = max(o.dt_min_s, ref * fraction)
        if kind == "rest":
            t_len = o.rest_s
            dt_max = max(o.dt_min_s, min(dt_max, o.rest_s / 10))
        elif kind == "cv":
            t_len = o.cv_max_s
        else:
            t_len = 3.0 * ref  # safety end: 3x the nominal duration
        phases.append(
            Phase(
                kind=kind,
                index=k,
                c_rate=c_rate,
                rate=rate,
                current_density_A_m2=sign * rate * one_c_A / cross_section_m2,
                duration_s=t_len,
                dt_initial_s=max(o.dt_min_s, ref * o.dt_initial_fraction),
                dt_max_s=dt_max,
                v_hold_V=o.v_max_V if kind == "cv" else None,
                land_at_V=o.v_max_V if kind == "charge" and o.cv_hold else None,
                i_cutoff_A=o.cv_cutoff_c_rate * one_c_A if kind == "cv" else 0.0,
            )
        )
    return phases


#: the stop events located in time: the record's field, the option with its threshold, and
#: the side (+1: at or above it, -1: at or below it) that ends the phase
_CROSSINGS = {
    "v_min": ("voltage_V", "v_min_V", -1),
    "x_max": ("x_max", "x_stop_max", +1),
    "v_max": ("voltage_V", "v_max_V", +1),
    "x_min": ("x_min", "x_stop_min", -1),
    "c_min": ("c_min_mol_m3", "c_stop_min_mol_m3", -1),
}
#: the located stop events each phase kind ends on, in the order they are checked (a CV phase
#: checks its current cut-off, ``i_min``, first)
_PHASE_EVENTS = {
    "discharge": ("v_min", "x_max", "c_min"),
    "charge": ("v_max", "x_min", "c_min"),
    "cv": ("x_min", "c_min"),
}


def event(options: DischargeOptions, phase: Phase, rec: StepRecord) -> str | None:
    """The event that ends ``phase`` after the step ``rec``, or None."""
    if phase.kind == "cv" and abs(rec.applied_current) <= phase.i_cutoff_A:
        return "i_min"
    for name in _PHASE_EVENTS.get(phase.kind, ()):
        field, option, side = _CROSSINGS[name]
        if side * (getattr(rec, field) - getattr(options, option)) >= 0:
            return name
    return None


#: bdf2: a step with a stop event inside is redone to end within this fraction of a step past
#: the (interpolated) crossing, at most MAX_LANDINGS times a phase
LANDING_FRACTION, MAX_LANDINGS = 0.01, 4


def _interpolant(recs, field: str):
    """The polynomial through ``(time_s, field)`` of the records ``recs`` (two: linear, three:
    quadratic), as numpy coefficients in ``t − recs[-1].time_s``; None if two times coincide."""
    t = np.array([r.time_s for r in recs], dtype=float) - recs[-1].time_s
    if len(np.unique(t)) < len(t):
        return None
    return np.polyfit(t, [getattr(r, field) for r in recs], len(recs) - 1)


def _roots(coef, target: float, lo: float, hi: float) -> list[float]:
    """The real times in ``[lo, hi]`` where the polynomial ``coef`` equals ``target``."""
    c = np.array(coef, dtype=float)
    c[-1] -= target
    r = np.roots(np.trim_zeros(c, "f")) if np.any(c[:-1]) else np.array([])
    return sorted(float(x.real) for x in r if abs(x.imag) < 1e-12 and lo <= x.real <= hi)


def event_crossing(options: DischargeOptions, phase: Phase, recs) -> float | None:
    """Where in the last step (``recs[-2]`` → ``recs[-1]``) the stop event of ``recs[-1]`` was
    crossed, as a fraction of the step, or None: no event, one that is not located
    (``i_min``), or one already past at ``recs[-2]``. ``recs``: the phase's last two or three
    records (the start state's included); with three the event's quantity is interpolated by
    the quadratic through them (a curve bending towards its cut-off, as ``x_max`` near
    saturation, is then landed in one redo), else linearly."""
    prev, rec = recs[-2], recs[-1]
    name = event(options, phase, rec)
    if name not in _CROSSINGS:
        return None
    field, option, _ = _CROSSINGS[name]
    a, b, target = getattr(prev, field), getattr(rec, field), getattr(options, option)
    if (a - target) * (b - target) >= 0 or a == b:  # not a crossing inside this step
        return None
    span = rec.time_s - prev.time_s
    coef = _interpolant(recs[-3:], field)
    hits = _roots(coef, target, -span, 0.0) if coef is not None else []
    if hits:
        return (hits[0] + span) / span
    return (target - a) / (b - a)


def landing(options: DischargeOptions, phase: Phase, recs, snap, span, locate: bool):
    """The fraction of the last step (``recs[-1]``) to redo it with, or None to keep it:
    - a charge phase that lands on its CV hold voltage and overshot it (``snap``: the
      :meth:`HalfCell._snapshot` before the step, whose item 4 is the voltage there);
    - with ``locate`` (bdf2), a stop event crossed inside the step more than
      ``LANDING_FRACTION`` of ``span`` (the first step that crossed it; None: this one) before
      its end: the step is redone to end just past the crossing.

    ``recs``: the phase's last two or three records, its start state's included."""
    land, rec = phase.land_at_V, recs[-1]
    if land is not None and rec.voltage_V > land + CV_LANDING_TOL_V:
        v_old = snap[4]
        frac = (land - v_old) / (rec.voltage_V - v_old) if rec.voltage_V > v_old else 0.5
        return min(max(frac, 0.05), 0.95)
    if not locate or len(recs) < 2:
        return None
    frac = event_crossing(options, phase, recs)
    if frac is None or (1 - frac) * rec.dt_s <= LANDING_FRACTION * (span or rec.dt_s):
        return None
    return min(max(frac + LANDING_FRACTION / 2, 0.01), 1.0)  # just past the crossing


#: bdf2: a step is at most this factor times the extrapolation's time to the next stop event
#: (and at least HORIZON_MIN of the step the error control asked for)
HORIZON_FACTOR, HORIZON_MIN = 1.05, 0.25


def event_horizon(options: DischargeOptions, phase: Phase, recs) -> float | None:
    """Seconds from ``recs[-1]`` to the phase's first stop event, extrapolating each event's
    quantity through the phase's last two or three records (linear or quadratic, as
    :func:`event_crossing`; linear where the quadratic does not reach the event within
    twice the linear time); None if none approaches."""
    prev, rec = recs[-2], recs[-1]
    span = rec.time_s - prev.time_s
    best = None
    for name in _PHASE_EVENTS.get(phase.kind, ()):
        field, option, _ = _CROSSINGS[name]
        a, b, target = getattr(prev, field), getattr(rec, field), getattr(options, option)
        if span <= 0 or a == b:
            continue
        t = (target - b) / ((b - a) / span)
        if t <= 0:
            continue
        coef = _interpolant(recs[-3:], field) if len(recs) > 2 else None
        hits = _roots(coef, target, 0.0, 2.0 * t) if coef is not None else []
        t = hits[0] if hits else t
        best = t if best is None else min(best, t)
    return best


def theoretical_capacity(
    params: CellParams, v_cut: float, density_g_cm3: float, charge=False, x_start=None
):
    """``(x_cut, mAh/g)``: Li the active material takes from ``x_start`` (default ``x0``) to
    the stoichiometry where its OCP reaches ``v_cut`` (discharge: ``x`` grows, the OCP falls;
    charge: ``x`` falls). If the OCP never reaches it in ``[0, 1]``, ``x_cut`` is 1
    (discharge) or 0 (charge). ``Q = |x_cut − x_start| c_s,max F / (3.6 ρ)`` (mAh/g, with ρ in
    g/cm³), independent of the geometry."""
    am = params.active
    x_start = am.x0 if x_start is None else float(x_start)
    x = np.linspace(x_start, 0.0 if charge else 1.0, 20001)
    u = np.asarray(am.ocp_V(x), dtype=float)
    hit = np.flatnonzero(u >= v_cut) if charge else np.flatnonzero(u <= v_cut)
    if hit.size == 0:
        x_cut = float(x[-1])
    else:  # linear interpolation between the bracketing samples, then bisection
        k = int(hit[0])
        a, b = float(x[max(k - 1, 0)]), float(x[k])
        for _ in range(60):
            m = 0.5 * (a + b)
            um = float(am.ocp_V(m))
            if (um >= v_cut) == charge:
                b = m
            else:
                a = m
        x_cut = 0.5 * (a + b)
    q = abs(x_cut - x_start) * am.c_max_mol_m3 * FARADAY / 3.6 / (density_g_cm3 * 1e6)
    return x_cut, q
