"""The infiltration job (electrofem.jobs.infiltrate) and ``electrofem infiltrate``.

A small pore space (3 disks in a 20 × 24 µm box, ~440 pore cells) and a few dozen steps each:
files, metrics, volume balance, restart, divergence, bad input. Marked ``mpi``: the same
assertions run under ``mpirun -n 2``."""

import csv
import json
from pathlib import Path

import gmsh
import numpy as np
import pytest
from conftest import cli_error_lines
from mpi4py import MPI

from electrofem.cli import main
from electrofem.jobs.infiltrate import run_infiltration
from electrofem.jobs.infiltrate_metrics import crossing_time
from electrofem.jobs.output import read_checkpoint, write_checkpoint
from electrofem.mesh import ElectrodeMesh, MeshOptions, build_and_mesh
from electrofem.microstructure import Box, Particles
from electrofem.physics.vof import InfiltrationOptions, VOFDivergenceError, VOFSolver

pytestmark = pytest.mark.mpi
COMM = MPI.COMM_WORLD
W, H = 20.0, 24.0
T_END = 1.2e-5  # ~20 steps


@pytest.fixture(scope="module")
def electrode():
    parts = Particles(
        Box((W, H), periodic=False), [[5.0, 8.0], [14.0, 14.0], [6.0, 19.0]], [3.5, 3.5, 3.0]
    )
    if COMM.rank == 0:
        gmsh.initialize()
        build_and_mesh(parts, MeshOptions(size=1.5, radius_factor=0.5))
    em = ElectrodeMesh.from_gmsh(COMM, 2, {"box_um": [W, H]})
    if COMM.rank == 0:
        gmsh.finalize()
    return em


def opts(**kw):
    base = dict(
        t_end_s=T_END,
        initial_film_um=4.0,
        output_interval_s=T_END / 3,
        checkpoint_every_steps=4,
        n_slabs=6,
    )
    return InfiltrationOptions(**{**base, **kw})


def read_csv(path):
    with open(path) as fh:
        return [{k: float(v) for k, v in r.items()} for r in csv.DictReader(fh)]


def test_files_metrics_and_volume_balance(electrode, shared_tmp):
    out = shared_tmp / "run"
    rep = run_infiltration(electrode, out, opts(), progress=False)
    m = rep.metrics
    assert m["status"] == "done" and m["stop_reason"] == "t_end"
    assert m["version"] and m["parameters"]["options"]["contact_angle_deg"] == 30.0
    assert "assumed" in m["parameters"]["sources"]["surface_tension_N_m"]
    assert m["t_final_s"] == pytest.approx(T_END, rel=1e-12)
    for name in ("infiltration.json", "infiltration.csv", "fields.xdmf", "fields.h5"):
        assert (out / name).is_file(), name
    assert (out / "checkpoint" / "state.json").is_file()
    if COMM.rank == 0:
        assert (out / "infiltration.png").is_file()
        assert len(list((out / "snapshots").glob("alpha_*.png"))) >= 4  # t = 0, 3 outputs
        on_disk = json.loads((out / "infiltration.json").read_text())
        assert on_disk["status"] == "done"
        rows = read_csv(out / "infiltration.csv")
        assert len(rows) == m["steps"] == len(rep.rows)
        for key in ("t_s", "dt_s", "outlet_fraction", "saturation", "volume_balance", "courant"):
            assert key in rows[0]
    # the global volume balance, from the boundary fluxes of the conservative α update
    bal = m["volume_balance"]
    assert bal["ok"] and bal["relative_error_max"] < 1e-3
    assert bal["relative_error_max"] < 1e-9  # in fact round-off
    assert bal["inflow_m2"] == pytest.approx(1e-4 * m["inlet_open_length_m"] * T_END, rel=1e-9)
    # saturation = stored electrolyte / pore volume; no electrolyte has reached the outlet
    assert m["outlet_fraction_final"] == 0.0 and m["breakthrough_time_s"] is None
    s0 = rep.rows[0]["saturation"] - rep.rows[0]["inflow_cum_m2"] / m["pore_volume_m2"]
    assert m["saturation_final"] == pytest.approx(
        s0 + bal["inflow_m2"] / m["pore_volume_m2"], rel=1e-9
    )
    assert m["final_air_fraction"] == pytest.approx(1 - m["saturation_final"])
    lo, hi = m["alpha_bounds"]
    assert lo > -1e-6 and hi < 1 + 1e-6
    prof = m["air_profile"]
    assert len(prof) == 6
    assert prof[0]["air_fraction"] == 1.0  # bottom slab still dry
    assert prof[-1]["air_fraction"] < 0.5  # top slab wetted (film + inflow)


