"""The electronic-conductivity job (the README's worked example of a new job)."""

import json
import math
from pathlib import Path

import pytest
from conftest import cli_error_lines
from mpi4py import MPI

from electrofem.cli import main
from electrofem.jobs.conductivity import run_conductivity
from electrofem.mesh import ElectrodeMesh
from electrofem.physics.transport import ConductivityOptions

pytestmark = pytest.mark.mpi
MESHES = Path(__file__).resolve().parents[1] / "meshes"


@pytest.fixture(scope="module")
def bi3d():
    return ElectrodeMesh.read(MESHES / "bi_3d.xdmf", MPI.COMM_WORLD)


def test_sigma_eff_is_linear_in_sigma_and_rank_independent(bi3d, shared_tmp):
    a = run_conductivity(
        bi3d, shared_tmp / "a", ConductivityOptions(directions=("x",)), progress=False
    )
    opts = ConductivityOptions(directions=("x",), conductivities_S_m={"active": 0.54})
    b = run_conductivity(bi3d, shared_tmp / "b", opts, progress=False)
    sa, sb = a["directions"]["x"]["sigma_eff_S_m"], b["directions"]["x"]["sigma_eff_S_m"]
    assert math.isclose(sb / sa, 3.0, rel_tol=1e-7)  # one phase: σ_eff ∝ σ
    # τ and N_M do not depend on σ; the connected overlap network percolates
    assert math.isclose(
        a["directions"]["x"]["tortuosity"], b["directions"]["x"]["tortuosity"], rel_tol=1e-7
    )
    assert 1.0 < a["directions"]["x"]["tortuosity"] < 5.0
    assert a["directions"]["x"]["flux_imbalance"] < 1e-6
    # regression (serial); the same number must come out on 2 ranks (solver tolerance)
    assert math.isclose(sa, 0.0442989425494035, rel_tol=1e-6), sa
    m = json.loads((shared_tmp / "a" / "conductivity.json").read_text())
    assert m["status"] == "done" and m["parameters"]["conductivities_S_m"]["active"] == 0.18


def test_gap_contacts_do_not_conduct_and_cli(shared_tmp, capsys):
    out = shared_tmp / "ls"
    code = main(
        ["conductivity", str(MESHES / "ls_2d.xdmf"), "-o", str(out), "--direction", "y", "-q"]
    )
    assert code == 0
    m = json.loads((out / "conductivity.json").read_text())
    d = m["directions"]["y"]
    assert d["sigma_eff_S_m"] == 0.0 and d["tortuosity"] == "inf"  # 2D gap contacts
    code = main(
        ["conductivity", str(MESHES / "ls_2d.xdmf"), "-o", str(out), "--sigma", "active=-1", "-q"]
    )
    err = "\n".join(cli_error_lines(capsys))
    assert code == 2 and err.startswith("electrofem: error: --sigma: active must be positive")
