"""The transport job, its files, the CLI and the PyBaMM export. Marked ``mpi``: the same
assertions run under mpirun -n 2."""

import json
import math
from pathlib import Path

import pytest
from conftest import cli_error_lines
from mpi4py import MPI

from electrofem.cli import main
from electrofem.export import pybamm_parameters
from electrofem.jobs.transport import run_transport
from electrofem.physics.transport import TransportOptions

pytestmark = pytest.mark.mpi
COMM = MPI.COMM_WORLD
MESHES = Path(__file__).parent.parent / "meshes"


def test_job_writes_consistent_metrics(shared_tmp):
    opts = TransportOptions(directions=("all",), coefficients={"electrolyte": 2.5}, n_slabs=10)
    rep = run_transport(MESHES / "ls_2d.xdmf", shared_tmp, opts, progress=False)
    for name in ("transport.json", "profiles.csv", "profiles.png", "fields.xdmf", "pybamm.json"):
        if COMM.rank == 0 or name != "profiles.png":
            assert (shared_tmp / name).is_file(), name
    m = json.loads((shared_tmp / "transport.json").read_text())
    assert m["status"] == "done" and m["version"] and m["parameters"]["n_slabs"] == 10
    assert set(m["directions"]) == {"x", "y"} and m["through_plane"] == "y"
    eps = m["volume_fractions"]["electrolyte"]
    for d in m["directions"].values():
        assert math.isclose(d["epsilon"], eps, rel_tol=1e-10)
        # the definitions hold: tau = eps/(D_eff/D0), N_M = tau/eps; a coefficient of 2.5 on
        # the only phase does not change the relative numbers
        assert math.isclose(d["tortuosity"], eps / d["relative_diffusivity"], rel_tol=1e-12)
        assert math.isclose(d["macmullin"], d["tortuosity"] / eps, rel_tol=1e-12)
        assert d["flux_imbalance"] < 1e-6
    assert m["reference_coefficient"] == 2.5
    # a_s = electrolyte|active area / box volume, in 1/m (lengths are µm)
    area = m["interface_areas_um2"]["electrolyte|active"]
    box = m["box_um"]
    assert math.isclose(
        m["specific_surface_area_m-1"], area / (box[0] * box[1]) * 1e6, rel_tol=1e-9
    )
    assert rep.direction("y").tortuosity == m["directions"]["y"]["tortuosity"]
    pb = json.loads((shared_tmp / "pybamm.json").read_text())
    p = pb["parameters"]
    tau = m["directions"]["y"]["tortuosity"]
    b = p["Positive electrode Bruggeman coefficient (electrolyte)"]
    assert math.isclose(eps**b, eps / tau, rel_tol=1e-10)
    assert p["Positive electrode tortuosity factor (electrolyte)"] == tau
    assert math.isclose(p["Positive electrode thickness [m]"], box[1] * 1e-6)
    assert "warning" in pb  # a 2D section


def test_job_keeps_finished_directions_when_a_later_one_fails(shared_tmp, monkeypatch):
    import electrofem.jobs.transport as job

    real = job.solve_transport

    def failing(*args, callback=None, **kw):
        def cb(result, name):
            callback(result, name)
            raise RuntimeError("simulated failure after the first direction")

        return real(*args, callback=cb, **kw)

    monkeypatch.setattr(job, "solve_transport", failing)
    with pytest.raises(RuntimeError, match="simulated"):
        run_transport(MESHES / "ls_2d.xdmf", shared_tmp, TransportOptions(), progress=False)
    m = json.loads((shared_tmp / "transport.json").read_text())
    assert m["status"] == "failed" and list(m["directions"]) == ["x"]  # x kept
    assert "simulated" in m["error"]
    assert m["directions"]["x"]["percolating"]


