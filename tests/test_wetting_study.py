"""The wetting-study runner (electrofem.studies.wetting): orchestration, resume, orderings.
Marked ``mpi``: the same assertions run under mpirun -n 2. The physics is tested in
test_vof.py and test_infiltration_job.py; here every case runs a few steps only."""

import json

import pytest
from mpi4py import MPI

from electrofem.physics.vof import InfiltrationOptions
from electrofem.studies.wetting import PAPER_CASES, orderings, run_wetting_study

pytestmark = pytest.mark.mpi
COMM = MPI.COMM_WORLD


def test_study_runs_each_case_and_resumes(shared_tmp):
    cases = [c for c in PAPER_CASES if c[0] in ("L-S", "S-L")]
    opts = InfiltrationOptions(max_steps=3, snapshots=False, inlet_speed_m_s=1e-3)
    kw = dict(width_um=26.0, height_um=30.0, mesh_size_um=3.0, porosity=0.45)
    rows = run_wetting_study(shared_tmp, cases, opts, **kw)
    assert [r["case"] for r in rows] == ["L-S", "S-L"]
    for r in rows:
        assert r["stop_reason"] == "max_steps" and r["steps"] == 3
        assert r["breakthrough_time_s"] is None  # 3 steps: no breakthrough, and no fake one
        assert 0.0 <= r["saturation_final"] < 0.05 and r["volume_balance_max"] < 1e-3
        m = json.loads((shared_tmp / r["case"] / "infiltration.json").read_text())
        assert m["status"] == "done" and m["parameters"]
    # done cases are read back, not rerun
    again = run_wetting_study(shared_tmp, cases, opts, **kw)
    assert [r["wall_s"] for r in again] == [r["wall_s"] for r in rows]
    assert orderings(rows)["time L-S < Mix < S-L"] is None  # Mix missing: not decidable


def test_orderings_read_the_paper_claims():
    rows = [
        {"case": "L-S", "breakthrough_time_s": 1.0, "final_air_fraction": 0.01},
        {"case": "Mix", "breakthrough_time_s": 2.0, "final_air_fraction": 0.02},
        {"case": "S-L", "breakthrough_time_s": 3.0, "final_air_fraction": 0.03},
    ] + [
        {"case": f"L-Dry-S {a}:{10 - a}", "breakthrough_time_s": 10.0 - a} for a in (3, 4, 5, 6, 7)
    ]
    o = orderings(rows)
    assert all(o.values())
    rows[0]["breakthrough_time_s"] = 2.5  # L-S slower than Mix
    rows[2]["final_air_fraction"] = 0.001  # S-L traps least
    o = orderings(rows)
    assert o["time L-S < Mix < S-L"] is False and o["least trapped air in L-S"] is False
