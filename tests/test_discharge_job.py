"""The discharge job (electrofem.jobs.discharge), its files, restart and the CLI.

The test structure: a 10 x 8 µm 2D box with three overlapping r = 1.5 µm NMC811 particles, a
chain from the collector (the first is cut by the bottom face) up to y = 5 µm, and an
electrolyte band (separator) above. Small particles keep the solid diffusion time short
(r²/D_s = 560 s with D_s = 4e-15 m²/s), so that a C/20 discharge (20 h) is near equilibrium.

Theoretical capacity: Chen 2020's NMC811 OCP stays above 3.49 V up to x = 1, so the Li the
particles can take between x0 = 0.27 and the 2.7 V cut-off is (1 − x0) c_s,max F / ρ =
259.9 mAh/g; the run ends on the stoichiometry event (a node reaches x = 0.995) first.

The carbon-binder option: three particles that touch neither the collector nor each other (2D
gap contacts) discharge through the carbon-binder network in the pores (σ_cb = 1 S/m).

Marked ``mpi``: the same assertions (including the regression numbers) run under mpirun -n 2.
"""

import csv
import json
import math
import tempfile
from pathlib import Path

import pytest
from conftest import cli_error_lines
from mpi4py import MPI

from electrofem.analysis.capacity import event_capacity
from electrofem.cli import main
from electrofem.jobs.discharge import run_discharge
from electrofem.physics.electrochem import (
    CellParams,
    DischargeOptions,
    ElectrochemError,
    theoretical_capacity,
)
from electrofem.physics.materials import FARADAY

pytestmark = pytest.mark.mpi
COMM = MPI.COMM_WORLD

PARTICLES = """x,y,r,phase
2.5,1.2,1.5,active
5.2,2.2,1.5,active
7.5,3.5,1.5,active
"""
GAP_PARTICLES = """x,y,r,phase
2.5,2.0,1.5,active
6.5,2.5,1.5,active
4.5,5.0,1.5,active
"""
CONFIG = """[box]
width = 10.0
height = 8.0
periodic = false

[particles]
csv = "parts.csv"

[mesh]
size = 0.5
"""


def _shared_dir():
    path = tempfile.mkdtemp(prefix="electrofem-dis-") if COMM.rank == 0 else None
    return Path(COMM.bcast(path, root=0))


@pytest.fixture(scope="module")
def workdir():
    path = _shared_dir()
    if COMM.rank == 0:
        (path / "parts.csv").write_text(PARTICLES)
        (path / "cell.toml").write_text(CONFIG)
        (path / "gparts.csv").write_text(GAP_PARTICLES)
        (path / "gap.toml").write_text(CONFIG.replace("parts.csv", "gparts.csv"))
    COMM.barrier()
    yield path
    COMM.barrier()
    if COMM.rank == 0:
        import shutil

        shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="module")
def slow_fast(workdir):
    """C/20 then 2C on the test structure (fields every 20 steps)."""
    opts = DischargeOptions(c_rates=(0.05, 2.0), fields_every_steps=20)
    out = workdir / "rates"
    return run_discharge(workdir / "cell.toml", out, opts, progress=False), out


