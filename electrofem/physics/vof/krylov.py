"""The iterative Navier–Stokes solver of the VOF step: GMRES with a block (Schur) preconditioner.

The flow system of :class:`~electrofem.physics.vof.flow.TwoPhaseFlow` is the monolithic
Taylor–Hood (P2–P1) Oseen matrix ``[[A, Bᵀ], [B, C]]`` (``C`` ≈ 0). At the scales of an
electrode (h ~ 1 µm, dt ≥ 1e-6 s) it is viscous-dominated: ``ρ h² / (μ dt)`` is ~1e-2 in the
electrolyte and ~1e-3 in air, so the Schur complement ``S = C − B A⁻¹ Bᵀ`` is spectrally
close to the viscosity-weighted pressure mass matrix ``−M(1/μ)`` even with the 55× viscosity
contrast (the variable-viscosity Stokes preconditioner of Grinevich & Olshanskii, SIAM J. Sci.
Comput. 2009). Cahouet & Chabard (1988) add the inverse of a ``(dt/ρ)``-weighted pressure
Laplacian for the inertial part; the preconditioner below uses both.

The preconditioner is PETSc's ``fieldsplit`` of type ``schur`` (upper block factorisation):
one V-cycle of smoothed-aggregation GAMG on ``A`` (the velocity block, with the rigid-body
modes as its near null space), and on the Schur block :class:`CahouetChabardPC`: Jacobi on
``−M(μ_S⁻¹)`` minus one GAMG V-cycle on ``K(dt/ρ)``, with ``μ_S = μ + dt σ |∇α̃|`` (the
semi-implicit surface tension adds a surface viscosity ``dt σ`` on the interface band).
GMRES is right-preconditioned, so the tolerance is on the true residual. Both pressure
matrices are reassembled each step (μ and ρ follow α).

**The convergence test.** The right-hand side is dominated by the Dirichlet rows (the inlet
velocity, on a unit diagonal), which the first iteration satisfies, so ``‖r‖ ≤ rtol ‖b‖``
stops before the momentum rows converge (a 0.4 % error in |u|max at rtol 1e-10). The solve
therefore starts from the current state (u, p) with the boundary values set
(:meth:`SchurFieldsplit.initial_guess`), and converges when
``‖r‖ ≤ max(ksp_rtol ‖r₀‖, ksp_atol ‖b‖)``: relative to the step's own change, with a floor
at round-off (``ksp_atol`` is *relative to* ‖b‖ here). The guess depends on the state only,
so a restarted run repeats an uninterrupted one.

The face fluxes that move α do not depend on this solve's accuracy for their divergence:
:class:`~electrofem.physics.vof.transport.AlphaTransport` projects them to a discretely
divergence-free field, so the volume balance stays at round-off.

Options: ``InfiltrationOptions.petsc_options`` overrides :data:`ITERATIVE_PETSC_OPTIONS`
key by key (e.g. ``{"fieldsplit_u_pc_gamg_threshold": 0.05}``). MPI-collective.
"""

from __future__ import annotations

import numpy as np

from .._petsc import drop_stored_zeros

#: GMRES + Schur fieldsplit (the KSP options of the Navier–Stokes problem's prefix).
ITERATIVE_PETSC_OPTIONS = {
    "ksp_type": "gmres",
    "ksp_pc_side": "right",
    "ksp_gmres_restart": 200,
    "ksp_rtol": 1e-10,
    "ksp_atol": 1e-14,
    "ksp_initial_guess_nonzero": True,
    "ksp_max_it": 1000,
    "pc_type": "fieldsplit",
    "pc_fieldsplit_type": "schur",
    "pc_fieldsplit_schur_fact_type": "upper",
    "fieldsplit_u_ksp_type": "preonly",
    "fieldsplit_u_pc_type": "gamg",
    "fieldsplit_u_pc_gamg_threshold": 0.0,
    "fieldsplit_u_pc_gamg_agg_nsmooths": 1,
    "fieldsplit_p_ksp_type": "preonly",
    "fieldsplit_p_pc_type": "python",
    "fieldsplit_p_pc_python_type": "electrofem.physics.vof.krylov.CahouetChabardPC",
    "fieldsplit_p_lap_pc_gamg_threshold": 0.0,
}


def rigid_body_modes(coords: np.ndarray, comp: np.ndarray) -> list[np.ndarray]:
    """The rigid-body modes (translations and rotations) of a vector field, evaluated at
    scalar dofs with coordinates ``coords`` (n × gdim) and components ``comp`` (n)."""
    gdim = coords.shape[1]
    modes = [(comp == c).astype(float) for c in range(gdim)]
    x = coords - coords.mean(axis=0) if len(coords) else coords
    pairs = [(0, 1)] if gdim == 2 else [(0, 1), (1, 2), (2, 0)]
    for a, b in pairs:  # rotation in the (a, b) plane: u_a = -x_b, u_b = x_a
        m = np.zeros(len(comp))
        m[comp == a] = -x[comp == a, b]
        m[comp == b] = x[comp == b, a]
        modes.append(m)
    return modes


