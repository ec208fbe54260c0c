"""Material parameters of the half cell Li metal | LiPF6 in EC:EMC | NMC811, in SI units.

Every parameter function works on UFL expressions (dolfinx Functions, for the weak forms) and on
numbers / numpy arrays (for post-processing and tests): the math namespace is chosen from the
argument (:func:`_xp`).

Sources (the values PyBaMM ships as the ``Chen2020`` parameter set, LG M50 cell):

* electrolyte, 1 M LiPF6 in EC:EMC (3:7 by weight): conductivity and diffusivity fits of
  Nyman, Behm & Lindbergh, *Electrochim. Acta* 53 (2008) 6356, valid for ``c`` in about
  0.2--2 mol/L; cation transference number ``t+ = 0.2594`` and thermodynamic factor 1 (the set's
  choice; ``1 + dln f/dln c = 1``). No temperature dependence (Nyman gives none);
* NMC811 (LG M50 positive electrode): open-circuit potential fit, maximum concentration
  63104 mol/m³, diffusivity 4e-15 m²/s, conductivity 0.18 S/m, exchange-current prefactor
  ``m_ref = 3.42e-6 (A/m²)(m³/mol)^1.5`` with ``α_a = α_c = 0.5``, initial concentration
  17038 mol/m³: Chen et al., *J. Electrochem. Soc.* 167 (2020) 080534;
* Li metal counter electrode: exchange current density ``i0 = 3.5e-8 F c_Li^0.7 c^0.3`` A/m²
  with ``c_Li = 1/V_Li`` (molar volume 1.3e-5 m³/mol): Xu et al., *J. Electrochem. Soc.* 166
  (2019) A3456 (PyBaMM ``li_metal_electrolyte_exchange_current_density_Xu2019``).

Exchange current density convention (``electrochem`` uses it):
``i0 = F k c^α_a (c_s,max − c_s)^α_a c_s^α_c``; with ``α_a = α_c = 1/2`` this is Chen 2020's
``m_ref sqrt(c c_s (c_s,max − c_s))`` with ``k = m_ref / F`` (m^2.5 mol^-0.5 s^-1).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

#: Faraday constant (C/mol).
FARADAY = 96485.33212
#: Gas constant (J/(mol K)).
GAS_CONSTANT = 8.314462618
#: Reference temperature of every fit here (K).
T_REF = 298.15


def _xp(x):
    """``ufl`` for UFL expressions, ``numpy`` otherwise."""
    try:
        import ufl
        from ufl.core.expr import Expr
    except ImportError:  # pragma: no cover - ufl ships with dolfinx
        return np
    return ufl if isinstance(x, Expr) else np


def _max(x, lo):
    xp = _xp(x)
    return xp.max_value(x, lo) if xp is not np else np.maximum(x, lo)


# --- electrolyte: 1 M LiPF6 in EC:EMC (Nyman 2008) -------------------------------------------


def nyman2008_conductivity(c):
    """Ionic conductivity κ (S/m) at concentration ``c`` (mol/m³), Nyman et al. 2008.

    ``κ = 0.1297 c³ − 2.51 c^1.5 + 3.329 c`` with ``c`` in mol/L (about 0.95 S/m at 1 M).
    """
    cm = _max(c, 1e-9) / 1000.0
    return 0.1297 * cm**3 - 2.51 * cm**1.5 + 3.329 * cm


def nyman2008_diffusivity(c):
    """Salt diffusivity D (m²/s) at ``c`` (mol/m³), Nyman et al. 2008.

    ``D = 8.794e-11 c² − 3.972e-10 c + 4.862e-10`` with ``c`` in mol/L (1.77e-10 m²/s at 1 M).
    """
    cm = c / 1000.0
    return 8.794e-11 * cm**2 - 3.972e-10 * cm + 4.862e-10


# --- NMC811 (Chen 2020) ------------------------------------------------------------------------


def nmc811_ocp_chen2020(sto):
    """Open-circuit potential (V vs Li/Li+) of NMC811 at stoichiometry ``sto = c_s/c_s,max``.

    Chen et al. 2020 (PyBaMM ``nmc_LGM50_ocp_Chen2020``); fitted for ``sto`` in about 0.26--0.9.
    """
    xp = _xp(sto)
    return (
        -0.8090 * sto
        + 4.4875
        - 0.0428 * xp.tanh(18.5138 * (sto - 0.5542))
        - 17.7326 * xp.tanh(15.7890 * (sto - 0.3117))
        + 17.5842 * xp.tanh(15.9308 * (sto - 0.3120))
    )


# --- parameter sets ----------------------------------------------------------------------------


@dataclass
class ElectrolyteParams:
    """Concentrated binary electrolyte (defaults: 1 M LiPF6 in EC:EMC, Nyman 2008 / Chen 2020).

    Attributes:
        c0_mol_m3: initial (and reference) salt concentration.
        t_plus: cation transference number (constant).
        thermodynamic_factor: ``1 + dln f/dln c`` (constant; 1 in Chen 2020).
        conductivity_S_m: ``κ(c)`` (S/m), ``c`` in mol/m³; UFL-compatible callable.
        diffusivity_m2_s: ``D(c)`` (m²/s), ``c`` in mol/m³; UFL-compatible callable.
    """

    c0_mol_m3: float = 1000.0
    t_plus: float = 0.2594
    thermodynamic_factor: float = 1.0
    conductivity_S_m: object = nyman2008_conductivity
    diffusivity_m2_s: object = nyman2008_diffusivity

    def validate(self) -> None:
        if not (self.c0_mol_m3 > 0 and math.isfinite(self.c0_mol_m3)):
            raise ValueError(f"electrolyte.c0_mol_m3: must be positive, got {self.c0_mol_m3}")
        if not 0 <= self.t_plus < 1:
            raise ValueError(f"electrolyte.t_plus: must be in [0, 1), got {self.t_plus}")
        if not self.thermodynamic_factor > 0:
            raise ValueError("electrolyte.thermodynamic_factor: must be positive")
        for name in ("conductivity_S_m", "diffusivity_m2_s"):
            v = float(getattr(self, name)(self.c0_mol_m3))
            if not (v > 0 and math.isfinite(v)):
                raise ValueError(f"electrolyte.{name}: not positive at c0 ({v})")


@dataclass
class ActiveMaterialParams:
    """Intercalation particles (defaults: NMC811 of the LG M50 cell, Chen 2020).

    Attributes:
        c_max_mol_m3: maximum Li concentration in the solid.
        x0: initial stoichiometry ``c_s/c_s,max`` (17038 / 63104 in Chen 2020).
        diffusivity_m2_s: solid diffusivity (constant).
        conductivity_S_m: electronic conductivity (constant).
        rate_constant: ``k`` of ``i0 = F k c^α_a (c_max − c_s)^α_a c_s^α_c`` (SI; with
            α = 1/2 its unit is m^2.5 mol^-0.5 s^-1); default ``3.42e-6 / F``.
        alpha_a, alpha_c: anodic and cathodic transfer coefficients.
        ocp_V: ``U(sto)`` (V vs Li/Li+); UFL-compatible callable.
    """

    c_max_mol_m3: float = 63104.0
    x0: float = 17038.0 / 63104.0
    diffusivity_m2_s: float = 4.0e-15
    conductivity_S_m: float = 0.18
    rate_constant: float = 3.42e-6 / FARADAY
    alpha_a: float = 0.5
    alpha_c: float = 0.5
    ocp_V: object = nmc811_ocp_chen2020

    def validate(self) -> None:
        for name in ("c_max_mol_m3", "diffusivity_m2_s", "conductivity_S_m", "rate_constant"):
            v = getattr(self, name)
            if not (v > 0 and math.isfinite(v)):
                raise ValueError(f"active.{name}: must be positive, got {v}")
        if not 0 < self.x0 < 1:
            raise ValueError(f"active.x0: must be in (0, 1), got {self.x0}")
        if not (0 < self.alpha_a < 1 and 0 < self.alpha_c < 1):
            raise ValueError("active.alpha_a / alpha_c: must be in (0, 1)")

    def exchange_current_density(self, c, c_s):
        """``i0`` (A/m²) at electrolyte ``c`` and surface ``c_s`` (both mol/m³)."""
        cm = self.c_max_mol_m3
        return (
            FARADAY
            * self.rate_constant
            * _max(c, 1e-9) ** self.alpha_a
            * _max(cm - c_s, 1e-9) ** self.alpha_a
            * _max(c_s, 1e-9) ** self.alpha_c
        )


@dataclass
class LiMetalParams:
    """Li metal counter electrode (Xu 2019 kinetics); its potential is the 0 V reference.

    Attributes:
        i0_prefactor: ``m`` of ``i0 = m c_Li^0.7 c^0.3`` (A/m² with concentrations in mol/m³);
            ``3.5e-8 F``.
        c_li_mol_m3: Li concentration in the metal, ``1/V_Li`` with ``V_Li = 1.3e-5`` m³/mol.
        alpha_a, alpha_c: transfer coefficients of the plating/stripping reaction.
    """

    i0_prefactor: float = 3.5e-8 * FARADAY
    c_li_mol_m3: float = 1.0 / 1.3e-5
    alpha_a: float = 0.5
    alpha_c: float = 0.5

    def exchange_current_density(self, c):
        """``i0`` (A/m²) at electrolyte concentration ``c`` (mol/m³)."""
        return self.i0_prefactor * self.c_li_mol_m3**0.7 * _max(c, 1e-9) ** 0.3


def butler_volmer(i0, eta, alpha_a, alpha_c, temperature_K=T_REF):
    """Anodic-positive Butler--Volmer current density (A/m²) at overpotential ``eta`` (V)."""
    xp = _xp(eta) if _xp(i0) is np else _xp(i0)
    f = FARADAY / (GAS_CONSTANT * temperature_K)
    return i0 * (xp.exp(alpha_a * f * eta) - xp.exp(-alpha_c * f * eta))
