"""The half cell: its unknowns, the assembled Newton problem, a step, and the one time loop
(:meth:`HalfCell.run`) that the job, the Python API and the tests all use."""

from __future__ import annotations

import itertools
import time as _time

import numpy as np
from mpi4py import MPI

from ... import LENGTH_UNIT_M
from .._petsc import choose_linear_solver, destroy
from ..materials import FARADAY
from ..state import gather, match, owned_values_and_coordinates
from .diagnostics import InterfaceCurrentField
from .domain import CoupledDomain
from .forms import coupled_residuals, equation_scales, li_metal_current
from .krylov import COLLECTOR, ITERATIVE_PETSC_OPTIONS, use_bordered_preconditioner
from .newton import LaggedJacobian, snes_reason
from .options import DEFAULT_PETSC_OPTIONS, ITERATIVE_MIN_DOFS, CellParams, DischargeOptions
from .protocol import (
    HORIZON_FACTOR,
    HORIZON_MIN,
    MAX_LANDINGS,
    Observer,
    Phase,
    PhaseOutcome,
    StepInfo,
    event,
    event_horizon,
    landing,
)
from .records import DischargeResult, ElectrochemError, StepRecord
from .timestep import TimeScheme, newton_rtol, resolve_time_scheme

#: Unique, rank-independent PETSc options prefixes (one per HalfCell).
_PREFIX_COUNTER = itertools.count()

# --- the half cell ------------------------------------------------------------------------------