def test_slow_discharge_reaches_theoretical_capacity(slow_fast):
    rep, _ = slow_fast
    q_th = rep.metrics["theoretical"]["discharge_capacity_mAh_g"]
    x_cut, q = theoretical_capacity(CellParams(), 2.7, 4.75)
    assert x_cut == 1.0 and math.isclose(q, q_th) and math.isclose(q, 259.92, rel_tol=1e-4)
    # the resolved solver choices are recorded (auto on a small 2D cell: MUMPS, backward Euler)
    assert rep.metrics["solver"] == {"linear_solver": "lu", "time_scheme": "euler"}
    d = rep.rates["0.05"]["discharge"]
    assert d.stop_reason in ("x_max", "v_min")
    assert abs(d.capacity_mAh_g / q_th - 1) < 0.02, d.capacity_mAh_g
    rows = [r for r in rep.rows["0.05"] if r["phase"] == "discharge"]
    mass = rep.metrics["active_mass_g"]
    for r in rows:
        # galvanostatic: the interface carries the applied current
        assert abs(r["li_balance_error"]) < 1e-8 * abs(r["current_density_A_m2"]) * 10e-6
        # the Li gained is the charge passed over F (the column the CSV carries)
        li_gained = r["capacity_mAh_g"] * 3.6 * mass / FARADAY
        assert abs(r["li_inventory_error_mol"]) < 1e-9 * li_gained, (r["step"], r)
        # near equilibrium: the voltage follows the OCP of the mean stoichiometry (x < 0.97;
        # above it the vanishing exchange current makes the final drop)
        if r["x_mean"] < 0.97:
            pol = r["ocp_of_x_mean_V"] - r["voltage_V"]
            assert 0 < pol < 0.01, (r["step"], pol)
    # polarization is negligible at C/20, not at 2C
    assert abs(d.end_metrics["c_drop_mol_m3"]) < 1.0
    f = rep.rates["2"]["discharge"]
    assert f.capacity_mAh_g < d.capacity_mAh_g
    assert f.end_metrics["c_drop_mol_m3"] > 10 * abs(d.end_metrics["c_drop_mol_m3"])
    # regression (serial); the same numbers must come out on 2 ranks
    assert d.steps == 131 and d.newton_iterations == 358, (d.steps, d.newton_iterations)
    assert math.isclose(d.capacity_mAh_g, 258.8598632812, rel_tol=1e-9), d.capacity_mAh_g
    assert math.isclose(d.final_voltage_V, 3.48527258124, rel_tol=1e-7), d.final_voltage_V


def test_files_exist_and_agree(slow_fast):
    rep, out = slow_fast
    names = ["discharge.json", "rate_capability.csv", "checkpoint/state.json"]
    for lab in ("0.05", "2"):
        names += [f"discharge_{lab}C.csv"]
        names += [
            f"fields_{lab}C_{p}.{e}" for p in ("electrolyte", "active") for e in ("xdmf", "h5")
        ]
    if COMM.rank == 0:
        names += ["discharge_curves.png", "concentration_map.png"]
    for name in names:
        assert (out / name).is_file(), name
    m = json.loads((out / "discharge.json").read_text())
    assert m["status"] == "done" and m["version"] and m["mpi_ranks"] == COMM.size
    assert m["parameters"]["options"]["c_rates"] == [0.05, 2.0]
    # 1C = 210 mA/g of the active mass, per box cross-section (per metre of depth in 2D)
    assert math.isclose(m["active_mass_g"], m["active_volume_m3"] * 4.75e6, rel_tol=1e-12)
    assert math.isclose(m["one_C_current"], 0.210 * m["active_mass_g"], rel_tol=1e-12)
    assert math.isclose(m["cross_section_m2"], 10e-6, rel_tol=1e-12)
    table = {r["c_rate"]: r for r in m["rate_capability"]}
    for lab, rate in (("0.05", 0.05), ("2", 2.0)):
        with open(out / f"discharge_{lab}C.csv") as fh:
            rows = list(csv.DictReader(fh))
        last = rows[-1]
        cap = m["rates"][lab]["discharge"]["capacity_mAh_g"]
        assert float(last["capacity_mAh_g"]) == cap == table[rate]["capacity_mAh_g"]
        assert float(last["voltage_V"]) == m["rates"][lab]["discharge"]["final_voltage_V"]
        assert len(rows) == m["rates"][lab]["discharge"]["steps"]
        i = float(last["current_density_A_m2"])
        assert math.isclose(i, rate * m["one_C_current_density_A_m2"], rel_tol=1e-12)
        assert rep.capacity(rate) == cap
    xdmf = (out / "fields_2C_active.xdmf").read_text()
    assert 'Name="x"' in xdmf and 'Name="c_s"' in xdmf and 'Name="phi_s"' in xdmf
    assert 'Name="j_interface"' in xdmf


