"""Two-phase (electrolyte/air) incompressible Navier–Stokes with a volume-of-fluid fraction.

First installment of the infiltration model (project issue 5): the validated numerical core, in
2D (triangles), on the pore space of an :class:`~electrofem.mesh.ElectrodeMesh` or on any
dolfinx triangle mesh in metres with tagged boundary facets; the same discretisation runs on 3D
tetrahedral meshes (a demonstration, partly validated: see *Limitations*). All quantities are SI.

Model
-----
``α`` is the electrolyte volume fraction. With ``ρ(α) = α ρ_l + (1-α) ρ_g`` and
``μ(α) = α μ_l + (1-α) μ_g`` (arithmetic mixing, cell-wise),

    ρ (∂u/∂t + u·∇u) = -∇p + ∇·(2 μ ε(u)) + ρ g + σ κ ∇α̃,    ∇·u = 0,
    ∂α/∂t + ∇·(α u) = 0,

with ``α̃`` a smoothed fraction and ``κ = -∇·(∇α̃/|∇α̃|)`` its curvature (positive for a
liquid drop). Particle surfaces are no-slip walls, or Navier-slip walls near the contact line
(``InfiltrationOptions.contact_line_slip``, below).

**Static contact angle θ** (``FluidParams.contact_angle``, through the liquid): at wall nodes on
the interface the P1 normal is rotated to ``n̂·n_wall = cos θ`` before κ is projected, so the
angle enters through the boundary term ``-∫ (n̂·n) w ds`` of the κ projection. *Partly
validated*: an equilibrium liquid slug in a 2D slit reaches 86 % of ``2σ cos θ / w`` at 10
cells per width (tested) and ~92 % at 20.

**Moving contact lines: a contact-line Navier slip.** With strongly imposed no-slip walls the
contact line moves only by numerical slip and lags: a Lucas–Washburn imbibition into a slit
(w = 10 µm, 8 cells across, θ = 45°, Ca ≈ 6e-3) runs at 0.42 of the static-angle rate. With
``contact_line_slip = c > 0`` the walls become Navier-slip walls imposed weakly (symmetric
Nitsche for u·n = 0) whose slip length is ``c·h`` inside the interface band and ~1e-3 h
elsewhere (:meth:`VOFSolver._wall_terms`). With c = 0.7 the same run is at 0.91 of the
Lucas–Washburn rate (``tests/test_vof.py``, within the 10 % target). The slip length is a
numerical contact-line model tied to the mesh (as in Afkhami, Zaleski & Bussmann, JCP 2009):
the rate depends on it logarithmically (Cox–Voinov), see BENCHMARKS.md.

**The scheduled (capillary-implicit) step.** ``step_control = "scheduled"`` takes fixed flow
steps (``dt_max`` or a ``dt_schedule``, e.g. paper 002's own 1e-4 s then 2e-4 s), far beyond
the explicit capillary bound, cut only when the flow Courant number would exceed
``flow_courant_max`` (10); α is sub-cycled on the frozen fluxes at ``courant_max``. Stability
comes from the semi-implicit term (a surface viscosity dt·σ on the interface): it is stable
for any dt in every run made, at the price of damping interface motion faster than about
h/dt. So the mode is accurate when the interface moves at the imposed (slow) flow rate, and
over-damps fast spontaneous capillary events: on the 3-disk test domain at 1e-4 m/s the
breakthrough time was 0.176 / 0.135 / 0.126 s with dt = 1e-3 / 1e-4 / 3e-5 s against 0.108 s
with the adaptive Courant step (benchmarks/bench_infiltration.py, BENCHMARKS.md).

Discretisation and why
----------------------
* **(u, p): Taylor–Hood P2–P1**, monolithic, MUMPS (no hypre here; Taylor–Hood is inf-sup
  stable without tuning and a direct solve of ~10⁴–10⁵ dofs costs < 1 s on this machine).
  Backward Euler in time, convection linearised with the previous velocity (Oseen/Picard, one
  linear solve per step); ρ and μ are DG0 functions of the current α (no smearing beyond
  the VOF cell).
* **Balanced force.** The smoothed fraction ``α̃`` is in P1 — the pressure space — (Helmholtz
  filter ``α̃ - (c_s h)² Δα̃ = α``, zero flux on the boundary); the normal ``n̂`` is ``∇α̃``
  L2-projected to vector P1 and normalised node-wise; ``κ`` is the L2 projection of
  ``-∇·n̂`` onto P1, then smoothed by a ``|∇α̃|``-weighted Helmholtz filter (this cut the
  spurious currents of the static drop 7×); the force is ``σ κ ∇α̃`` tested against v. For
  a constant ``κ`` the pressure ``p = σ κ α̃`` is then exactly representable and the
  discrete force is exactly balanced (zero spurious velocity); residual spurious currents
  come only from the variation of the computed ``κ``.
* **Semi-implicit surface tension** (Hysing 2006, diffuse version): the term
  ``dt σ ∫ |∇α̃| (∇u P) : (∇v P) dx`` with ``P = I - n̂⊗n̂`` is added to the momentum
  matrix. It is the implicit part of ``-σ Δ_Γ (x^n + dt u^{n+1})``, vanishes at rest, is
  O(dt) consistent, and damps the capillary waves that set the explicit limit
  ``dt_σ = sqrt((ρ_l+ρ_g) h³ / (4π σ))`` (Brackbill et al. 1992). The time step is bounded by
  ``capillary_factor · dt_σ``: 1 is the classical explicit bound; larger values rely on the
  semi-implicit term and are not validated here.
* **α: DG0 (one value per cell) with a conservative finite-volume update** on the *face
  fluxes* of the P2 velocity. The normal flux of the P2 velocity through a straight facet is
  integrated exactly (Simpson's rule on the quadratic trace; in 3D the edge-midpoint rule
  ``|f|/3 Σ u(m_e)·n``, exact for a quadratic on a triangle), so per cell
  ``Σ_f F_f = ∫_K ∇·u``, which Taylor–Hood makes zero only weakly (against P1), not per cell.
  The fluxes are therefore made **discretely divergence-free per cell** by a finite-volume
  Helmholtz projection: ``F'_f = F_f - W_f [φ]_f``, with the two-point graph Laplacian
  ``Σ_f W_f (φ_K - φ_N) = Σ_f F_f`` (``W_f = |f| / d_KN``; φ = 0 beyond open boundaries; one
  cell grounded if the domain is closed), factorised once with MUMPS. The correction is of the
  size of the FE divergence error (it converges with the mesh) and leaves the wall and inlet
  fluxes untouched. After it, ``Σ_f F'_f`` is zero to the direct solver's round-off (measured
  and recorded as ``div_residual``).
* **α flux: FCT (Zalesak) blend** of first-order upwind (bounded for Courant ≤ 1 on a
  divergence-free flux) and a high-order flux = central flux + an interface-compression flux
  ``c_α |F'| (n̂·n_f) α_f (1-α_f)`` (OpenFOAM-style sharpening). The antidiffusive part is
  limited cell-wise so ``α`` stays in the local bounds of its neighbours (and in [0, 1]); every
  face flux is antisymmetric between the two cells, so the total volume changes only by the
  boundary fluxes, to round-off.
* **Time step**: ``dt = min(dt_max, courant_max · min_K |K| / Σ_out F'_K, capillary_factor ·
  dt_σ)`` computed from the current velocity. If the velocity after the solve gives a cell
  Courant number above 1 (the bound of the upwind step), α is sub-cycled
  (``n_sub = ceil(Co / courant_max)``). Co above ``courant_blowup`` (or non-finite fields) raise
  :class:`VOFDivergenceError`.

Limitations (this installment)
------------------------------
* **3D (tetrahedra) is a demonstration, partly validated.** Everything above runs on 3D
  tetrahedral meshes (facet flux by the edge-midpoint rule; box faces tagged BOTTOM/TOP at
  z = 0/H, LEFT/RIGHT at x, FRONT/BACK at y; :meth:`VOFSolver.from_electrode_mesh`: inlet at
  z = H, slip on the four sides). Tested in 3D (``tests/test_vof_3d.py``): the facet fluxes
  sum per cell to ``∫_K ∇·u`` to ~1e-15 (random P2 field, distorted tetrahedra); α in a
  3D deformation field stays in [0, 1] and conserves the volume to round-off; plane
  Poiseuille flow is exact to round-off (P2); 10 steps on a tiny 3D electrode are bounded,
  conservative and identical on 1 and 2 ranks. *Not validated in 3D: surface tension and the
  contact angle.* The Laplace pressure of a static sphere (σ = 0.035 N/m, closed box,
  ``capillary_factor`` 20, 12 steps) reached 0.24 / 0.50 / 0.71 of ``2σ/R`` at R/h = 2.4 /
  3.6 / 4.8 (h the box-mesh spacing): converging, but far from the 5 % of the 2D test at
  R/h = 8, which in 3D needs ~10⁵ tetrahedra. Cost: every step assembles and factorises the
  3D Taylor–Hood system with MUMPS: ~0.9 s per step at 3k pore cells, ~9 s at 22k pore cells
  (124k dofs; ``benchmarks/bench_vof_3d.py``, about 2/3 in MUMPS, the rest in the assembly and
  the lifting), serial on this machine, and no faster on 2 ranks there (on a shared machine):
  3D is for small domains until an iterative (e.g. fieldsplit/GAMG) flow solver is added.
* A closed domain (no open boundary) fixes the pressure constant weakly (``-ε p q``,
  ``ε = 1e-10/μ``).
* With the adaptive step (``step_control = "courant"``) the capillary bound dominates at
  electrode scale: with h = 1 µm, ``dt_σ ≈ 5e-8 s``, while filling 146 µm at 1e-4 m/s takes
  ~1 s; the semi-implicit term was run stably at ``capillary_factor = 20`` (static drop, slug,
  pore space). Electrode-scale runs use the scheduled step instead (above), with its
  time-step error.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

import numpy as np
from mpi4py import MPI

from ... import tags
from .._petsc import destroy

#: Boundary kinds understood by :class:`VOFSolver`.
BOUNDARY_KINDS = ("wall", "inlet", "outlet", "slip", "normal_outflow")


class VOFDivergenceError(RuntimeError):
    """The two-phase solve blew up (NaN, or a Courant number beyond the blow-up bound)."""


@dataclass
class FluidParams:
    """Two fluids (SI units). Defaults: the paper's electrolyte (1.2 g/cm³, 3.1 cP) and air.

    Attributes:
        rho_liquid, rho_gas: densities, kg/m³.
        mu_liquid, mu_gas: dynamic viscosities, Pa·s.
        sigma: surface tension, N/m (a typical carbonate electrolyte/air value).
        gravity: body acceleration, m/s² (vector; zero by default: negligible at µm scale).
            2 components in 2D, 3 in 3D (the zero default serves both).
        contact_angle: static contact angle θ of the liquid on the walls, degrees, measured
            through the liquid (< 90: wetting).
    """

    rho_liquid: float = 1200.0
    rho_gas: float = 1.204
    mu_liquid: float = 3.1e-3
    mu_gas: float = 1.81e-5
    sigma: float = 0.035
    gravity: tuple[float, ...] = (0.0, 0.0)
    contact_angle: float = 90.0

    def validate(self) -> None:
        for k in ("rho_liquid", "rho_gas", "mu_liquid", "mu_gas"):
            v = getattr(self, k)
            if not (v > 0 and math.isfinite(v)):
                raise ValueError(f"FluidParams.{k}: must be positive, got {v!r}")
        if not 0 < self.contact_angle < 180:
            raise ValueError(
                f"FluidParams.contact_angle: in (0, 180) degrees, got {self.contact_angle!r}"
            )
        if not (self.sigma >= 0 and math.isfinite(self.sigma)):
            raise ValueError(f"FluidParams.sigma: must be >= 0, got {self.sigma!r}")


@dataclass
class InfiltrationOptions:
    """Numerical and boundary options (SI units).

    Attributes:
        inlet_speed: electrolyte inflow speed at the inlet, m/s (paper: 1e-4).
        inlet_alpha: α of the inflow (1 = electrolyte only).
        courant_max: target cell Courant number of the adaptive dt (α is sub-cycled
            if a step still exceeds Co = 1).
        courant_blowup: Courant number treated as a blow-up (exception).
        dt_max, dt_min: step bounds, s.
        capillary_factor: dt ≤ capillary_factor · dt_σ (Brackbill bound); 0 disables.
        semi_implicit_tension: add the Hysing term (see module docstring).
        compression: interface-compression coefficient c_α (0 = plain limited central/upwind).
        smoothing: Helmholtz filter width of α̃ in cell diameters.
        curvature_smoothing: width of the |∇α̃|-weighted filter of κ, in cell diameters
            (0: off).
        quadrature_degree: for the momentum forms.
        advect_alpha: False freezes α (single-phase checks; no Courant limit then).
        contact_line_slip: Navier slip length on the walls where the interface touches them,
            in cell diameters h_K (0: strongly imposed no-slip walls everywhere). See
            :meth:`VOFSolver._wall_terms`.
        step_control: ``"courant"`` (default): the flow step is the adaptive
            :meth:`VOFSolver.stable_dt` (``courant_max``, capillary and ``dt_max`` bounds).
            ``"scheduled"``: the flow step is ``dt_max`` (or the ``dt_schedule`` value for the
            current time), capped only by ``flow_courant_max`` — the semi-implicit surface
            tension carries the capillary stiffness, and α is sub-cycled on the frozen fluxes to
            ``courant_max``. The capillary-dominated (Ca ≪ 1) mode of paper 002's own set-up
            (fixed implicit steps of 1e-4 s, then 2e-4 s); see the module docstring for its
            accuracy.
        dt_schedule: ``((t0, dt0), (t1, dt1), ...)``, s: with ``"scheduled"``, the step is the
            ``dt`` of the last entry with ``t_i <= t`` (``dt_max`` before the first).
        flow_courant_max: with ``"scheduled"``, the step is cut so that the cell Courant
            number of the current flow stays below this (α is sub-cycled below it); a step
            whose new flow exceeds twice this is rejected and redone with the step the new
            flow allows (``VOFSolver.n_rejected`` counts them).
        petsc_options: MUMPS by default.
    """

    inlet_speed: float = 1e-4
    inlet_alpha: float = 1.0
    courant_max: float = 0.5
    courant_blowup: float = 50.0
    dt_max: float = 1e-3
    dt_min: float = 1e-14
    capillary_factor: float = 1.0
    semi_implicit_tension: bool = True
    compression: float = 1.0
    smoothing: float = 1.0
    curvature_smoothing: float = 1.0
    quadrature_degree: int = 4
    advect_alpha: bool = True
    contact_line_slip: float = 0.0
    step_control: str = "courant"
    dt_schedule: tuple = ()
    flow_courant_max: float = 10.0
    petsc_options: dict = field(
        default_factory=lambda: {
            "ksp_type": "preonly",
            "pc_type": "lu",
            "pc_factor_mat_solver_type": "mumps",
        }
    )

    def validate(self) -> None:
        if not 0 < self.courant_max <= 1:
            raise ValueError(f"courant_max must be in (0, 1], got {self.courant_max}")
        if not 0 <= self.inlet_alpha <= 1:
            raise ValueError(f"inlet_alpha must be in [0, 1], got {self.inlet_alpha}")
        if not self.dt_max > self.dt_min > 0:
            raise ValueError("need dt_max > dt_min > 0")
        if self.compression < 0 or self.smoothing < 0 or self.capillary_factor < 0:
            raise ValueError("compression, smoothing, capillary_factor must be >= 0")
        if self.step_control not in ("courant", "scheduled"):
            raise ValueError(f"step_control: 'courant' or 'scheduled', got {self.step_control!r}")
        if not (self.contact_line_slip >= 0 and math.isfinite(self.contact_line_slip)):
            raise ValueError(f"contact_line_slip must be >= 0, got {self.contact_line_slip}")
        if not self.flow_courant_max > 0:
            raise ValueError(f"flow_courant_max must be > 0, got {self.flow_courant_max}")
        for entry in self.dt_schedule:
            if len(entry) != 2 or not (entry[0] >= 0 and entry[1] > 0):
                raise ValueError(f"dt_schedule: (t >= 0, dt > 0) pairs, got {entry!r}")


@dataclass
class StepRecord:
    """One time step. Volumes are areas (m²) in 2D, volumes (m³) in 3D.

    ``inflow``/``outflow`` are the electrolyte volumes that entered/left through the boundary in
    this step; ``balance_error`` = ΔV - inflow + outflow (conservation, ~round-off);
    ``div_residual`` = max_K |Σ_f F'_f| dt / |K| after the flux projection (dimensionless);
    ``div_fe`` = the same before it (the Taylor–Hood per-cell divergence).
    """

    step: int
    t: float
    dt: float
    courant: float
    substeps: int
    alpha_min: float
    alpha_max: float
    volume: float
    inflow: float
    outflow: float
    balance_error: float
    div_residual: float
    div_fe: float
    u_max: float

    def as_dict(self) -> dict:
        return asdict(self)


def _gmax(comm, a, default=-np.inf):
    return comm.allreduce(float(np.max(a)) if len(a) else default, op=MPI.MAX)


def _gmin(comm, a, default=np.inf):
    return comm.allreduce(float(np.min(a)) if len(a) else default, op=MPI.MIN)


class VOFSolver:
    """Two-phase NS + VOF on a 2D triangle or 3D tetrahedron mesh in metres (see the module
    docstring).

    Args:
        msh: dolfinx mesh (2D triangles or 3D tetrahedra, metres, ``shared_facet`` ghost mode
            under MPI).
        facet_tags: boundary facet tags (``None``: every boundary is a wall).
        boundaries: ``{tag: kind}`` with kind in :data:`BOUNDARY_KINDS`; untagged boundary
            facets are walls. ``slip`` (u·n = 0) and ``normal_outflow`` (tangential u = 0,
            traction-free normally) need axis-aligned facets.
        fluid, options: :class:`FluidParams`, :class:`InfiltrationOptions`.
        inlet_velocity: velocity vector on ``inlet`` facets (m/s); default
            ``inlet_speed`` along ``-e_y`` in 2D, ``-e_z`` in 3D (into a domain whose inlet is its
            top).
        velocity: if given (callable ``x -> u(x)`` with gdim rows, or a P2 vector Function), the
            velocity is prescribed and only α is transported (no NS solve).
    """

    def __init__(
        self,
        msh,
        facet_tags=None,
        boundaries: dict[int, str] | None = None,
        fluid: FluidParams | None = None,
        options: InfiltrationOptions | None = None,
        inlet_velocity=None,
        velocity=None,
    ):
        import basix.ufl
        from dolfinx import fem

        self.mesh = msh
        self.comm = msh.comm
        self.fluid = fluid or FluidParams()
        self.options = options or InfiltrationOptions()
        self.fluid.validate()
        self.options.validate()
        tdim = msh.topology.dim
        if (tdim, msh.topology.cell_name()) not in ((2, "triangle"), (3, "tetrahedron")):
            raise NotImplementedError(
                "VOFSolver: only 2D triangle and 3D tetrahedron meshes are supported"
            )
        if msh.geometry.dim != tdim:
            raise NotImplementedError("VOFSolver: the mesh must not be embedded (gdim = tdim)")
        self.tdim = self.gdim = tdim
        self._gravity()  # validates its dimension before any PETSc object exists
        boundaries = dict(boundaries or {})
        for t, k in boundaries.items():
            if k not in BOUNDARY_KINDS:
                raise ValueError(f"boundary {t}: unknown kind {k!r}; known {BOUNDARY_KINDS}")
        if boundaries and facet_tags is None:
            raise ValueError("VOFSolver: boundaries given but no facet_tags")
        self.boundaries = boundaries
        self.facet_tags = facet_tags
        # default inflow: along -e_y in 2D, -e_z in 3D (the through-thickness direction)
        default_in = (0.0,) * (tdim - 1) + (-self.options.inlet_speed,)
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
        self._umap = np.asarray(maps[0] if isinstance(maps, list) else maps)
        self.Q, qmaps = self.W.sub(1).collapse()
        self._pmap = np.asarray(qmaps[0] if isinstance(qmaps, list) else qmaps)
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

        self._setup_geometry()
        self._setup_projection()
        self.prescribed = velocity is not None
        if self.prescribed:
            self.u.interpolate(velocity)  # a callable or a Function
            self.u.x.scatter_forward()
        else:
            self._setup_flow()
        self._update_properties()

    # ------------------------------------------------------------------ construction helpers
    @classmethod
    def from_electrode_mesh(
        cls,
        emesh,
        fluid: FluidParams | None = None,
        options: InfiltrationOptions | None = None,
    ) -> VOFSolver:
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
            box = [_gmax(emesh.comm, msh.geometry.x[:, i]) for i in range(dim)]
        if len(box) != dim:
            raise ValueError(f"VOF infiltration: box_um needs {dim} numbers, got {box!r}")
        scale = 1e-6
        sub.geometry.x[:] *= scale
        ft = _tag_box_facets(sub, *(float(v) * scale for v in box))
        b = {tags.TOP: "inlet", tags.BOTTOM: "outlet", tags.LEFT: "slip", tags.RIGHT: "slip"}
        if dim == 3:
            b |= {tags.FRONT: "slip", tags.BACK: "slip"}
        return cls(sub, ft, b, fluid, options)

    def _setup_geometry(self) -> None:
        msh = self.mesh
        top = msh.topology
        tdim = self.tdim
        cmap = top.index_map(tdim)
        self.n_owned = cmap.size_local
        n_cells = cmap.size_local + cmap.num_ghosts
        fmap = top.index_map(tdim - 1)
        n_facets = fmap.size_local + fmap.num_ghosts
        x = msh.geometry.x[:, :tdim]
        gdofs = msh.geometry.dofmaps[0]
        xc = x[gdofs[:n_cells, : tdim + 1]]
        # self.area: the cell measure (area in 2D, volume in 3D)
        if tdim == 2:
            self.area = 0.5 * np.abs(
                (xc[:, 1, 0] - xc[:, 0, 0]) * (xc[:, 2, 1] - xc[:, 0, 1])
                - (xc[:, 2, 0] - xc[:, 0, 0]) * (xc[:, 1, 1] - xc[:, 0, 1])
            )
        else:
            e1, e2, e3 = (xc[:, i] - xc[:, 0] for i in (1, 2, 3))
            self.area = np.abs(np.einsum("ij,ij->i", e1, np.cross(e2, e3))) / 6.0
        self.centroid = xc.mean(axis=1)
        hk = np.sqrt(self.area[: self.n_owned]) if tdim == 2 else np.cbrt(self.area[: self.n_owned])
        self.h_min = _gmin(self.comm, hk)
        self.c2d = self.V0.dofmap.list[:, 0].astype(np.int64)  # cell -> DG0 dof

        c2f = top.connectivity(tdim, tdim - 1).array.reshape(-1, tdim + 1)
        f2c = top.connectivity(tdim - 1, tdim)
        off, arr = f2c.offsets, f2c.array
        cnt = np.diff(off)
        fc0 = arr[off[:-1]]
        fc1 = np.where(cnt == 2, arr[np.minimum(off[:-1] + 1, len(arr) - 1)], -1)
        # facets of owned cells
        used = np.unique(c2f[: self.n_owned].ravel())
        fvert = _facet_vertices_geometry(msh, used)
        if tdim == 2:
            xa, xb = x[fvert[:, 0]], x[fvert[:, 1]]
            length = np.linalg.norm(xb - xa, axis=1)
            nrm = np.stack([(xb - xa)[:, 1], -(xb - xa)[:, 0]], axis=1) / length[:, None]
            mid = 0.5 * (xa + xb)
        else:  # triangle facets: `length` is the facet area
            xa, xb, xf = x[fvert[:, 0]], x[fvert[:, 1]], x[fvert[:, 2]]
            cr = np.cross(xb - xa, xf - xa)
            length = 0.5 * np.linalg.norm(cr, axis=1)
            nrm = cr / (2.0 * length)[:, None]
            mid = (xa + xb + xf) / 3.0
        c0 = fc0[used]
        c1 = fc1[used]
        flip = np.einsum("ij,ij->i", nrm, mid - self.centroid[c0]) < 0
        nrm[flip] *= -1.0  # outward from c0
        # exact P2 facet flux F = Σ_k w_k u(dof_k)·n_f |f| / c (dofs of cell c0):
        # 2D Simpson on (vertex a, midpoint, vertex b): w = (1, 4, 1), c = 6;
        # 3D: a quadratic integrates exactly over a triangle with its 3 edge midpoints
        # (vertex weights 0): w = (1, 1, 1), c = 3
        layout = self.V.dofmap.dof_layout
        loc = np.argmax(c2f[c0] == used[:, None], axis=1)  # local index of the facet in c0
        cdofs = self.V.dofmap.list[c0]
        if tdim == 2:
            mid_loc = np.array([layout.entity_dofs(1, i)[0] for i in range(3)])
            ends = np.array(
                [[d for d in layout.entity_closure_dofs(1, i) if d != mid_loc[i]] for i in range(3)]
            )
            self._fd = np.stack(
                [
                    cdofs[np.arange(len(used)), ends[loc, 0]],
                    cdofs[np.arange(len(used)), mid_loc[loc]],
                    cdofs[np.arange(len(used)), ends[loc, 1]],
                ],
                axis=1,
            )
            self._fw = np.array([1.0, 4.0, 1.0])
            self._fn = nrm * (length / 6.0)[:, None]
        else:
            vdofs = {layout.entity_dofs(0, v)[0] for v in range(4)}
            emid = np.array(
                [[d for d in layout.entity_closure_dofs(2, i) if d not in vdofs] for i in range(4)]
            )
            self._fd = cdofs[np.arange(len(used))[:, None], emid[loc]]
            self._fw = np.ones(3)
            self._fn = nrm * (length / 3.0)[:, None]
        # boundary kind per facet: 0 interior, 1 wall, 2 inlet, 3 open (outlet/normal_outflow),
        # 4 slip
        kind_code = {"wall": 1, "inlet": 2, "outlet": 3, "normal_outflow": 3, "slip": 4}
        kind_all = np.ones(n_facets, dtype=np.int8)
        if self.facet_tags is not None:
            for t, k in self.boundaries.items():
                kind_all[self.facet_tags.find(int(t))] = kind_code[k]
        kind = np.where(c1 >= 0, 0, kind_all[used])
        d = np.where(
            c1 >= 0,
            np.linalg.norm(self.centroid[np.maximum(c1, 0)] - self.centroid[c0], axis=1),
            2.0 * np.abs(np.einsum("ij,ij->i", nrm, mid - self.centroid[c0])),
        )
        self._W = length / d
        self._f_c0, self._f_c1, self._f_kind, self._f_nrm = c0, c1, kind, nrm
        self._f_len = length  # facet measure: length in 2D, area in 3D
        self._setup_wall_normals(kind_all)
        # half-faces of owned cells: (cell, facet index into `used`, sign)
        pos = np.full(n_facets, -1, dtype=np.int64)
        pos[used] = np.arange(len(used))
        hf_cell = np.repeat(np.arange(self.n_owned), tdim + 1)
        hf_face = pos[c2f[: self.n_owned].ravel()]
        sign = np.where(c0[hf_face] == hf_cell, 1.0, -1.0)
        nb = np.where(sign > 0, c1[hf_face], c0[hf_face])
        self._hf_cell, self._hf_face, self._hf_sign, self._hf_nb = hf_cell, hf_face, sign, nb
        self._hf_kind = np.ascontiguousarray(kind[hf_face], dtype=np.int8)
        # the FCT kernels' neighbour index: boundary faces point at cell 0 (their kind says so)
        self._hf_nb0 = np.ascontiguousarray(np.maximum(nb, 0), dtype=np.int32)

    def _setup_wall_normals(self, kind_all) -> None:
        """P1 wall nodes and their outward unit normals, consistent across ranks: assemble
        ∫_wall n·w ds (vector P1), accumulate on owners, copy to ghosts."""
        import ufl
        from dolfinx import fem, la
        from dolfinx import mesh as dmesh

        msh = self.mesh
        ext = dmesh.exterior_facet_indices(msh.topology)
        wall = np.sort(ext[kind_all[ext] == 1]).astype(np.int32)
        mt = dmesh.meshtags(msh, self.tdim - 1, wall, np.ones(len(wall), dtype=np.int32))
        self._wall_tags = mt  # the Navier-slip walls (contact_line_slip > 0) integrate over it
        V1v = fem.functionspace(msh, ("Lagrange", 1, (self.gdim,)))
        v = ufl.TestFunction(V1v)
        ds = ufl.Measure("ds", domain=msh, subdomain_data=mt, metadata={"quadrature_degree": 1})
        vec = fem.assemble_vector(fem.form(ufl.inner(ufl.FacetNormal(msh), v) * ds(1)))
        vec.scatter_reverse(la.InsertMode.add)
        vec.scatter_forward()
        nn = vec.array.reshape(-1, self.gdim)
        mag = np.linalg.norm(nn, axis=1)
        self._wall_dofs = np.nonzero(mag > 1e-12 * self.h_min)[0]
        self._wall_normals = nn[self._wall_dofs] / mag[self._wall_dofs, None]

    def _setup_projection(self) -> None:
        """Two-point graph Laplacian on the cells (rows owned by their rank), MUMPS."""
        from petsc4py import PETSc

        cmap = self.mesh.topology.index_map(self.tdim)
        glob = cmap.local_to_global(np.arange(len(self.area), dtype=np.int32)).astype(np.int32)
        n, N = self.n_owned, cmap.size_global
        hc, hf, nb, kind = self._hf_cell, self._hf_face, self._hf_nb, self._hf_kind
        W = self._W[hf]
        diag = np.zeros(n)
        interior = kind == 0
        np.add.at(diag, hc[interior], W[interior])
        np.add.at(diag, hc[kind == 3], W[kind == 3])
        has_open = self.comm.allreduce(int(np.any(kind == 3)), op=MPI.MAX)
        self._ground = None
        if not has_open and self.comm.rank == 0 and n > 0:
            self._ground = 0
            diag[0] += float(np.max(W))
        # rows are owned cells only: each entry is set by its owner, no off-process values
        rows = np.concatenate([glob[:n], glob[hc[interior]]]).astype(PETSc.IntType)
        cols = np.concatenate([glob[:n], glob[nb[interior]]]).astype(PETSc.IntType)
        vals = np.concatenate([diag, -W[interior]]).astype(PETSc.ScalarType)
        A = PETSc.Mat().create(comm=self.comm)
        A.setSizes(((n, N), (n, N)))
        A.setType("aij")
        A.setPreallocationCOO(rows, cols)
        A.setValuesCOO(vals, addv=PETSc.InsertMode.ADD_VALUES)
        A.assemble()
        self._A = A
        ksp = PETSc.KSP().create(self.comm)
        ksp.setOperators(A)
        ksp.setType("preonly")
        ksp.getPC().setType("lu")
        ksp.getPC().setFactorSolverType("mumps")
        ksp.setOptionsPrefix("electrofem_vof_proj_")
        ksp.setFromOptions()
        self._ksp = ksp
        self._b, self._phi_vec = A.createVecs()
        from dolfinx import fem

        self._phi = fem.Function(self.V0)

    def _gravity(self) -> np.ndarray:
        """The body acceleration as a gdim vector. 2D: the first two components. 3D: three
        components; the 2-component dataclass default (0, 0) is padded with 0, a non-zero
        2-component vector is refused (its direction would be ambiguous in 3D)."""
        g = np.asarray(self.fluid.gravity, dtype=float).ravel()
        if self.gdim == 2:
            return np.asarray(self.fluid.gravity[:2], dtype=float)
        if len(g) == 3:
            return g
        if len(g) < 3 and not np.any(g):
            return np.zeros(3)
        raise ValueError(
            f"FluidParams.gravity: 3 components needed on a 3D mesh, got {self.fluid.gravity!r}"
        )

    def _setup_flow(self) -> None:
        import ufl
        from dolfinx import fem
        from dolfinx.fem.petsc import LinearProblem

        msh, W, o, fl = self.mesh, self.W, self.options, self.fluid
        (u, p), (v, q) = ufl.TrialFunctions(W), ufl.TestFunctions(W)
        self.dt_c = fem.Constant(msh, 1.0)
        self.u_n = fem.Function(self.V)
        sig = fem.Constant(msh, float(fl.sigma))
        g = fem.Constant(msh, self._gravity())
        dx = ufl.Measure("dx", domain=msh, metadata={"quadrature_degree": o.quadrature_degree})

        def eps(w):
            return ufl.sym(ufl.grad(w))

        rho, mu, dt = self.rho, self.mu, self.dt_c
        a = (
            rho / dt * ufl.inner(u, v) * dx
            + rho * ufl.inner(ufl.dot(ufl.grad(u), self.u_n), v) * dx
            + 2 * mu * ufl.inner(eps(u), eps(v)) * dx
            - p * ufl.div(v) * dx
            - q * ufl.div(u) * dx
        )
        L = rho / dt * ufl.inner(self.u_n, v) * dx + rho * ufl.inner(g, v) * dx
        ga = ufl.grad(self.alpha_s)
        if fl.sigma > 0:
            L += sig * self.kappa * ufl.inner(ga, v) * dx
            if o.semi_implicit_tension:
                mag = ufl.sqrt(ufl.inner(ga, ga) + 1e-30)
                nn = ga / (mag + 1e-12 / self.h_min)
                P = ufl.Identity(self.gdim) - ufl.outer(nn, nn)
                a += dt * sig * mag * ufl.inner(ufl.grad(u) * P, ufl.grad(v) * P) * dx
        if o.contact_line_slip > 0:
            a += self._wall_terms(u, p, v, q)
        kinds = set(self.boundaries.values())
        if not ({"outlet", "normal_outflow"} & kinds):
            # closed box: fix the pressure constant weakly (relative size 1e-10)
            eps_p = fem.Constant(msh, 1e-10 / max(fl.mu_liquid, fl.mu_gas))
            a += -eps_p * p * q * dx
        self._bcs = self._velocity_bcs()
        self.w = fem.Function(W)
        self._flow = LinearProblem(
            a,
            L,
            bcs=self._bcs,
            u=self.w,
            petsc_options=dict(o.petsc_options),
            petsc_options_prefix=f"electrofem_vof_ns_{id(self)}_",
        )
        # smoothing filter and curvature (P1)
        a1, w1 = ufl.TrialFunction(self.V1), ufl.TestFunction(self.V1)
        dx2 = ufl.Measure("dx", domain=msh, metadata={"quadrature_degree": 2})
        hK = ufl.CellDiameter(msh)
        cs = fem.Constant(msh, float(o.smoothing))
        self._smooth = LinearProblem(
            a1 * w1 * dx2 + (cs * hK) ** 2 * ufl.inner(ufl.grad(a1), ufl.grad(w1)) * dx2,
            self.alpha * w1 * dx2,
            u=self.alpha_s,
            petsc_options={"ksp_type": "cg", "pc_type": "jacobi", "ksp_rtol": 1e-12},
            petsc_options_prefix=f"electrofem_vof_smooth_{id(self)}_",
        )
        # interface normal: ∇α̃ projected to vector P1, normalised node-wise; κ = -∇·n̂ (P1)
        V1v = fem.functionspace(msh, ("Lagrange", 1, (self.gdim,)))
        self.grad_s = fem.Function(V1v, name="grad_alpha_smooth")
        self.normal = fem.Function(V1v, name="interface_normal")
        gt, gw = ufl.TrialFunction(V1v), ufl.TestFunction(V1v)
        self._gproj = LinearProblem(
            ufl.inner(gt, gw) * dx2,
            ufl.inner(ga, gw) * dx2,
            u=self.grad_s,
            petsc_options={"ksp_type": "cg", "pc_type": "jacobi", "ksp_rtol": 1e-12},
            petsc_options_prefix=f"electrofem_vof_grad_{id(self)}_",
        )
        nh = self.normal
        nvec = ufl.FacetNormal(msh)
        self._curv = LinearProblem(
            a1 * w1 * dx2,
            ufl.inner(nh, ufl.grad(w1)) * dx2 - ufl.inner(nh, nvec) * w1 * ufl.ds,
            u=self.kappa,
            petsc_options={"ksp_type": "cg", "pc_type": "jacobi", "ksp_rtol": 1e-12},
            petsc_options_prefix=f"electrofem_vof_curv_{id(self)}_",
        )
        # |∇α̃|-weighted Helmholtz smoothing of κ (removes the O(1/h) projection noise)
        self._kw = fem.Function(self.V1)
        self._kn = fem.Function(self.V1)
        self._kd = fem.Function(self.V1)
        ck = fem.Constant(msh, float(o.curvature_smoothing))
        gmag = ufl.sqrt(ufl.inner(ga, ga))
        ak = a1 * w1 * dx2 + (ck * hK) ** 2 * ufl.inner(ufl.grad(a1), ufl.grad(w1)) * dx2
        opts = {"ksp_type": "cg", "pc_type": "jacobi", "ksp_rtol": 1e-12}
        self._ksm = [
            LinearProblem(
                ak,
                f * w1 * dx2,
                u=out,
                petsc_options=opts,
                petsc_options_prefix=f"electrofem_vof_ks{i}_{id(self)}_",
            )
            for i, (f, out) in enumerate(((self._kw * gmag, self._kn), (gmag, self._kd)))
        ]

    def _wall_terms(self, u, p, v, q):
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
        mu = self.mu
        ds = ufl.Measure(
            "ds",
            domain=msh,
            subdomain_data=self._wall_tags,
            metadata={"quadrature_degree": self.options.quadrature_degree},
        )

        def sn(w, r):
            return ufl.dot(n, 2 * mu * ufl.dot(ufl.sym(ufl.grad(w)), n)) - r

        def tang(w):
            return w - ufl.dot(w, n) * n

        ga = ufl.grad(self.alpha_s)
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

    def _velocity_bcs(self):
        from dolfinx import fem

        W, V = self.W, self.V
        bcs = []
        fdim = self.tdim - 1
        ft = self.facet_tags
        tagged = (
            np.concatenate([ft.find(int(t)) for t in self.boundaries] or [np.zeros(0, np.int32)])
            if ft is not None
            else np.zeros(0, np.int32)
        )
        from dolfinx import mesh as dmesh

        ext = dmesh.exterior_facet_indices(self.mesh.topology)
        walls = np.setdiff1d(ext, tagged)
        for t, k in self.boundaries.items():
            if k == "wall":
                walls = np.union1d(walls, ft.find(int(t)))
        zero = fem.Function(V)
        if self.options.contact_line_slip <= 0:  # else: Nitsche/Navier walls (_wall_terms)
            dofs = fem.locate_dofs_topological((W.sub(0), V), fdim, walls.astype(np.int32))
            bcs.append(fem.dirichletbc(zero, dofs, W.sub(0)))
        for t, k in self.boundaries.items():
            facets = ft.find(int(t))
            if k == "inlet":
                uin = fem.Function(V)
                val = self.inlet_velocity
                uin.interpolate(lambda x, val=val: np.tile(val[:, None], (1, x.shape[1])))
                dofs = fem.locate_dofs_topological((W.sub(0), V), fdim, facets)
                bcs.append(fem.dirichletbc(uin, dofs, W.sub(0)))
            elif k in ("slip", "normal_outflow"):
                axis = self._facet_axis(facets, t)
                comps = [axis] if k == "slip" else [c for c in range(self.gdim) if c != axis]
                for c in comps:
                    Vc, _ = W.sub(0).sub(c).collapse()
                    zc = fem.Function(Vc)
                    dofs = fem.locate_dofs_topological((W.sub(0).sub(c), Vc), fdim, facets)
                    bcs.append(fem.dirichletbc(zc, dofs, W.sub(0).sub(c)))
        return bcs

    def _facet_axis(self, facets, tag) -> int:
        sel = np.isin(self._f_facets_global(), facets)
        nrm = self._f_nrm[sel]
        local = np.abs(nrm).sum(axis=0) if len(nrm) else np.zeros(self.gdim)
        tot = self.comm.allreduce(local, op=MPI.SUM)
        axis = int(np.argmax(tot))
        if len(nrm) and np.max(np.abs(np.delete(nrm, axis, axis=1))) > 1e-8:
            raise ValueError(f"boundary {tag}: slip/normal_outflow needs axis-aligned facets")
        return axis

    def _f_facets_global(self):
        top = self.mesh.topology
        c2f = top.connectivity(self.tdim, self.tdim - 1).array.reshape(-1, self.tdim + 1)
        return np.unique(c2f[: self.n_owned].ravel())

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
        """Initial α as the area (3D: volume) fraction of each cell where ``inside(x)`` holds,
        estimated on a regular ``n_sub``-per-edge sub-sampling of each triangle; in 3D on the
        ``n_sub³`` points of a regular grid in the unit cube folded into the tetrahedron
        (Rocchini & Cignoni 2000: a volume-preserving map, so the points have equal weights)."""
        if self.tdim == 3:
            self._set_alpha_fraction_3d(inside, n_sub)
            return
        x = self.mesh.geometry.x[:, :2]
        xc = x[self.mesh.geometry.dofmaps[0][: len(self.area), :3]]
        pts = [
            ((i + 1 / 3) / n_sub, (j + 1 / 3) / n_sub)
            for i in range(n_sub)
            for j in range(n_sub - i)
        ] + [
            ((i + 2 / 3) / n_sub, (j + 2 / 3) / n_sub)
            for i in range(n_sub)
            for j in range(n_sub - i - 1)
        ]
        frac = np.zeros(len(self.area))
        for s, r in pts:
            xp = xc[:, 0] + s * (xc[:, 1] - xc[:, 0]) + r * (xc[:, 2] - xc[:, 0])
            frac += np.asarray(inside(xp.T), dtype=float)
        self.set_alpha(frac / len(pts))

    def _set_alpha_fraction_3d(self, inside, n_sub: int) -> None:
        x = self.mesh.geometry.x[:, :3]
        xc = x[self.mesh.geometry.dofmaps[0][: len(self.area), :4]]
        g = [(np.arange(n_sub) + off) / n_sub for off in (0.25, 0.5, 0.75)]  # no ties on folds
        S, T, U = (a.ravel() for a in np.meshgrid(*g, indexing="ij"))
        m = S + T > 1.0
        S, T = np.where(m, 1.0 - S, S), np.where(m, 1.0 - T, T)
        m1 = T + U > 1.0
        m2 = ~m1 & (S + T + U > 1.0)
        U0 = U
        U = np.where(m1, 1.0 - S - T, np.where(m2, S + T + U0 - 1.0, U0))
        S = np.where(m2, 1.0 - T - U0, S)
        T = np.where(m1, 1.0 - U0, T)
        e1, e2, e3 = (xc[:, i] - xc[:, 0] for i in (1, 2, 3))
        frac = np.zeros(len(self.area))
        for s, t, u in zip(S, T, U, strict=True):
            xp = xc[:, 0] + s * e1 + t * e2 + u * e3
            frac += np.asarray(inside(xp.T), dtype=float)
        self.set_alpha(frac / len(S))

    def _alpha_cells(self) -> np.ndarray:
        return self.alpha.x.array[self.c2d]

    def _update_properties(self) -> None:
        a = np.clip(self._alpha_cells(), 0.0, 1.0)
        fl = self.fluid
        self.rho.x.array[self.c2d] = a * fl.rho_liquid + (1 - a) * fl.rho_gas
        self.mu.x.array[self.c2d] = a * fl.mu_liquid + (1 - a) * fl.mu_gas
        if not self.prescribed and hasattr(self, "_smooth"):
            self._smooth.solve()
            self.alpha_s.x.scatter_forward()
            if self.fluid.sigma > 0:
                self._gproj.solve()
                self.grad_s.x.scatter_forward()
                g = self.grad_s.x.array.reshape(-1, self.gdim)
                mag = np.linalg.norm(g, axis=1)
                tol = 1e-8 / self.h_min
                nh = g / np.maximum(mag, tol)[:, None]
                self._impose_contact_angle(nh, mag)
                self.normal.x.array[:] = nh.ravel()
                self._curv.solve()
                self.kappa.x.scatter_forward()
                if self.options.curvature_smoothing > 0:
                    self._kw.x.array[:] = self.kappa.x.array
                    for prob in self._ksm:
                        prob.solve()
                    num, den = self._kn.x.array, self._kd.x.array
                    tol = 1e-6 / self.h_min
                    self.kappa.x.array[:] = num / (np.abs(den) + tol)  # continuous; → 0 off Γ
                    self.kappa.x.scatter_forward()

    def _impose_contact_angle(self, nh, grad_mag) -> None:
        """At wall nodes on the interface, rotate the normal towards ``n̂·n_wall = cos θ``
        (n̂ points into the liquid, n_wall out of the fluid domain), keeping its tangential
        direction. The κ projection then carries the angle through its boundary term
        -∫ (n̂·n) w ds. Every switch is continuous (ramps in |∇α̃| h and in the tangential
        part), so round-off is not amplified from step to step."""
        d = self._wall_dofs
        if len(d) == 0:
            return
        nb = self._wall_normals
        th = math.radians(self.fluid.contact_angle)
        n = nh[d]
        t = n - np.einsum("ij,ij->i", n, nb)[:, None] * nb
        tm = np.linalg.norm(t, axis=1)
        t = t / np.maximum(tm, 0.1)[:, None]  # |t| ramps to 0 as n̂ turns normal to the wall
        new = math.cos(th) * nb + math.sin(th) * t
        beta = np.clip((grad_mag[d] * self.h_min - 0.002) / 0.008, 0.0, 1.0)[:, None]
        nh[d] = (1 - beta) * n + beta * new

    def volume(self) -> float:
        """Electrolyte volume (m³; an area, m², in 2D), MPI-reduced."""
        a = self._alpha_cells()[: self.n_owned]
        return self.comm.allreduce(float(np.dot(a, self.area[: self.n_owned])), op=MPI.SUM)

    # ------------------------------------------------------------------ fluxes
    def _fe_face_fluxes(self) -> np.ndarray:
        """The exact normal fluxes ∫_f u·n of the P2 velocity through the facets of the owned
        cells (outward of c0), before the wall/slip zeroing and the projection."""
        U = self.u.x.array.reshape(-1, self.gdim)
        fd, fw = self._fd, self._fw
        usum = fw[0] * U[fd[:, 0]]  # weights 1 are exact: 2D is Simpson's U0 + 4 U1 + U2
        for k in range(1, fd.shape[1]):
            usum = usum + fw[k] * U[fd[:, k]]
        return np.einsum("ij,ij->i", usum, self._fn)

    def _face_fluxes(self) -> tuple[np.ndarray, float, float]:
        """Divergence-free facet fluxes F' (outward of c0), and the max per-cell |div| dt-free
        rates (1/s) before and after the projection."""
        F = self._fe_face_fluxes()
        F[(self._f_kind == 1) | (self._f_kind == 4)] = 0.0  # walls, slip: exactly zero
        hf, s = self._hf_face, self._hf_sign
        n = self.n_owned
        D = self._cell_sum(s * F[hf])
        self._b.array[:] = D
        self._ksp.solve(self._b, self._phi_vec)
        phi = self._phi
        phi.x.array[self.c2d[:n]] = self._phi_vec.array
        phi.x.scatter_forward()
        ph = phi.x.array[self.c2d]
        c0, c1, kind = self._f_c0, self._f_c1, self._f_kind
        corr = np.where(kind == 0, ph[c0] - ph[np.maximum(c1, 0)], 0.0)
        corr = np.where(kind == 3, ph[c0], corr)
        Fc = F - self._W * corr
        D2 = self._cell_sum(s * Fc[hf])
        if self._ground is not None:
            D2[self._ground] = 0.0  # the grounded cell absorbs Σ D (round-off of ∫∂Ω u·n)
        area = self.area[:n]
        return (
            Fc,
            _gmax(self.comm, np.abs(D) / area, 0.0),
            _gmax(self.comm, np.abs(D2) / area, 0.0),
        )

    def _cell_sum(self, v: np.ndarray) -> np.ndarray:
        """Σ over the half-faces of each owned cell (they are stored cell by cell, tdim + 1
        per cell); the same sums, in the same order, as ``np.add.at`` but ~10× faster."""
        return v.reshape(self.n_owned, self.tdim + 1).sum(axis=1)

    def _courant_rate(self, Fc) -> np.ndarray:
        hf, s = self._hf_face, self._hf_sign
        out = self._cell_sum(np.maximum(s * Fc[hf], 0.0))
        return out / self.area[: self.n_owned]

    def _normals_cells(self) -> np.ndarray:
        """Cell-wise interface normal ∇α̃/|∇α̃| (local cells), 0 where α̃ is flat."""
        V1 = self.V1
        a = self.alpha_s.x.array
        td = self.tdim
        x = self.mesh.geometry.x[:, :td]
        nc = len(self.area)
        xc = x[self.mesh.geometry.dofmaps[0][:nc, : td + 1]]
        d = V1.dofmap.list[:nc]
        # vertex dofs of P1 follow the geometry node order for an affine P1 mesh
        J = np.stack([xc[:, i] - xc[:, 0] for i in range(1, td + 1)], axis=1)  # (nc, td, td)
        da = np.stack([a[d[:, i]] - a[d[:, 0]] for i in range(1, td + 1)], axis=1)
        g = np.linalg.solve(J, da[..., None])[..., 0]
        mag = np.linalg.norm(g, axis=1)
        tol = 1e-6 / self.h_min
        return g / np.maximum(mag, tol)[:, None]  # continuous ramp below tol

    def _compression_weight(self, Fc, ncell) -> np.ndarray:
        """Per half-face ``c |F| (n̂_f · n)`` of the compressive flux (``n̂_f`` the normalised
        mean of the two cells' interface normals, ``n`` the outward facet normal)."""
        hc, hf, s, nb = self._hf_cell, self._hf_face, self._hf_sign, self._hf_nb
        nf = ncell[hc] + ncell[np.maximum(nb, 0)]
        nfm = np.linalg.norm(nf, axis=1)
        nf = nf / np.maximum(nfm, 1e-3)[:, None]
        nrm = self._f_nrm[hf] * s[:, None]  # outward of hc
        ndot = np.einsum("ij,ij->i", nf, nrm)
        # compression moves liquid along n̂ (towards α = 1): flux of α out of hc ∝ +n̂·n
        return self.options.compression * np.abs(s * Fc[hf]) * ndot

    def _advect(self, Fc, dt, weight=None) -> tuple[float, float]:
        """One FCT step of α with the fluxes ``Fc`` (outward of c0): upwind low-order flux,
        central + compressive high-order flux, Zalesak limiter (the loops are the Cython
        kernels of :mod:`electrofem._vof`). ``weight``: the compression weight (from
        :meth:`_compression_weight`; computed here from the current normals if ``None``;
        α̃ is fixed within a step, so the sub-cycles of a step share it). Returns the
        electrolyte volume in/out through the boundary."""
        from ..._vof import fct_correct, fct_predict

        n, k = self.n_owned, self.tdim + 1
        area = self.area[:n]
        F = self._hf_sign * Fc[self._hf_face]  # outward of the cell
        if self.options.compression > 0 and weight is None:
            ncell = self._normals_cells() if not self.prescribed else self._normals_p0()
            weight = self._compression_weight(Fc, ncell)
        nb, kind = self._hf_nb0, self._hf_kind
        a_lo, A, Rp, Rm, inflow, outflow = fct_predict(
            self._alpha_cells(), F, nb, kind, area, dt, float(self.options.inlet_alpha), weight, k
        )
        R = self._phi  # reuse a DG0 function as a ghost-exchange buffer
        R.x.array[self.c2d[:n]] = Rp
        R.x.scatter_forward()
        Rp_all = R.x.array[self.c2d]  # fancy indexing: a contiguous copy
        R.x.array[self.c2d[:n]] = Rm
        R.x.scatter_forward()
        Rm_all = R.x.array[self.c2d]
        a_new = fct_correct(a_lo, A, Rp_all, Rm_all, nb, kind, area, dt, k)
        self.alpha.x.array[self.c2d[:n]] = a_new
        self.alpha.x.scatter_forward()
        return inflow, outflow

    def _normals_p0(self) -> np.ndarray:
        """Normals for prescribed-velocity runs (no α̃ solve): a cell-wise least-squares
        gradient of α from the neighbours."""
        a = self._alpha_cells()
        n = len(self.area)
        hc, nb, kind = self._hf_cell, self._hf_nb, self._hf_kind
        gd = self.gdim
        g = np.zeros((n, gd))
        M = np.zeros((n, gd, gd))
        inter = kind == 0
        dxv = self.centroid[nb[inter]] - self.centroid[hc[inter]]
        da = a[nb[inter]] - a[hc[inter]]
        np.add.at(g, hc[inter], dxv * da[:, None])
        np.add.at(M, hc[inter], dxv[:, :, None] * dxv[:, None, :])
        own = np.arange(self.n_owned)
        M[own] += 1e-12 * np.eye(gd) * self.h_min**2
        gg = np.zeros((n, gd))
        gg[own] = np.linalg.solve(M[own], g[own][..., None])[..., 0]
        # ghosts: exchange each component
        buf = self._phi
        for k in range(gd):
            buf.x.array[self.c2d[: self.n_owned]] = gg[own, k]
            buf.x.scatter_forward()
            gg[:, k] = buf.x.array[self.c2d]
        mag = np.linalg.norm(gg, axis=1)
        tol = 1e-6 / self.h_min
        return gg / np.maximum(mag, tol)[:, None]

    # ------------------------------------------------------------------ time stepping
    def stable_dt(self) -> float:
        """The next step from the Courant bound on the current fluxes, the capillary bound and
        ``dt_max``."""
        o, fl = self.options, self.fluid
        Fc, _, _ = self._face_fluxes()
        rate = _gmax(self.comm, self._courant_rate(Fc), 0.0)
        if o.step_control == "scheduled":
            dt = o.dt_max
            for t0, dt0 in o.dt_schedule:
                if self.t >= t0 * (1 - 1e-12):
                    dt = dt0
            if rate > 0:
                dt = min(dt, o.flow_courant_max / rate)
            return max(dt, o.dt_min)
        dt = o.dt_max
        if rate > 0:
            dt = min(dt, o.courant_max / rate)
        if fl.sigma > 0 and o.capillary_factor > 0 and not self.prescribed:
            dt_s = math.sqrt(
                (fl.rho_liquid + fl.rho_gas) * self.h_min**3 / (4 * math.pi * fl.sigma)
            )
            dt = min(dt, o.capillary_factor * dt_s)
        return max(dt, o.dt_min)

    def close(self) -> None:
        """Free the PETSc objects now, on every rank (collective; idempotent).

        Leaving them to the garbage collector can deadlock under MPI (see
        :mod:`electrofem.physics._petsc`); the context manager calls this on exit.
        """
        problems = [getattr(self, n, None) for n in ("_flow", "_smooth", "_gproj", "_curv")]
        destroy(*problems, *getattr(self, "_ksm", ()))
        destroy(*(getattr(self, n, None) for n in ("_ksp", "_A", "_b", "_phi_vec")))

    def __enter__(self) -> VOFSolver:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def step(self, dt: float) -> StepRecord:
        """Advance by ``dt`` (s): NS solve (unless the velocity is prescribed), flux projection,
        (sub-cycled) FCT transport of α. Returns and stores the :class:`StepRecord`."""
        o = self.options
        v0 = self.volume()
        if not self.prescribed:
            self.dt_c.value = dt
            self.u_n.x.array[:] = self.u.x.array
            self._flow.solve()
            ksp = self._flow.solver
            if ksp.getConvergedReason() < 0:
                raise VOFDivergenceError(
                    f"NS solve failed at t = {self.t:.3e} s (reason {ksp.getConvergedReason()})"
                )
            self.w.x.scatter_forward()
            self.u.x.array[:] = self.w.x.array[self._umap]
            self.p.x.array[:] = self.w.x.array[self._pmap]
            # every rank must take the same branch (a rank-local raise would deadlock)
            if not self.comm.allreduce(bool(np.all(np.isfinite(self.u.x.array))), op=MPI.LAND):
                raise VOFDivergenceError(f"non-finite velocity at t = {self.t:.3e} s")
        Fc, div_fe, div_res = self._face_fluxes()
        co = dt * _gmax(self.comm, self._courant_rate(Fc), 0.0)
        if (
            o.step_control == "scheduled"
            and not self.prescribed
            and math.isfinite(co)
            and co > 2 * o.flow_courant_max
            and dt > 1e3 * o.dt_min
            and self._retries < 8
        ):
            # the flow changed within the step (a capillary jump): reject it and redo it with
            # the step that the new flow allows (co is global, so every rank agrees)
            self.u.x.array[:] = self.u_n.x.array
            self.n_rejected += 1
            self._retries += 1
            try:
                return self.step(dt * o.flow_courant_max / co)
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
            self._compression_weight(Fc, self._normals_cells())
            if nsub and o.compression > 0 and not self.prescribed
            else None
        )
        for _ in range(nsub):
            i, q = self._advect(Fc, dt / nsub, weight=weight)
            inflow += i
            outflow += q
        inflow = self.comm.allreduce(inflow, op=MPI.SUM)
        outflow = self.comm.allreduce(outflow, op=MPI.SUM)
        a = self._alpha_cells()[: self.n_owned]
        if not self.comm.allreduce(bool(np.all(np.isfinite(a))), op=MPI.LAND):
            raise VOFDivergenceError(f"non-finite α at t = {self.t:.3e} s")
        self._update_properties()
        v1 = self.volume()
        self.t += dt
        self.n_steps += 1
        U = self.u.x.array.reshape(-1, self.gdim)
        umax = _gmax(self.comm, np.linalg.norm(U, axis=1), 0.0)
        rec = StepRecord(
            step=self.n_steps,
            t=self.t,
            dt=dt,
            courant=co,
            substeps=nsub,
            alpha_min=_gmin(self.comm, a),
            alpha_max=_gmax(self.comm, a),
            volume=v1,
            inflow=inflow,
            outflow=outflow,
            balance_error=v1 - v0 - inflow + outflow,
            div_residual=div_res * dt,
            div_fe=div_fe * dt,
            u_max=umax,
        )
        self.records.append(rec)
        return rec

    def run(self, t_end: float, max_steps: int = 10**6, dt: float | None = None, callback=None):
        """Step to ``t_end`` with the adaptive dt (or a fixed ``dt``); returns the records."""
        out = []
        while self.t < t_end * (1 - 1e-12) and len(out) < max_steps:
            h = dt if dt is not None else self.stable_dt()
            h = min(h, t_end - self.t)
            rec = self.step(h)
            out.append(rec)
            if callback is not None:
                callback(self, rec)
        return out


