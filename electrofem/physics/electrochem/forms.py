"""Constitutive expressions and residuals of the half cell (UFL; SI units on µm meshes)."""

from __future__ import annotations

from dataclasses import dataclass

from ... import LENGTH_UNIT_M
from ..materials import FARADAY, butler_volmer
from .domain import CoupledDomain
from .options import CellParams

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


def coupled_residuals(dom: CoupledDomain, u, tests, params: CellParams, rate=None, old=None):
    """Bulk + interface residuals ``[F_c, F_φ, F_x, F_φs]`` (scaled, UFL), without the Li metal
    and collector terms. ``u = (ĉ, φ, x, φ_s)`` with ``c = c0 ĉ`` and ``c_s = c_s,max x``;
    ``rate = (k0, k1)`` (Constants, 1/s) and ``old = (ĉ_old, x_old, ĉ_old2, x_old2)`` add the
    storage terms ``k0 (u − u_old) − k1 (u_old − u_old2)`` (backward Euler or BDF2, see
    :mod:`.timestep`; ``rate=None``: steady). Returns the residuals and the SI interface
    current ``j`` (UFL on dS).
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
    if rate is not None:
        k0, k1 = rate
        ce_old, xs_old, ce_old2, xs_old2 = old
        Fc += el.c0_mol_m3 * (k0 * (ce - ce_old) - k1 * (ce_old - ce_old2)) * wc * dom.dx_e
        Fx += am.c_max_mol_m3 * (k0 * (xs - xs_old) - k1 * (xs_old - xs_old2)) * wx * dom.dx_s
    return [S.c * Fc, S.phi * Fe, S.x * Fx, S.phi_s * Fs], j