#: state.json keys of a discharge checkpoint, as written before the jobs/ refactor.
CHECKPOINT_KEYS = (
    "phase time_s charge_C phase_start dt_next_s records version rate_index phase_index "
    "rate_label options rates metrics_rates all_rows restarts seq arrays"
).split()


class Killed(Exception):
    pass


def test_restart_matches_uninterrupted_run(workdir):
    opts = DischargeOptions(
        c_rates=(4.0, 2.0),
        rest_s=300.0,
        charge=True,
        charge_c_rate=4.0,
        checkpoint_every_steps=4,
        dt_max_fraction=0.05,
    )
    full = run_discharge(workdir / "cell.toml", workdir / "full", opts, progress=False)
    out = workdir / "killed"

    def kill(row):  # a "kill" in the 2C charge: the 4C rate done, checkpoints every 4 steps
        if row["c_rate"] == 2.0 and row["phase"] == "charge" and row["phase_time_s"] > 300:
            raise Killed

    with pytest.raises(Killed):
        run_discharge(workdir / "cell.toml", out, opts, progress=False, step_callback=kill)
    state = json.loads((out / "checkpoint" / "state.json").read_text())
    assert state["rate_label"] == "2" and state["phase"] == "charge"
    # the checkpoint format of earlier releases (old checkpoints restart): the same keys
    assert set(state) == set(CHECKPOINT_KEYS), set(state) ^ set(CHECKPOINT_KEYS)
    m = json.loads((out / "discharge.json").read_text())
    assert m["status"] == "running" and "4" in m["rates"]
    res = run_discharge(workdir / "cell.toml", out, opts, progress=False, restart=True)
    assert res.metrics["restarts"] == 1
    for lab in ("4", "2"):
        for phase in ("discharge", "rest", "charge"):
            a, b = full.rates[lab][phase], res.rates[lab][phase]
            assert a.steps == b.steps and a.stop_reason == b.stop_reason, (lab, phase)
            assert math.isclose(a.capacity_mAh_g, b.capacity_mAh_g, rel_tol=1e-10)
            assert math.isclose(a.final_voltage_V, b.final_voltage_V, rel_tol=1e-10)
        assert len(full.rows[lab]) == len(res.rows[lab])
    ch = full.rates["2"]["charge"]
    assert ch.stop_reason in ("v_max", "x_min") and ch.capacity_mAh_g > 50, ch
    assert full.rates["2"]["rest"].final_voltage_V > full.rates["2"]["discharge"].final_voltage_V


def test_bdf2_restart_agrees_with_an_uninterrupted_run(workdir):
    """A BDF2 run killed in its discharge and resumed: its history starts again at the
    checkpoint (one backward-Euler step, then the predictor), so it agrees with the
    uninterrupted run to the time tolerance, not bit for bit; both land on the same stop
    event, and the charge after it is the same phase sequence."""
    opts = DischargeOptions(
        c_rates=(4.0,),
        rest_s=120.0,
        charge=True,
        checkpoint_every_steps=3,
        time_scheme="bdf2",
    )
    full = run_discharge(workdir / "cell.toml", workdir / "bdf2_full", opts, progress=False)
    out = workdir / "bdf2_killed"

    def kill(row):  # after the third checkpoint of the discharge
        if row["phase"] == "discharge" and row["step"] == 10:
            raise Killed

    with pytest.raises(Killed):
        run_discharge(workdir / "cell.toml", out, opts, progress=False, step_callback=kill)
    res = run_discharge(workdir / "cell.toml", out, opts, progress=False, restart=True)
    assert res.metrics["restarts"] == 1
    assert res.metrics["solver"]["time_scheme"] == "bdf2"
    for phase in ("discharge", "rest", "charge"):
        a, b = full.rates["4"][phase], res.rates["4"][phase]
        assert a.stop_reason == b.stop_reason, phase
        # measured: the same step counts, capacities within 2.3e-5 relative, final voltages
        # within 2.7e-5 V (an uninterrupted euler restart agrees to 1e-10)
        assert math.isclose(a.capacity_mAh_g, b.capacity_mAh_g, rel_tol=2e-4), (phase, a, b)
        assert abs(a.final_voltage_V - b.final_voltage_V) < 2e-4, (phase, a, b)
    times = [float(r["time_s"]) for r in res.rows["4"]]
    assert all(b > a for a, b in zip(times, times[1:], strict=False))  # one continuous record