def test_cli_transport_3d_solid_and_sia(shared_tmp, capsys):
    code = main(
        [
            "transport",
            str(MESHES / "bi_3d.xdmf"),
            "-o",
            str(shared_tmp),
            "--phase",
            "solid",
            "--direction",
            "z",
            "--density",
            "active=4.0",
            "-q",
        ]
    )
    assert code == 0
    m = json.loads((shared_tmp / "transport.json").read_text())
    assert list(m["directions"]) == ["z"] and m["phase"] == "solid"
    assert m["parameters"]["densities_g_cm3"]["active"] == 4.0
    d = m["directions"]["z"]
    eps_solid = sum(v for k, v in m["volume_fractions"].items() if k != "electrolyte")
    assert math.isclose(d["epsilon"], eps_solid, rel_tol=1e-10)
    # tau is a finite number > 1 or "inf" (no NaN), never an error
    assert d["tortuosity"] == "inf" or d["tortuosity"] >= 1.0
    assert not (shared_tmp / "pybamm.json").exists()  # only for electrolyte transport


@pytest.mark.parametrize(
    "argv, field",
    [
        (["--phase", "plasma"], "--phase"),
        (["--direction", "z"], "transport.directions"),
        (["--density", "active"], "--density"),
    ],
)
def test_cli_transport_bad_input_one_line(shared_tmp, capsys, argv, field):
    code = main(["transport", str(MESHES / "ls_2d.xdmf"), "-o", str(shared_tmp), "-q", *argv])
    err = cli_error_lines(capsys)
    assert code == 2
    assert len(err) == 1 and err[0].startswith("electrofem: error:") and field in err[0], err


def _fake_transport(eps=0.4, tau=2.0, dim=3):
    return {
        "version": "0",
        "phase": "electrolyte",
        "through_plane": "z",
        "dim": dim,
        "thickness_um": 80.0,
        "directions": {"z": {"epsilon": eps, "tortuosity": tau}},
        "volume_fractions": {"electrolyte": eps, "active": 1 - eps},
        "phase_volumes_um3": {"active": 600.0},
        "active_surface_area_um2": 300.0,
        "specific_surface_area_m-1": 3.0e5,
    }


def test_pybamm_export_closed_form():
    out = pybamm_parameters(_fake_transport(0.4, 2.0), "negative")
    p = out["parameters"]
    assert math.isclose(
        p["Negative electrode Bruggeman coefficient (electrolyte)"],
        1 - math.log(2.0) / math.log(0.4),
    )
    assert math.isclose(0.4 ** p["Negative electrode Bruggeman coefficient (electrolyte)"], 0.2)
    # PyBaMM's a = 3 eps_s / R reproduces the measured a_s
    assert math.isclose(3 * 0.6 / p["Negative particle radius [m]"], 3.0e5)
    assert math.isclose(out["measured"]["volume_to_surface_radius_m"], 3 * 600.0 / 300.0 * 1e-6)
    assert out["options"]["transport efficiency"] == "tortuosity factor"
    assert "warning" not in out
    with pytest.raises(ValueError, match="percolate"):
        pybamm_parameters(_fake_transport(0.4, "inf"))
    with pytest.raises(ValueError, match="electrode"):
        pybamm_parameters(_fake_transport(), "middle")


def test_cli_curved_mesh_generate_then_transport(shared_tmp):
    """``mesh.order = 2`` through the jobs: generate writes a curved mesh, transport solves
    with P2 by default, records the degree and writes its fields (interpolated to the mesh's
    degree when asked for P1)."""
    cfg = shared_tmp / "curved.toml"
    if COMM.rank == 0:
        cfg.write_text(
            "seed = 4\n[box]\nwidth = 14.0\ndepth = 14.0\nheight = 14.0\n"
            "[[layers]]\nporosity = 0.55\n[[layers.particles]]\ndiameter = 5.0\n"
            "[mesh]\nsize = 1.5\norder = 2\n"
        )
    COMM.barrier()
    assert main(["generate", str(cfg), "-o", str(shared_tmp / "gen"), "-q"]) == 0
    summary = json.loads((shared_tmp / "gen" / "summary.json").read_text())
    exact = summary["porosity"]
    assert abs(summary["mesh"]["porosity_mesh"] - exact) < 1e-3 * exact
    for extra, degree in (([], 2), (["--degree", "1"], 1)):
        out = shared_tmp / f"t{degree}"
        argv = ["transport", str(shared_tmp / "gen" / "mesh.xdmf"), "-o", str(out), "-q"]
        assert main(argv + ["--direction", "z", *extra]) == 0
        m = json.loads((out / "transport.json").read_text())
        assert (m["degree"], m["geometry_order"]) == (degree, 2)
        assert m["directions"]["z"]["flux_imbalance"] < 1e-6
        assert (out / "fields.xdmf").is_file()