def _facet_vertices_geometry(msh, facets) -> np.ndarray:
    from dolfinx import mesh

    fdim = msh.topology.dim - 1
    return mesh.entities_to_geometry(msh, fdim, np.asarray(facets, dtype=np.int32))


def _tag_box_facets(msh, lx: float, ly: float, lz: float | None = None, tol: float | None = None):
    """Facet tags on the exterior facets of a box (local facets, ghosts included); other
    boundary facets are untagged (walls). 2D, [0,lx]×[0,ly]: BOTTOM/TOP at y = 0/ly,
    LEFT/RIGHT at x = 0/lx. 3D, [0,lx]×[0,ly]×[0,lz] (``lz`` required): BOTTOM/TOP at
    z = 0/lz, LEFT/RIGHT at x = 0/lx, FRONT/BACK at y = 0/ly (as :mod:`electrofem.tags`)."""
    from dolfinx import mesh

    tdim = msh.topology.dim
    msh.topology.create_connectivity(tdim - 1, tdim)
    fmap = msh.topology.index_map(tdim - 1)
    nf = fmap.size_local + fmap.num_ghosts
    f2c = msh.topology.connectivity(tdim - 1, tdim)
    cnt = np.diff(f2c.offsets)
    if tdim == 3 and lz is None:
        raise ValueError("_tag_box_facets: a 3D mesh needs lz")
    lengths = (lx, ly) if tdim == 2 else (lx, ly, lz)
    tol = tol if tol is not None else 1e-8 * max(lengths)
    facets = np.arange(nf, dtype=np.int32)
    mid = mesh.compute_midpoints(msh, tdim - 1, facets)
    vals = np.zeros(nf, dtype=np.int32)
    on = cnt == 1
    faces = [(tdim - 1, tags.BOTTOM, tags.TOP), (0, tags.LEFT, tags.RIGHT)]
    if tdim == 3:
        faces.append((1, tags.FRONT, tags.BACK))
    for ax, low, high in faces:
        vals[on & (np.abs(mid[:, ax]) < tol)] = low
        vals[on & (np.abs(mid[:, ax] - lengths[ax]) < tol)] = high
    sel = np.nonzero(vals)[0].astype(np.int32)
    return mesh.meshtags(msh, tdim - 1, sel, vals[sel])
