"""The discharge's time schemes (``DischargeOptions.time_scheme``, electrochem/timestep.py).

1. Fixed steps from a developed state: BDF2 converges at order 2 in the step and backward
   Euler at order 1, against a run at a 32× smaller step (the voltage and the stoichiometry).
2. The local-error factor of Milne's device: 2/11 at a constant step, and exact on a cubic at
   any step ratio.
3. An adaptive BDF2 run conserves Li and charge as backward Euler does, is more accurate than
   backward Euler's default control in no more steps, and lands on its stop event.

Marked ``mpi``: the same assertions run under mpirun -n 2.
"""

import math

import numpy as np
import pytest
from mpi4py import MPI
from test_electrochem import particle_mesh

from electrofem.physics.electrochem import CellParams, DischargeOptions, HalfCell
from electrofem.physics.electrochem.timestep import milne_factor, weights
from electrofem.physics.materials import FARADAY

pytestmark = pytest.mark.mpi
COMM = MPI.COMM_WORLD


@pytest.fixture(scope="module")
def emesh():
    return particle_mesh()


def fixed_run(emesh, scheme: str, dt: float):
    """Eight 0.25 s steps at 30 A/m² from rest (the same for every dt), then 4 s in steps of
    ``dt``: the voltage and the gathered stoichiometry field at the end."""
    opts = DischargeOptions(current_density_A_m2=30.0, time_scheme=scheme, time_tolerance=1e9)
    with HalfCell(emesh, CellParams(), opts) as cell:
        for _ in range(8):
            assert cell.step(0.25)[0]
        for _ in range(round(4.0 / dt)):
            assert cell.step(dt)[0]
        x = cell.fields["x"]
        n = x.function_space.dofmap.index_map.size_local
        xmax = COMM.allreduce(float(np.max(x.x.array[:n], initial=-np.inf)), op=MPI.MAX)
        return cell.voltage(), xmax, x.x.array[:n].copy()


@pytest.mark.parametrize("scheme, order", [("bdf2", 2.0), ("euler", 1.0)])
def test_fixed_steps_converge_at_the_schemes_order(emesh, scheme, order):
    v_ref, _, x_ref = fixed_run(emesh, scheme, 1 / 32)
    errs = []
    for dt in (1.0, 0.5, 0.25):
        v, _, x = fixed_run(emesh, scheme, dt)
        ex = COMM.allreduce(float(np.max(np.abs(x - x_ref), initial=0.0)), op=MPI.MAX)
        errs.append((abs(v - v_ref), ex))
    errs = np.array(errs)
    rates = np.log2(errs[:-1] / errs[1:])
    # measured: BDF2 1.89-1.98, backward Euler 1.00-1.09
    assert np.all(np.abs(rates - order) < 0.2), (errs, rates)
    if scheme == "bdf2":  # and far more accurate at the same step
        assert np.all(errs[-1] < 2e-5), errs


def test_the_local_error_factor():
    assert math.isclose(milne_factor(1.0, 1.0, 1.0), 2 / 11, rel_tol=1e-12)
    # on u = t^3 (u''' = 6), the factor times (BDF2 - predictor) is BDF2's error exactly
    for dt, dt1, dt2 in ((1.0, 0.5, 2.0), (0.3, 1.0, 1.0), (2.0, 1.5, 0.25)):
        t0, t1, t2, t3 = -(dt1 + dt2), -dt1, 0.0, dt
        k0, k1 = weights(dt, dt1)
        u = t2**3 + (3 * t3**2 + k1 * (t2**3 - t1**3)) / k0  # one BDF2 step of u' = 3t²
        lag = np.polyfit([t0, t1, t2], [t0**3, t1**3, t2**3], 2)
        pred = np.polyval(lag, t3)
        assert math.isclose(milne_factor(dt, dt1, dt2) * (u - pred), u - t3**3, rel_tol=1e-9)
    # backward Euler's weights, and BDF2's at a constant step: (3/2, 1/2) / dt
    assert weights(2.0, None) == (0.5, 0.0)
    assert np.allclose(weights(2.0, 2.0), (0.75, 0.25))


def adaptive_run(emesh, scheme: str, **extra):
    opts = DischargeOptions(
        current_density_A_m2=30.0, t_end_s=150.0, dt_max_s=100.0, time_scheme=scheme, **extra
    )
    with HalfCell(emesh, CellParams(), opts) as cell:
        return cell.run()


