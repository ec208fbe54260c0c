"""Galvanostatic discharge of a resolved half cell: Li metal | electrolyte | NMC particles | Al.

Fields (P1 Lagrange, one space per phase submesh, coupled in a ``ufl.MixedFunctionSpace``):

* electrolyte (cells ``tags.ELECTROLYTE``): salt concentration ``c = c0 ĉ`` and potential ``φ``;
* active particles (cells ``tags.ACTIVE``): stoichiometry ``x = c_s/c_s,max`` and potential
  ``φ_s``;
* one global unknown: the potential ``V`` of the (equipotential) Al collector (a ``Real``
  space), which closes the galvanostatic constraint.

Equations (SI; ``f = F/RT``; the unknowns are stored scaled as above):

* electrolyte (concentrated binary electrolyte, Newman)::

      ∂c/∂t = ∇·(D(c)∇c) − ∇·(t₊ i/F),   ∇·i = 0,
      i = −κ(c)∇φ + (2κRT/F)(1 − t₊)(1 + dln f±/dln c) ∇ln c

* particles: ``∂c_s/∂t = ∇·(D_s∇c_s)``, ``∇·(σ∇φ_s) = 0``; particle--particle contacts are
  interior facets of the active submesh and conduct Li and electrons with no resistance;
* particle|electrolyte interface (facet tag 112), sharp: ``c`` and ``φ`` jump, the normal fluxes
  are given by the anodic-positive Butler--Volmer current ``j``::

      j = i0 [exp(α_a f η) − exp(−α_c f η)],   η = φ_s − φ − U(x),
      i0 = F k c^α_a (c_s,max − c_s)^α_a c_s^α_c,
      i·n_e = −j,  (−D∇c + t₊ i/F)·n_e = −j/F,  −σ∇φ_s·n_s = j,  −D_s∇c_s·n_s = j/F

  (``n_e``, ``n_s``: outward normals of the electrolyte / particle);
* Li metal counter electrode (the ``TOP`` face of the electrolyte): Butler--Volmer with the Li
  metal as the 0 V reference, ``j_Li = i0_Li(c)[exp(α_a f η_Li) − exp(−α_c f η_Li)]``,
  ``η_Li = 0 − φ``, ``i·n = −j_Li``, Li+ flux ``j_Li/F`` into the electrolyte. The separator is
  not modelled separately: it is the electrolyte-only band the mesh has above the particles (if
  any); the Li metal sits directly on the mesh's top face (zero-thickness separator otherwise);
* Al collector (``BOTTOM`` facets of active cells, i.e. where particles touch it): equipotential
  at the unknown ``V``, with a contact resistance ``R_cc`` (Ω m²):
  ``−σ∇φ_s·n = (φ_s − V)/R_cc``; the galvanostatic constraint is
  ``∫_cc (φ_s − V)/R_cc ds = I_app`` (no Lagrange multiplier on φ_s; a small ``R_cc`` approaches
  an ideal contact). Every other face is insulating / impermeable.

* optional carbon-binder network (``CellParams.cbd_conductivity_S_m > 0``; off by default): a
  homogenised electronic phase in the pore space, potential ``φ_cb`` on the electrolyte
  submesh (it takes no volume from the electrolyte), ``∇·(σ_cb∇φ_cb) = 0``, in contact with
  every particle surface (``(φ_s − φ_cb)/R_cb`` leaves the particle into it) and with the
  collector (BOTTOM facets of electrolyte cells, ``(φ_cb − V)/R_cc``). It connects particles
  that touch neither the collector nor each other (2D sections with gap contacts, where the
  pores must stay open); the galvanostatic constraint then counts both collector contacts.

* potentiostatic mode (:meth:`HalfCell.set_potentiostatic`, the CV step of a CC-CV charge):
  the galvanostatic constraint is replaced by ``V = V_hold``; the current is then whatever the
  collector carries, and ``charge_passed_C`` integrates it (backward Euler: the end-of-step
  current times dt, which is what the discrete Li balance conserves).

``I_app = i_app A`` with ``i_app`` (A/m², positive on discharge) per box cross-section ``A``
(per metre of depth in 2D). The cell voltage is ``V − 0``.

Discretisation: backward Euler; Newton (PETSc SNES through dolfinx ``NonlinearProblem``,
``kind="mpi"``, MUMPS LU by default); each equation is scaled to O(1) residuals. Mesh
coordinates are µm (:data:`electrofem.LENGTH_UNIT_M`); the forms convert to SI.

Mixed-domain assembly detail: the interface integrals run over the parent mesh with
``entity_maps``; the (cell, local facet) pairs of each interface facet are reordered so that the
``"+"`` side is always the electrolyte cell and ``"-"`` the particle cell (dolfinx gives them no
fixed order; without the reordering results are silently wrong).

Conservation (discrete, exact up to the Newton tolerance): testing each equation with 1 gives
``I_app`` = collector current = interface current (``−∫ j``) = Li metal current, and the total Li
(electrolyte + solid) grows by ``I_app Δt/F`` per step.
"""

