"""Coupled electrochemistry on phase submeshes (electrofem.physics.electrochem).

1. manufactured solution of the steady coupled interface problem (Nyman electrolyte, NMC811
   Butler--Volmer interface law, non-unit coefficients): P1 converges at order ~2 in L2;
2. conservation in a short galvanostatic run on a small 2D particle structure;
3. regression values that the same assertions check under ``mpirun -n 2`` (serial == parallel).

Marked ``mpi``: the same assertions run under mpirun -n 2.
"""

import math

import gmsh
import numpy as np
import pytest
import ufl
from dolfinx import fem
from dolfinx import mesh as dmesh
from dolfinx.fem.petsc import NonlinearProblem
from mpi4py import MPI

from electrofem import tags
from electrofem.mesh import ElectrodeMesh, MeshOptions, build_and_mesh
from electrofem.microstructure import Box, Particles
from electrofem.physics.electrochem import (
    CellParams,
    CoupledDomain,
    DischargeOptions,
    ElectrochemError,
    HalfCell,
    coupled_residuals,
    electrolyte_current,
    electrolyte_li_flux,
    equation_scales,
    interface_current,
)
from electrofem.physics.electrochem.diagnostics import InterfaceCurrentField
from electrofem.physics.electrochem.krylov import (
    ITERATIVE_PETSC_OPTIONS,
    use_bordered_preconditioner,
)
from electrofem.physics.materials import FARADAY, nmc811_ocp_chen2020

pytestmark = pytest.mark.mpi
COMM = MPI.COMM_WORLD
SIDE = 10.0  # µm


# --- 1. manufactured solution ------------------------------------------------------------------


def split_box(n):
    """[0, 10]² µm: electrolyte for x < 5, "particle" for x > 5, interface tagged 112."""
    msh = dmesh.create_rectangle(
        COMM,
        ((0.0, 0.0), (SIDE, SIDE)),
        (n, n),
        dmesh.CellType.triangle,
        ghost_mode=dmesh.GhostMode.shared_facet,
    )
    tdim = msh.topology.dim
    msh.topology.create_connectivity(tdim - 1, tdim)
    imap = msh.topology.index_map(tdim)
    cells = np.arange(imap.size_local + imap.num_ghosts, dtype=np.int32)
    mid = dmesh.compute_midpoints(msh, tdim, cells)
    phase = np.where(mid[:, 0] < SIDE / 2, tags.ELECTROLYTE, tags.ACTIVE).astype(np.int32)
    ct = dmesh.meshtags(msh, tdim, cells, phase)
    facets = dmesh.locate_entities(msh, tdim - 1, lambda x: np.isclose(x[0], SIDE / 2))
    ft = dmesh.meshtags(msh, tdim - 1, np.sort(facets).astype(np.int32), 112)
    return ElectrodeMesh(msh, ct, ft, {"box_um": [SIDE, SIDE]})


def exact(x):
    """(ĉ, φ, x_s, φ_s) with η = φ_s − φ − U(x_s) of about ±0.15 V (strongly nonlinear BV)."""
    s, c = ufl.sin, ufl.cos
    pi = math.pi
    ce = 1.0 + 0.3 * s(pi * x[0] / 10 + 0.3) * c(pi * x[1] / 10)
    pe = 0.02 * c(pi * x[0] / 7) * s(pi * x[1] / 10) - 0.01
    xs = 0.5 + 0.1 * c(pi * x[0] / 8) * s(pi * x[1] / 12 + 0.2)
    ps = 3.97 + 0.05 * s(pi * x[1] / 10) * c(pi * x[0] / 10)
    return ce, pe, xs, ps