def generate_then_transport(tmp: Path, name: str, mesh_lines: str):
    """``electrofem generate`` of a 14 µm cube of 5 µm spheres (porosity 0.55) with
    ``mesh_lines`` in its ``[mesh]`` table, then ``electrofem transport`` along z:
    ``(summary.json, transport.json, the transport folder)``."""
    cfg = tmp / f"{name}.toml"
    if COMM.rank == 0:
        cfg.write_text(
            "seed = 4\n[box]\nwidth = 14.0\ndepth = 14.0\nheight = 14.0\n"
            "[[layers]]\nporosity = 0.55\n[[layers.particles]]\ndiameter = 5.0\n"
            f"[mesh]\nsize = 1.0\n{mesh_lines}"
        )
    COMM.barrier()
    gen = tmp / f"gen-{name}"
    assert main(["generate", str(cfg), "-o", str(gen), "-q"]) == 0
    out = tmp / f"t-{name}"
    argv = ["transport", str(gen / "mesh.xdmf"), "-o", str(out), "-q", "--direction", "z"]
    assert main(argv) == 0
    summary = json.loads((gen / "summary.json").read_text())
    return summary, json.loads((out / "transport.json").read_text()), out


def test_cli_discrete_route_generate_then_transport(shared_tmp):
    """``mesh.geometry_route = "discrete"`` through the jobs (serial and on 2 ranks): generate
    writes the mesh, transport solves on it, and τ is the OCC route's to the straight-facet
    error (both routes' porosity sits ~1-2 % above the exact one)."""
    taus = {}
    for route in ("auto", "discrete"):
        summary, m, _ = generate_then_transport(shared_tmp, route, f'geometry_route = "{route}"\n')
        exact, on_mesh = summary["porosity"], summary["mesh"]["porosity_mesh"]
        assert 0 < on_mesh - exact < 0.03 * exact
        m = m["directions"]["z"]
        assert m["flux_imbalance"] < 1e-6
        taus[route] = m["tortuosity"]
    assert taus["discrete"] == pytest.approx(taus["auto"], rel=0.02)


def test_cli_electrolyte_only_mesh_then_transport(shared_tmp):
    """``mesh.electrolyte_only`` through the jobs (serial and on 2 ranks): generate meshes
    the pore alone; the porosity on the mesh is over the box; transport gives the full
    discrete mesh's τ, porosity and a_s within 1e-3 and derives the solid's volume as the
    box's complement (volume fractions add to one, PyBaMM's active fraction is 1 - ε); the
    discharge refuses the mesh with a one-line error."""
    ms = {
        only: generate_then_transport(
            shared_tmp, f"eo-{only}", f'geometry_route = "discrete"\nelectrolyte_only = {only}\n'
        )
        for only in ("false", "true")
    }
    (s_full, m_full, _), (s_pore, m_pore, out) = ms["false"], ms["true"]
    assert s_pore["mesh"]["n_cells"] < 0.7 * s_full["mesh"]["n_cells"]
    assert s_pore["mesh"]["porosity_mesh"] == pytest.approx(
        s_full["mesh"]["porosity_mesh"], rel=1e-9
    )
    fr = m_pore["volume_fractions"]
    assert set(fr) == {"electrolyte", "active"} and sum(fr.values()) == pytest.approx(1.0)
    assert fr == pytest.approx(m_full["volume_fractions"], rel=1e-9)
    assert "box's minus the electrolyte's" in m_pore["solid_volume_note"]
    assert "solid_volume_note" not in m_full
    a = "specific_surface_area_m-1"
    assert m_pore[a] == pytest.approx(m_full[a], rel=1e-9)
    d, d_full = m_pore["directions"]["z"], m_full["directions"]["z"]
    assert d["tortuosity"] == pytest.approx(d_full["tortuosity"], rel=1e-3)
    pb = json.loads((out / "pybamm.json").read_text())["parameters"]
    eps = d["epsilon"]
    assert pb["Positive electrode active material volume fraction"] == pytest.approx(1 - eps)
    code = main(
        [
            "discharge",
            str(shared_tmp / "gen-eo-true" / "mesh.xdmf"),
            "-o",
            str(shared_tmp / "dis"),
            "-q",
        ]
    )
    assert code != 0