from __future__ import annotations

import itertools
import math
import time as _time
from dataclasses import asdict, dataclass, field

import numpy as np
from mpi4py import MPI

from .. import LENGTH_UNIT_M, tags
from ._petsc import destroy
from .materials import (
    FARADAY,
    GAS_CONSTANT,
    ActiveMaterialParams,
    ElectrolyteParams,
    LiMetalParams,
    butler_volmer,
)

#: Default Newton + linear solver options (SNES prefix of the problem).
DEFAULT_PETSC_OPTIONS = {
    "snes_type": "newtonls",
    "snes_linesearch_type": "basic",
    "snes_rtol": 1e-10,
    "snes_atol": 1e-11,
    "snes_stol": 0.0,
    "snes_max_it": 20,
    "ksp_type": "preonly",
    "pc_type": "lu",
    "pc_factor_mat_solver_type": "mumps",
}


#: Unique, rank-independent PETSc options prefixes (one per HalfCell).
_PREFIX_COUNTER = itertools.count()


class ElectrochemError(RuntimeError):
    """The solve failed (divergence, NaN, dt below its minimum, bad input).

    Attributes:
        records: the :class:`StepRecord` list of the steps completed before the failure.
    """

    def __init__(self, message: str, records=None):
        super().__init__(message)
        self.records = list(records or [])


@dataclass
class CellParams:
    """Materials and cell-level constants of the half cell.

    Attributes:
        electrolyte: :class:`~electrofem.physics.materials.ElectrolyteParams`.
        active: :class:`~electrofem.physics.materials.ActiveMaterialParams` (NMC811).
        li_metal: :class:`~electrofem.physics.materials.LiMetalParams`.
        temperature_K: isothermal temperature.
        contact_resistance_ohm_m2: particle|collector contact resistance ``R_cc``; the default
            1e-6 Ω m² (0.01 Ω cm²) is close to an ideal contact.
        cbd_conductivity_S_m: effective conductivity ``σ_cb`` of the optional carbon-binder
            network in the pores (0: none, the default).
        cbd_contact_resistance_ohm_m2: its particle contact resistance ``R_cb``.
    """

    electrolyte: ElectrolyteParams = field(default_factory=ElectrolyteParams)
    active: ActiveMaterialParams = field(default_factory=ActiveMaterialParams)
    li_metal: LiMetalParams = field(default_factory=LiMetalParams)
    temperature_K: float = 298.15
    contact_resistance_ohm_m2: float = 1e-6
    cbd_conductivity_S_m: float = 0.0
    cbd_contact_resistance_ohm_m2: float = 1e-5

    def validate(self) -> None:
        self.electrolyte.validate()
        self.active.validate()
        if not (self.cbd_conductivity_S_m >= 0 and math.isfinite(self.cbd_conductivity_S_m)):
            raise ValueError("cbd_conductivity_S_m: must be >= 0")
        if not self.cbd_contact_resistance_ohm_m2 > 0:
            raise ValueError("cbd_contact_resistance_ohm_m2: must be positive")
        if not (self.temperature_K > 0 and math.isfinite(self.temperature_K)):
            raise ValueError(f"temperature_K: must be positive, got {self.temperature_K}")
        if not self.contact_resistance_ohm_m2 > 0:
            raise ValueError("contact_resistance_ohm_m2: must be positive")

    @property
    def thermal_voltage(self) -> float:
        """``RT/F`` (V)."""
        return GAS_CONSTANT * self.temperature_K / FARADAY


