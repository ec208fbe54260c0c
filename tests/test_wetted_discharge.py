"""Issue 13: the discharge of a partly wetted electrode, and the coupled ``cell`` job.

Hand-built wetting states on the 3-particle gap-contact test cell (10 x 8 µm, particles of
radius 1.5 µm at heights 0.5-3.5, 1-4 and 3.5-6.5 µm, carbon-binder network on): a dry bottom
takes the two lower particles out of the reaction; an air layer above the particles cuts every
path. Marked ``mpi``: the same numbers on 2 ranks."""

import json
import math
import tempfile
from pathlib import Path

import numpy as np
import pytest
from mpi4py import MPI

from electrofem.cli import main
from electrofem.jobs.discharge import run_discharge
from electrofem.jobs.source import load_source
from electrofem.physics.electrochem import DischargeOptions
from electrofem.physics.wetting import WettingState

pytestmark = pytest.mark.mpi
COMM = MPI.COMM_WORLD

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
csv = "gparts.csv"

[mesh]
size = 0.5
"""


@pytest.fixture(scope="module")
def cell():
    path = tempfile.mkdtemp(prefix="electrofem-wet-") if COMM.rank == 0 else None
    path = Path(COMM.bcast(path, root=0))
    if COMM.rank == 0:
        (path / "gparts.csv").write_text(GAP_PARTICLES)
        (path / "gap.toml").write_text(CONFIG)
    COMM.barrier()
    emesh, _, _ = load_source(path / "gap.toml", path / "mesh", COMM, False)
    yield path, emesh
    COMM.barrier()
    if COMM.rank == 0:
        import shutil

        shutil.rmtree(path, ignore_errors=True)


def _state(emesh, dry):
    """The fully wetted state with α = 0 where ``dry(y)`` holds (y in µm)."""
    full = WettingState.full(emesh)
    alpha = np.where(dry(full.centroids_um[:, -1]), 0.0, full.alpha)
    return WettingState(0.0, alpha, full.centroids_um, full.fingerprint, "hand-built")


def opts(**kw):
    return DischargeOptions(cbd_conductivity_S_m=1.0, checkpoint_every_steps=0, **kw)


def test_full_wetting_is_the_uncoupled_run_bit_for_bit(cell):
    path, emesh = cell
    o = opts(c_rates=(2.0,), max_steps_per_phase=8)
    a = run_discharge(emesh, path / "plain", o, progress=False, plots=False)
    b = run_discharge(
        emesh, path / "full", o, progress=False, plots=False, wetting=WettingState.full(emesh)
    )
    if COMM.size == 1:
        assert a.rows["2"] == b.rows["2"]  # every number of every step, bit for bit
    else:  # a parallel LU is not bit-reproducible from run to run: round-off only
        for ra, rb in zip(a.rows["2"], b.rows["2"], strict=True):
            for k, v in ra.items():
                assert v == rb[k] or math.isclose(v, rb[k], rel_tol=1e-8, abs_tol=1e-12), k
    w = b.metrics["wetting"]
    assert w["wetted_pore_fraction"] == 1.0 and w["wetted_active_area_fraction"] == 1.0
    assert w["cut_off_active_fraction"] == 0.0 and w["n_particles"] == 3


def test_a_dry_bottom_takes_its_particles_out(cell):
    """Air below y = 4.2 µm: the two lower particles have no wetted surface, so at C/20 the
    electrode delivers what the third particle holds: 1/3 of the theoretical capacity."""
    path, emesh = cell
    state = _state(emesh, lambda y: y < 4.2)
    rep = run_discharge(
        emesh, path / "drybottom", opts(c_rates=(0.05,)), progress=False, wetting=state
    )
    d = rep.rates["0.05"]["discharge"]
    q_th = rep.metrics["theoretical"]["discharge_capacity_mAh_g"]
    assert 0.31 < d.capacity_mAh_g / q_th < 1 / 3 + 1e-3, d.capacity_mAh_g / q_th
    w = rep.metrics["wetting"]
    assert 0.0 < w["wetted_active_area_fraction"] < 0.4
    assert w["wetted_pore_fraction"] < 0.7 and w["n_pockets"] == 0
    # the two lower particles are cut off: 2/3 of the active area (equal disks, meshed)
    assert (w["n_cut_off_particles"], w["n_particles"]) == (2, 3)
    assert abs(w["cut_off_active_fraction"] - 2 / 3) < 0.01
    assert abs(d.capacity_mAh_g / q_th - (1 - w["cut_off_active_fraction"])) < 0.025
    for r in rep.rows["0.05"]:  # Li and charge are conserved as in a wetted electrode
        assert abs(r["li_balance_error"]) < 1e-8 * abs(r["current_density_A_m2"]) * 10e-6
    if COMM.rank == 0:
        assert (path / "drybottom" / "concentration_map.png").is_file()


@pytest.mark.parametrize("pockets", ["inactive", "active"])
def test_an_air_layer_that_cuts_every_path(cell, pockets):
    """Air between y = 6.7 and 7.2 µm, above every particle: the electrolyte below is a pocket
    with no path to the separator; no current can flow: 0 mAh/g and a clear stop reason."""
    path, emesh = cell
    state = _state(emesh, lambda y: (y > 6.7) & (y < 7.2))
    rep = run_discharge(
        emesh, path / f"cut_{pockets}", opts(c_rates=(1.0,), wetting_pockets=pockets),
        progress=False, wetting=state,
    )  # fmt: skip
    d = rep.rates["1"]["discharge"]
    assert d.capacity_mAh_g == 0.0 and d.stop_reason == "no_electrolyte_path"
    assert rep.metrics["status"] == "done"
    w = rep.metrics["wetting"]
    assert w["n_pockets"] >= 1 and w["wetted_active_area_fraction"] == 0.0
    assert w["isolated_electrolyte_volume_um3"] > 0
    assert w["cut_off_active_fraction"] == 1.0 and w["n_cut_off_particles"] == 3


def test_a_state_from_another_mesh_is_refused(cell, shared_tmp):
    path, emesh = cell
    other = WettingState.full(emesh)
    other = WettingState(0.0, other.alpha, other.centroids_um, "0" * 16, "elsewhere")
    with pytest.raises(ValueError, match="another mesh"):
        run_discharge(emesh, shared_tmp, opts(c_rates=(1.0,)), progress=False, wetting=other)


def test_cell_job_runs_resumes_and_reports(cell, capsys):
    path, _ = cell
    cfg = path / "cell.toml"
    if COMM.rank == 0:
        cfg.write_text(
            CONFIG
            + "[infiltration]\nmax_steps = 2\nsnapshots = false\ninitial_film_um = 8.0\n"
            + "output_interval_s = 1e-6\n[discharge]\nc_rates = [4.0]\n"
            + "max_steps_per_phase = 5\ncbd_conductivity_S_m = 1.0\n"
        )
    COMM.barrier()
    out = path / "cellrun"
    assert main(["cell", str(cfg), "-o", str(out), "-q"]) == 0
    m = json.loads((out / "cell.json").read_text())
    assert m["stages"] == {"generate": "done", "infiltrate": "done", "discharge": "done"}
    assert math.isclose(m["wetting"]["wetted_pore_fraction"], 1.0)  # the film fills the pores
    assert m["rate_capability"][0]["capacity_mAh_g"] > 0
    # resume: every stage is done, nothing runs again
    assert main(["cell", str(cfg), "-o", str(out), "--restart", "-q"]) == 0
    assert json.loads((out / "cell.json").read_text())["rate_capability"] == m["rate_capability"]