class HalfCell:
    """The galvanostatic half-cell problem on an :class:`~electrofem.mesh.ElectrodeMesh`.

    Usage::

        with HalfCell(emesh, CellParams(), DischargeOptions(current_density_A_m2=20.0)) as cell:
            result = cell.run()      # or cell.step(dt) for manual control

    ``electrolyte_cells``: a partly wetted electrode (a boolean per local parent cell, see
    :func:`electrofem.physics.wetting.wet_cells`): the electrolyte equations live on these pore
    cells only; their boundary with the others (air) is impermeable and insulating, and the
    particle surface next to air carries no Butler--Volmer current. The carbon-binder network,
    if on, keeps every pore cell. ``None``: every pore cell is wetted.

    All methods are MPI-collective. ``cell.fields`` holds the dolfinx Functions (the unknowns):
    ``c_hat`` (``c/c0``, electrolyte submesh), ``phi`` (V), ``x`` (``c_s/c_s,max``, active
    submesh), ``phi_s`` (V) and ``V`` (collector potential, V; a Real space).
    """

    def __init__(
        self,
        emesh,
        params: CellParams | None = None,
        options=None,
        electrolyte_cells: np.ndarray | None = None,
    ):
        import basix.ufl
        import ufl
        from dolfinx import fem
        from dolfinx.fem.petsc import NonlinearProblem

        self.params = params or CellParams()
        self.options = options or DischargeOptions()
        self.params.validate()
        self.options.validate()
        cbd = self.options.cbd
        dom = CoupledDomain(
            emesh, self.options.quadrature_degree, cbd=cbd, electrolyte_cells=electrolyte_cells
        )
        self.domain = dom
        self.comm = dom.comm
        p, el, am = self.params, self.params.electrolyte, self.params.active

        Ve = fem.functionspace(dom.sub_e, ("Lagrange", 1))
        Vs = fem.functionspace(dom.sub_s, ("Lagrange", 1))
        # with the carbon-binder network the collector also touches electrolyte cells: V on
        # the parent mesh (no entity map needed on either side)
        rmesh = dom.mesh if cbd else dom.sub_s
        R = fem.functionspace(rmesh, basix.ufl.real_element(rmesh.basix_cell(), ()))
        # one space object per field (a Dirichlet bc added later acts on its own block only)
        # the carbon-binder network lives in every pore cell, wetted or not
        Vcb = (
            Ve.clone() if dom.sub_p is dom.sub_e else fem.functionspace(dom.sub_p, ("Lagrange", 1))
        )
        spaces = (Ve, Ve.clone(), Vs, Vs.clone(), R) + ((Vcb,) if cbd else ())
        W = ufl.MixedFunctionSpace(*spaces)
        names = ("c_hat", "phi", "x", "phi_s", "V") + (("phi_cb",) if cbd else ())
        self._names = names
        self.u = [fem.Function(V, name=n) for V, n in zip(spaces, names, strict=True)]
        self.ce_old = fem.Function(Ve, name="c_hat_old")
        self.xs_old = fem.Function(Vs, name="x_old")
        # the state before the old one (BDF2 only) and the storage terms' weights
        self.ce_old2 = fem.Function(Ve, name="c_hat_old2")
        self.xs_old2 = fem.Function(Vs, name="x_old2")
        self.rate = (fem.Constant(dom.mesh, 1.0), fem.Constant(dom.mesh, 0.0))
        tests = ufl.TestFunctions(W)

        # geometry: cross-section (collector) area and contact area, SI
        box = emesh.box_um()
        self.cross_section = float(np.prod(box[: dom.tdim - 1])) * dom.L ** (dom.tdim - 1)
        self.contact_area = dom.assemble(fem.Constant(dom.mesh, 1.0) * dom.ds_cc)
        if cbd:
            self.contact_area += dom.assemble(fem.Constant(dom.mesh, 1.0) * dom.ds_cce)
        self.top_area = dom.assemble(fem.Constant(dom.mesh, 1.0) * dom.ds_top)
        self.I_app = fem.Constant(dom.mesh, 0.0)  # total applied current (A or A/m)
        # 1: galvanostatic (I_app), 0: potentiostatic (V = V_hold)
        self._galv = fem.Constant(dom.mesh, 1.0)
        self.V_hold = fem.Constant(dom.mesh, 0.0)

        ce, pe, xs, ps, V = self.u[:5]
        old = (self.ce_old, self.xs_old, self.ce_old2, self.xs_old2)
        F, self.j_interface = coupled_residuals(dom, (ce, pe, xs, ps), tests[:4], p, self.rate, old)
        S = equation_scales(p, dom.tdim)
        wc, ve, _, vs, r = tests[:5]
        c = el.c0_mol_m3 * ce
        self._jli = li_metal_current(c, pe, p)
        self._icc = (ps - V) / p.contact_resistance_ohm_m2
        F[0] += -S.c * self._jli / FARADAY * wc * dom.ds_top
        F[1] += S.phi * self._jli * ve * dom.ds_top
        F[3] += S.phi_s * self._icc * vs * dom.ds_cc
        g = self._galv
        hold = (V - self.V_hold) / p.contact_resistance_ohm_m2
        F_V = S.phi_s * (g * (self._icc - self.I_app / self.contact_area) + (1 - g) * hold)
        F_V = F_V * r * dom.ds_cc
        icc_forms = [self._icc * dom.ds_cc]
        if cbd:
            pcb, wcb = self.u[5], tests[5]
            o = self.options
            R_cb = o.cbd_contact_resistance_ohm_m2
            s_cb = LENGTH_UNIT_M ** (2 - dom.tdim) / (o.cbd_conductivity_S_m * p.thermal_voltage)
            q_cb = (ps("-") - pcb("+")) / R_cb  # particle -> carbon-binder current density
            icc_e = (pcb - V) / p.contact_resistance_ohm_m2
            F[3] += S.phi_s * q_cb * vs("-") * dom.dS_p
            F_cb = o.cbd_conductivity_S_m * ufl.inner(dom.grad(pcb), dom.grad(wcb)) * dom.dx_p
            F_cb += -q_cb * wcb("+") * dom.dS_p + icc_e * wcb * dom.ds_cce
            F_V += (
                S.phi_s
                * (g * (icc_e - self.I_app / self.contact_area) + (1 - g) * hold)
                * r
                * dom.ds_cce
            )
            icc_forms.append(icc_e * dom.ds_cce)
        F.append(F_V)
        if cbd:
            F.append(s_cb * F_cb)
        blocks = ufl.extract_blocks(sum(F))

        #: global unknowns of the coupled system
        self.n_dofs = sum(V.dofmap.index_map.size_global * V.dofmap.index_map_bs for V in spaces)
        self.linear_solver = choose_linear_solver(
            self.options.linear_solver, dom.tdim, self.n_dofs, ITERATIVE_MIN_DOFS
        )
        iterative = self.linear_solver == "iterative"
        #: the time discretisation (:class:`~.timestep.TimeScheme`): weights, history, error
        self.scheme = TimeScheme(
            resolve_time_scheme(
                self.options.time_scheme, dom.tdim, self.n_dofs, ITERATIVE_MIN_DOFS
            ),
            self.options.time_tolerance,
            self.comm,
        )
        opts = dict(DEFAULT_PETSC_OPTIONS)
        rtol = newton_rtol(self.scheme.kind, self.options.time_tolerance)
        if rtol is not None:
            opts["snes_rtol"] = rtol
        if iterative:
            opts.pop("pc_factor_mat_solver_type")
            opts.update(ITERATIVE_PETSC_OPTIONS)
        opts.update(self.options.petsc_options)
        self.problem = NonlinearProblem(
            blocks,
            self.u,
            kind="mpi",
            petsc_options=opts,
            petsc_options_prefix=f"electrofem_halfcell_{next(_PREFIX_COUNTER)}_",
            entity_maps=dom.entity_maps,
        )
        #: the Newton Jacobian's callback (:class:`LaggedJacobian`: its lag and count)
        self.jacobian = LaggedJacobian(self.problem.solver, self.options.jacobian_lag)
        #: the iterative solver's :class:`~.krylov.BorderedPC` (its ``built``/``kept`` counts);
        #: None with LU
        self.preconditioner = None
        if iterative:
            self.preconditioner = use_bordered_preconditioner(
                self.problem, spaces, COLLECTOR, self.options.pc_rebuild_growth
            )
        self._set_initial_state()
        self._li_forms = (
            fem.form(c * dom.dx_e, entity_maps=dom.entity_maps),
            fem.form(am.c_max_mol_m3 * xs * dom.dx_s, entity_maps=dom.entity_maps),
        )
        self._current_forms = (
            fem.form(-self.j_interface * dom.dS_i, entity_maps=dom.entity_maps),
            fem.form(sum(icc_forms), entity_maps=dom.entity_maps),
            fem.form(self._jli * dom.ds_top, entity_maps=dom.entity_maps),
        )
        self._jfield = None  # the interface current's output projection, made when asked
        self.solid_volume = dom.assemble(fem.Constant(dom.mesh, 1.0) * dom.dx_s)
        self.time = 0.0
        self.charge = 0.0
        self.records: list[StepRecord] = []
        #: the applied current per box cross-section (A/m², + discharge) of the next steps
        self.current_density_A_m2 = float(self.options.current_density_A_m2)

    @property
    def potentiostatic(self) -> bool:
        return float(self._galv.value) == 0.0

    def set_potentiostatic(self, voltage_V: float) -> None:
        """Hold the collector at ``voltage_V`` (vs Li metal) from the next step on (CV)."""
        self.V_hold.value = float(voltage_V)
        self._galv.value = 0.0
        self._invalidate_preconditioner()

    def set_galvanostatic(self) -> None:
        """Back to the constant current of ``options.current_density_A_m2`` (the default)."""
        self._galv.value = 1.0
        self._invalidate_preconditioner()

    def _invalidate_preconditioner(self) -> None:
        """The iterative solver sets its preconditioner up again at the next Newton matrix."""
        if self.preconditioner is not None:
            self.preconditioner.invalidate()

    def collector_current(self) -> float:
        """Current through the collector contacts of the current state (A, or A/m in 2D)."""
        return self.scalar(self._current_forms[1])

    @property
    def fields(self) -> dict:
        return dict(zip(self._names, self.u, strict=True))

    def close(self) -> None:
        """Free the PETSc solver objects now, on every rank (collective; idempotent).

        Leaving them to the garbage collector can deadlock under MPI (see
        :mod:`electrofem.physics._petsc`); the context manager calls this on exit.
        """
        destroy(getattr(self, "problem", None), getattr(self, "preconditioner", None))

    def __enter__(self) -> HalfCell:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _set_initial_state(self) -> None:
        am = self.params.active
        u0 = float(am.ocp_V(am.x0))
        for f, v in zip(self.u, (1.0, 0.0, am.x0, u0, u0, u0), strict=False):
            f.x.array[:] = v
        for f, v in ((self.ce_old, 1.0), (self.xs_old, am.x0)):
            f.x.array[:] = v
        self._restart_history(0.0, 0.0)

    def scalar(self, form) -> float:
        from dolfinx import fem

        return self.comm.allreduce(fem.assemble_scalar(form), op=MPI.SUM)

    def interface_current_field(self, out=None):
        """The Butler--Volmer current density ``j`` (A/m², negative on discharge) as a P1 field
        on the active submesh (see :class:`~.diagnostics.InterfaceCurrentField`); ``out``: a
        Function to fill. Collective."""
        if self._jfield is None:
            self._jfield = InterfaceCurrentField(self)
        return self._jfield(out)

    def li_inventory(self) -> tuple[float, float]:
        """Li in the electrolyte and in the particles (mol, or mol/m in 2D)."""
        return self.scalar(self._li_forms[0]), self.scalar(self._li_forms[1])

    def voltage(self) -> float:
        """Collector potential vs Li metal (V)."""
        V = self.u[4]
        imap = V.function_space.dofmap.index_map
        local = float(V.x.array[0]) if imap.size_local > 0 else 0.0
        n = self.comm.allreduce(imap.size_local, op=MPI.SUM)
        return self.comm.allreduce(local, op=MPI.SUM) / max(n, 1)

    def _save(self):
        return [f.x.array.copy() for f in self.u]

    def _restore(self, saved) -> None:
        for f, a in zip(self.u, saved, strict=True):
            f.x.array[:] = a

    def _finite(self) -> bool:
        ok = all(np.all(np.isfinite(f.x.array)) for f in self.u)
        return bool(self.comm.allreduce(ok, op=MPI.LAND))

    def step(self, dt: float) -> tuple[bool, int, str]:
        """Try one step of ``dt`` seconds from the current state (backward Euler, or BDF2 after
        the first step of a history: ``options.time_scheme``; BDF2's Newton starts from its
        predictor, :meth:`~.timestep.TimeScheme.predict`).

        Returns ``(converged, newton_iterations, reason)``; on failure (Newton's, or a BDF2
        local-error estimate above 1: ``scheme.error``) the state is restored. On success the
        state, time, charge and :attr:`records` advance.
        """
        saved = self._save()
        scheme = self.scheme
        k0, k1 = scheme.weights(dt)
        self.rate[0].value, self.rate[1].value = k0, k1
        if k1:
            old2 = scheme.history[-2][1]
            self.ce_old2.x.array[:], self.xs_old2.x.array[:] = old2[0], old2[2]
        scheme.error = None
        self.I_app.value = self.current_density_A_m2 * self.cross_section
        snes = self.problem.solver
        lag = self.jacobian.lag
        pc = self.preconditioner
        kept = pc.kept if pc is not None else 0
        start = scheme.predict(self.time + dt)  # bdf2: Newton starts from the predictor
        ok, its, why = self._solve(saved, start)
        linear = snes.getLinearSolveIterations()
        # a lagged Jacobian or a kept preconditioner can miss a hard step: once more in full
        if not ok and (lag > 1 or (pc is not None and pc.kept > kept)):
            self._invalidate_preconditioner()
            self.jacobian.lag = 1
            try:
                ok, its2, why = self._solve(saved, start)
            finally:
                self.jacobian.lag = lag
            its += its2  # the record counts both tries
            linear += snes.getLinearSolveIterations()
        if not ok:
            self._invalidate_preconditioner()
            return False, its, why
        fields, v = [f.x.array for f in self.u], self.voltage()
        scheme.error = scheme.estimate(self.time + dt, fields, v)
        if scheme.rejected:
            self._restore(saved)
            return False, its, f"local time error {scheme.error:.3g} x time_tolerance"
        self.time += dt
        current = self.collector_current() if self.potentiostatic else float(self.I_app.value)
        # the charge obeys the storage terms' rule, so Li gained = charge / F step by step
        if k1:
            self.charge += (current + k1 * (self.charge - scheme.history[-2][3])) / k0
        else:
            self.charge += current * dt
        self.ce_old.x.array[:] = fields[0]
        self.xs_old.x.array[:] = fields[2]
        scheme.accept(self.time, fields, v, self.charge)
        self.records.append(self._record(dt, its, linear, v))
        return True, its, "converged"

    def _restart_history(self, time_s: float, charge_C: float) -> None:
        """The time scheme's history starts again at the current state (BDF2: the next step
        is backward Euler)."""
        u = self.u
        self.scheme.reset(time_s, [f.x.array for f in u], self.voltage(), charge_C)

    def _snapshot(self):
        """Everything a step changes (see :meth:`_rollback`)."""
        hist = (list(self.scheme.history), self.scheme.steps)
        return self._save(), self.time, self.charge, len(self.records), self.voltage(), hist

    def _rollback(self, snap) -> None:
        """Undo the steps since :meth:`_snapshot`."""
        saved, self.time, self.charge, n_rec, _, hist = snap
        self._restore(saved)
        self.ce_old.x.array[:] = saved[0]
        self.xs_old.x.array[:] = saved[2]
        self.scheme.history.clear()
        self.scheme.history.extend(hist[0])
        self.scheme.steps = hist[1]
        del self.records[n_rec:]

    def _solve(self, saved, start=None) -> tuple[bool, int, str]:
        """Newton from ``start`` (every unknown's array; None: the current state); on failure
        the state ``saved`` is restored. Returns ``(converged, newton_iterations, reason)``."""
        if start is not None:
            self._restore(start)
        snes = self.problem.solver
        try:
            self.problem.solve()
            reason = snes.getConvergedReason()
            its = snes.getIterationNumber()
        except RuntimeError as err:  # PETSc errors (e.g. MUMPS on a singular matrix)
            self._restore(saved)
            return False, snes.getIterationNumber(), f"PETSc error: {err}"
        if reason <= 0 or not self._finite():
            self._restore(saved)
            why = snes_reason(reason) if reason <= 0 else "non-finite values (NaN/inf)"
            return False, its, why
        return True, its, "converged"

    def _record(self, dt: float, its: int, linear_its: int, voltage_V: float) -> StepRecord:
        li_e, li_s = self.li_inventory()
        ii, icc, ili = (self.scalar(f) for f in self._current_forms)
        applied = icc if self.potentiostatic else float(self.I_app.value)
        am = self.params.active
        x_mean = li_s / (am.c_max_mol_m3 * self.solid_volume)
        xmin, xmax, cmin = self._extremes()
        return StepRecord(
            step=len(self.records) + 1,
            time_s=self.time,
            dt_s=dt,
            voltage_V=voltage_V,
            applied_current=applied,
            interface_current=ii,
            collector_current=icc,
            li_metal_current=ili,
            li_electrolyte_mol=li_e,
            li_solid_mol=li_s,
            li_total_mol=li_e + li_s,
            charge_passed_C=self.charge,
            newton_iterations=int(its),
            linear_iterations=int(linear_its),
            x_mean=x_mean,
            x_min=xmin,
            x_max=xmax,
            c_min_mol_m3=cmin,
        )

    def _extremes(self) -> tuple[float, float, float]:
        """Smallest / largest particle stoichiometry and smallest electrolyte c (mol/m³)."""
        xa, ca = self.u[2].x.array, self.u[0].x.array
        xmin = self.comm.allreduce(float(np.min(xa, initial=np.inf)), op=MPI.MIN)
        xmax = self.comm.allreduce(float(np.max(xa, initial=-np.inf)), op=MPI.MAX)
        cmin = self.comm.allreduce(float(np.min(ca, initial=np.inf)), op=MPI.MIN)
        return xmin, xmax, cmin * self.params.electrolyte.c0_mol_m3

    def diagnosis(self) -> str:
        """State summary for error messages (last accepted state)."""
        xmin, xmax, cmin = self._extremes()
        return (
            f"voltage {self.voltage():.4f} V, particle stoichiometry in [{xmin:.4f}, {xmax:.4f}]"
            f", electrolyte c >= {cmin:.4g} mol/m3"
        )

    # ------------------------------------------------------------------ state (restarts)
    def reset(self) -> None:
        """Back to the initial rest state (uniform ``c0``, ``x0``, the OCP); time, charge and
        records cleared."""
        self._set_initial_state()
        self._invalidate_preconditioner()
        self.time = 0.0
        self.charge = 0.0
        self.records = []

    def state_arrays(self) -> dict:
        """Every field's owned dofs with their coordinates, gathered to rank 0 (the checkpoint
        arrays: ``<name>``, ``<name>_xyz``, and ``V``). Collective; empty on other ranks
        except ``V``."""
        arrays = {}
        for name, f in self.fields.items():
            if name == "V":
                arrays["V"] = np.array([self.voltage()])
                continue
            vals, xyz = owned_values_and_coordinates(f)
            vals, xyz = gather(self.comm, vals), gather(self.comm, xyz)
            if self.comm.rank == 0:
                arrays[name], arrays[name + "_xyz"] = vals, xyz
        return arrays

    def load_state_arrays(self, arrays: dict) -> None:
        """Set every field from :meth:`state_arrays` of the same mesh (any number of ranks:
        dofs are matched by coordinates; ValueError if they do not match)."""
        for name, f in self.fields.items():
            if name == "V":
                f.x.array[:] = float(arrays["V"][0])
                continue
            xyz = f.function_space.tabulate_dof_coordinates()
            idx = match(self.comm, arrays[name + "_xyz"], xyz, f"{name} field", 1e-6)
            f.x.array[:] = arrays[name][idx]
            f.x.scatter_forward()
        self.ce_old.x.array[:] = self.u[0].x.array
        self.xs_old.x.array[:] = self.u[2].x.array
        self._restart_history(self.time, self.charge)

    # ------------------------------------------------------------------ the time loop
    def _phase_records(self, first: int) -> list[StepRecord]:
        """The last (at most three) records of the phase whose start state is record ``first``
        (-1: no record), that one included."""
        return self.records[max(first, 0, len(self.records) - 3) :]

    def direct_phase(self) -> Phase:
        """The phase of a direct run: ``options.current_density_A_m2`` until ``t_end_s``."""
        o = self.options
        i = float(o.current_density_A_m2)
        return Phase(
            kind="discharge" if i >= 0 else "charge",
            current_density_A_m2=i,
            duration_s=o.t_end_s - self.time,
            dt_initial_s=max(o.dt_initial_s, o.dt_min_s),
            dt_max_s=o.dt_max_s,
        )

    def run(self, phases=None, observer: Observer | None = None, resume=None) -> DischargeResult:
        """Run ``phases`` (default: :meth:`direct_phase`) one after another from the current
        state; the one time loop of the package (the discharge job runs it with its protocol
        and an observer that writes files).

        dt grows by ``growth`` after easy steps and is cut by ``cut`` after a failed step (the
        step is retried); below ``dt_min_s`` an :class:`ElectrochemError` is raised that keeps
        the records of the completed steps. ``resume``: the phase state of a checkpoint
        (``phase_start``, ``dt_next_s``) for the first phase.
        """
        t0 = _time.perf_counter()
        li0 = sum(self.li_inventory())
        stop = "t_end"
        for k, phase in enumerate(phases if phases is not None else [self.direct_phase()]):
            stop = self.run_phase(phase, observer, resume if k == 0 else None).stop_reason
        return DischargeResult(list(self.records), stop, li0, _time.perf_counter() - t0)

    def run_phase(self, phase: Phase, observer=None, resume=None) -> PhaseOutcome:
        """Step through one phase with the adaptive dt until its end or an event."""
        o = self.options
        self.current_density_A_m2 = phase.current_density_A_m2
        if phase.kind == "cv":  # constant voltage; the current follows
            self.set_potentiostatic(phase.v_hold_V)
        else:
            self.set_galvanostatic()
        if resume is not None and resume.get("phase_start") is not None:
            start, dt = resume["phase_start"], resume["dt_next_s"]
        else:
            start = {
                "time_s": self.time,
                "charge_C": self.charge,
                "li_mol": sum(self.li_inventory()),
                "steps": len(self.records),
            }
            dt = phase.dt_initial_s
        wall0 = _time.perf_counter()
        wall_before = float(start.get("wall_s", 0.0))  # this phase's wall time before a restart
        stop = "t_end"
        n_steps = len(self.records) - start["steps"]
        t_end = start["time_s"] + phase.duration_s
        scheme = self.scheme
        self._restart_history(self.time, self.charge)  # BDF2 does not difference across phases
        landings, redo = 0, False  # bdf2: steps redone to land on a stop event
        first = start["steps"] - 1  # the record of the phase's start state (-1: none)
        span = None  # bdf2: the first step that crossed a stop event, being landed
        while self.time < t_end * (1 - 1e-12) - 1e-12:
            if n_steps >= o.max_steps_per_phase:
                stop = "max_steps"
                break
            dt_try = min(dt, phase.dt_max_s, t_end - self.time)
            if scheme.bdf2 and n_steps >= 2 and not redo:  # do not step far past an event
                h = event_horizon(o, phase, self._phase_records(first))
                if h is not None:
                    dt_try = min(dt_try, max(HORIZON_FACTOR * h, HORIZON_MIN * dt_try))
            land = phase.land_at_V
            snap = self._snapshot() if land is not None or scheme.bdf2 else None
            ok, its, why = self.step(dt_try)
            locate = scheme.bdf2 and landings < MAX_LANDINGS
            frac = landing(o, phase, self._phase_records(first), snap, span, locate) if ok else None
            redo = frac is not None and dt_try * frac >= o.dt_min_s
            if redo:
                self._rollback(snap)  # undo the step, retry with the interpolated dt
                landings += land is None
                span = span or (dt_try if land is None else None)
                dt = dt_try * frac
                continue
            if not ok:
                dt = scheme.retry_dt(dt_try) if scheme.rejected else dt_try * o.cut
                if dt < o.dt_min_s:
                    raise ElectrochemError(
                        f"{phase.label}: time step fell below dt_min_s={o.dt_min_s:g} s at "
                        f"t={self.time:g} s (last failure: {why} after {its} Newton iterations; "
                        f"{self.diagnosis()})",
                        self.records,
                    )
                continue
            n_steps += 1
            rec = self.records[-1]
            dt = scheme.next_dt(dt_try, o.growth, its <= o.easy_iterations)
            ends = event(o, phase, rec)
            if ends is None:
                start["wall_s"] = wall_before + _time.perf_counter() - wall0
            if observer is not None:
                info = StepInfo(rec, its, dt_try, dt, n_steps, start, ends)
                observer.on_step(self, phase, info)
            if ends is not None:
                stop = ends
                break
        self.set_galvanostatic()
        outcome = PhaseOutcome(
            phase, stop, n_steps, start, wall_before + _time.perf_counter() - wall0
        )
        if observer is not None:
            observer.on_phase_end(self, phase, outcome)
        return outcome