@pytest.fixture(scope="module")
def one_pore():
    """One disk in a 12 × 12 µm box (~100 pore cells)."""
    parts = Particles(Box((12.0, 12.0), periodic=False), [[6.0, 6.0]], [3.0])
    if COMM.rank == 0:
        gmsh.initialize()
        build_and_mesh(parts, MeshOptions(size=2.0, radius_factor=0.5))
    em = ElectrodeMesh.from_gmsh(COMM, 2, {"box_um": [12.0, 12.0]})
    if COMM.rank == 0:
        gmsh.finalize()
    return em


def test_full_infiltration_to_breakthrough(one_pore, shared_tmp):
    """A whole run, dry to wetted, at an inlet speed 500× the paper's (0.05 m/s, Ca ≈ 4e-3,
    still capillary-dominated) so that it takes ~240 steps: breakthrough is detected before the
    pore volume has entered, the pores end nearly saturated, the balance holds throughout."""
    o = InfiltrationOptions(
        inlet_speed_m_s=0.05, fill_factor=1.3, n_slabs=6, checkpoint_every_steps=0
    )
    rep = run_infiltration(one_pore, shared_tmp / "bt", o, progress=False, plots=False)
    m = rep.metrics
    fill = m["fill_time_s"]
    print(
        f"breakthrough {m['breakthrough_time_s']:.4e} s (flux-weighted "
        f"{m['breakthrough_time_flux_s']:.4e}), fill time {fill:.4e} s, final air "
        f"{m['final_air_fraction']:.4f}, {m['steps']} steps"
    )
    assert m["status"] == "done"
    assert 0.5 * fill < m["breakthrough_time_s"] <= fill
    assert m["breakthrough_time_flux_s"] == pytest.approx(m["breakthrough_time_s"], rel=0.1)
    assert m["outlet_fraction_max"] > 0.5
    assert 0 <= m["final_air_fraction"] < 0.05
    assert m["volume_balance"]["relative_error_max"] < 1e-9
    assert all(0 <= p["air_fraction"] <= 1 for p in m["air_profile"])
    lo, hi = m["alpha_bounds"]
    assert lo > -1e-6 and hi < 1 + 1e-6


def test_breakthrough_definition():
    """First crossing of the level, linearly interpolated between steps."""
    rows = [{"t_s": t, "f": f} for t, f in ((1.0, 0.0), (2.0, 0.004), (3.0, 0.02), (4.0, 0.5))]
    assert crossing_time(rows, "f", 0.01) == pytest.approx(2.0 + 0.006 / 0.016)
    assert crossing_time(rows, "f", 0.9) is None


class _Kill(Exception):
    pass


@pytest.fixture(scope="module")
def reference(electrode, tmp_path_factory):
    """The uninterrupted run that the restarted ones must reproduce."""
    path = COMM.bcast(str(tmp_path_factory.mktemp("ref")) if COMM.rank == 0 else None)
    return run_infiltration(electrode, Path(path) / "ref", opts(), progress=False, plots=False)


def assert_same_rows(ref, rep):
    assert rep.metrics["steps"] == ref.metrics["steps"]
    assert len(rep.rows) == len(ref.rows)
    for a, b in zip(ref.rows, rep.rows, strict=True):
        for key in ("t_s", "dt_s", "saturation", "outlet_fraction", "courant", "u_max_m_s"):
            assert b[key] == pytest.approx(a[key], rel=1e-9, abs=1e-300), (a["step"], key)


def test_restart_reproduces_uninterrupted_run(electrode, shared_tmp, reference):
    ref = reference
    out = shared_tmp / "killed"

    def kill(row):
        if row["step"] == 10:
            raise _Kill

    with pytest.raises(_Kill):
        run_infiltration(electrode, out, opts(), progress=False, plots=False, step_callback=kill)
    state = json.loads((out / "checkpoint" / "state.json").read_text())
    assert 10 - 4 <= state["n_steps"] < 10  # at most one checkpoint interval lost
    assert json.loads((out / "infiltration.json").read_text())["status"] == "running"
    rep = run_infiltration(electrode, out, opts(), progress=False, plots=False, restart=True)
    assert rep.metrics["restarts"] == 1 and rep.metrics["restart_changes"] == {}
    assert_same_rows(ref, rep)