@dataclass
class DischargeOptions:
    """Galvanostatic run control.

    Attributes:
        current_density_A_m2: ``i_app`` per box cross-section (positive: discharge, Li into
            the particles; negative: charge).
        t_end_s: end time, unless a cut-off voltage is reached first.
        dt_initial_s, dt_min_s, dt_max_s: time step: first, smallest allowed, largest.
        growth: factor on dt after a step that converged in at most ``easy_iterations``
            Newton iterations.
        cut: factor on dt after a failed step (which is then retried).
        easy_iterations: see ``growth``.
        v_min_V, v_max_V: cut-off voltages; the run stops after the step that crosses one.
        x_stop_max, x_stop_min: the run also stops when a particle node's stoichiometry leaves
            ``[x_stop_min, x_stop_max]`` (a saturated or emptied surface: the voltage is in its
            final drop, where the exchange current density vanishes and Newton needs ever
            smaller steps), as PyBaMM's stoichiometry events do.
        c_stop_min_mol_m3: ... and when the electrolyte concentration falls below this
            (depletion).
        max_steps: hard limit on accepted steps.
        quadrature_degree: of every integral (the kinetics are transcendental).
        petsc_options: overrides of :data:`DEFAULT_PETSC_OPTIONS`.
    """

    current_density_A_m2: float = 10.0
    t_end_s: float = 3600.0
    dt_initial_s: float = 1.0
    dt_min_s: float = 1e-4
    dt_max_s: float = 60.0
    growth: float = 1.5
    cut: float = 0.5
    easy_iterations: int = 4
    v_min_V: float = 2.5
    v_max_V: float = 4.4
    x_stop_max: float = 0.995
    x_stop_min: float = 0.005
    c_stop_min_mol_m3: float = 1.0
    max_steps: int = 100000
    quadrature_degree: int = 4
    petsc_options: dict = field(default_factory=dict)

    def validate(self) -> None:
        if not math.isfinite(self.current_density_A_m2):
            raise ValueError("current_density_A_m2: must be finite")
        if not (0 < self.dt_min_s <= self.dt_initial_s <= self.dt_max_s):
            raise ValueError("need 0 < dt_min_s <= dt_initial_s <= dt_max_s")
        if not self.t_end_s > 0:
            raise ValueError("t_end_s: must be positive")
        if not (self.growth >= 1 and 0 < self.cut < 1):
            raise ValueError("growth >= 1 and 0 < cut < 1 required")
        if not self.v_min_V < self.v_max_V:
            raise ValueError("v_min_V must be below v_max_V")


@dataclass
class StepRecord:
    """One accepted time step. Currents are A (3D) or A per metre of depth (2D), positive on
    discharge; Li amounts are mol (3D) or mol/m (2D).

    Attributes:
        step, time_s, dt_s: step number (1-based), time at its end, its length.
        voltage_V: collector potential vs Li metal.
        applied_current: ``I_app`` (potentiostatic: the collector current).
        interface_current: ``−∫ j`` over the particle|electrolyte interface.
        collector_current: ``∫ (φ_s − V)/R_cc`` over the collector contacts.
        li_metal_current: ``∫ j_Li`` over the Li metal face.
        li_electrolyte_mol, li_solid_mol, li_total_mol: Li inventories.
        charge_passed_C: ``∫ I_app dt`` since the start.
        newton_iterations: of the accepted solve.
        x_mean: mean stoichiometry of the particles.
        x_min, x_max: extreme particle stoichiometries (dof values).
        c_min_mol_m3: smallest electrolyte concentration (dof values).
    """

    step: int
    time_s: float
    dt_s: float
    voltage_V: float
    applied_current: float
    interface_current: float
    collector_current: float
    li_metal_current: float
    li_electrolyte_mol: float
    li_solid_mol: float
    li_total_mol: float
    charge_passed_C: float
    newton_iterations: int
    x_mean: float
    x_min: float
    x_max: float
    c_min_mol_m3: float

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass
class DischargeResult:
    """Records of a run, why it stopped, and the initial inventories."""

    records: list[StepRecord]
    stop_reason: str
    initial_li_mol: float
    wall_time_s: float


# --- domain: submeshes, entity maps, measures ---------------------------------------------------


def _cell_phase(emesh) -> np.ndarray:
    msh = emesh.mesh
    tdim = msh.topology.dim
    imap = msh.topology.index_map(tdim)
    phase = np.zeros(imap.size_local + imap.num_ghosts, dtype=np.int32)
    phase[emesh.cell_tags.indices] = emesh.cell_tags.values
    return phase


#: subdomain id of the BOTTOM facets of electrolyte cells (carbon-binder collector contact).
_BOTTOM_E = 10_000


class _Scaled:
    """A UFL measure times a constant (µm → SI): ``f * m`` is ``(scale f) * measure``."""

    def __init__(self, measure, scale: float):
        self.measure = measure
        self.scale = float(scale)

    def __rmul__(self, integrand):
        return (self.scale * integrand) * self.measure