class CahouetChabardPC:
    """The Schur block's preconditioner (a petsc4py ``python`` PC) on ``Sp = −M(1/μ_S)``:
    ``y = D⁻¹ x − L⁻¹ x`` with ``D = diag(Sp)`` and one GAMG V-cycle on the pressure
    Laplacian ``L = K(dt/ρ)``, a Mat composed on ``Sp`` as ``"electrofem_laplacian"``
    (Cahouet & Chabard 1988, with variable ρ and μ). Its GAMG options are under the Schur
    KSP's prefix + ``lap_`` (``fieldsplit_p_lap_``)."""

    def __init__(self):
        self.ksp = self.dinv = self.tmp = None

    def setUp(self, pc) -> None:
        from petsc4py import PETSc

        _, P = pc.getOperators()
        lap = P.query("electrofem_laplacian")
        if self.ksp is None:
            self.ksp = PETSc.KSP().create(pc.getComm())
            self.ksp.setOptionsPrefix((pc.getOptionsPrefix() or "") + "lap_")
            self.ksp.setType("preonly")
            self.ksp.getPC().setType("gamg")
            self.ksp.setFromOptions()
        self.ksp.setOperators(lap)
        self.dinv = P.getDiagonal(self.dinv)
        self.dinv.reciprocal()
        self.tmp = self.dinv.duplicate() if self.tmp is None else self.tmp

    def apply(self, pc, x, y) -> None:
        self.ksp.solve(x, y)
        y.scale(-1.0)
        self.tmp.pointwiseMult(self.dinv, x)
        y.axpy(1.0, self.tmp)

    def destroy(self, pc=None) -> None:
        for obj in (self.ksp, self.dinv, self.tmp):
            if obj is not None:
                obj.destroy()