#: The keys of a checkpoint's ``state.json`` as the job wrote them before the options and the
#: time loop were unified (``seq`` and ``arrays`` are added by ``write_checkpoint``).
FORMER_STATE_KEYS = (
    "version",
    "t",
    "n_steps",
    "rows",
    "options",
    "restarts",
    "v0",
    "inflow",
    "outflow",
    "next_out",
    "last_out",
    "out_index",
)


def former_state_arrays(s):
    """The checkpoint arrays exactly as the former job built them (its ``_solver_arrays``)."""
    n = s.n_owned
    nu = s.V.dofmap.index_map.size_local
    npd = s.Q.dofmap.index_map.size_local

    def gather(a):
        parts = COMM.gather(np.ascontiguousarray(a), root=0)
        return np.concatenate(parts) if COMM.rank == 0 else None

    out = {
        "alpha": gather(s.alpha.x.array[s.c2d][:n]),
        "alpha_xy": gather(s.centroid[:n]),
        "u": gather(s.u.x.array.reshape(-1, s.gdim)[:nu]),
        "u_xy": gather(s.V.tabulate_dof_coordinates()[:nu, : s.gdim]),
        "p": gather(s.p.x.array[:npd]),
        "p_xy": gather(s.Q.tabulate_dof_coordinates()[:npd, : s.gdim]),
    }
    return out if COMM.rank == 0 else {}


def test_restart_from_a_checkpoint_in_the_former_layout(
    electrode, shared_tmp, reference, monkeypatch
):
    """A checkpoint written before the refactor (arrays built by the former job, a state.json
    with the former keys only) still restarts, and the run continues as if uninterrupted."""
    out = shared_tmp / "former"

    def kill(row):
        if row["step"] == 10:
            raise _Kill

    with monkeypatch.context() as mp, pytest.raises(_Kill):
        mp.setattr(VOFSolver, "state_arrays", former_state_arrays)
        run_infiltration(electrode, out, opts(), progress=False, plots=False, step_callback=kill)
    ckdir = out / "checkpoint"
    state, arrays = read_checkpoint(ckdir, COMM)
    assert sorted(arrays) == ["alpha", "alpha_xy", "p", "p_xy", "u", "u_xy"]
    former = {k: state[k] for k in FORMER_STATE_KEYS}
    write_checkpoint(ckdir, state["seq"], former, arrays if COMM.rank == 0 else {}, COMM)
    rep = run_infiltration(electrode, out, opts(), progress=False, plots=False, restart=True)
    assert rep.metrics["restarts"] == 1 and rep.metrics["restart_changes"] == {}
    assert_same_rows(reference, rep)


def test_restart_without_checkpoint_fails(electrode, shared_tmp):
    with pytest.raises(ValueError, match="no usable checkpoint"):
        run_infiltration(electrode, shared_tmp / "none", opts(), progress=False, restart=True)


def test_divergence_stops_and_keeps_files(electrode, shared_tmp, monkeypatch):
    """Step 6 gets a non-finite dt (as a blown-up velocity would give): the solver's NaN
    guard fires; the job stops with status "failed" and keeps what it wrote. (A merely huge
    dt does not diverge: the step is implicit enough to stay bounded.)"""
    stable = VOFSolver.stable_dt

    def broken(self):
        return stable(self) if self.n_steps < 5 else float("nan")

    monkeypatch.setattr(VOFSolver, "stable_dt", broken)
    out = shared_tmp / "diverged"
    with pytest.raises(VOFDivergenceError, match="everything written so far is kept"):
        run_infiltration(electrode, out, opts(t_end_s=1e-4), progress=False)
    COMM.barrier()
    m = json.loads((out / "infiltration.json").read_text())
    assert m["status"] == "failed" and m["error"]
    assert m["steps"] == 5
    assert (out / "fields.xdmf").is_file() and (out / "checkpoint" / "state.json").is_file()
    assert len(read_csv(out / "infiltration.csv")) == 5


def test_cli_runs_on_a_mesh_file(electrode, shared_tmp, capsys):
    mesh = shared_tmp / "mesh.xdmf"
    electrode.write(mesh)
    out = shared_tmp / "cli"
    code = main(["infiltrate", str(mesh), "-o", str(out), "--t-end", "2e-6", "-q"])
    assert code == 0
    m = json.loads((out / "infiltration.json").read_text())
    assert m["status"] == "done" and m["parameters"]["t_end_s"] == 2e-6
    if COMM.rank == 0:
        assert "breakthrough" in capsys.readouterr().out