def test_adaptive_bdf2_conserves_and_beats_the_default_control(emesh):
    ref = adaptive_run(emesh, "bdf2", time_tolerance=1e-6)
    t_ref = [r.time_s for r in ref.records]
    v_ref = [r.voltage_V for r in ref.records]
    results = {
        "bdf2": adaptive_run(emesh, "bdf2", time_tolerance=1e-2),
        "euler": adaptive_run(emesh, "euler"),
    }
    err = {}
    for name, res in results.items():
        assert res.stop_reason == "t_end"
        assert math.isclose(res.records[-1].time_s, 150.0, rel_tol=1e-12)
        for r in res.records:
            assert abs(r.interface_current / r.applied_current - 1) < 1e-6
            gained = r.li_total_mol - res.initial_li_mol
            assert abs(gained * FARADAY / r.charge_passed_C - 1) < 1e-9, (name, r.step)
            # galvanostatic: BDF2's charge rule integrates the constant current exactly
            assert math.isclose(r.charge_passed_C, r.applied_current * r.time_s, rel_tol=1e-12)
        t = np.array([r.time_s for r in res.records])
        v = np.array([r.voltage_V for r in res.records])
        err[name] = float(np.max(np.abs(v - np.interp(t, t_ref, v_ref))))
    n = {k: len(v.records) for k, v in results.items()}
    # measured: 17 steps each; bdf2 2.2 mV from the reference, euler 11.9 mV
    assert n["bdf2"] <= n["euler"], n
    assert err["bdf2"] < err["euler"] / 3, err


def test_bdf2_lands_on_the_stop_event(emesh):
    """Backward Euler stops at the first step past the cut-off; BDF2 redoes that step to end
    within a hundredth of it past the crossing (a redo that ends just short is followed by a
    step that crosses within that window)."""
    stops = {}
    for scheme in ("euler", "bdf2"):
        opts = DischargeOptions(
            current_density_A_m2=30.0,
            t_end_s=400.0,
            dt_initial_s=1.0,
            dt_max_s=100.0,
            v_min_V=4.10,
            time_scheme=scheme,
        )
        with HalfCell(emesh, CellParams(), opts) as cell:
            res = cell.run()
        assert res.stop_reason == "v_min"
        last, before = res.records[-1], res.records[-2]
        assert last.voltage_V <= 4.10 < before.voltage_V
        stops[scheme] = (4.10 - last.voltage_V, res.records)
    overshoot, recs = stops["bdf2"]
    # the voltage falls ~9 mV a second here, so 1/100 of a ~0.6 s step is ~5e-5 V
    assert overshoot < 5e-5, stops  # measured 4.9e-6 V (backward Euler: 2.1e-3 V)
    assert overshoot < 0.01 * stops["euler"][0], stops
    assert len(recs) <= 6, [r.dt_s for r in recs]  # the landing took at most two more steps


def test_the_event_horizon_extrapolates_the_nearest_stop_event():
    """bdf2 caps a step at 1.05× the extrapolated time to the next stop event: linear through
    two records, quadratic through three; and a crossing is located by the same polynomial."""
    from types import SimpleNamespace

    from electrofem.physics.electrochem.protocol import Phase, event_crossing, event_horizon

    opts = DischargeOptions()  # x_stop_max 0.995, v_min_V below the OCP range here
    phase = Phase(kind="discharge", current_density_A_m2=10.0, duration_s=3600.0)

    def rec(t, x, v):
        return SimpleNamespace(time_s=t, x_max=x, x_min=x, voltage_V=v, c_min_mol_m3=900.0)

    # x_max rises 0.06 in 360 s: 0.955 -> 0.995 in 240 s; the voltage is far from v_min
    h = event_horizon(opts, phase, [rec(3256.8, 0.895, 3.548), rec(3616.8, 0.955, 3.497)])
    assert math.isclose(h, 240.0, rel_tol=1e-9), h
    # nothing approaching: None
    assert event_horizon(opts, phase, [rec(0.0, 0.5, 4.0), rec(10.0, 0.5, 4.0)]) is None
    # a charge phase looks at x_min and v_max, not x_max
    charge = Phase(kind="charge", current_density_A_m2=-10.0, duration_s=3600.0)
    h = event_horizon(opts, charge, [rec(0.0, 0.9, 4.0), rec(10.0, 0.95, 4.1)])
    assert h is None or h > 10.0

    # x_max = 0.9 + 1e-5 t² bends up to its cut-off: it reaches 0.995 at t = sqrt(9500) s
    def bent(t):
        return rec(t, 0.9 + 1e-5 * t * t, 3.5)

    t_hit = math.sqrt(9500.0)
    h = event_horizon(opts, phase, [bent(40.0), bent(60.0), bent(80.0)])
    assert math.isclose(80.0 + h, t_hit, rel_tol=1e-9), h
    linear = event_horizon(opts, phase, [bent(60.0), bent(80.0)])
    assert linear > 1.2 * h  # the chord's slope is too small: it would aim far past
    frac = event_crossing(opts, phase, [bent(60.0), bent(80.0), bent(120.0)])
    assert math.isclose(80.0 + 40.0 * frac, t_hit, rel_tol=1e-9), frac
    chord = event_crossing(opts, phase, [bent(80.0), bent(120.0)])
    assert 80.0 + 40.0 * chord < t_hit - 1.5  # the chord lands short of the crossing