def solve_mms(n, params, solver="lu"):
    em = split_box(n)
    dom = CoupledDomain(em, quadrature_degree=6, require_boundaries=False)
    Ve = fem.functionspace(dom.sub_e, ("Lagrange", 1))
    Vs = fem.functionspace(dom.sub_s, ("Lagrange", 1))
    # distinct space objects per field, else a Dirichlet bc of one acts on both blocks
    spaces = (Ve, Ve.clone(), Vs, Vs.clone())
    W = ufl.MixedFunctionSpace(*spaces)
    u = [fem.Function(V) for V in spaces]
    tests = ufl.TestFunctions(W)
    F, _ = coupled_residuals(dom, u, tests, params)  # steady

    el, am = params.electrolyte, params.active
    S = equation_scales(params, 2)
    x = ufl.SpatialCoordinate(dom.mesh)
    ce, pe, xs, ps = exact(x)
    c, cs = el.c0_mol_m3 * ce, am.c_max_mol_m3 * xs
    g, L = dom.grad, dom.L
    j = interface_current(c, cs, pe, ps, params)
    n_e = dom.n("+")
    n_s = dom.n("-")
    # residual = ∫ Q·∇w + ∫_Γ λ w  →  f = −div Q, interface source g = Q·n + λ
    fluxes = [
        (-electrolyte_li_flux(g, c, pe, params), -j / FARADAY, n_e, "+", dom.dx_e, S.c),
        (electrolyte_current(g, c, pe, params), j, n_e, "+", dom.dx_e, S.phi),
        (am.diffusivity_m2_s * g(cs), j / FARADAY, n_s, "-", dom.dx_s, S.x),
        (am.conductivity_S_m * g(ps), j, n_s, "-", dom.dx_s, S.phi_s),
    ]
    for k, (Q, lam, nrm, side, dxk, scale) in enumerate(fluxes):
        f = -ufl.div(Q) / L
        gk = ufl.dot(Q(side), nrm) + lam(side)
        F[k] -= scale * (f * tests[k] * dxk + gk * tests[k](side) * dom.dS_i)

    bcs = []
    for k, V in enumerate(spaces):
        exact_sub = exact(ufl.SpatialCoordinate(V.mesh))[k]
        ub = fem.Function(V)
        ub.interpolate(fem.Expression(exact_sub, V.element.interpolation_points))
        dofs = fem.locate_dofs_geometrical(
            V,
            lambda p: (
                np.isclose(p[0], 0)
                | np.isclose(p[0], SIDE)
                | np.isclose(p[1], 0)
                | np.isclose(p[1], SIDE)
            ),
        )
        bcs.append(fem.dirichletbc(ub, dofs))
    # start far from the solution: uniform states
    for fn, v in zip(u, (1.0, 0.0, 0.5, 3.9), strict=True):
        fn.x.array[:] = v
    problem = NonlinearProblem(
        ufl.extract_blocks(sum(F)),
        u,
        bcs=bcs,
        kind="mpi",
        petsc_options={
            "snes_type": "newtonls",
            "snes_linesearch_type": "basic",
            "snes_rtol": 1e-12,
            "snes_atol": 1e-12,
            "snes_stol": 0.0,
            "snes_max_it": 30,
            **(
                ITERATIVE_PETSC_OPTIONS
                if solver == "iterative"
                else {"ksp_type": "preonly", "pc_type": "lu", "pc_factor_mat_solver_type": "mumps"}
            ),
        },
        petsc_options_prefix=f"test_mms_{solver}_{n}_",
        entity_maps=dom.entity_maps,
    )
    if solver == "iterative":  # no collector unknown here: the block preconditioner alone
        use_bordered_preconditioner(problem, spaces, collector=None)
    problem.solve()
    snes = problem.solver
    assert snes.getConvergedReason() > 0, snes.getConvergedReason()
    if solver == "iterative":  # Krylov iterations, not one preonly LU solve per Newton step
        assert snes.getLinearSolveIterations() > 3 * snes.getIterationNumber()
    errs = []
    for fn, k in zip(u, range(4), strict=True):
        V = fn.function_space
        ex = exact(ufl.SpatialCoordinate(V.mesh))[k]
        md = {"quadrature_degree": 6}
        e2 = fem.assemble_scalar(fem.form((fn - ex) ** 2 * ufl.dx(domain=V.mesh, metadata=md)))
        n2 = fem.assemble_scalar(fem.form(ex**2 * ufl.dx(domain=V.mesh, metadata=md)))
        errs.append(math.sqrt(COMM.allreduce(e2, op=MPI.SUM) / COMM.allreduce(n2, op=MPI.SUM)))
    return np.array(errs), snes.getIterationNumber()


@pytest.mark.parametrize("solver", ["lu", "iterative"])
def test_manufactured_interface_problem_second_order(solver):
    """The same orders with MUMPS and with GMRES + the block preconditioner of the half cell
    (:mod:`electrofem.physics.electrochem.krylov`)."""
    params = CellParams()
    errs, its = [], []
    for n in (8, 16, 32):
        e, k = solve_mms(n, params, solver)
        errs.append(e)
        its.append(k)
    errs = np.array(errs)
    rates = np.log2(errs[:-1] / errs[1:])
    # ĉ, φ, x_s, φ_s: relative L2 errors and observed orders (P1: 2)
    assert np.all(rates[-1] > 1.85), (errs, rates)
    assert np.all(rates[0] > 1.7), (errs, rates)
    assert np.all(errs[-1] < 5e-3), errs  # φ is relative to a small norm
    assert max(its) <= 12, its


