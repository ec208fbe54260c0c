"""Concentration-polarization metrics of a half-cell state: electrolyte concentration and
particle stoichiometry near the collector and near the separator, their spread, the depleted
electrolyte fraction. Collective."""

from __future__ import annotations

import numpy as np
from mpi4py import MPI


class PolarizationMetrics:
    """Concentration-polarization metrics of a half-cell state (collective).

    ``thickness_um``: the electrode thickness (top of the highest particle); ``metrics()``
    (the call) returns the values of the current state."""

    def __init__(self, cell, slab_fraction: float, depletion_threshold: float):
        import ufl
        from dolfinx import fem

        dom = cell.domain
        self.cell = cell
        d = dom.tdim
        ys = dom.sub_s.geometry.x[:, d - 1]
        top = cell.comm.allreduce(float(ys.max(initial=-np.inf)), op=MPI.MAX)
        self.thickness_um = top
        y = ufl.SpatialCoordinate(dom.mesh)[d - 1]
        lo, hi = slab_fraction * top, (1 - slab_fraction) * top
        bot = ufl.conditional(ufl.lt(y, lo), 1.0, 0.0)
        upp = ufl.conditional(ufl.And(ufl.gt(y, hi), ufl.lt(y, top)), 1.0, 0.0)
        ce, _, xs, _, _ = cell.u[:5]
        dep = ufl.conditional(ufl.lt(ce, depletion_threshold), 1.0, 0.0)
        em = dom.entity_maps

        def F(expr, meas):
            return fem.form(expr * meas, entity_maps=em)

        one = fem.Constant(dom.mesh, 1.0)
        self.forms = {
            "c_bottom": (F(ce * bot, dom.dx_e), F(one * bot, dom.dx_e)),
            "c_top": (F(ce * upp, dom.dx_e), F(one * upp, dom.dx_e)),
            "x_bottom": (F(xs * bot, dom.dx_s), F(one * bot, dom.dx_s)),
            "x_top": (F(xs * upp, dom.dx_s), F(one * upp, dom.dx_s)),
            "depleted_fraction": (F(dep, dom.dx_e), F(one, dom.dx_e)),
        }
        self.denoms = {k: cell.scalar(v[1]) for k, v in self.forms.items()}

    def __call__(self) -> dict:
        cell = self.cell
        c0 = cell.params.electrolyte.c0_mol_m3
        out = {}
        for k, (num, _) in self.forms.items():
            den = self.denoms[k]
            out[k] = cell.scalar(num) / den if den > 0 else float("nan")
        for k in ("c_bottom", "c_top"):
            out[k] *= c0
        ca = cell.u[0].x.array
        cmax = cell.comm.allreduce(float(np.max(ca, initial=-np.inf)), op=MPI.MAX) * c0
        cmin = cell.comm.allreduce(float(np.min(ca, initial=np.inf)), op=MPI.MIN) * c0
        res = {
            "c_bottom_mol_m3": out["c_bottom"],
            "c_top_mol_m3": out["c_top"],
            "c_drop_mol_m3": out["c_top"] - out["c_bottom"],
            "c_min_mol_m3": cmin,
            "c_max_mol_m3": cmax,
            "c_range_mol_m3": cmax - cmin,
            "depleted_fraction": out["depleted_fraction"],
            "x_bottom": out["x_bottom"],
            "x_top": out["x_top"],
            "x_spread": out["x_top"] - out["x_bottom"],
        }
        return res
