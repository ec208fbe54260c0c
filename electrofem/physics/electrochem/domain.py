"""The coupled domain of the half cell: phase submeshes, entity maps and SI measures on the
parent mesh, with the interface integration entities ordered electrolyte ``"+"`` / particle
``"-"``."""

from __future__ import annotations

import numpy as np
from mpi4py import MPI

from ... import LENGTH_UNIT_M, tags
from .records import ElectrochemError

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
#: subdomain id of every particle|pore facet, wetted or not (carbon-binder particle contact).
_ALL_PORES = 10_001


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
        electrolyte_cells: np.ndarray | None = None,
    ):
        import ufl
        from dolfinx import fem
        from dolfinx import mesh as dmesh

        self.emesh = emesh
        msh = emesh.mesh
        if msh.geometry.cmaps[0].degree != 1:
            raise ValueError(
                f"discharge: needs straight cells (mesh.order = 1); this mesh has geometry "
                f"order {msh.geometry.cmaps[0].degree}"
            )
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
        pore = phase == tags.ELECTROLYTE
        wet = pore if electrolyte_cells is None else pore & np.asarray(electrolyte_cells, bool)
        self.wet = wet  # local cells that carry the electrolyte equations
        #: some pore cells hold air (a partly wetted electrode): the electrolyte submesh is the
        #: wetted cells, the carbon-binder network (if any) keeps every pore cell
        self.partial = bool(self.comm.allreduce(bool(np.any(pore & ~wet)), op=MPI.LOR))
        if self.partial and self.comm.allreduce(int(np.count_nonzero(wet)), op=MPI.SUM) == 0:
            raise ElectrochemError("the wetting state leaves no electrolyte cell")
        cells_e = np.flatnonzero(wet).astype(np.int32)
        cells_s = np.flatnonzero(phase == tags.ACTIVE).astype(np.int32)
        self.sub_e, self.emap_e, _, _ = dmesh.create_submesh(msh, tdim, cells_e)
        self.sub_s, self.emap_s, _, _ = dmesh.create_submesh(msh, tdim, cells_s)
        self.entity_maps = [self.emap_e, self.emap_s]
        self.sub_p = self.sub_e  # the pore space of the carbon-binder network
        if self.partial and cbd:
            cells_p = np.flatnonzero(pore).astype(np.int32)
            self.sub_p, emap_p, _, _ = dmesh.create_submesh(msh, tdim, cells_p)
            self.entity_maps.append(emap_p)

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
        inter_all = inter
        if self.partial:  # the reaction only where the electrolyte wets the particle
            inter = inter[wet[inter[:, 0]]]
        bottom_all = integration(IT.exterior_facet, ft.find(tags.BOTTOM))
        bottom = bottom_all[phase[bottom_all[:, 0]] == tags.ACTIVE]
        bottom_e = bottom_all[phase[bottom_all[:, 0]] == tags.ELECTROLYTE]
        top = integration(IT.exterior_facet, ft.find(tags.TOP))
        top = top[wet[top[:, 0]]]
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
        dS_data = [(itag, inter.ravel())]
        if self.partial:
            own = cells_e[cells_e < msh.topology.index_map(tdim).size_local]
            dx_wet = ufl.Measure("dx", domain=msh, subdomain_data=[(1, own)], metadata=md)
            dS_data.append((_ALL_PORES, inter_all.ravel()))
        dS = ufl.Measure("dS", domain=msh, subdomain_data=dS_data, metadata=md)
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
        self.dx_p = _Scaled(dx(tags.ELECTROLYTE), L**d)  # every pore cell
        self.dx_e = _Scaled(dx_wet(1), L**d) if self.partial else self.dx_p
        self.dx_s = _Scaled(dx(tags.ACTIVE), L**d)
        self.dS_i = _Scaled(dS(itag), L ** (d - 1))
        # particle|pore contact of the carbon-binder network: wetted or not
        self.dS_p = _Scaled(dS(_ALL_PORES), L ** (d - 1)) if self.partial else self.dS_i
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
