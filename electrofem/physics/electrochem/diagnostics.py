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


class InterfaceCurrentField:
    """The Butler--Volmer current density ``j`` of a :class:`~.cell.HalfCell` (A/m², anodic
    positive: negative on discharge) as a P1 field on the active submesh, for output; the call
    fills it from the cell's current state (collective).

    ``j`` lives on the particle|electrolyte interface only. It is transferred to the particle
    surface nodes by a lumped (row-sum) L² projection onto the trace space,
    ``j_i = ∫_Γ j ψ_i dS / ∫_Γ ψ_i dS`` (``ψ_i``: the P1 hat function of node ``i``), so that
    ``Σ_i j_i mass_i = ∫_Γ j dS`` exactly (``mass``: the lumped row sums, owned and ghost
    dofs); nodes off the interface (particle interiors, particle--particle contacts away from
    the electrolyte) get 0.
    """

    def __init__(self, cell):
        import ufl
        from dolfinx import fem, la

        dom = cell.domain
        self.space = cell.fields["x"].function_space
        v = ufl.TestFunction(self.space)
        one = fem.Constant(dom.mesh, 1.0)
        em = dom.entity_maps
        self.form = fem.form(cell.j_interface * v("-") * dom.dS_i, entity_maps=em)
        m = fem.assemble_vector(fem.form(one * v("-") * dom.dS_i, entity_maps=em))
        m.scatter_reverse(la.InsertMode.add)
        m.scatter_forward()
        self.mass = m.array.copy()

    def __call__(self, out=None):
        """``out``: a Function on the active P1 space to fill (default: a new one, named
        ``"j_interface"``)."""
        from dolfinx import fem, la

        if out is None:
            out = fem.Function(self.space, name="j_interface")
        b = fem.assemble_vector(self.form)
        b.scatter_reverse(la.InsertMode.add)
        b.scatter_forward()
        on = self.mass > 0.0  # exactly 0 off the interface
        out.x.array[:] = 0.0
        out.x.array[on] = b.array[on] / self.mass[on]
        out.x.scatter_forward()
        return out