class CoupledDomain:
    """Phase submeshes of an :class:`~electrofem.mesh.ElectrodeMesh` and the SI measures.

    Attributes:
        mesh: the parent mesh (integration domain of every form).
        sub_e, sub_s: electrolyte and active submeshes.
        entity_maps: ``[emap_e, emap_s]`` for the forms.
        dx_e, dx_s: volume measures (SI: already multiplied by ``L^d``).
        dS_i: the particle|electrolyte interface (SI), ``"+"`` = electrolyte, ``"-"`` = particle.
        ds_cc: collector contacts (BOTTOM facets of active cells, SI).
        ds_top: Li metal face (TOP facets of electrolyte cells, SI).
        L: metres per mesh length unit.
    """

    def __init__(
        self,
        emesh,
        quadrature_degree: int = 4,
        interface_tag: int | None = None,
        require_boundaries: bool = True,
        cbd: bool = False,
    ):
        import ufl
        from dolfinx import fem
        from dolfinx import mesh as dmesh

        self.emesh = emesh
        msh = emesh.mesh
        self.mesh = msh
        self.comm = msh.comm
        tdim = msh.topology.dim
        self.tdim = tdim
        self.L = LENGTH_UNIT_M
        itag = interface_tag or tags.interface_tag(tags.ELECTROLYTE, tags.ACTIVE)
        self.interface_tag = itag
        msh.topology.create_connectivity(tdim - 1, tdim)
        msh.topology.create_connectivity(tdim, tdim - 1)
        phase = _cell_phase(emesh)
        self.phase = phase
        for name, p in (("electrolyte", tags.ELECTROLYTE), ("active", tags.ACTIVE)):
            n = self.comm.allreduce(int(np.count_nonzero(phase == p)), op=MPI.SUM)
            if n == 0:
                raise ElectrochemError(f"the mesh has no {name} cells (tag {p})")
        cells_e = np.flatnonzero(phase == tags.ELECTROLYTE).astype(np.int32)
        cells_s = np.flatnonzero(phase == tags.ACTIVE).astype(np.int32)
        self.sub_e, self.emap_e, _, _ = dmesh.create_submesh(msh, tdim, cells_e)
        self.sub_s, self.emap_s, _, _ = dmesh.create_submesh(msh, tdim, cells_s)
        self.entity_maps = [self.emap_e, self.emap_s]

        ft = emesh.facet_tags
        IT = fem.IntegralType
        topo = msh.topology

        def integration(kind, facets):
            ents = fem.compute_integration_domains(kind, topo, np.asarray(facets, np.int32))
            width = 4 if kind == IT.interior_facet else 2
            return np.asarray(ents, dtype=np.int32).reshape(-1, width)

        inter = integration(IT.interior_facet, ft.find(itag))
        swap = phase[inter[:, 0]] != tags.ELECTROLYTE
        inter[swap] = inter[swap][:, [2, 3, 0, 1]]
        if inter.size and not (
            np.all(phase[inter[:, 0]] == tags.ELECTROLYTE) and np.all(phase[inter[:, 2]] == 2)
        ):
            raise ElectrochemError(
                f"facets tagged {itag} do not all separate an electrolyte and an active cell"
            )
        bottom_all = integration(IT.exterior_facet, ft.find(tags.BOTTOM))
        bottom = bottom_all[phase[bottom_all[:, 0]] == tags.ACTIVE]
        bottom_e = bottom_all[phase[bottom_all[:, 0]] == tags.ELECTROLYTE]
        top = integration(IT.exterior_facet, ft.find(tags.TOP))
        top = top[phase[top[:, 0]] == tags.ELECTROLYTE]
        needed = [(f"interface facets (tag {itag})", inter)]
        if require_boundaries and cbd:
            both = np.concatenate([bottom, bottom_e])
            needed += [("collector (BOTTOM facets)", both)]
            needed += [("Li metal face (TOP facets of electrolyte cells)", top)]
        elif require_boundaries:
            needed += [
                (
                    "collector contact (BOTTOM facets of active cells): no particle touches it",
                    bottom,
                )
            ]
            needed += [("Li metal face (TOP facets of electrolyte cells)", top)]
        for what, arr in needed:
            if self.comm.allreduce(len(arr), op=MPI.SUM) == 0:
                raise ElectrochemError(f"the mesh has no {what}")
        md = {"quadrature_degree": int(quadrature_degree)}
        d = tdim
        L = self.L
        dx = ufl.Measure("dx", domain=msh, subdomain_data=emesh.cell_tags, metadata=md)
        dS = ufl.Measure("dS", domain=msh, subdomain_data=[(itag, inter.ravel())], metadata=md)
        ds = ufl.Measure(
            "ds",
            domain=msh,
            subdomain_data=[
                (tags.BOTTOM, bottom.ravel()),
                (tags.TOP, top.ravel()),
                (_BOTTOM_E, bottom_e.ravel()),
            ],
            metadata=md,
        )
        self.dx_e = _Scaled(dx(tags.ELECTROLYTE), L**d)
        self.dx_s = _Scaled(dx(tags.ACTIVE), L**d)
        self.dS_i = _Scaled(dS(itag), L ** (d - 1))
        self.ds_cc = _Scaled(ds(tags.BOTTOM), L ** (d - 1))
        self.ds_top = _Scaled(ds(tags.TOP), L ** (d - 1))
        self.ds_cce = _Scaled(ds(_BOTTOM_E), L ** (d - 1))
        self.n = ufl.FacetNormal(msh)

    def grad(self, f):
        """SI gradient of a field on µm coordinates."""
        import ufl

        return ufl.grad(f) / self.L

    def assemble(self, form) -> float:
        """Assemble a scalar UFL form over the parent mesh and sum over ranks."""
        from dolfinx import fem

        compiled = fem.form(form, entity_maps=self.entity_maps)
        return self.comm.allreduce(fem.assemble_scalar(compiled), op=MPI.SUM)