def test_auto_is_bdf2_on_large_3d_problems_and_sets_the_largest_step():
    """``time_scheme = "auto"``: BDF2 in 3D from ITERATIVE_MIN_DOFS unknowns (where the linear
    solver turns iterative), backward Euler otherwise; an unset ``dt_max_fraction`` is the
    resolved scheme's (0.01 / 0.1 of 3600/C s)."""
    from electrofem.physics.electrochem.options import ITERATIVE_MIN_DOFS
    from electrofem.physics.electrochem.protocol import protocol
    from electrofem.physics.electrochem.timestep import resolve_time_scheme

    n = ITERATIVE_MIN_DOFS
    assert resolve_time_scheme("auto", 3, n, n) == "bdf2"
    assert resolve_time_scheme("auto", 3, n - 1, n) == "euler"
    assert resolve_time_scheme("auto", 2, 10 * n, n) == "euler"
    assert resolve_time_scheme("euler", 3, 10 * n, n) == "euler"
    assert resolve_time_scheme("bdf2", 2, 10, n) == "bdf2"
    opts = DischargeOptions()
    assert opts.time_scheme == "auto" and opts.dt_max_fraction is None
    for kind, frac in (("euler", 0.01), ("bdf2", 0.1)):
        phase = protocol(opts, 2.0, 1.0, 1.0, kind)[0]
        assert math.isclose(phase.dt_max_s, frac * 1800.0, rel_tol=1e-12), (kind, phase)
    given = DischargeOptions(dt_max_fraction=0.05)
    assert math.isclose(protocol(given, 1.0, 1.0, 1.0, "bdf2")[0].dt_max_s, 180.0)


def test_a_small_2d_cell_resolves_auto_to_backward_euler(emesh):
    with HalfCell(emesh, CellParams(), DischargeOptions()) as cell:
        assert cell.scheme.kind == "euler" and cell.linear_solver == "lu"


def test_bdf2_newton_tolerance_follows_the_time_tolerance(emesh):
    """BDF2's Newton stops at ``snes_rtol = 1e-4 × time_tolerance`` in [1e-10, 1e-6]; backward
    Euler keeps 1e-10; ``petsc_options`` overrides both. (That a run at the loosest value still
    balances the currents to 1e-6 and the Li to 1e-9 is the adaptive test above.)"""
    from electrofem.physics.electrochem.timestep import newton_rtol

    assert newton_rtol("euler", 1e-2) is None
    assert math.isclose(newton_rtol("bdf2", 1e-2), 1e-6)
    assert math.isclose(newton_rtol("bdf2", 1e-4), 1e-8)
    assert newton_rtol("bdf2", 1e9) == 1e-6 and newton_rtol("bdf2", 1e-9) == 1e-10
    cases = [
        (dict(time_scheme="bdf2"), 1e-6),
        (dict(time_scheme="bdf2", time_tolerance=1e-5), 1e-9),
        (dict(time_scheme="euler"), 1e-10),
        (dict(time_scheme="bdf2", petsc_options={"snes_rtol": 1e-8}), 1e-8),
    ]
    for kw, rtol in cases:
        with HalfCell(emesh, CellParams(), DischargeOptions(**kw)) as cell:
            got = cell.problem.solver.getTolerances()[0]
            assert math.isclose(got, rtol, rel_tol=1e-12), (kw, got)
