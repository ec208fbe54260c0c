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

**Static contact angle θ** (``InfiltrationOptions.contact_angle_deg``, through the liquid): at
wall nodes on the interface the P1 normal is rotated to ``n̂·n_wall = cos θ`` before κ is
projected, so the angle enters through the boundary term ``-∫ (n̂·n) w ds`` of the κ
projection. *Partly validated*: an equilibrium liquid slug in a 2D slit reaches 86 % of
``2σ cos θ / w`` at 10 cells per width (tested) and ~92 % at 20.

**Moving contact lines: a contact-line Navier slip.** With strongly imposed no-slip walls the
contact line moves only by numerical slip and lags: a Lucas–Washburn imbibition into a slit
(w = 10 µm, 8 cells across, θ = 45°, Ca ≈ 6e-3) runs at 0.42 of the static-angle rate. With
``contact_line_slip = c > 0`` the walls become Navier-slip walls imposed weakly (symmetric
Nitsche for u·n = 0) whose slip length is ``c·h`` inside the interface band and ~1e-3 h
elsewhere (:meth:`.flow.TwoPhaseFlow.wall_terms`). With c = 0.7 the same run is at 0.91 of the
Lucas–Washburn rate (``tests/test_vof.py``, within the 10 % target). The slip length is a
numerical contact-line model tied to the mesh (as in Afkhami, Zaleski & Bussmann, JCP 2009):
the rate depends on it logarithmically (Cox–Voinov), see BENCHMARKS.md.

