"""The two-phase NS + VOF core (electrofem.physics.vof) and the infiltration job on 3D
tetrahedral meshes: the exact P2 face flux, bounded and conservative α transport, a closed-form
single-phase flow, and a tiny 3D electrode (1 rank vs 2 ranks). Marked ``mpi``: the same
assertions run under mpirun -n 2. Kept small: the whole file runs in well under a minute."""

import json
import math
from pathlib import Path

import gmsh
import numpy as np
import pytest
import ufl
from dolfinx import fem, mesh
from mpi4py import MPI

from electrofem import tags
from electrofem.jobs.infiltrate import run_infiltration
from electrofem.mesh import ElectrodeMesh, MeshOptions, build_and_mesh
from electrofem.microstructure import Box, Particles
from electrofem.physics.vof import InfiltrationOptions, VOFSolver, tag_box_facets
from electrofem.physics.vof.cases import SOLVER_REFERENCE

pytestmark = pytest.mark.mpi
COMM = MPI.COMM_WORLD


def cube(n, lengths=(1.0, 1.0, 1.0), ns=None):
    m = mesh.create_box(
        COMM,
        [[0.0, 0.0, 0.0], list(lengths)],
        list(ns or (n, n, n)),
        cell_type=mesh.CellType.tetrahedron,
        ghost_mode=mesh.GhostMode.shared_facet,
    )
    return m, tag_box_facets(m, *lengths)


def deformation(x):
    """LeVeque's 3D deformation field: divergence-free, zero normal component on the unit cube."""
    s, pi = np.sin, np.pi
    return np.stack(
        [
            2 * s(pi * x[0]) ** 2 * s(2 * pi * x[1]) * s(2 * pi * x[2]),
            -s(2 * pi * x[0]) * s(pi * x[1]) ** 2 * s(2 * pi * x[2]),
            -s(2 * pi * x[0]) * s(2 * pi * x[1]) * s(pi * x[2]) ** 2,
        ]
    )


def test_box_facet_tags_3d():
    """BOTTOM/TOP at z = 0/H, LEFT/RIGHT at x, FRONT/BACK at y (electrofem.tags)."""
    m, ft = cube(2, (2.0, 3.0, 4.0))
    mid = mesh.compute_midpoints(m, 2, ft.indices)
    where = {
        tags.BOTTOM: (2, 0.0),
        tags.TOP: (2, 4.0),
        tags.LEFT: (0, 0.0),
        tags.RIGHT: (0, 2.0),
        tags.FRONT: (1, 0.0),
        tags.BACK: (1, 3.0),
    }
    owned = ft.indices < m.topology.index_map(2).size_local  # ghost facets are tagged too
    for tag, (ax, val) in where.items():
        sel = ft.values == tag
        n = COMM.allreduce(int(np.sum(sel & owned)), op=MPI.SUM)
        assert n == 8  # 2 x 2 squares x 2 triangles
        assert np.allclose(mid[sel, ax], val)


