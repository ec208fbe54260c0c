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
  collector carries, and ``charge_passed_C`` integrates it by the storage terms' own rule
  (backward Euler: the end-of-step current times dt; BDF2: its two-step rule), which is what
  the discrete Li balance conserves.

``I_app = i_app A`` with ``i_app`` (A/m², positive on discharge) per box cross-section ``A``
(per metre of depth in 2D). The cell voltage is ``V − 0``.

Discretisation: backward Euler, or variable-step BDF2 with a local-error step control
(``DischargeOptions.time_scheme``, :mod:`.timestep`); Newton (PETSc SNES through dolfinx
``NonlinearProblem``, ``kind="mpi"``; the linear solver is MUMPS LU, or GMRES with the bordered
block preconditioner of :mod:`.krylov` in 3D from 1e5 unknowns, ``DischargeOptions.linear_solver``);
each equation is scaled to O(1) residuals. Mesh
coordinates are µm (:data:`electrofem.LENGTH_UNIT_M`); the forms convert to SI.

Mixed-domain assembly detail: the interface integrals run over the parent mesh with
``entity_maps``; the (cell, local facet) pairs of each interface facet are reordered so that the
``"+"`` side is always the electrolyte cell and ``"-"`` the particle cell (dolfinx gives them no
fixed order; without the reordering results are silently wrong).

Conservation (discrete, exact up to the Newton tolerance): testing each equation with 1 gives
``I_app`` = collector current = interface current (``−∫ j``) = Li metal current, and the total Li
(electrolyte + solid) grows by ``I_app Δt/F`` per step (BDF2: by the same two-step rule as
``charge_passed_C``, so Li gained = charge/F at every step).
"""

from .cell import HalfCell
from .diagnostics import PolarizationMetrics
from .domain import CoupledDomain
from .forms import (
    EquationScales,
    coupled_residuals,
    electrolyte_current,
    electrolyte_li_flux,
    equation_scales,
    interface_current,
    li_metal_current,
)
from .options import DEFAULT_PETSC_OPTIONS, ONE_C_MA_G, CellParams, DischargeOptions
from .protocol import (
    Observer,
    Phase,
    PhaseOutcome,
    StepInfo,
    protocol,
    rate_label,
    theoretical_capacity,
)
from .records import DischargeResult, ElectrochemError, StepRecord

__all__ = [
    "DEFAULT_PETSC_OPTIONS",
    "ONE_C_MA_G",
    "CellParams",
    "CoupledDomain",
    "DischargeOptions",
    "DischargeResult",
    "ElectrochemError",
    "EquationScales",
    "HalfCell",
    "Observer",
    "Phase",
    "PolarizationMetrics",
    "StepInfo",
    "PhaseOutcome",
    "StepRecord",
    "coupled_residuals",
    "electrolyte_current",
    "electrolyte_li_flux",
    "equation_scales",
    "interface_current",
    "li_metal_current",
    "protocol",
    "rate_label",
    "theoretical_capacity",
]
