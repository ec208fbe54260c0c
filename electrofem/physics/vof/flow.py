"""The flow side of the VOF solver: the Taylor–Hood (P2–P1) Navier–Stokes forms with surface
tension (balanced force, semi-implicit Hysing term), the walls (strong no-slip or weak
Navier-slip near the contact line), the velocity boundary conditions, and the interface
geometry problems in P1: the smoothed fraction α̃, its normal (with the static contact angle
imposed at the walls) and the curvature κ. See :mod:`electrofem.physics.vof` for the method.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
from mpi4py import MPI

from .._petsc import choose_linear_solver, destroy, fixed_operator_problem
from .curvature import CurvatureFit
from .geometry import gmax, gmin
from .krylov import SchurFieldsplit
from .options import ITERATIVE_MIN_DOFS
from .records import VOFDivergenceError

_PREFIX_COUNTER = itertools.count()


def fitted_curvature(s) -> CurvatureFit:
    """The ``"fit"`` curvature's arrays for the solver ``s``: the owned cells' vertices and P1
    dofs, the P1 dof coordinates and sizes, the wall nodes."""
    msh, d = s.mesh, s.gdim
    n = s.geom.n_owned
    gd = msh.geometry.dofmaps[0]
    x = msh.geometry.x[:, :d]
    p1 = s.V1.dofmap.list
    verts = x[gd[:n, : d + 1]]
    nodes = s.V1.tabulate_dof_coordinates()[:, :d]
    size = node_max(s.V1, p1[:n], s.area[:n] ** (1.0 / d))
    o = s.options
    return CurvatureFit(
        s.comm,
        verts,
        p1[:n],
        nodes,
        size,
        nodes[s.geom.wall_dofs[s.geom.wall_dofs < s.V1.dofmap.index_map.size_local]],
        radius=o.curvature_fit_radius,
    )


def node_max(V1, cell_dofs: np.ndarray, cell_values: np.ndarray) -> np.ndarray:
    """At every local dof of the scalar P1 space ``V1`` (owned and ghost): the largest of
    ``cell_values`` over the *owned* cells ``cell_dofs`` (rows: their dofs) of every rank that
    touch it. A ghost layer need not hold all the cells around a dof, so the owners gather
    their ghosts' partial maxima and send the result back: the same on any number of ranks."""
    from dolfinx import fem

    im = V1.dofmap.index_map
    comm = im.comm
    out = np.zeros(im.size_local + im.num_ghosts)
    np.maximum.at(out, cell_dofs.ravel(), np.repeat(cell_values, cell_dofs.shape[1]))
    ghosts, owners = im.ghosts, im.owners
    part = out[im.size_local :]
    send = [(ghosts[owners == r], part[owners == r]) for r in range(comm.size)]
    lo = im.local_range[0]
    for glob, val in comm.alltoall(send):
        np.maximum.at(out, np.asarray(glob, dtype=np.int64) - lo, val)
    f = fem.Function(V1)
    f.x.array[:] = out
    f.x.scatter_forward()
    return f.x.array.copy()


def gravity_vector(options, gdim: int) -> np.ndarray:
    """The body acceleration of ``options`` as a ``gdim`` vector. A number g is ``-g`` along the
    thickness (y in 2D, z in 3D). A vector: in 2D its first two components; in 3D three
    components, a zero vector of two is padded with 0, a non-zero 2-component vector is refused
    (its direction would be ambiguous)."""
    grav = options.gravity(gdim)
    g = np.asarray(grav, dtype=float).ravel()
    if gdim == 2:
        return np.asarray(grav[:2], dtype=float)
    if len(g) == 3:
        return g
    if len(g) < 3 and not np.any(g):
        return np.zeros(3)
    raise ValueError(
        f"infiltration.gravity_m_s2: 3 components needed on a 3D mesh, got {options.gravity_m_s2!r}"
    )