# --- 2./3. half cell on a small 2D particle structure ------------------------------------------


def particle_mesh():
    """20 x 16 µm box: a particle cut by the collector, in contact with a second one; an
    electrolyte-only band (separator side) above."""
    parts = Particles(Box((20.0, 16.0), periodic=False), [[5.0, 3.5], [12.5, 7.0]], [4.5, 4.5])
    if COMM.rank == 0:
        gmsh.initialize()
        build_and_mesh(parts, MeshOptions(size=1.0, radius_factor=0.25))
    em = ElectrodeMesh.from_gmsh(COMM, 2, {"box_um": [20.0, 16.0]})
    if COMM.rank == 0:
        gmsh.finalize()
    return em


@pytest.fixture(scope="module")
def emesh():
    return particle_mesh()


@pytest.mark.parametrize("solver", ["auto", "iterative"])
def test_galvanostatic_conservation_and_regression(emesh, solver):
    """The same records with MUMPS (what ``auto`` picks in 2D) and the iterative solver."""
    opts = DischargeOptions(
        current_density_A_m2=30.0, t_end_s=10.0, dt_initial_s=1.0, linear_solver=solver
    )
    with HalfCell(emesh, CellParams(), opts) as cell:
        res = cell.run()
        assert cell.linear_solver == {"auto": "lu", "iterative": "iterative"}[solver]
    newton = sum(r.newton_iterations for r in res.records)
    linear = sum(r.linear_iterations for r in res.records)
    assert linear == newton if solver == "auto" else linear > 3 * newton, (linear, newton)
    assert res.stop_reason == "t_end"
    recs = res.records
    assert len(recs) >= 4
    assert math.isclose(recs[-1].time_s, 10.0, rel_tol=1e-12)
    assert any(b.dt_s > a.dt_s for a, b in zip(recs, recs[1:], strict=False))  # dt grew
    I = 30.0 * 20e-6  # A per metre of depth
    for r in recs:
        assert math.isclose(r.applied_current, I, rel_tol=1e-12)
        for got in (r.interface_current, r.collector_current, r.li_metal_current):
            assert abs(got - I) < 1e-6 * I, (r.step, got)
        # Li inventory grows by the charge passed / F (Li metal stripping into the cell)
        gained = r.li_total_mol - res.initial_li_mol
        assert abs(gained - r.charge_passed_C / FARADAY) < 1e-9 * r.charge_passed_C / FARADAY
        assert r.li_solid_mol > 0 and r.c_min_mol_m3 > 0
    v = [r.voltage_V for r in recs]
    assert all(b < a for a, b in zip(v, v[1:], strict=False))  # discharging: voltage falls
    # open circuit at the start would be U(x0); under load the voltage is below it
    assert v[0] < float(nmc811_ocp_chen2020(17038.0 / 63104.0))
    # regression values (serial); the same numbers must come out on 2 ranks
    assert [r.step for r in recs] == [1, 2, 3, 4, 5, 6]
    assert math.isclose(v[0], 4.149386519552, rel_tol=1e-8), v[0]
    assert math.isclose(v[-1], 4.077871633103, rel_tol=1e-8), v[-1]


@pytest.mark.parametrize("solver", ["lu", "iterative"])
def test_lagged_jacobian_gives_the_same_steps(emesh, solver):
    """``jacobian_lag = 3``: the Jacobian (and its preconditioner) is assembled at Newton
    iterations 0, 3, 6, ... only, so fewer times than there are iterations, and the states
    are the full Newton's to its tolerance. With at most 6 Newton iterations a step (the
    full Newton's first step takes 6), the lagged first step fails, is retried in full (the
    record counts both tries' Newton and linear iterations) and the run still takes the same
    steps."""
    records, assembled = {}, {}
    for lag, extra in ((1, {}), (3, {}), (3, {"snes_max_it": 6})):
        opts = DischargeOptions(
            current_density_A_m2=30.0,
            linear_solver=solver,
            jacobian_lag=lag,
            petsc_options=extra,
        )
        with HalfCell(emesh, CellParams(), opts) as cell:
            for _ in range(3):
                ok, _, why = cell.step(1.0)
                assert ok, why
            key = (lag, bool(extra))
            records[key], assembled[key] = list(cell.records), cell.jacobian.assembled
    full = records[(1, False)]
    newton = sum(r.newton_iterations for r in full)
    assert assembled[(1, False)] == newton
    lagged = records[(3, False)]
    assert assembled[(3, False)] < sum(r.newton_iterations for r in lagged)
    retried = records[(3, True)][0]
    assert full[0].newton_iterations <= 6 < retried.newton_iterations
    assert retried.linear_iterations > full[0].linear_iterations
    for key in ((3, False), (3, True)):
        for a, b in zip(full, records[key], strict=True):
            assert abs(a.voltage_V - b.voltage_V) < 1e-9, (key, a.voltage_V, b.voltage_V)
            assert abs(b.interface_current / b.applied_current - 1) < 1e-6