def test_cli_errors_are_one_line(workdir, capsys):
    out = str(workdir / "cli")
    code = main(["discharge", str(workdir / "cell.toml"), "-o", out, "--c-rates=-1,0.5", "-q"])
    err = "\n".join(cli_error_lines(capsys))
    assert code == 2 and err == "electrofem: error: --c-rates: must be positive, got -1.0"
    bad = workdir / "bad.toml"
    if COMM.rank == 0:
        bad.write_text(CONFIG + "\n[discharge]\nc_rate = [1.0]\n")
    COMM.barrier()
    code = main(["discharge", str(bad), "-o", out, "-q"])
    err = "\n".join(cli_error_lines(capsys))
    assert code == 2 and err.startswith("electrofem: error: discharge.c_rate: unknown key")
    assert "\n" not in err
    code = main(["discharge", str(workdir / "cell.toml"), "-o", out, "--restart", "-q"])
    err = "\n".join(cli_error_lines(capsys))
    assert code == 2 and err.startswith("electrofem: error: --restart: no usable checkpoint")


def test_cli_runs(workdir, capsys):
    out = workdir / "cli_ok"
    code = main(["discharge", str(workdir / "cell.toml"), "-o", str(out), "--c-rates", "4", "-q"])
    assert code == 0
    text = capsys.readouterr().out
    if COMM.rank == 0:
        assert text.startswith("4C: ") and "mAh/g" in text
    assert (out / "discharge_4C.csv").is_file()


def test_isolated_particles_need_the_carbon_binder_network(workdir):
    opts = DischargeOptions(c_rates=(0.2,), checkpoint_every_steps=0)
    with pytest.raises(RuntimeError, match="no particle touches it"):
        run_discharge(workdir / "gap.toml", workdir / "gap0", opts, progress=False, plots=False)
    opts = DischargeOptions(c_rates=(0.2,), cbd_conductivity_S_m=1.0)
    rep = run_discharge(workdir / "gap.toml", workdir / "gap1", opts, progress=False, plots=False)
    d = rep.rates["0.2"]["discharge"]
    q_th = rep.metrics["theoretical"]["discharge_capacity_mAh_g"]
    assert d.stop_reason == "x_max" and abs(d.capacity_mAh_g / q_th - 1) < 0.02
    assert rep.metrics["parameters"]["cell"]["cbd_conductivity_S_m"] == 1.0
    for r in rep.rows["0.2"]:
        assert abs(r["li_balance_error"]) < 1e-8 * abs(r["current_density_A_m2"]) * 10e-6
    xdmf = (workdir / "gap1" / "fields_0.2C_electrolyte.xdmf").read_text()
    assert 'Name="phi_cb"' in xdmf
    # regression (serial); the same numbers must come out on 2 ranks
    assert (d.steps, d.newton_iterations) == (131, 370), (d.steps, d.newton_iterations)
    assert math.isclose(d.capacity_mAh_g, 258.86, rel_tol=1e-5), d.capacity_mAh_g
    assert math.isclose(d.final_voltage_V, 3.4678, rel_tol=1e-4), d.final_voltage_V