class TwoPhaseFlow:
    """The linear problems of one flow step, built once on the spaces and functions of a
    :class:`~electrofem.physics.vof.VOFSolver` ``s`` (its ``W``, ``V1``, ``u``, ``p``, ``alpha``,
    ``alpha_s``, ``kappa``, ``rho``, ``mu``, ``geom``, ``options``, boundaries).

    :meth:`solve` takes one Navier–Stokes step (Oseen linearisation, backward Euler; MUMPS, or
    GMRES with the Schur fieldsplit of :mod:`.krylov`: ``linear_solver``) and writes
    ``s.u``/``s.p``; :meth:`update_interface` recomputes α̃, the normal ``normal`` (with
    the contact angle) and κ from the current α.
    """

    def __init__(self, s):
        import ufl
        from dolfinx import fem
        from dolfinx.fem.petsc import LinearProblem

        self.s = s
        msh, W, o = s.mesh, s.W, s.options
        self.mesh, self.comm, self.options, self.geom = msh, s.comm, o, s.geom
        self.gdim = s.gdim
        sigma = o.surface_tension_N_m
        (u, p), (v, q) = ufl.TrialFunctions(W), ufl.TestFunctions(W)
        self.dt_c = fem.Constant(msh, 1.0)
        self.u_n = fem.Function(s.V)  # the previous velocity
        sig = fem.Constant(msh, float(sigma))
        g = fem.Constant(msh, gravity_vector(o, s.gdim))
        dx = ufl.Measure("dx", domain=msh, metadata={"quadrature_degree": o.quadrature_degree})

        def eps(w):
            return ufl.sym(ufl.grad(w))

        rho, mu, dt = s.rho, s.mu, self.dt_c
        a = (
            rho / dt * ufl.inner(u, v) * dx
            + rho * ufl.inner(ufl.dot(ufl.grad(u), self.u_n), v) * dx
            + 2 * mu * ufl.inner(eps(u), eps(v)) * dx
            - p * ufl.div(v) * dx
            - q * ufl.div(u) * dx
        )
        L = rho / dt * ufl.inner(self.u_n, v) * dx + rho * ufl.inner(g, v) * dx
        ga = ufl.grad(s.alpha_s)
        # the force's fraction: α̃, or with the "fit" curvature the lightly filtered α (its
        # jump is complete across a small drop: α̃ peaks at 0.79 in a sphere of 5 cells a
        # radius, and the Laplace jump with it)
        self.alpha_fit = fem.Function(s.V1, name="alpha_fit") if o.curvature == "fit" else None
        af = self.alpha_fit if self.alpha_fit is not None else s.alpha_s
        if sigma > 0:
            L += sig * s.kappa * ufl.inner(ufl.grad(af), v) * dx
            if o.semi_implicit_tension:
                mag = ufl.sqrt(ufl.inner(ga, ga) + 1e-30)
                nn = ga / (mag + 1e-12 / s.h_min)
                P = ufl.Identity(s.gdim) - ufl.outer(nn, nn)
                a += dt * sig * mag * ufl.inner(ufl.grad(u) * P, ufl.grad(v) * P) * dx
        if o.contact_line_slip > 0:
            a += self.wall_terms(u, p, v, q)
        kinds = set(s.boundaries.values())
        if not ({"outlet", "normal_outflow"} & kinds):
            # closed box: fix the pressure constant weakly (relative size 1e-10)
            eps_p = fem.Constant(msh, 1e-10 / max(o.mu_electrolyte_Pa_s, o.mu_air_Pa_s))
            a += -eps_p * p * q * dx
        self.bcs = self.velocity_bcs()
        self.w = fem.Function(W)
        #: the flow unknowns, and the linear solver used ("lu" or "iterative")
        self.n_dofs = W.dofmap.index_map.size_global * W.dofmap.index_map_bs
        self.linear_solver = choose_linear_solver(
            o.linear_solver, s.tdim, self.n_dofs, ITERATIVE_MIN_DOFS
        )
        iterative = self.linear_solver == "iterative"
        self.linear_iterations = 0  # of the last solve
        # the problems' PETSc options prefixes: a counter, the same on every rank (collective
        # construction), where id() would differ between ranks
        tag = next(_PREFIX_COUNTER)
        ns_options = o.ns_petsc_options(iterative)
        self.ns = LinearProblem(
            a,
            L,
            bcs=self.bcs,
            u=self.w,
            petsc_options=ns_options,
            petsc_options_prefix=f"electrofem_vof_ns_{tag}_",
        )
        self._schur = None
        if iterative:
            self._schur = SchurFieldsplit(
                self.ns, W, s.umap, s.pmap, s.V, *self.schur_forms(ga), ns_options
            )
        # smoothing filter and curvature (P1)
        V1 = s.V1
        a1, w1 = ufl.TrialFunction(V1), ufl.TestFunction(V1)
        dx2 = ufl.Measure("dx", domain=msh, metadata={"quadrature_degree": 2})
        hK = ufl.CellDiameter(msh)
        cg = {"ksp_type": "cg", "pc_type": "jacobi", "ksp_rtol": 1e-12}

        def alpha_filter(width: float, out, name: str):
            """The Helmholtz filter ``ᾱ - (width h)² Δᾱ = α`` into ``out`` (P1)."""
            c = fem.Constant(msh, float(width))
            return fixed_operator_problem(
                a1 * w1 * dx2 + (c * hK) ** 2 * ufl.inner(ufl.grad(a1), ufl.grad(w1)) * dx2,
                s.alpha * w1 * dx2,
                u=out,
                petsc_options=dict(cg),
                petsc_options_prefix=f"electrofem_vof_{name}_{tag}_",
            )

        self._smooth = alpha_filter(o.smoothing, s.alpha_s, "smooth")
        # interface normal: ∇α̃ projected to vector P1, normalised node-wise; κ = -∇·n̂ (P1)
        V1v = fem.functionspace(msh, ("Lagrange", 1, (s.gdim,)))
        self.grad_s = fem.Function(V1v, name="grad_alpha_smooth")
        self.normal = fem.Function(V1v, name="interface_normal")
        gt, gw = ufl.TrialFunction(V1v), ufl.TestFunction(V1v)
        self._gproj = fixed_operator_problem(
            ufl.inner(gt, gw) * dx2,
            ufl.inner(ga, gw) * dx2,
            u=self.grad_s,
            petsc_options=dict(cg),
            petsc_options_prefix=f"electrofem_vof_grad_{tag}_",
        )
        nh = self.normal
        nvec = ufl.FacetNormal(msh)
        self._curv = fixed_operator_problem(
            a1 * w1 * dx2,
            ufl.inner(nh, ufl.grad(w1)) * dx2 - ufl.inner(nh, nvec) * w1 * ufl.ds,
            u=s.kappa,
            petsc_options=dict(cg),
            petsc_options_prefix=f"electrofem_vof_curv_{tag}_",
        )
        # |∇α̃|-weighted Helmholtz smoothing of κ (removes the O(1/h) projection noise)
        self._kw = fem.Function(V1)
        self._kn = fem.Function(V1)
        self._kd = fem.Function(V1)
        ck = fem.Constant(msh, float(o.curvature_smoothing))
        gmag = ufl.sqrt(ufl.inner(ga, ga))
        ak = a1 * w1 * dx2 + (ck * hK) ** 2 * ufl.inner(ufl.grad(a1), ufl.grad(w1)) * dx2
        self._ksm = [
            fixed_operator_problem(
                ak,
                f * w1 * dx2,
                u=out,
                petsc_options=dict(cg),
                petsc_options_prefix=f"electrofem_vof_ks{i}_{tag}_",
            )
            for i, (f, out) in enumerate(((self._kw * gmag, self._kn), (gmag, self._kd)))
        ]
        self.fit = self._fit_smooth = None
        if o.curvature == "fit":
            # the fit's points: the level 1/2 of a lightly filtered α (the force's α̃ filter
            # would move that level inwards by ~ (c_s h)² κ / 2, 18 % of R for a sphere of
            # 5 cells a radius)
            self.fit = fitted_curvature(s)
            self._fit_smooth = alpha_filter(o.curvature_fit_smoothing, self.alpha_fit, "fitsmooth")

    def close(self) -> None:
        """Free the PETSc objects (collective; idempotent)."""
        destroy(
            self.ns,
            self._schur,
            self._smooth,
            self._gproj,
            self._curv,
            *self._ksm,
            self._fit_smooth,
        )

    # ------------------------------------------------------------------ forms
    def schur_forms(self, grad_alpha):
        """The pressure forms of the iterative solver's Schur preconditioner (on W):
        ``−M(1/μ_S)`` with ``μ_S = μ + dt σ |∇α̃|`` (the semi-implicit tension's surface
        viscosity), and ``K(dt/ρ)`` with p = 0 imposed weakly at the outflow boundaries (a
        penalty 10/h) and a mass ``0.1 (dt/ρ)/ℓ²`` (ℓ the domain size)."""
        import ufl
        from dolfinx import fem

        s, o, msh = self.s, self.options, self.mesh
        p, q = ufl.TrialFunctions(s.W)[1], ufl.TestFunctions(s.W)[1]
        dx = ufl.Measure("dx", domain=msh, metadata={"quadrature_degree": 2})
        mu_s = s.mu
        if o.surface_tension_N_m > 0 and o.semi_implicit_tension:
            sig = fem.Constant(msh, float(o.surface_tension_N_m))
            mu_s = s.mu + self.dt_c * sig * ufl.sqrt(ufl.inner(grad_alpha, grad_alpha))
        k = self.dt_c / s.rho
        lap = k * ufl.inner(ufl.grad(p), ufl.grad(q)) * dx
        out = [int(t) for t, kind in s.boundaries.items() if kind in ("outlet", "normal_outflow")]
        if out:
            ds = ufl.Measure("ds", domain=msh, subdomain_data=s.facet_tags)
            lap += 10.0 * k / ufl.CellDiameter(msh) * p * q * ds(tuple(out))
        # a small mass keeps K regular in pores closed off from the outflow (and in a closed
        # box), where the pressure level is free
        x = msh.geometry.x
        ext = [gmax(self.comm, x[:, i]) - gmin(self.comm, x[:, i]) for i in range(self.gdim)]
        lap += 0.1 * k / max(ext) ** 2 * p * q * dx
        return -(1.0 / mu_s) * p * q * dx, lap

    def wall_terms(self, u, p, v, q):
        """Navier-slip walls, imposed weakly (symmetric Nitsche for u·n = 0, Freund &
        Stenberg 1995; Juntunen & Stenberg 2009), with a slip length that is
        ``contact_line_slip`` where the interface touches the wall and ~0 elsewhere:

            -∫ (n·σ(u,p)n)(v·n) - ∫ (n·σ(v,q)n)(u·n) + ∫ γ μ/h (u·n)(v·n)
            + ∫ μ/(λ_0 + λ_cl b) (u_t·v_t)  over the walls,


        σ(u,p) = 2με(u) - pI, λ_cl = ``contact_line_slip`` · h (h the cell diameter),
        b = min(1, 3 h |∇α̃|) the interface band, λ_0 = 1e-3 h (a no-slip
        wall to O(λ_0/ℓ) away from the contact line), γ = 100. Without it the contact line
        moves only by numerical slip and lags (Lucas–Washburn rate ~0.5 of the static-angle
        value); with it the wall shear stress near the contact line is bounded."""
        import ufl
        from dolfinx import fem

        msh = self.mesh
        n = ufl.FacetNormal(msh)
        h = ufl.CellDiameter(msh)
        mu = self.s.mu
        ds = ufl.Measure(
            "ds",
            domain=msh,
            subdomain_data=self.geom.wall_tags,
            metadata={"quadrature_degree": self.options.quadrature_degree},
        )

        def sn(w, r):
            return ufl.dot(n, 2 * mu * ufl.dot(ufl.sym(ufl.grad(w)), n)) - r

        def tang(w):
            return w - ufl.dot(w, n) * n

        ga = ufl.grad(self.s.alpha_s)
        band = ufl.min_value(1.0, 3.0 * h * ufl.sqrt(ufl.inner(ga, ga)))
        lam_cl = fem.Constant(msh, float(self.options.contact_line_slip))
        beta = mu / ((1e-3 + lam_cl * band) * h)
        gamma = 100.0
        return (
            -sn(u, p) * ufl.dot(v, n) * ds(1)
            - sn(v, q) * ufl.dot(u, n) * ds(1)
            + gamma * mu / h * ufl.dot(u, n) * ufl.dot(v, n) * ds(1)
            + beta * ufl.inner(tang(u), tang(v)) * ds(1)
        )

    def velocity_bcs(self):
        """Dirichlet conditions: no-slip walls (unless Navier-slip walls), the inlet
        velocity, and the zero normal (``slip``) or tangential (``normal_outflow``) component
        on axis-aligned faces."""
        from dolfinx import fem
        from dolfinx import mesh as dmesh

        s = self.s
        W, V = s.W, s.V
        bcs = []
        fdim = s.tdim - 1
        ft = s.facet_tags
        tagged = (
            np.concatenate([ft.find(int(t)) for t in s.boundaries] or [np.zeros(0, np.int32)])
            if ft is not None
            else np.zeros(0, np.int32)
        )
        ext = dmesh.exterior_facet_indices(self.mesh.topology)
        walls = np.setdiff1d(ext, tagged)
        for t, k in s.boundaries.items():
            if k == "wall":
                walls = np.union1d(walls, ft.find(int(t)))
        zero = fem.Function(V)
        if self.options.contact_line_slip <= 0:  # else: Nitsche/Navier walls (wall_terms)
            dofs = fem.locate_dofs_topological((W.sub(0), V), fdim, walls.astype(np.int32))
            bcs.append(fem.dirichletbc(zero, dofs, W.sub(0)))
        for t, k in s.boundaries.items():
            facets = ft.find(int(t))
            if k == "inlet":
                uin = fem.Function(V)
                val = s.inlet_velocity
                uin.interpolate(lambda x, val=val: np.tile(val[:, None], (1, x.shape[1])))
                dofs = fem.locate_dofs_topological((W.sub(0), V), fdim, facets)
                bcs.append(fem.dirichletbc(uin, dofs, W.sub(0)))
            elif k in ("slip", "normal_outflow"):
                axis = self.geom.facet_axis(facets, t)
                comps = [axis] if k == "slip" else [c for c in range(self.gdim) if c != axis]
                for c in comps:
                    Vc, _ = W.sub(0).sub(c).collapse()
                    zc = fem.Function(Vc)
                    dofs = fem.locate_dofs_topological((W.sub(0).sub(c), Vc), fdim, facets)
                    bcs.append(fem.dirichletbc(zc, dofs, W.sub(0).sub(c)))
        return bcs

    # ------------------------------------------------------------------ solves
    def solve(self, dt: float, t: float) -> None:
        """One Navier–Stokes step of ``dt`` from the current velocity (kept in ``u_n``);
        writes ``s.u`` and ``s.p``. Raises :class:`VOFDivergenceError` (on every rank) if the
        solve fails or the velocity is not finite (``t``: the time, for the message)."""
        s = self.s
        self.dt_c.value = dt
        self.u_n.x.array[:] = s.u.x.array
        if self._schur is not None:
            self._schur.solve(self.ns, s.u, s.p)
        else:
            self.ns.solve()
        ksp = self.ns.solver
        self.linear_iterations = ksp.getIterationNumber() if self._schur is not None else 0
        if ksp.getConvergedReason() < 0:
            raise VOFDivergenceError(
                f"NS solve failed at t = {t:.3e} s (reason {ksp.getConvergedReason()})"
            )
        self.w.x.scatter_forward()
        s.u.x.array[:] = self.w.x.array[s.umap]
        s.p.x.array[:] = self.w.x.array[s.pmap]
        # every rank must take the same branch (a rank-local raise would deadlock)
        if not self.comm.allreduce(bool(np.all(np.isfinite(s.u.x.array))), op=MPI.LAND):
            raise VOFDivergenceError(f"non-finite velocity at t = {t:.3e} s")

    def update_interface(self) -> None:
        """α̃ from α; with surface tension also the normal (contact angle imposed) and κ."""
        s = self.s
        self._smooth.solve()
        s.alpha_s.x.scatter_forward()
        if self.options.surface_tension_N_m > 0:
            self._gproj.solve()
            self.grad_s.x.scatter_forward()
            g = self.grad_s.x.array.reshape(-1, self.gdim)
            mag = np.linalg.norm(g, axis=1)
            tol = 1e-8 / s.h_min
            nh = g / np.maximum(mag, tol)[:, None]
            self.impose_contact_angle(nh, mag)
            self.normal.x.array[:] = nh.ravel()
            self._curv.solve()
            s.kappa.x.scatter_forward()
            if self.options.curvature_smoothing > 0:
                self._kw.x.array[:] = s.kappa.x.array
                for prob in self._ksm:
                    prob.solve()
                num, den = self._kn.x.array, self._kd.x.array
                tol = 1e-6 / s.h_min
                s.kappa.x.array[:] = num / (np.abs(den) + tol)  # continuous; → 0 off Γ
                s.kappa.x.scatter_forward()
            if self.fit is not None:
                self._fit_smooth.solve()
                self.alpha_fit.x.scatter_forward()
                kfit, beta = self.fit.kappa(self.alpha_fit.x.array)
                k = s.kappa.x.array
                k[:] = beta * kfit + (1.0 - beta) * k
                s.kappa.x.scatter_forward()

    def impose_contact_angle(self, nh, grad_mag) -> None:
        """At wall nodes on the interface, rotate the normal towards ``n̂·n_wall = cos θ``
        (n̂ points into the liquid, n_wall out of the fluid domain), keeping its tangential
        direction. The κ projection then carries the angle through its boundary term
        -∫ (n̂·n) w ds. Every switch is continuous (ramps in |∇α̃| h and in the tangential
        part), so round-off is not amplified from step to step."""
        d = self.geom.wall_dofs
        if len(d) == 0:
            return
        nb = self.geom.wall_normals
        th = math.radians(self.options.contact_angle_deg)
        n = nh[d]
        t = n - np.einsum("ij,ij->i", n, nb)[:, None] * nb
        tm = np.linalg.norm(t, axis=1)
        t = t / np.maximum(tm, 0.1)[:, None]  # |t| ramps to 0 as n̂ turns normal to the wall
        new = math.cos(th) * nb + math.sin(th) * t
        beta = np.clip((grad_mag[d] * self.geom.h_min - 0.002) / 0.008, 0.0, 1.0)[:, None]
        nh[d] = (1 - beta) * n + beta * new