# --- constitutive expressions (UFL) -------------------------------------------------------------


def electrolyte_current(grad, c, phi, params: CellParams):
    """Ionic current density ``i`` (A/m²) of the concentrated electrolyte (UFL)."""
    el = params.electrolyte
    kappa = el.conductivity_S_m(c)
    kd = 2.0 * params.thermal_voltage * (1.0 - el.t_plus) * el.thermodynamic_factor
    return -kappa * grad(phi) + kappa * kd * grad(c) / c


def electrolyte_li_flux(grad, c, phi, params: CellParams):
    """Li+ flux ``N = −D∇c + t₊ i/F`` (mol/m²/s) (UFL)."""
    el = params.electrolyte
    return (
        -el.diffusivity_m2_s(c) * grad(c)
        + el.t_plus * electrolyte_current(grad, c, phi, params) / FARADAY
    )


def interface_current(c, c_s, phi, phi_s, params: CellParams):
    """Butler--Volmer ``j`` (A/m², anodic positive) from the interface values (UFL or numpy)."""
    am = params.active
    eta = phi_s - phi - am.ocp_V(c_s / am.c_max_mol_m3)
    i0 = am.exchange_current_density(c, c_s)
    return butler_volmer(i0, eta, am.alpha_a, am.alpha_c, params.temperature_K)


def li_metal_current(c, phi, params: CellParams):
    """Butler--Volmer ``j_Li`` (A/m², stripping positive) at the Li metal (0 V reference)."""
    li = params.li_metal
    return butler_volmer(
        li.exchange_current_density(c), 0.0 - phi, li.alpha_a, li.alpha_c, params.temperature_K
    )


@dataclass
class EquationScales:
    """Factors that make each residual O(1) (flux scale x L^(d-2) of the SI equation)."""

    c: float
    phi: float
    x: float
    phi_s: float


def equation_scales(params: CellParams, dim: int) -> EquationScales:
    el, am = params.electrolyte, params.active
    c0 = el.c0_mol_m3
    geo = LENGTH_UNIT_M ** (2 - dim)
    vt = params.thermal_voltage
    return EquationScales(
        c=geo / (float(el.diffusivity_m2_s(c0)) * c0),
        phi=geo / (float(el.conductivity_S_m(c0)) * vt),
        x=geo / (am.diffusivity_m2_s * am.c_max_mol_m3),
        phi_s=geo / (am.conductivity_S_m * vt),
    )


def coupled_residuals(dom: CoupledDomain, u, tests, params: CellParams, dt=None, old=None):
    """Bulk + interface residuals ``[F_c, F_φ, F_x, F_φs]`` (scaled, UFL), without the Li metal
    and collector terms. ``u = (ĉ, φ, x, φ_s)`` with ``c = c0 ĉ`` and ``c_s = c_s,max x``;
    ``dt`` (a Constant, seconds) and ``old = (ĉ_old, x_old)`` add the backward-Euler mass terms
    (``dt=None``: steady). Returns the residuals and the SI interface current ``j`` (UFL on dS).
    """
    el, am = params.electrolyte, params.active
    ce, pe, xs, ps = u
    wc, ve, wx, vs = tests
    S = equation_scales(params, dom.tdim)
    g = dom.grad
    c = el.c0_mol_m3 * ce
    cs = am.c_max_mol_m3 * xs
    N = electrolyte_li_flux(g, c, pe, params)
    i = electrolyte_current(g, c, pe, params)
    j = interface_current(c("+"), cs("-"), pe("+"), ps("-"), params)
    import ufl

    Fc = -ufl.inner(N, g(wc)) * dom.dx_e - j / FARADAY * wc("+") * dom.dS_i
    Fe = ufl.inner(i, g(ve)) * dom.dx_e + j * ve("+") * dom.dS_i
    Fx = am.diffusivity_m2_s * ufl.inner(g(cs), g(wx)) * dom.dx_s
    Fx += j / FARADAY * wx("-") * dom.dS_i
    Fs = am.conductivity_S_m * ufl.inner(g(ps), g(vs)) * dom.dx_s + j * vs("-") * dom.dS_i
    if dt is not None:
        ce_old, xs_old = old
        Fc += el.c0_mol_m3 * (ce - ce_old) / dt * wc * dom.dx_e
        Fx += am.c_max_mol_m3 * (xs - xs_old) / dt * wx * dom.dx_s
    return [S.c * Fc, S.phi * Fe, S.x * Fx, S.phi_s * Fs], j