**The scheduled (capillary-implicit) step.** ``step_control = "scheduled"`` takes fixed flow
steps (``dt_max_s`` or a ``dt_schedule_s``, e.g. paper 002's own 1e-4 s then 2e-4 s), far
beyond the explicit capillary bound, cut only when the flow Courant number would exceed
``flow_courant_max`` (10); α is sub-cycled on the frozen fluxes at ``courant_max``. Stability
comes from the semi-implicit term (a surface viscosity dt·σ on the interface): it is stable
for any dt in every run made, at the price of damping interface motion faster than about
h/dt. So the mode is accurate when the interface moves at the imposed (slow) flow rate, and
over-damps fast spontaneous capillary events: on the 3-disk test domain at 1e-4 m/s the
breakthrough time was 0.176 / 0.135 / 0.126 s with dt = 1e-3 / 1e-4 / 3e-5 s against 0.108 s
with the adaptive Courant step (benchmarks/bench_infiltration.py, BENCHMARKS.md).

Discretisation and why
----------------------
* **(u, p): Taylor–Hood P2–P1**, monolithic (Taylor–Hood is inf-sup stable without tuning).
  The linear solver (``InfiltrationOptions.linear_solver``): MUMPS (``lu``; a 2D solve of
  ~10⁴–10⁵ dofs costs < 1 s here), or GMRES with a Schur fieldsplit (``iterative``,
  :mod:`.krylov`: smoothed-aggregation GAMG on the velocity, Cahouet–Chabard on the pressure);
  ``auto`` takes the iterative one in 3D from ``ITERATIVE_MIN_DOFS`` flow unknowns on.
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
* **The "fit" curvature** (``InfiltrationOptions.curvature = "fit"``,
  :mod:`.curvature`): κ from circle/sphere fits, of radius ``curvature_fit_radius`` (6) cells,
  to the centroids of the level ``α̂ = 1/2`` of a lightly filtered fraction α̂
  (``curvature_fit_smoothing`` 0.3 cell diameters), extended to every node from its nearest
  interface points, so κ is constant along the normal; the force is then ``σ κ ∇α̂``. Within
  one to two fit radii of a contact point (an interface point at a wall) the projected κ
  above is kept, because it carries the contact angle. The static drop's parasitic currents
  fall to Ca ≈ 2e-6 once the start-up from the exact circle has relaxed (5e-4 with the
  projection), and the Laplace jump at 4 cells a radius is +2 % (−13 %); a 3D sphere of 5 cells a
  radius gets κ within 5 % of 2/R (``tests/test_vof_curvature.py``, BENCHMARKS.md, issue 16).
  The projection stays the default until the wetting study has been re-run with the fit.
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
* **Time step**: ``dt = min(dt_max_s, courant_max · min_K |K| / Σ_out F'_K, capillary_factor ·
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
  R/h = 8, which in 3D needs ~10⁵ tetrahedra (``curvature = "fit"`` reaches 2.7 % at
  R/h = 5, BENCHMARKS.md issue 16). Cost: with the iterative flow solver (:mod:`.krylov`,
  the ``auto`` choice in 3D from 10⁵ unknowns) a step took 5.7 / 10.5 / 18.5 / 31 s at
  107 k / 180 k / 281 k / 405 k flow unknowns on one rank (10.2 s at 281 k on two), against
  5.7 / 11.6 / 23.4 s with MUMPS (``benchmarks/bench_vof_krylov.py``); its GMRES iterations
  grow slowly with refinement (122 → 148 a step at the paper's 1e-4 s).
* A closed domain (no open boundary) fixes the pressure constant weakly (``-ε p q``,
  ``ε = 1e-10/μ``).
* With the adaptive step (``step_control = "courant"``) the capillary bound dominates at
  electrode scale: with h = 1 µm, ``dt_σ ≈ 5e-8 s``, while filling 146 µm at 1e-4 m/s takes
  ~1 s; the semi-implicit term was run stably at ``capillary_factor = 20`` (static drop, slug,
  pore space). Electrode-scale runs use the scheduled step instead (above), with its
  time-step error.

Cost of the adaptive step on the paper's geometry
-------------------------------------------------
Measured with the infiltration job (``benchmarks/bench_infiltration.py``) on the paper's L-S
geometry at a coarse mesh (2 µm, particle surfaces 0.5 r, 4.7k pore cells, h_min 0.23 µm in the
0.2 µm gaps of the 2D gap contacts): a step takes 0.13–0.36 s on one core of this machine,
shared with other jobs. The step is the smaller of the Courant bound and
``capillary_factor`` × the explicit capillary bound dt_σ (≈ 5.8e-9 s at h_min). With the default
factor 20 the step is 1.2e-7 s and the ~0.6 s the inflow needs to fill the pores would take ~5e6
steps (hundreds of hours): **a run to breakthrough at the paper's 1e-4 m/s is out of reach at
the default**. Factors 200, 2000 and 0 (no capillary bound) ran stably (300 steps, α bounded,
balance ~1e-13) with steps of 1.2e-6, 1.2e-5 and ~4e-5 s. Without the capillary bound the
Courant bound takes over, and it collapses whenever capillary flow starts in a throat: a
2500-step run (factor 0) reached t = 0.042 s in 13 min with steps down to 1.3e-6 s for hundreds
of steps at |u|max ≈ 0.3 m/s (3000× the inlet speed), which extrapolates to ~3–4 h of one core
to the ~0.6 s filling time at this coarse mesh; the issue's ≤ 15 min at 1 µm is not met.
*Stable is not accurate*: the semi-implicit term is a surface viscosity ``dt σ``; against the
viscous resistance of a pore of size ℓ its weight is ``Λ = dt σ / (μ_l ℓ)`` ≈ 0.65 at factor 20
(ℓ = 2 µm) but ~200 at the Courant-limited steps, so large steps over-damp capillary motion
(first 300 steps: |u|max 0.9 m/s at factor 20, 0.01 m/s without the bound). On a small domain at
0.05 m/s the breakthrough time changed by 1.3 % and the final air fraction by 0.3 points between
factors 5 and ∞; the effect at the paper's speed (where capillarity matters more) is not
quantified. Use ``capillary_factor`` > 20 knowingly, and compare with a run at 20 on a small
domain. On that small domain (3 disks, 20 × 24 µm, 440 pore cells) at the paper's 1e-4 m/s,
factor 0 did run to breakthrough: 21k steps in 325 s, breakthrough at 0.108 s = 0.57 × the
filling time (0.92 × at 0.05 m/s: capillary wicking runs ahead at low Ca), final air 0.01 %; for
~0.03 s of it |u|max was 0.3–1.9 m/s and the step ~5e-7 s.

Layout
------
* :mod:`.options` — :class:`InfiltrationOptions`, every parameter once (fluids, contact angle,
  time-step control, the job's run length and outputs); the ``[infiltration]`` table, the
  ``electrofem infiltrate`` flags and the solver all read it (no dolfinx).
* :mod:`.geometry` — the cell/facet/half-face arrays of the mesh, the wall normals, the box-face
  tags (:func:`tag_box_facets`).
* :mod:`.flow` — the Taylor–Hood forms, the walls (no-slip, Nitsche/Navier slip), the velocity
  conditions, the α̃ / normal / contact-angle / κ problems (:class:`~.flow.TwoPhaseFlow`).
* :mod:`.transport` — face fluxes, their projection, the FCT update of α
  (:class:`~.transport.AlphaTransport`).
* :mod:`.solver` — :class:`VOFSolver`: state, :meth:`~VOFSolver.step`,
  :meth:`~VOFSolver.stable_dt` and the time loop :meth:`~VOFSolver.run` with its observer hooks
  (:class:`StepObserver`); :mod:`.records` — :class:`StepRecord`, :class:`RunResult`,
  :class:`VOFDivergenceError`.
* :mod:`.curvature` — the "fit" curvature: level-set cuts, sphere fits, extension (numpy and
  scipy only).
* :mod:`.cases` — the closed-form verification cases (static drop or sphere, Lucas–Washburn).

The infiltration job (:mod:`electrofem.jobs.infiltrate`) is an observer of
:meth:`VOFSolver.run`: it writes the files, metrics and checkpoints.
"""

from .geometry import BOUNDARY_KINDS, tag_box_facets
from .options import NS_PETSC_DEFAULTS, FluidParams, InfiltrationOptions
from .records import RunResult, StepObserver, StepRecord, VOFDivergenceError
from .solver import VOFSolver

__all__ = [
    "BOUNDARY_KINDS",
    "NS_PETSC_DEFAULTS",
    "FluidParams",
    "InfiltrationOptions",
    "RunResult",
    "StepObserver",
    "StepRecord",
    "VOFDivergenceError",
    "VOFSolver",
    "tag_box_facets",
]