def test_exact_face_flux_3d():
    """On a distorted tetrahedral mesh and a random P2 velocity, the facet fluxes (edge-midpoint
    rule, exact for the quadratic trace) sum per cell to ∫_K ∇·u (assembled by FFCx)."""
    m, ft = cube(4)
    x = m.geometry.x
    bump = np.sin(np.pi * x[:, 0]) * np.sin(np.pi * x[:, 1]) * np.sin(np.pi * x[:, 2])
    x[:, :3] += 0.08 * bump[:, None] * np.array([1.0, -0.7, 0.5])  # same on every rank
    with VOFSolver(m, ft, {}, velocity=lambda x: np.zeros((3, x.shape[1]))) as s:
        rng = np.random.default_rng(7)
        glob = s.V.dofmap.index_map.local_to_global(
            np.arange(len(s.u.x.array) // 3, dtype=np.int32)
        )
        vals = rng.standard_normal((s.V.dofmap.index_map.size_global, 3))  # same on all ranks
        s.u.x.array[:] = vals[glob].ravel()
        F = s.transport.fe_face_fluxes()
        g = s.geom
        div = np.zeros(s.n_owned)
        np.add.at(div, g.hf_cell, g.hf_sign * F[g.hf_face])
        v = ufl.TestFunction(s.V0)
        dx = ufl.dx(domain=m, metadata={"quadrature_degree": 2})
        ref = fem.assemble_vector(fem.form(ufl.div(s.u) * v * dx)).array[s.c2d[: s.n_owned]]
        err = COMM.allreduce(float(np.max(np.abs(div - ref))), op=MPI.MAX)
        scale = COMM.allreduce(float(np.max(np.abs(ref))), op=MPI.MAX)
        vol = COMM.allreduce(float(s.area[: s.n_owned].sum()), op=MPI.SUM)
    print(f"max |Σ_f F_f - ∫_K div u| / max|∫_K div u| = {err / scale:.2e}")
    assert err < 1e-12 * scale
    assert vol == pytest.approx(1.0, rel=1e-12)  # the distortion keeps the box


def test_advection_3d_bounded_and_conservative():
    """A sphere in the 3D deformation field (prescribed P2 velocity, closed box): projected
    face fluxes + FCT keep α in [0, 1] and conserve the volume to round-off."""
    m, ft = cube(10)
    opts = InfiltrationOptions(compression=1.0, dt_max_s=1.0)
    with VOFSolver(m, ft, {}, options=opts, velocity=deformation) as s:
        r0 = 0.2
        s.set_alpha_fraction(lambda x: np.sum((x - 0.35) ** 2, axis=0) < r0**2)
        v0 = s.volume()
        recs = s.run(0.3)
        v1 = s.volume()
    amin = min(r.alpha_min for r in recs)
    amax = max(r.alpha_max for r in recs)
    print(
        f"{len(recs)} steps, α in [{amin:.1e}, 1+{amax - 1:.1e}], dV/V {abs(v1 - v0) / v0:.1e},"
        f" sampled sphere volume / exact {v0 / (4 / 3 * math.pi * r0**3):.4f}"
    )
    assert v0 == pytest.approx(4 / 3 * math.pi * r0**3, rel=0.01)
    assert amin > -1e-12 and amax < 1 + 1e-12
    assert abs(v1 - v0) < 1e-12 * v0
    assert max(abs(r.balance_error) for r in recs) < 1e-14 * v0 * len(recs)
    assert max(r.div_residual for r in recs) < 1e-12 < max(r.div_fe for r in recs)
    assert max(r.courant for r in recs) <= opts.courant_max * (1 + 1e-9)


@pytest.mark.parametrize("solver", ["lu", "iterative"])
def test_plane_poiseuille_3d_exact(solver):
    """Body-force-driven flow between no-slip plates z = 0, H (x faces open with zero tangential
    velocity, y faces slip): u_x = ρ g z (H - z) / 2μ is quadratic, so P2 reproduces it to
    round-off (MUMPS), or to the Krylov tolerance (the Schur fieldsplit of vof/krylov.py)."""
    H, rho, mu, g = 1e-4, 1200.0, 3.1e-3, 50.0
    m, ft = cube(0, (2 * H, H, H), ns=(4, 2, 3))
    b = {
        tags.BOTTOM: "wall",
        tags.TOP: "wall",
        tags.LEFT: "normal_outflow",
        tags.RIGHT: "normal_outflow",
        tags.FRONT: "slip",
        tags.BACK: "slip",
    }
    fluid = dict(
        rho_electrolyte_kg_m3=rho,
        rho_air_kg_m3=rho,
        mu_electrolyte_Pa_s=mu,
        mu_air_Pa_s=mu,
        surface_tension_N_m=0.0,
        gravity_m_s2=(g, 0.0, 0.0),
    )
    o = InfiltrationOptions(
        **{**SOLVER_REFERENCE, **fluid, "capillary_factor": 0, "advect_alpha": False},
        linear_solver=solver,
    )
    with VOFSolver(m, ft, b, o) as s:
        assert s.flow.linear_solver == solver
        s.set_alpha(lambda x: np.ones(x.shape[1]))
        for _ in range(3):
            rec = s.step(10.0)  # >> the viscous time ρH²/μ = 4 ms: steady
            assert (rec.linear_iterations > 0) == (solver == "iterative")
        X = s.V.tabulate_dof_coordinates()
        U = s.u.x.array.reshape(-1, 3)
        if solver == "iterative":  # the split's own options reached its sub-solvers
            ku, kp = s.flow.ns.solver.getPC().getFieldSplitSubKSP()
            assert (ku.getPC().getType(), kp.getPC().getType()) == ("gamg", "python")
    exact = rho * g / (2 * mu) * X[:, 2] * (H - X[:, 2])
    umax = rho * g * H**2 / (8 * mu)
    err = COMM.allreduce(float(np.max(np.abs(U[:, 0] - exact))), op=MPI.MAX) / umax
    cross = COMM.allreduce(float(np.max(np.abs(U[:, 1:]))), op=MPI.MAX) / umax
    print(f"plane Poiseuille 3D: max error {err:.1e}, cross-flow {cross:.1e} (of u_max)")
    tol = 1e-9 if solver == "lu" else 1e-7
    assert err < tol and cross < tol
    assert rec.u_max == pytest.approx(umax, rel=tol)


def test_gravity_must_be_3d():
    m, ft = cube(1)
    with pytest.raises(ValueError, match="3 components"):
        VOFSolver(m, ft, {}, InfiltrationOptions(gravity_m_s2=(0.0, -9.81)))


# --- a tiny 3D electrode -----------------------------------------------------------------------
L = 12.0  # µm


@pytest.fixture(scope="module")
def electrode3d():
    """Two spheres in a 12 µm cube, mesh size 2 µm: ~1.9k tets, ~1.6k pore cells. Also the same
    mesh on rank 0 alone (``COMM_SELF``), for the 1-rank reference of the MPI test."""
    parts = Particles(
        Box((L, L, L), periodic=False), [[4.0, 4.5, 4.0], [8.0, 7.5, 8.0]], [3.0, 3.0]
    )
    meta = {"box_um": [L, L, L]}
    serial = None
    if COMM.rank == 0:
        gmsh.initialize()
        gmsh.option.setNumber("General.Terminal", 0)
        build_and_mesh(parts, MeshOptions(size=2.0, radius_factor=0.5))
    em = ElectrodeMesh.from_gmsh(COMM, 3, meta)
    if COMM.rank == 0:
        if COMM.size > 1:
            serial = ElectrodeMesh.from_gmsh(MPI.COMM_SELF, 3, meta)
        gmsh.finalize()
    return em, serial


def job_options(**kw):
    base = dict(
        t_end_s=1.0,
        max_steps=10,
        initial_film_um=3.0,
        output_interval_s=1e-6,
        checkpoint_every_steps=5,
        n_slabs=4,
    )
    return InfiltrationOptions(**{**base, **kw})


@pytest.fixture(scope="module")
def run3d(electrode3d, tmp_path_factory):
    path = COMM.bcast(str(tmp_path_factory.mktemp("vof3d")) if COMM.rank == 0 else None)
    out = Path(path) / "run"
    return out, run_infiltration(electrode3d[0], out, job_options(), progress=False)


def test_electrode_3d_infiltration_job(run3d):
    """The paper's set-up on a 3D pore space (inlet z = H, outlet z = 0, slip x/y faces,
    particle walls with θ = 30°): 10 adaptive steps through run_infiltration; finite, bounded,
    conservative, the inflow is U × (open inlet area) × t, and the files are written."""
    out, rep = run3d
    m = rep.metrics
    assert m["status"] == "done" and m["stop_reason"] == "max_steps" and m["steps"] == 10
    assert m["dim"] == 3 and m["pore_cells"] > 1000
    assert m["inlet_open_length_m"] == pytest.approx((L * 1e-6) ** 2, rel=1e-9)  # open top
    assert 0.5 < m["porosity_mesh"] < 0.9
    bal = m["volume_balance"]
    volume = m["saturation_final"] * m["pore_volume_m2"]  # m³ (the keys are named as in 2D)
    residual = bal["inflow_m2"] - bal["outflow_m2"] - bal["stored_change_m2"]
    print(
        f"volume balance {residual / volume:.1e} of the volume, {residual / bal['inflow_m2']:.1e}"
        " of the inflow"
    )
    assert abs(residual) < 1e-10 * volume
    assert bal["relative_error_max"] < 1e-6  # relative to the (tiny) inflow of 10 steps
    assert bal["inflow_m2"] == pytest.approx(1e-4 * (L * 1e-6) ** 2 * m["t_final_s"], rel=1e-9)
    lo, hi = m["alpha_bounds"]
    assert lo > -1e-6 and hi < 1 + 1e-6
    rows = rep.rows
    assert all(math.isfinite(r["u_max_m_s"]) and r["u_max_m_s"] > 0 for r in rows)
    assert all(r["div_residual"] < 1e-10 for r in rows)
    prof = m["air_profile"]
    assert len(prof) == 4 and prof[0]["air_fraction"] == 1.0  # bottom slab (z) still dry
    assert prof[-1]["air_fraction"] < 0.6  # the film is at the top (z = H)
    for name in ("infiltration.json", "infiltration.csv", "fields.xdmf", "fields.h5"):
        assert (out / name).is_file(), name
    assert not (out / "snapshots").exists()  # PNG α maps are 2D only
    if COMM.rank == 0:
        assert json.loads((out / "infiltration.json").read_text())["status"] == "done"
        assert (out / "infiltration.png").is_file()


def test_electrode_3d_restart(electrode3d, run3d):
    """The checkpoint (3-component velocity) restarts: two more steps from the last state."""
    out, rep = run3d
    rep2 = run_infiltration(
        electrode3d[0], out, job_options(max_steps=12), progress=False, plots=False, restart=True
    )
    assert rep2.metrics["steps"] == 12 and rep2.metrics["restarts"] == 1
    assert rep2.rows[9]["saturation"] == rep.rows[9]["saturation"]
    assert rep2.metrics["volume_balance"]["relative_error_max"] < 1e-10


def test_electrode_3d_two_ranks_match_one(electrode3d, run3d, shared_tmp):
    """Under mpirun -n 2: the same run on rank 0 alone (COMM_SELF) gives the same steps and
    saturation as the distributed one."""
    if COMM.size == 1:
        pytest.skip("compares a distributed run with a 1-rank run (run under mpirun)")
    _, rep = run3d
    ref = None
    if COMM.rank == 0:
        r = run_infiltration(
            electrode3d[1],
            shared_tmp / "serial",
            job_options(),
            comm=MPI.COMM_SELF,
            progress=False,
            plots=False,
        )
        ref = r.rows
    ref = COMM.bcast(ref, root=0)
    assert len(ref) == len(rep.rows) == 10
    for a, b in zip(ref, rep.rows, strict=True):
        for key in ("t_s", "saturation", "outlet_fraction", "courant", "u_max_m_s"):
            assert b[key] == pytest.approx(a[key], rel=1e-9, abs=1e-300), (a["step"], key)
    print(
        f"saturation after 10 steps: 1 rank {ref[-1]['saturation']!r}, 2 ranks "
        f"{rep.rows[-1]['saturation']!r}"
    )


def test_electrode_3d_iterative_flow_solver_matches_lu(electrode3d, run3d, shared_tmp):
    """The same 10 adaptive steps with the iterative Navier–Stokes solver (GMRES + Schur
    fieldsplit, GAMG on the velocity, Cahouet–Chabard on the pressure): the steps, saturation
    and velocities of the MUMPS run (``run3d``, ``auto`` picks LU on this small mesh) within
    the Krylov tolerance, Krylov iterations in every step, and the volume balance at round-off
    (the α fluxes are projected to divergence-free whatever the solve's accuracy). On 2 ranks
    both runs are distributed."""
    _, ref = run3d
    assert ref.metrics["linear_solver"] == "lu"
    rep = run_infiltration(
        electrode3d[0],
        shared_tmp / "iterative",
        job_options(linear_solver="iterative"),
        progress=False,
        plots=False,
    )
    m = rep.metrics
    assert m["linear_solver"] == "iterative" and m["flow_dofs"] == ref.metrics["flow_dofs"]
    its = [r["linear_iterations"] for r in rep.rows]
    print(f"iterative VOF solve: {its} GMRES iterations a step, {m['flow_dofs']} unknowns")
    assert all(5 < k < 300 for k in its)
    assert len(rep.rows) == len(ref.rows) == 10
    for a, b in zip(ref.rows, rep.rows, strict=True):
        for key in ("t_s", "saturation", "courant", "u_max_m_s"):
            assert b[key] == pytest.approx(a[key], rel=1e-6), (a["step"], key)
    bal = m["volume_balance"]
    residual = bal["inflow_m2"] - bal["outflow_m2"] - bal["stored_change_m2"]
    assert abs(residual) < 1e-10 * m["saturation_final"] * m["pore_volume_m2"]
    assert all(r["div_residual"] < 1e-10 for r in rep.rows)


def test_rigid_body_modes_have_no_strain():
    """The near null space given to GAMG: 3 translations and 3 rotations, each a vector field
    whose symmetric gradient vanishes (u = a + ω × x), independent, at scattered dofs."""
    from electrofem.physics.vof.krylov import rigid_body_modes

    rng = np.random.default_rng(1)
    nodes = rng.random((40, 3))
    coords = np.repeat(nodes, 3, axis=0)
    comp = np.tile(np.arange(3), 40)
    modes = rigid_body_modes(coords, comp)
    assert len(modes) == 6
    assert np.linalg.matrix_rank(np.stack(modes)) == 6
    x = nodes - nodes.mean(axis=0)
    for m in modes:
        u = m.reshape(40, 3)
        # fit u = a + G x by least squares; a rigid motion has G skew and fits exactly
        X = np.hstack([np.ones((40, 1)), x])
        coef, *_ = np.linalg.lstsq(X, u, rcond=None)
        G = coef[1:].T
        assert np.allclose(X @ coef, u, atol=1e-12)
        assert np.allclose(G + G.T, 0.0, atol=1e-12)