# --- the half cell ------------------------------------------------------------------------------


class HalfCell:
    """The galvanostatic half-cell problem on an :class:`~electrofem.mesh.ElectrodeMesh`.

    Usage::

        with HalfCell(emesh, CellParams(), DischargeOptions(current_density_A_m2=20.0)) as cell:
            result = cell.run()      # or cell.step(dt) for manual control

    All methods are MPI-collective. ``cell.fields`` holds the dolfinx Functions (the unknowns):
    ``c_hat`` (``c/c0``, electrolyte submesh), ``phi`` (V), ``x`` (``c_s/c_s,max``, active
    submesh), ``phi_s`` (V) and ``V`` (collector potential, V; a Real space).
    """

    def __init__(self, emesh, params: CellParams | None = None, options=None):
        import basix.ufl
        import ufl
        from dolfinx import fem
        from dolfinx.fem.petsc import NonlinearProblem

        self.params = params or CellParams()
        self.options = options or DischargeOptions()
        self.params.validate()
        self.options.validate()
        cbd = self.params.cbd_conductivity_S_m > 0
        dom = CoupledDomain(emesh, self.options.quadrature_degree, cbd=cbd)
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
        spaces = (Ve, Ve.clone(), Vs, Vs.clone(), R) + ((Ve.clone(),) if cbd else ())
        W = ufl.MixedFunctionSpace(*spaces)
        names = ("c_hat", "phi", "x", "phi_s", "V") + (("phi_cb",) if cbd else ())
        self._names = names
        self.u = [fem.Function(V, name=n) for V, n in zip(spaces, names, strict=True)]
        self.ce_old = fem.Function(Ve, name="c_hat_old")
        self.xs_old = fem.Function(Vs, name="x_old")
        tests = ufl.TestFunctions(W)
        self.dt = fem.Constant(dom.mesh, 1.0)

        # geometry: cross-section (collector) area and contact area, SI
        box = emesh.metadata.get("box_um") or _bbox(dom.mesh)
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
        F, self._j = coupled_residuals(
            dom, (ce, pe, xs, ps), tests[:4], p, self.dt, (self.ce_old, self.xs_old)
        )
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
            R_cb = p.cbd_contact_resistance_ohm_m2
            s_cb = LENGTH_UNIT_M ** (2 - dom.tdim) / (p.cbd_conductivity_S_m * p.thermal_voltage)
            q_cb = (ps("-") - pcb("+")) / R_cb  # particle -> carbon-binder current density
            icc_e = (pcb - V) / p.contact_resistance_ohm_m2
            F[3] += S.phi_s * q_cb * vs("-") * dom.dS_i
            F_cb = p.cbd_conductivity_S_m * ufl.inner(dom.grad(pcb), dom.grad(wcb)) * dom.dx_e
            F_cb += -q_cb * wcb("+") * dom.dS_i + icc_e * wcb * dom.ds_cce
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

        opts = {**DEFAULT_PETSC_OPTIONS, **self.options.petsc_options}
        self.problem = NonlinearProblem(
            blocks,
            self.u,
            kind="mpi",
            petsc_options=opts,
            petsc_options_prefix=f"electrofem_halfcell_{next(_PREFIX_COUNTER)}_",
            entity_maps=dom.entity_maps,
        )
        self._set_initial_state()
        self._li_forms = (
            fem.form(c * dom.dx_e, entity_maps=dom.entity_maps),
            fem.form(am.c_max_mol_m3 * xs * dom.dx_s, entity_maps=dom.entity_maps),
        )
        self._current_forms = (
            fem.form(-self._j * dom.dS_i, entity_maps=dom.entity_maps),
            fem.form(sum(icc_forms), entity_maps=dom.entity_maps),
            fem.form(self._jli * dom.ds_top, entity_maps=dom.entity_maps),
        )
        self.solid_volume = dom.assemble(fem.Constant(dom.mesh, 1.0) * dom.dx_s)
        self.time = 0.0
        self.charge = 0.0
        self.records: list[StepRecord] = []

    @property
    def potentiostatic(self) -> bool:
        return float(self._galv.value) == 0.0

    def set_potentiostatic(self, voltage_V: float) -> None:
        """Hold the collector at ``voltage_V`` (vs Li metal) from the next step on (CV)."""
        self.V_hold.value = float(voltage_V)
        self._galv.value = 0.0

    def set_galvanostatic(self) -> None:
        """Back to the constant current of ``options.current_density_A_m2`` (the default)."""
        self._galv.value = 1.0

    def collector_current(self) -> float:
        """Current through the collector contacts of the current state (A, or A/m in 2D)."""
        return self._scalar(self._current_forms[1])

    @property
    def fields(self) -> dict:
        return dict(zip(self._names, self.u, strict=True))

    def close(self) -> None:
        """Free the PETSc solver objects now, on every rank (collective; idempotent).

        Leaving them to the garbage collector can deadlock under MPI (see
        :mod:`electrofem.physics._petsc`); the context manager calls this on exit.
        """
        destroy(getattr(self, "problem", None))

    def __enter__(self) -> HalfCell:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _set_initial_state(self) -> None:
        am = self.params.active
        u0 = float(am.ocp_V(am.x0))
        for f, v in zip(self.u, (1.0, 0.0, am.x0, u0, u0, u0), strict=False):
            f.x.array[:] = v
        self.ce_old.x.array[:] = 1.0
        self.xs_old.x.array[:] = am.x0

    def _scalar(self, form) -> float:
        from dolfinx import fem

        return self.comm.allreduce(fem.assemble_scalar(form), op=MPI.SUM)

    def interface_current_field(self, out=None):
        """The Butler--Volmer current density ``j`` (A/m², anodic positive: negative on
        discharge) as a P1 field on the active submesh, for output.

        ``j`` lives on the particle|electrolyte interface only. It is transferred to the particle
        surface nodes by a lumped (row-sum) L² projection onto the trace space,
        ``j_i = ∫_Γ j ψ_i dS / ∫_Γ ψ_i dS`` (``ψ_i``: the P1 hat function of node ``i``), so that
        ``Σ_i j_i ∫_Γ ψ_i dS = ∫_Γ j dS`` exactly; nodes off the interface (particle interiors,
        particle--particle contacts away from the electrolyte) get 0. Collective.

        Args:
            out: a Function on the active P1 space to fill (default: a new one, named
                ``"j_interface"``).
        """
        import ufl
        from dolfinx import fem, la

        Vs = self.u[2].function_space
        if out is None:
            out = fem.Function(Vs, name="j_interface")
        if getattr(self, "_jfield_forms", None) is None:
            dom = self.domain
            v = ufl.TestFunction(Vs)
            one = fem.Constant(dom.mesh, 1.0)
            em = dom.entity_maps
            jf = fem.form(self._j * v("-") * dom.dS_i, entity_maps=em)
            mf = fem.form(one * v("-") * dom.dS_i, entity_maps=em)
            m = fem.assemble_vector(mf)
            m.scatter_reverse(la.InsertMode.add)
            m.scatter_forward()
            self._jfield_forms = (jf, m.array.copy())
        jf, mass = self._jfield_forms
        b = fem.assemble_vector(jf)
        b.scatter_reverse(la.InsertMode.add)
        b.scatter_forward()
        on = mass > 0.0  # exactly 0 off the interface
        out.x.array[:] = 0.0
        out.x.array[on] = b.array[on] / mass[on]
        out.x.scatter_forward()
        return out

    def li_inventory(self) -> tuple[float, float]:
        """Li in the electrolyte and in the particles (mol, or mol/m in 2D)."""
        return self._scalar(self._li_forms[0]), self._scalar(self._li_forms[1])

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
        """Try one backward-Euler step of ``dt`` seconds from the current state.

        Returns ``(converged, newton_iterations, reason)``; on failure the state is restored.
        On success the state, time, charge and :attr:`records` advance.
        """
        saved = self._save()
        self.dt.value = dt
        self.I_app.value = self.options.current_density_A_m2 * self.cross_section
        snes = self.problem.solver
        try:
            self.problem.solve()
            reason = snes.getConvergedReason()
            its = snes.getIterationNumber()
        except RuntimeError as err:  # PETSc errors (e.g. MUMPS on a singular matrix)
            reason, its = -100, snes.getIterationNumber()
            self._restore(saved)
            return False, its, f"PETSc error: {err}"
        if reason <= 0 or not self._finite():
            self._restore(saved)
            why = _snes_reason(reason) if reason <= 0 else "non-finite values (NaN/inf)"
            return False, its, why
        self.time += dt
        current = self.collector_current() if self.potentiostatic else float(self.I_app.value)
        self.charge += current * dt
        self.ce_old.x.array[:] = self.u[0].x.array
        self.xs_old.x.array[:] = self.u[2].x.array
        self.records.append(self._record(dt, its))
        return True, its, "converged"

    def _record(self, dt: float, its: int) -> StepRecord:
        li_e, li_s = self.li_inventory()
        ii, icc, ili = (self._scalar(f) for f in self._current_forms)
        applied = icc if self.potentiostatic else float(self.I_app.value)
        am = self.params.active
        x_mean = li_s / (am.c_max_mol_m3 * self.solid_volume)
        xmin, xmax, cmin = self._extremes()
        return StepRecord(
            step=len(self.records) + 1,
            time_s=self.time,
            dt_s=dt,
            voltage_V=self.voltage(),
            applied_current=applied,
            interface_current=ii,
            collector_current=icc,
            li_metal_current=ili,
            li_electrolyte_mol=li_e,
            li_solid_mol=li_s,
            li_total_mol=li_e + li_s,
            charge_passed_C=self.charge,
            newton_iterations=int(its),
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

    def _diagnosis(self) -> str:
        """State summary for error messages (last accepted state)."""
        xmin, xmax, cmin = self._extremes()
        return (
            f"voltage {self.voltage():.4f} V, particle stoichiometry in [{xmin:.4f}, {xmax:.4f}]"
            f", electrolyte c >= {cmin:.4g} mol/m3"
        )

    def run(self, callback=None) -> DischargeResult:
        """Step to ``t_end_s`` (or a cut-off voltage) with adaptive dt.

        dt grows by ``growth`` after easy steps and is cut by ``cut`` after a failed step (the
        step is retried); below ``dt_min_s`` an :class:`ElectrochemError` is raised that keeps
        the records of the completed steps. ``callback(cell, record)`` runs after every step.
        """
        o = self.options
        t0 = _time.perf_counter()
        li0 = sum(self.li_inventory())
        dt = o.dt_initial_s
        stop = "t_end"
        sign = 1.0 if o.current_density_A_m2 >= 0 else -1.0
        while self.time < o.t_end_s * (1 - 1e-12):
            if len(self.records) >= o.max_steps:
                stop = "max_steps"
                break
            dt_try = min(dt, o.dt_max_s, o.t_end_s - self.time)
            ok, its, why = self.step(dt_try)
            if not ok:
                dt = dt_try * o.cut
                if dt < o.dt_min_s:
                    raise ElectrochemError(
                        f"time step fell below dt_min_s={o.dt_min_s:g} s at t={self.time:g} s "
                        f"(last failure: {why} after {its} Newton iterations; "
                        f"{self._diagnosis()}); "
                        f"{len(self.records)} steps completed and kept in .records",
                        self.records,
                    )
                continue
            rec = self.records[-1]
            if callback is not None:
                callback(self, rec)
            dt = dt_try * o.growth if its <= o.easy_iterations else dt_try
            if sign > 0 and rec.voltage_V <= o.v_min_V:
                stop = "v_min"
                break
            if sign < 0 and rec.voltage_V >= o.v_max_V:
                stop = "v_max"
                break
            if rec.x_max >= o.x_stop_max:
                stop = "x_max"
                break
            if rec.x_min <= o.x_stop_min:
                stop = "x_min"
                break
            if rec.c_min_mol_m3 <= o.c_stop_min_mol_m3:
                stop = "c_min"
                break
        return DischargeResult(list(self.records), stop, li0, _time.perf_counter() - t0)


def _snes_reason(reason: int) -> str:
    names = {
        -1: "function domain error",
        -2: "function count exceeded",
        -3: "linear solve failed",
        -4: "residual is NaN",
        -5: "maximum Newton iterations reached",
        -6: "line search failed",
        -7: "inner solve failed",
        -8: "local minimum",
        -9: "dtol (divergence)",
        -10: "Jacobian domain error",
        -11: "trust region delta",
    }
    return f"SNES diverged: {names.get(reason, 'reason')} ({reason})"


def _bbox(msh) -> list[float]:
    x = msh.geometry.x
    hi = msh.comm.allreduce(x.max(axis=0), op=MPI.MAX)
    return list(hi[: msh.topology.dim])
