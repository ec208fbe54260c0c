"""The VOF solver: its state (fields, time, step count), one time step, the time-step choice
and the time loop (:meth:`VOFSolver.run`, the only one: the infiltration job is an observer of
it). The forms live in :mod:`.flow`, the α transport in :mod:`.transport`, the mesh arrays in
:mod:`.geometry`; the method is described in :mod:`electrofem.physics.vof`.
"""

from __future__ import annotations

import math
import time

import numpy as np
from mpi4py import MPI

from ... import tags
from ..state import gather, match, owned_values_and_coordinates
from .flow import TwoPhaseFlow, gravity_vector
from .geometry import BOUNDARY_KINDS, CellGeometry, cell_fractions, gmax, gmin, tag_box_facets
from .options import FluidParams, InfiltrationOptions
from .records import RunResult, StepRecord, VOFDivergenceError
from .transport import AlphaTransport


class VOFSolver:
    """Two-phase NS + VOF on a 2D triangle or 3D tetrahedron mesh in metres (see
    :mod:`electrofem.physics.vof`).

    Args:
        msh: dolfinx mesh (2D triangles or 3D tetrahedra, metres, ``shared_facet`` ghost mode
            under MPI).
        facet_tags: boundary facet tags (``None``: every boundary is a wall).
        boundaries: ``{tag: kind}`` with kind in :data:`BOUNDARY_KINDS`; untagged boundary
            facets are walls. ``slip`` (u·n = 0) and ``normal_outflow`` (tangential u = 0,
            traction-free normally) need axis-aligned facets.
        options: :class:`InfiltrationOptions` (fluids, contact angle, time-step control, ...;
            the solver reads it at every step, so a change takes effect at the next one). A
            deprecated :class:`FluidParams` is accepted in its place (converted with
            :meth:`FluidParams.to_options`).
        inlet_velocity: velocity vector on ``inlet`` facets (m/s); default
            ``inlet_speed_m_s`` along ``-e_y`` in 2D, ``-e_z`` in 3D (into a domain whose inlet
            is its top).
        velocity: if given (callable ``x -> u(x)`` with gdim rows, or a P2 vector Function), the
            velocity is prescribed and only α is transported (no NS solve).

    The state is ``t``, ``n_steps``, ``alpha`` (DG0), ``u`` (P2), ``p`` (P1), with α̃, κ, ρ, μ
    derived from α; :meth:`state_arrays` / :meth:`load_state_arrays` save and restore it (on
    any number of ranks). Collaborators: ``geom`` (:class:`~.geometry.CellGeometry`),
    ``transport`` (:class:`~.transport.AlphaTransport`), ``flow``
    (:class:`~.flow.TwoPhaseFlow`; ``None`` with a prescribed velocity).
    """

    def __init__(
        self,
        msh,
        facet_tags=None,
        boundaries: dict[int, str] | None = None,
        options: InfiltrationOptions | None = None,
        *,
        inlet_velocity=None,
        velocity=None,
    ):
        import basix.ufl
        from dolfinx import fem

        self.mesh = msh
        self.comm = msh.comm
        if msh.geometry.cmaps[0].degree != 1:
            raise ValueError(
                f"infiltration: needs straight cells (mesh.order = 1); this mesh has geometry "
                f"order {msh.geometry.cmaps[0].degree}"
            )
        if isinstance(options, FluidParams):
            options = options.to_options()
        self.options = options if options is not None else InfiltrationOptions()
        self.options.validate()
        tdim = msh.topology.dim
        if (tdim, msh.topology.cell_name()) not in ((2, "triangle"), (3, "tetrahedron")):
            raise NotImplementedError(
                "VOFSolver: only 2D triangle and 3D tetrahedron meshes are supported"
            )
        if msh.geometry.dim != tdim:
            raise NotImplementedError("VOFSolver: the mesh must not be embedded (gdim = tdim)")
        self.tdim = self.gdim = tdim
        gravity_vector(self.options, tdim)  # validates its dimension before any PETSc object
        boundaries = dict(boundaries or {})
        for t, k in boundaries.items():
            if k not in BOUNDARY_KINDS:
                raise ValueError(f"boundary {t}: unknown kind {k!r}; known {BOUNDARY_KINDS}")
        if boundaries and facet_tags is None:
            raise ValueError("VOFSolver: boundaries given but no facet_tags")
        self.boundaries = boundaries
        self.facet_tags = facet_tags
        # default inflow: along -e_y in 2D, -e_z in 3D (the through-thickness direction)
        default_in = (0.0,) * (tdim - 1) + (-self.options.inlet_speed_m_s,)
        self.inlet_velocity = np.asarray(
            inlet_velocity if inlet_velocity is not None else default_in, dtype=float
        )
        if self.inlet_velocity.shape != (tdim,):
            raise ValueError(f"inlet_velocity: {tdim} components needed in {tdim}D")
        for d in (0, 1):
            msh.topology.create_connectivity(tdim - 1, d)
        msh.topology.create_connectivity(tdim, tdim - 1)

        cell = msh.basix_cell()
        P2 = basix.ufl.element("Lagrange", cell, 2, shape=(tdim,))
        P1 = basix.ufl.element("Lagrange", cell, 1)
        self.W = fem.functionspace(msh, basix.ufl.mixed_element([P2, P1]))
        self.V, maps = self.W.sub(0).collapse()
        self.umap = np.asarray(maps[0] if isinstance(maps, list) else maps)  # V dofs in W
        self.Q, qmaps = self.W.sub(1).collapse()
        self.pmap = np.asarray(qmaps[0] if isinstance(qmaps, list) else qmaps)  # Q dofs in W
        self.V1 = fem.functionspace(msh, ("Lagrange", 1))
        self.V0 = fem.functionspace(msh, ("DG", 0))
        self.u = fem.Function(self.V, name="velocity")
        self.p = fem.Function(self.Q, name="pressure")
        self.alpha = fem.Function(self.V0, name="alpha")
        self.alpha_s = fem.Function(self.V1, name="alpha_smooth")
        self.kappa = fem.Function(self.V1, name="curvature")
        self.rho = fem.Function(self.V0, name="rho")
        self.mu = fem.Function(self.V0, name="mu")
        self.t = 0.0
        self.n_steps = 0
        self.n_rejected = 0  # scheduled steps redone with a smaller dt
        self._retries = 0
        self.records: list[StepRecord] = []

        self.geom = g = CellGeometry(msh, self.V, self.V0, facet_tags, boundaries)
        self.n_owned, self.area, self.centroid = g.n_owned, g.area, g.centroid
        self.h_min, self.c2d = g.h_min, g.c2d
        self.prescribed = velocity is not None
        self.transport = AlphaTransport(
            g, self.alpha, self.u, self.alpha_s, self.options, self.prescribed
        )
        self.flow = None
        if self.prescribed:
            self.u.interpolate(velocity)  # a callable or a Function
            self.u.x.scatter_forward()
        else:
            self.flow = TwoPhaseFlow(self)
        self._update_properties()

    @classmethod
    def from_electrode_mesh(cls, emesh, options: InfiltrationOptions | None = None) -> VOFSolver:
        """Solver on the pore cells of an :class:`ElectrodeMesh` (µm → m).

        Top (y = H in 2D, z = H in 3D) is the inlet, bottom the outlet, the lateral faces
        (left/right, and front/back in 3D) symmetry (slip), every other boundary of the pore
        space (particle surfaces) a no-slip wall.
        """
        from dolfinx import mesh

        dim = emesh.dim
        if dim not in (2, 3):
            raise NotImplementedError(f"VOF infiltration: 2D or 3D electrode meshes, got {dim}D")
        msh = emesh.mesh
        ct = emesh.cell_tags
        cells = np.sort(ct.indices[ct.values == tags.ELECTROLYTE]).astype(np.int32)
        sub = mesh.create_submesh(msh, dim, cells)[0]
        box = emesh.metadata.get("box_um")
        if box is None:
            box = [gmax(emesh.comm, msh.geometry.x[:, i]) for i in range(dim)]
        if len(box) != dim:
            raise ValueError(f"VOF infiltration: box_um needs {dim} numbers, got {box!r}")
        scale = 1e-6
        sub.geometry.x[:] *= scale
        ft = tag_box_facets(sub, *(float(v) * scale for v in box))
        b = {tags.TOP: "inlet", tags.BOTTOM: "outlet", tags.LEFT: "slip", tags.RIGHT: "slip"}
        if dim == 3:
            b |= {tags.FRONT: "slip", tags.BACK: "slip"}
        return cls(sub, ft, b, options)

    def close(self) -> None:
        """Free the PETSc objects now, on every rank (collective; idempotent).

        Leaving them to the garbage collector can deadlock under MPI (see
        :mod:`electrofem.physics._petsc`); the context manager calls this on exit.
        """
        if self.flow is not None:
            self.flow.close()
        self.transport.close()

    def __enter__(self) -> VOFSolver:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # ------------------------------------------------------------------ state
    def set_alpha(self, fn) -> None:
        """Initial α: a callable ``x -> α`` (at cell centroids, clipped to [0, 1]) or an array
        of per-cell values for the local (owned + ghost) cells."""
        if callable(fn):
            vals = np.asarray(fn(self.centroid.T), dtype=float)
        else:
            vals = np.asarray(fn, dtype=float)
        self.alpha.x.array[self.c2d] = np.clip(vals, 0.0, 1.0)
        self.alpha.x.scatter_forward()
        self._update_properties()

    def set_alpha_fraction(self, inside, n_sub: int = 8) -> None:
        """Initial α as the area (3D: volume) fraction of each cell where ``inside(x)`` holds
        (sub-sampled: :func:`~.geometry.cell_fractions`)."""
        self.set_alpha(cell_fractions(self.mesh, len(self.area), inside, n_sub))

    def alpha_cells(self) -> np.ndarray:
        """α per local cell (owned, then ghosts), in the cell order of ``area``/``centroid``."""
        return self.alpha.x.array[self.c2d]

    def _update_properties(self) -> None:
        a = np.clip(self.alpha_cells(), 0.0, 1.0)
        o = self.options
        self.rho.x.array[self.c2d] = a * o.rho_electrolyte_kg_m3 + (1 - a) * o.rho_air_kg_m3
        self.mu.x.array[self.c2d] = a * o.mu_electrolyte_Pa_s + (1 - a) * o.mu_air_Pa_s
        if self.flow is not None:
            self.flow.update_interface()

    def volume(self) -> float:
        """Electrolyte volume (m³; an area, m², in 2D), MPI-reduced."""
        a = self.alpha_cells()[: self.n_owned]
        return self.comm.allreduce(float(np.dot(a, self.area[: self.n_owned])), op=MPI.SUM)

    def boundary_facets(self, kind: str) -> tuple[np.ndarray, np.ndarray]:
        """``(cells, measures)`` of this rank's boundary facets of ``kind`` (``"inlet"``,
        ``"outlet"`` (every open facet), ``"wall"``, ``"slip"``): the owned cell behind each
        facet (an index into :meth:`alpha_cells`) and the facet's length (2D) or area (3D).
        Each boundary facet is on one rank only, so sums over ranks count it once."""
        return self.geom.boundary_facets(kind)

    def state_arrays(self) -> dict[str, np.ndarray]:
        """The state as arrays on rank 0 (``{}`` elsewhere; collective): ``alpha`` and
        ``alpha_xy`` (owned cells and their centroids), ``u``/``u_xy`` (owned P2 nodes),
        ``p``/``p_xy`` (owned P1 nodes). With the coordinates, :meth:`load_state_arrays`
        restores it on any number of ranks."""
        comm, n = self.comm, self.n_owned
        alpha = gather(comm, self.alpha_cells()[:n])
        alpha_xy = gather(comm, self.centroid[:n])
        u, u_xy = (gather(comm, a) for a in owned_values_and_coordinates(self.u, self.gdim))
        p, p_xy = (gather(comm, a) for a in owned_values_and_coordinates(self.p, self.gdim))
        if comm.rank != 0:
            return {}
        return {"alpha": alpha, "alpha_xy": alpha_xy, "u": u, "u_xy": u_xy, "p": p, "p_xy": p_xy}

    def load_state_arrays(self, arrays: dict) -> None:
        """Restore α, u and p from :meth:`state_arrays` of the same mesh (any partition; every
        rank passes the whole arrays). ``t`` and ``n_steps`` are the caller's to set. Raises
        ValueError if the coordinates do not match this mesh (to 1e-3 h_min)."""
        tol = 1e-3 * self.h_min
        idx = match(self.comm, arrays["alpha_xy"], self.centroid, "alpha", tol)
        self.set_alpha(arrays["alpha"][idx])
        xu = self.V.tabulate_dof_coordinates()[:, : self.gdim]
        idx = match(self.comm, arrays["u_xy"], xu, "velocity", tol)
        self.u.x.array[:] = arrays["u"][idx].ravel()
        self.u.x.scatter_forward()
        xp = self.Q.tabulate_dof_coordinates()[:, : self.gdim]
        idx = match(self.comm, arrays["p_xy"], xp, "pressure", tol)
        self.p.x.array[:] = arrays["p"][idx]
        self.p.x.scatter_forward()

    # ------------------------------------------------------------------ time stepping
    def stable_dt(self) -> float:
        """The next step from the Courant bound on the current fluxes, the capillary bound and
        ``dt_max_s`` (``step_control = "courant"``), or the scheduled step under the flow
        Courant cap (``"scheduled"``)."""
        o = self.options
        Fc, _, _ = self.transport.face_fluxes()
        rate = gmax(self.comm, self.transport.courant_rate(Fc), 0.0)
        if o.step_control == "scheduled":
            dt = o.dt_max_s
            for t0, dt0 in o.schedule():
                if self.t >= t0 * (1 - 1e-12):
                    dt = dt0
            if rate > 0:
                dt = min(dt, o.flow_courant_max / rate)
            return max(dt, o.dt_min_s)
        dt = o.dt_max_s
        if rate > 0:
            dt = min(dt, o.courant_max / rate)
        sigma = o.surface_tension_N_m
        if sigma > 0 and o.capillary_factor > 0 and not self.prescribed:
            rho_sum = o.rho_electrolyte_kg_m3 + o.rho_air_kg_m3
            dt_s = math.sqrt(rho_sum * self.h_min**3 / (4 * math.pi * sigma))
            dt = min(dt, o.capillary_factor * dt_s)
        return max(dt, o.dt_min_s)

    def step(self, dt: float) -> StepRecord:
        """Advance by ``dt`` (s): NS solve (unless the velocity is prescribed), flux projection,
        (sub-cycled) FCT transport of α. Returns and stores the :class:`StepRecord`."""
        o = self.options
        tr = self.transport
        v0 = self.volume()
        if self.flow is not None:
            self.flow.solve(dt, self.t)
        Fc, div_fe, div_res = tr.face_fluxes()
        co = dt * gmax(self.comm, tr.courant_rate(Fc), 0.0)
        # a scheduled step is redone past twice the cap, or past the blow-up limit where that
        # is lower (a cap of 40 accepted Co up to 80 but called 50 a divergence: BENCHMARKS.md,
        # issue 16, tenth part)
        redo_above = 2 * o.flow_courant_max
        if o.advect_alpha:
            redo_above = min(redo_above, o.courant_blowup)
        if (
            o.step_control == "scheduled"
            and not self.prescribed
            and math.isfinite(co)
            and co > redo_above
            and dt > 1e3 * o.dt_min_s
            and self._retries < 8
        ):
            # the flow changed within the step (a capillary jump): reject it and redo it with
            # the step that the new flow allows (co is global, so every rank agrees)
            self.u.x.array[:] = self.flow.u_n.x.array
            self.n_rejected += 1
            self._retries += 1
            try:
                return self.step(dt * 0.5 * redo_above / co)
            finally:
                self._retries -= 1
        if not math.isfinite(co) or (o.advect_alpha and co > o.courant_blowup):
            raise VOFDivergenceError(
                f"Courant number {co:.3g} > {o.courant_blowup} at t = {self.t:.3e} s "
                f"(dt = {dt:.3e} s): the flow blew up or dt is far too large"
            )
        # sub-cycle only beyond the boundedness limit Co = 1 (not at courant_max, which dt
        # targets: a threshold there would dither with round-off between runs/partitions)
        nsub = (1 if co <= 1.0 else math.ceil(co / o.courant_max)) if o.advect_alpha else 0
        inflow = outflow = 0.0
        # α̃ (hence the normals) is fixed within the step; the prescribed-velocity runs take
        # theirs from the current α, so they recompute it every sub-step
        weight = (
            tr.compression_weight(Fc, tr.normals_cells())
            if nsub and o.compression > 0 and not self.prescribed
            else None
        )
        for _ in range(nsub):
            i, q = tr.advect(Fc, dt / nsub, weight=weight)
            inflow += i
            outflow += q
        inflow = self.comm.allreduce(inflow, op=MPI.SUM)
        outflow = self.comm.allreduce(outflow, op=MPI.SUM)
        a = self.alpha_cells()[: self.n_owned]
        if not self.comm.allreduce(bool(np.all(np.isfinite(a))), op=MPI.LAND):
            raise VOFDivergenceError(f"non-finite α at t = {self.t:.3e} s")
        self._update_properties()
        v1 = self.volume()
        self.t += dt
        self.n_steps += 1
        U = self.u.x.array.reshape(-1, self.gdim)
        umax = gmax(self.comm, np.linalg.norm(U, axis=1), 0.0)
        rec = StepRecord(
            step=self.n_steps,
            t=self.t,
            dt=dt,
            courant=co,
            substeps=nsub,
            alpha_min=gmin(self.comm, a),
            alpha_max=gmax(self.comm, a),
            volume=v1,
            inflow=inflow,
            outflow=outflow,
            balance_error=v1 - v0 - inflow + outflow,
            div_residual=div_res * dt,
            div_fe=div_fe * dt,
            u_max=umax,
            linear_iterations=self.flow.linear_iterations if self.flow is not None else 0,
        )
        self.records.append(rec)
        return rec

    def run(
        self,
        t_end: float,
        *,
        observer=None,
        max_steps: int | None = None,
        dt: float | None = None,
        max_wall_s: float = 0.0,
    ) -> RunResult:
        """Step to ``t_end`` (s): the time loop. Collective.

        Each step is :meth:`stable_dt` (or the fixed ``dt``), cut to land on ``t_end``. The run
        stops at ``t_end`` (``stop_reason = "t_end"``), after ``max_steps`` steps of this call
        (``"max_steps"``), after ``max_wall_s`` wall seconds of stepping (``"max_wall"``; 0: no
        limit; rank 0's clock decides, every rank stops at the same step) or when the
        ``observer`` (:class:`~.records.StepObserver`) returns a stop reason from
        ``on_step(solver, record)``. A :class:`VOFDivergenceError` of a step propagates.

        Returns the records of this call's steps (a :class:`~.records.RunResult`, a list with
        ``stop_reason``).
        """
        out = RunResult()
        on_start = getattr(observer, "on_start", None)
        if on_start is not None:
            on_start(self)
        wall0 = time.perf_counter()
        reason = "t_end"
        while self.t < t_end * (1 - 1e-12):
            if max_steps is not None and len(out) >= max_steps:
                reason = "max_steps"
                break
            if max_wall_s > 0 and self.comm.bcast(
                time.perf_counter() - wall0 >= max_wall_s, root=0
            ):  # wall clocks differ: rank 0 decides
                reason = "max_wall"
                break
            h = dt if dt is not None else self.stable_dt()
            rec = self.step(min(h, t_end - self.t))
            out.append(rec)
            if observer is not None:
                stop = observer.on_step(self, rec)
                if stop:
                    reason = stop
                    break
        out.stop_reason = reason
        on_end = getattr(observer, "on_end", None)
        if on_end is not None:
            on_end(self, reason)
        return out