def test_failure_keeps_what_was_written(workdir):
    out = workdir / "fail"
    opts = DischargeOptions(c_rates=(0.5, 1e5), dt_min_s=0.05, checkpoint_every_steps=0)
    with pytest.raises(ElectrochemError, match="100000C discharge: time step fell below"):
        run_discharge(workdir / "cell.toml", out, opts, progress=False, plots=False)
    m = json.loads((out / "discharge.json").read_text())
    assert m["status"] == "failed" and "dt_min_s" in m["error"]
    assert m["rates"]["0.5"]["discharge"]["stop_reason"] == "x_max"
    assert (out / "discharge_0.5C.csv").is_file()


def test_cc_cv_charge(workdir):
    """CC-CV: after the constant-current charge reaches 4.3 V the voltage is held there and the
    current decays until it falls below the cut-off (C/20 of 1C here); Li is conserved with the
    measured CV current."""
    opts = DischargeOptions(
        c_rates=(4.0,),
        charge=True,
        cv_hold=True,
        cv_cutoff_c_rate=0.05,
        dt_max_fraction=0.05,
    )
    rep = run_discharge(workdir / "cell.toml", workdir / "cccv", opts, progress=False)
    ph = rep.rates["4"]
    assert ph["charge"].stop_reason == "v_max", ph["charge"]
    cv = ph["cv"]
    assert cv.stop_reason == "i_min", cv
    assert cv.capacity_mAh_g > 0 and cv.steps >= 3
    one_c = rep.metrics["one_C_current_density_A_m2"]
    rows = [r for r in rep.rows["4"] if r["phase"] == "cv"]
    for r in rows:
        assert abs(r["voltage_V"] - 4.3) < 1e-9, r["voltage_V"]
        assert r["current_density_A_m2"] < 0  # still charging
        # the interface carries the (measured) collector current
        assert abs(r["li_balance_error"]) < 1e-8 * abs(r["current_density_A_m2"]) * 10e-6
    cur = [abs(r["current_density_A_m2"]) for r in rows]
    assert cur[0] > 0.05 * one_c >= cur[-1]
    assert all(b < a * (1 + 1e-9) for a, b in zip(cur, cur[1:], strict=False))  # decays
    # the CV hold brings the charge close to what the OCP allows between the end of the
    # discharge and 4.3 V (x(4.3 V) < x0: the charge takes out more than the discharge put in)
    q_charged = ph["charge"].capacity_mAh_g + cv.capacity_mAh_g
    _, q_max = theoretical_capacity(
        CellParams(), 4.3, 4.75, charge=True, x_start=ph["discharge"].x_mean_end
    )
    assert 0.9 * q_max < q_charged < q_max * 1.001, (ph["charge"].capacity_mAh_g, q_charged, q_max)
    m = json.loads((workdir / "cccv" / "discharge.json").read_text())
    assert m["rates"]["4"]["cv"]["stop_reason"] == "i_min"
    with pytest.raises(ValueError, match="cv_hold"):
        DischargeOptions(cv_hold=True).validate()


def test_event_capacity_interpolates_the_crossing():
    rows = [
        {"phase": "discharge", "capacity_mAh_g": 100.0, "voltage_V": 3.0, "x_max": 0.99},
        {"phase": "discharge", "capacity_mAh_g": 110.0, "voltage_V": 2.9, "x_max": 0.999},
    ]
    # x_max crosses 0.995 at 5/9 of the step, before the voltage reaches any cut-off
    assert math.isclose(event_capacity(rows, 2.7, 0.995), 100.0 + 10.0 * 5 / 9)
    rows[-1]["voltage_V"] = 2.5  # the voltage crosses 2.7 at 3/5, after x_max: x_max wins
    assert math.isclose(event_capacity(rows, 2.7, 0.995), 100.0 + 10.0 * 5 / 9)
    rows[-1]["x_max"] = 0.994  # no stoichiometry event: the voltage one
    assert math.isclose(event_capacity(rows, 2.7, 0.995), 106.0)
    rows[-1]["voltage_V"] = 2.8
    assert event_capacity(rows, 2.7, 0.995) is None