class SchurFieldsplit:
    """Sets the fieldsplit of the Navier–Stokes ``LinearProblem`` ``problem`` on the mixed
    space ``W`` (velocity ``W.sub(0)``, pressure ``W.sub(1)``): the two index sets, the
    velocity's near null space, and the Schur block's preconditioner
    (:class:`CahouetChabardPC`) on the pressure forms ``mass`` (``−M(1/μ_S)``) and
    ``laplacian`` (``K(dt/ρ)``, bilinear on W's pressure part); :meth:`update` reassembles
    both (in each :meth:`solve`)."""

    def __init__(self, problem, W, umap, pmap, V, mass, laplacian, petsc_options: dict):
        from dolfinx import fem
        from dolfinx.fem.petsc import create_matrix
        from petsc4py import PETSc

        comm = W.mesh.comm
        self.umap, self.pmap = umap, pmap
        im = W.dofmap.index_map
        n_local = im.size_local * W.dofmap.index_map_bs
        self.ises = []
        for m in (umap, pmap):
            own = np.sort(m[m < n_local]).astype(np.int32)
            glob = im.local_to_global(own).astype(PETSc.IntType)
            self.ises.append(PETSc.IS().createGeneral(glob, comm=comm))
        is_u, is_p = self.ises
        # the near null space of the velocity block, in is_u's order (ascending W index)
        bs = V.dofmap.index_map_bs
        j = np.arange(len(umap))
        own = umap < n_local
        order = np.argsort(umap[own])
        coords = V.tabulate_dof_coordinates()[:, : W.mesh.geometry.dim]
        xyz = coords[(j // bs)[own]][order]
        comp = (j % bs)[own][order]
        vecs = []
        for mode in rigid_body_modes(xyz, comp):
            v = PETSc.Vec().createMPI((len(mode), PETSc.DECIDE), comm=comm)
            v.array[:] = mode
            for w in vecs:  # Gram–Schmidt (MatNullSpace wants orthonormal vectors)
                v.axpy(-v.dot(w), w)
            v.normalize()
            vecs.append(v)
        self._modes = vecs
        self.nullspace = PETSc.NullSpace().create(vectors=vecs, comm=comm)
        is_u.compose("nearnullspace", self.nullspace)
        # the pressure forms on W (pressure-pressure pattern only), cut to is_p
        self._forms = [fem.form(f) for f in (mass, laplacian)]
        self._full = [create_matrix(f) for f in self._forms]
        self.Sp = self.Lp = None
        self.update()
        ksp = problem.solver
        # the split's own options are read at every PCSetUp, after dolfinx has tidied the
        # problem's options away: they are kept, under their full names, until destroy()
        self._kept = {
            f"{ksp.getOptionsPrefix()}{k}": v
            for k, v in petsc_options.items()
            if k.startswith("fieldsplit_")
        }
        opts = PETSc.Options()
        for k, v in self._kept.items():
            opts[k] = v
        pc = ksp.getPC()
        pc.setFieldSplitIS(("u", is_u), ("p", is_p))
        pc.setFieldSplitSchurPreType(PETSc.PC.FieldSplitSchurPreType.USER, self.Sp)
        ksp.setFromOptions()
        self._r0 = self._floor = 0.0
        self._Az = None
        ksp.setConvergenceTest(self.converged)

    def update(self) -> None:
        """Reassemble the two pressure matrices from the current coefficients (collective)."""
        from dolfinx.fem.petsc import assemble_matrix

        is_p = self.ises[1]
        subs = []
        for form, full, sub in zip(self._forms, self._full, (self.Sp, self.Lp), strict=True):
            full.zeroEntries()
            assemble_matrix(full, form)
            full.assemble()
            subs.append(full.createSubMatrix(is_p, is_p, submat=sub))
        if self.Sp is None:
            self.Sp, self.Lp = subs
            self.Sp.compose("electrofem_laplacian", self.Lp)

    def converged(self, ksp, its: int, rnorm: float):
        """PETSc convergence test: ``‖r‖ ≤ max(rtol ‖r₀‖, atol ‖b‖)`` (see the module)."""
        from petsc4py import PETSc

        rtol, atol, _, _ = ksp.getTolerances()
        if its == 0:
            self._r0 = rnorm
            self._floor = atol * ksp.getRhs().norm()
        if rnorm <= self._floor:
            return PETSc.KSP.ConvergedReason.CONVERGED_ATOL
        if its > 0 and rnorm <= rtol * self._r0:
            return PETSc.KSP.ConvergedReason.CONVERGED_RTOL
        return PETSc.KSP.ConvergedReason.CONVERGED_ITERATING

    def initial_guess(self, x, u, p, bcs) -> None:
        """Write the current velocity ``u`` and pressure ``p`` (Functions on the collapsed
        spaces) into the solution vector ``x``, with the Dirichlet values ``bcs`` set."""
        w = np.zeros(len(self.umap) + len(self.pmap))
        w[self.umap] = u.x.array
        w[self.pmap] = p.x.array
        for bc in bcs:
            bc.set(w)
        x.array_w[:] = w[: len(x.array_w)]

    def solve(self, problem, u, p) -> None:
        """One solve from the current state ``u``, ``p``: reassemble the Schur matrices
        (:meth:`update`), start from the state (:meth:`initial_guess`), assemble the system as
        dolfinx's ``LinearProblem.solve`` does (one form), then solve
        it with the matrix *without its stored zeros* (:func:`drop_stored_zeros`): the rows
        and columns zeroed for the Dirichlet conditions stay in dolfinx's pattern, 3/4 of the
        velocity block's entries on an electrode; GAMG's coarse operators followed them (a
        20× slower set-up) and plain aggregation stagnated. The answer is unchanged (the same
        values), and the matrix-vector products are cheaper. Collective."""
        from dolfinx.fem.petsc import apply_lifting, assemble_matrix, assemble_vector, assign
        from petsc4py import PETSc

        A, b, x, bcs = problem.A, problem.b, problem.x, problem.bcs
        self.update()
        self.initial_guess(x, u, p, bcs)
        A.zeroEntries()
        assemble_matrix(A, problem.a, bcs=bcs)
        A.assemble()
        with b.localForm() as loc:
            loc.set(0.0)
        assemble_vector(b, problem.L)
        apply_lifting(b, [problem.a], bcs=[bcs])
        b.ghostUpdate(addv=PETSc.InsertMode.ADD, mode=PETSc.ScatterMode.REVERSE)
        for bc in bcs:
            bc.set(b.array_w)
        Az = drop_stored_zeros(A)
        problem.solver.setOperators(Az, Az)
        if self._Az is not None:
            self._Az.destroy()
        self._Az = Az
        problem.solver.solve(b, x)
        x.ghostUpdate(addv=PETSc.InsertMode.INSERT, mode=PETSc.ScatterMode.FORWARD)
        assign(x, problem.u)

    def destroy(self) -> None:
        """Free the PETSc objects and the kept options (collective; idempotent)."""
        from petsc4py import PETSc

        opts = PETSc.Options()
        for k in self._kept:
            opts.delValue(k)
        self._kept = {}
        for obj in (
            self._Az,
            self.Sp,
            self.Lp,
            *self._full,
            self.nullspace,
            *self._modes,
            *self.ises,
        ):
            if obj is not None:
                obj.destroy()