def test_the_iterative_solver_keeps_its_preconditioner(emesh):
    """``pc_rebuild_growth``: the bordered preconditioner is set up once and kept across
    Newton matrices and steps (0: set up for every matrix); GMRES solves each system with the
    current matrix, so the states agree to the Newton tolerance. A switch to constant voltage
    sets it up again."""
    records, pcs = {}, {}
    for growth in (0.0, 1.5):
        opts = DischargeOptions(
            current_density_A_m2=30.0, linear_solver="iterative", pc_rebuild_growth=growth
        )
        with HalfCell(emesh, CellParams(), opts) as cell:
            for _ in range(3):
                ok, _, why = cell.step(1.0)
                assert ok, why
            built = cell.preconditioner.built
            cell.set_potentiostatic(cell.records[-1].voltage_V - 0.01)
            ok, _, why = cell.step(1.0)
            assert ok, why
            records[growth] = list(cell.records)
            pcs[growth] = (built, cell.preconditioner.built, cell.preconditioner.kept)
    newton = [r.newton_iterations for r in records[0.0]]
    assert pcs[0.0] == (sum(newton[:3]), sum(newton), 0)
    built, after, kept = pcs[1.5]
    assert built == 1 and after == 2, pcs[1.5]  # once, and again for the voltage hold
    assert kept == sum(r.newton_iterations for r in records[1.5]) - 2
    for a, b in zip(records[0.0], records[1.5], strict=True):
        assert a.newton_iterations == b.newton_iterations
        assert abs(a.voltage_V - b.voltage_V) < 1e-9, (a.voltage_V, b.voltage_V)
        assert abs(a.collector_current - b.collector_current) < 1e-7 * abs(a.collector_current)


def test_a_step_missed_with_a_kept_preconditioner_is_retried_with_a_fresh_one(emesh):
    """A preconditioner kept from dt = 1 s needs ~6x the iterations at dt = 200 s. With
    ``ksp_max_it`` 100 (a fresh one needs < 70) and no rebuild by growth, the step's linear
    solve fails; the step is retried with a fresh preconditioner, at the same dt, and its
    record counts both tries."""
    opts = DischargeOptions(
        current_density_A_m2=30.0,
        linear_solver="iterative",
        pc_rebuild_growth=100.0,
        petsc_options={"ksp_max_it": 100},
    )
    with HalfCell(emesh, CellParams(), opts) as cell:
        for _ in range(3):
            ok, _, why = cell.step(1.0)
            assert ok, why
        assert cell.preconditioner.built == 1
        ok, its, why = cell.step(200.0)
        assert ok, why
        assert cell.preconditioner.built == 2
        rec = cell.records[-1]
        assert rec.dt_s == 200.0 and rec.linear_iterations > 100
        assert abs(rec.interface_current / rec.applied_current - 1) < 1e-6


def test_iterative_solver_with_the_carbon_binder_network(emesh):
    """Six fields (φ_cb joins the potentials' group): the iterative solver gives MUMPS's
    records to the Newton tolerance, and conserves the current."""
    records = {}
    for solver in ("lu", "iterative"):
        opts = DischargeOptions(
            current_density_A_m2=30.0,
            t_end_s=4.0,
            dt_initial_s=1.0,
            cbd_conductivity_S_m=5.0,
            linear_solver=solver,
        )
        with HalfCell(emesh, CellParams(), opts) as cell:
            records[solver] = cell.run().records
    lu, it = records["lu"], records["iterative"]
    assert [r.time_s for r in lu] == [r.time_s for r in it]
    for a, b in zip(lu, it, strict=True):
        assert abs(a.voltage_V - b.voltage_V) < 1e-9, (a.voltage_V, b.voltage_V)
        assert abs(b.interface_current / b.applied_current - 1) < 1e-6
        assert b.linear_iterations > 3 * b.newton_iterations