@pytest.mark.parametrize(
    "args, text, field",
    [
        (["--contact-angle", "0"], None, "--contact-angle:"),
        ([], "[infiltration]\ncontact_angle_deg = 200\n", "infiltration.contact_angle_deg:"),
        ([], "[infiltration]\nsurface_tensoin_N_m = 0.03\n", "infiltration.surface_tensoin_N_m:"),
        ([], None, "source: no such mesh file"),
        ([], '[infiltration]\nstep_control = "implicit"\n', "infiltration.step_control:"),
        ([], "[infiltration]\ndt_schedule_s = [[0.1]]\n", "infiltration.dt_schedule_s:"),
        ([], "[infiltration]\ncontact_line_slip = -1\n", "infiltration.contact_line_slip:"),
    ],
)
def test_cli_bad_input_one_line(shared_tmp, capsys, args, text, field):
    if text is None:
        src = shared_tmp / "missing.xdmf"
    else:
        src = shared_tmp / "bad.toml"
        if COMM.rank == 0:
            src.write_text('preset = "L-S"\n[box]\nwidth = 20.0\nheight = 24.0\n' + text)
        COMM.barrier()
    if args and text is None:
        src = shared_tmp / "m.xdmf"
        if COMM.rank == 0:
            src.write_text("<Xdmf/>")
        COMM.barrier()
    code = main(["infiltrate", str(src), "-o", str(shared_tmp / "o"), "-q", *args])
    err = cli_error_lines(capsys)
    assert code == 2
    assert len(err) == 1 and err[0].startswith("electrofem: error: " + field), err


def test_each_option_has_one_default_in_api_table_config_and_cli():
    """Every field of InfiltrationOptions has one default: the dataclass's is what an empty
    ``[infiltration]`` table, a config without the table and the command line without flags
    give; each flag starts unset (None) and shows that default in its help, and sets its own
    field. The job's defaults are the ones (30°, capillary factor 20, dt_max 1e-4 s)."""
    import argparse

    from electrofem import params
    from electrofem.cli import build_parser
    from electrofem.config import parse

    api = InfiltrationOptions()
    assert (api.contact_angle_deg, api.capillary_factor, api.dt_max_s) == (30.0, 20.0, 1e-4)
    table = params.from_table(InfiltrationOptions, {}, "infiltration")
    config = parse({"preset": "L-S", "box": {"width": W, "height": H}}).infiltration
    ap = build_parser()
    sub = next(a for a in ap._actions if isinstance(a, argparse._SubParsersAction))
    actions = {a.dest: a for a in sub.choices["infiltrate"]._actions}
    cli = params.apply_flags(api, ap.parse_args(["infiltrate", "m.xdmf", "-o", "out"]))
    flags = params.flag_names(InfiltrationOptions)
    assert flags == {
        "contact_angle_deg": "--contact-angle",
        "t_end_s": "--t-end",
        "max_steps": "--max-steps",
        "capillary_factor": "--capillary-factor",
    }
    for row in params.describe(InfiltrationOptions):
        name, default = row["name"], row["default"]
        for where, obj in (("table", table), ("config", config), ("cli", cli)):
            assert getattr(obj, name) == default, (name, where)
        if name in flags:
            action = actions[name]
            assert action.option_strings == [flags[name]] and action.default is None
            assert f"default {default!r}" in action.help
    given = ap.parse_args(
        ["infiltrate", "m.xdmf", "-o", "o", "--contact-angle", "45", "--t-end", "0.1"]
        + ["--max-steps", "7", "--capillary-factor", "3"]
    )
    flagged = params.apply_flags(api, given)
    assert (
        flagged.contact_angle_deg,
        flagged.t_end_s,
        flagged.max_steps,
        flagged.capillary_factor,
    ) == (
        45.0,
        0.1,
        7,
        3.0,
    )


def test_deprecated_module_reexports():
    """electrofem.infiltration_job warns and re-exports the job and its options."""
    import importlib
    import sys

    from electrofem.jobs import infiltrate

    sys.modules.pop("electrofem.infiltration_job", None)
    with pytest.warns(DeprecationWarning):
        old = importlib.import_module("electrofem.infiltration_job")
    assert old.InfiltrationJobOptions is InfiltrationOptions
    assert old.run_infiltration is infiltrate.run_infiltration
    assert old.InfiltrationReport is infiltrate.InfiltrationReport
    assert "contact_angle_deg" in old.PARAMETER_SOURCES and "saturation" in old.DEFINITIONS
    assert "contact_angle_deg" in old.option_names()