def test_interface_current_field(emesh):
    """The lumped projection of j onto the particle surface nodes: zero inside the particles,
    negative on discharge, and its surface-weighted sum is the interface current exactly."""
    opts = DischargeOptions(current_density_A_m2=30.0, t_end_s=2.0, dt_initial_s=1.0)
    with HalfCell(emesh, CellParams(), opts) as cell:
        cell.run()
        jf = cell.interface_current_field()
        assert jf.name == "j_interface"
        mass = InterfaceCurrentField(cell).mass
        n = jf.function_space.dofmap.index_map.size_local
        on = mass[:n] > 0
        vals = jf.x.array[:n]
        assert COMM.allreduce(int(on.sum()), op=MPI.SUM) > 0
        assert COMM.allreduce(int((~on).sum()), op=MPI.SUM) > 0  # particle interiors
        assert np.all(vals[~on] == 0.0)
        total = COMM.allreduce(float(vals[on] @ mass[:n][on]), op=MPI.SUM)
        I = cell.records[-1].interface_current  # -∫ j dS
        assert abs(-total - I) < 1e-10 * abs(I), (total, I)
        # mean |j| of the order of I / interface area; discharging: j < 0 almost everywhere
        assert COMM.allreduce(float(np.sum(vals[on] < 0)), op=MPI.SUM) > 0.9 * COMM.allreduce(
            float(on.sum()), op=MPI.SUM
        )
        # a second call reuses the forms and gives the same field
        again = cell.interface_current_field()
        assert np.array_equal(again.x.array, jf.x.array)


def test_cutoff_and_failure(emesh):
    # a cut-off just below the loaded voltage stops the run early
    opts = DischargeOptions(
        current_density_A_m2=30.0, t_end_s=100.0, dt_initial_s=1.0, v_min_V=4.12
    )
    res = HalfCell(emesh, CellParams(), opts).run()
    assert res.stop_reason == "v_min"
    assert res.records[-1].voltage_V <= 4.12 < res.records[-2].voltage_V
    # a full discharge ends on an event (surface saturation or cut-off), conserving all along
    opts = DischargeOptions(current_density_A_m2=30.0, t_end_s=5000.0, dt_max_s=30.0)
    res = HalfCell(emesh, CellParams(), opts).run()
    assert res.stop_reason in ("x_max", "v_min"), res.stop_reason
    last = res.records[-1]
    assert 0.4 < last.x_mean < 0.9 and last.voltage_V < 3.5
    assert abs(last.interface_current / last.applied_current - 1) < 1e-6
    gained = last.li_total_mol - res.initial_li_mol
    assert abs(gained * FARADAY / last.charge_passed_C - 1) < 1e-9
    # an absurd current cannot be carried: a clear error once dt falls below dt_min
    opts = DischargeOptions(current_density_A_m2=3e5, t_end_s=10.0, dt_initial_s=1.0, dt_min_s=0.3)
    with pytest.raises(ElectrochemError, match="dt_min_s") as info:
        HalfCell(emesh, CellParams(), opts).run()
    assert info.value.records == []


def test_drop_stored_zeros_keeps_values_and_diagonal():
    """GAMG's copy of the field block: the same operator, without stored off-diagonal zeros
    (the dense zero rows of dolfinx's block sparsity), with the diagonal kept even if zero."""
    from petsc4py import PETSc

    from electrofem.physics._petsc import drop_stored_zeros

    n = 6  # rows per rank; row i couples to every column (zeros) and to i±1 (values)
    N = n * COMM.size
    A = PETSc.Mat().createAIJ(((n, N), (n, N)), nnz=(n, N - n), comm=COMM)
    r0, r1 = A.getOwnershipRange()
    for i in range(r0, r1):
        A.setValues(i, np.arange(N, dtype=PETSc.IntType), np.zeros(N))
        A.setValue(i, i, 0.0 if i == 0 else 2.0 + i)
        for j in (i - 1, i + 1):
            if 0 <= j < N:
                A.setValue(i, j, -1.0 - 0.1 * j)
    A.assemble()
    B = drop_stored_zeros(A)
    ia, ja, _ = B.getValuesCSR()
    stored = COMM.allreduce(int(ia[-1]), op=MPI.SUM)
    assert stored == N + 2 * (N - 1)  # diagonal (row 0's zero kept) + the two off-diagonals
    x = A.createVecRight()
    x.setArray(np.sin(np.arange(r0, r1) + 1.0))
    ya, yb = A.createVecLeft(), B.createVecLeft()
    A.mult(x, ya)
    B.mult(x, yb)
    assert np.array_equal(ya.getArray(), yb.getArray())
    for m in (A, B, x, ya, yb):
        m.destroy()
