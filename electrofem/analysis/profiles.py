"""Through-thickness profiles: porosity, a_s, SIA and the local tortuosity, slab by slab.

The box is cut into ``n`` slabs of equal thickness ``h = L / n`` along ``axis`` (default: the
through-plane axis, the last one). Every cell and facet is split **exactly** between the slabs
it crosses (clipped by the slab planes, see ``electrofem._postprocess``), so slab sums add up to
the totals: the volume-weighted mean of the porosity profile is the porosity, that of ``a_s``
is ``a_s``, and so on, to rounding.

Local tortuosity
----------------
Given the solved cell problem of :mod:`electrofem.physics.transport` along ``axis`` (``u = 1``
at ``x_axis = 0``, ``u = 0`` at ``x_axis = L``, inlet flux ``Q``, reference ``D0``, coefficient
``k`` per phase, box cross-section ``A``, superficial flux density ``J = Q / A``), and in slab
``k`` (thickness ``h``, volume ``A h``) with ``eps_k`` the volume fraction of the transported
phases:

* dissipation ``W_k = int_{slab k ∩ phases} k |grad u|^2 dx``;
* local resistance ``R_k = W_k / Q^2`` -- the share of the total resistance
  ``R = ΔU / Q = (sum_k W_k) / Q^2`` dissipated in the slab, so the slab resistances add in
  series **exactly**, whatever the microstructure;
* local effective coefficient ``D_k = h / (A R_k)``, local MacMullin number
  ``N_M,k = D0 / D_k = D0 A W_k / (h Q^2)``, and

      tau_k = eps_k N_M,k = eps_k D0 A W_k / (h Q^2)          (``Profiles.tortuosity``).

Properties: (i) straight pores along the axis (``grad u = -ΔU/L`` axial, ``eps_k = eps``) give
``tau_k = 1`` in every slab; (ii) layers in series, each a homogeneous phase of coefficient
``k_i`` filling the box cross-section (``grad u = -J/k_i``), give ``tau_k = D0 / k_i`` in each
slab of layer ``i``, the layer's own exact τ, and a slab straddling two layers gets the exact
series τ of its two parts; (iii) the
thickness-weighted mean ``(1/L) sum_k h N_M,k = D0 A W / (L Q^2) = D0 A / (L Q) = N_M`` is the
global MacMullin number **exactly** (``W = a(u, u) = Q`` for the Galerkin solution, up to the
solver tolerance and the ``1e-10`` regularising mass term; so the harmonic structure of the
series resistance is kept); (iv) for a single phase ``tau_k >= 1`` up to discretisation error
(Cauchy-Schwarz with the flux through every cross-section equal to ``Q``).

Why not the intrinsic average of the gradient: with ``G_k`` the intrinsic slab average of
``du/dx_axis``, ``tau_k^g = eps_k D0 (-G_k) / J = -D0 int_{slab k ∩ phases} du/dx_axis dx /
(h Q)``. The axial flux integrated over a slab is ``h Q`` exactly (the flux through every
cross-section is ``Q``), so ``tau_k^g`` is only the flux-weighted mean of ``D0 / k`` over the
slab: identically 1 for a single phase, whatever the geometry (measured on ``ls_2d``: 0.99-1.01
per slab while the global τ is about 2). The tortuosity sits in the interface term of the
volume-averaging theorem (``int u n_axis dA`` over the phase walls), which that average leaves
out. ``p1_slab_integrals`` still returns the gradient integrals.

A non-percolating direction (``Q = 0``) gives ``inf``; a slab without transported phase
``NaN``. Without a transport result the tortuosity is ``NaN``.
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from mpi4py import MPI

from .. import tags
from .._postprocess import p1_slab_integrals
from . import curved
from .interfaces import (
    PER_UM_TO_PER_M,
    _allreduce,
    cell_measures,
    densities,
    facet_measures,
    pair_name,
    solid_pairs,
)

AXES = "xyz"


@dataclass
class Profiles:
    """Per-slab profiles along ``axis`` (arrays of length ``n_slabs``).

    Attributes:
        axis: ``"x"``, ``"y"`` or ``"z"``.
        edges: slab boundaries, µm (``n_slabs + 1``).
        slab_volume: mesh volume of each slab, µm³ (µm² in 2D).
        porosity: electrolyte volume fraction.
        a_s: electrolyte|active interface area per slab volume, 1/m.
        sia: per pair of distinct solid phases (``'active|second'``), ``S_12 / (m_1 + m_2)``
            within the slab, m²/g (NaN where neither phase is present).
        volume_fractions: per phase name.
        direction: the transport direction used for the tortuosity (or None).
        transport_fraction: ``eps_k``, volume fraction of the transported phases (NaN
            without transport).
        tortuosity: the local τ defined in the module docstring (NaN without transport).
        comm: the communicator of the mesh (used by :meth:`to_csv`).
    """

    axis: str
    edges: np.ndarray
    slab_volume: np.ndarray
    porosity: np.ndarray
    a_s: np.ndarray
    sia: dict[str, np.ndarray] = field(default_factory=dict)
    volume_fractions: dict[str, np.ndarray] = field(default_factory=dict)
    direction: str | None = None
    transport_fraction: np.ndarray | None = None
    tortuosity: np.ndarray | None = None
    comm: MPI.Comm | None = field(default=None, repr=False, compare=False)

    def __post_init__(self):
        nan = np.full(self.n_slabs, np.nan)
        for name in ("transport_fraction", "tortuosity"):
            if getattr(self, name) is None:
                setattr(self, name, nan.copy())

    @property
    def n_slabs(self) -> int:
        return len(self.edges) - 1

    @property
    def centres(self) -> np.ndarray:
        """Slab centres, µm."""
        return 0.5 * (self.edges[1:] + self.edges[:-1])

    centers = centres

    @property
    def thickness(self) -> np.ndarray:
        """Slab thicknesses, µm."""
        return np.diff(self.edges)

    @property
    def macmullin(self) -> np.ndarray:
        """Local MacMullin number ``N_M,k = tau_k / eps_k``."""
        with np.errstate(divide="ignore", invalid="ignore"):
            return self.tortuosity / self.transport_fraction

    def columns(self) -> dict[str, np.ndarray]:
        """Column name (with unit) -> values, in CSV order."""
        a = self.axis
        cols = {
            f"{a}_lo_um": self.edges[:-1],
            f"{a}_hi_um": self.edges[1:],
            f"{a}_um": self.centres,
            "porosity": self.porosity,
            "a_s_per_m": self.a_s,
        }
        cols.update({f"sia_{k}_m2_per_g": v for k, v in self.sia.items()})
        cols.update({f"fraction_{k}": v for k, v in self.volume_fractions.items()})
        cols["epsilon_transport"] = self.transport_fraction
        cols["tortuosity"] = self.tortuosity
        cols["macmullin"] = self.macmullin
        return cols

    def to_csv(self, path: str | Path, comm: MPI.Comm | None = None) -> Path:
        """Write the profiles as CSV (header row with units). Collective on ``comm`` (default:
        the mesh's): rank 0 writes, all ranks wait for it; ``MPI.COMM_SELF`` writes alone."""
        comm = comm or self.comm or MPI.COMM_WORLD
        path = Path(path)
        if comm.rank == 0:
            cols = self.columns()
            path.parent.mkdir(parents=True, exist_ok=True)
            with open(path, "w", newline="") as fh:
                w = csv.writer(fh)
                w.writerow(list(cols))
                for row in zip(*cols.values(), strict=True):
                    w.writerow([repr(float(v)) for v in row])
        comm.barrier()
        return path

    def as_dict(self) -> dict:
        """Plain lists and floats (NaN/inf kept as floats)."""
        return {
            "axis": self.axis,
            "direction": self.direction,
            "edges_um": self.edges.tolist(),
            "centres_um": self.centres.tolist(),
            "slab_volume": self.slab_volume.tolist(),
            "porosity": self.porosity.tolist(),
            "a_s_per_m": self.a_s.tolist(),
            "sia_m2_per_g": {k: v.tolist() for k, v in self.sia.items()},
            "volume_fractions": {k: v.tolist() for k, v in self.volume_fractions.items()},
            "epsilon_transport": self.transport_fraction.tolist(),
            "tortuosity": self.tortuosity.tolist(),
            "macmullin": self.macmullin.tolist(),
        }


def _axis_index(axis, dim: int) -> int:
    if axis is None:
        return dim - 1
    if isinstance(axis, str):
        if axis not in AXES[:dim]:
            raise ValueError(f"axis: {axis!r} is not an axis of a {dim}D mesh")
        return AXES.index(axis)
    if not 0 <= int(axis) < dim:
        raise ValueError(f"axis: {axis} is not an axis of a {dim}D mesh")
    return int(axis)


def _extent(emesh) -> np.ndarray:
    """``(dim, 2)`` box bounds, µm: ``[0, box_um]`` (collective)."""
    box = np.asarray(emesh.box_um(), dtype=float)
    return np.column_stack([np.zeros(len(box)), box])


def _ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    out = np.full(np.shape(num), np.nan)
    ok = den > 0
    out[ok] = num[ok] / den[ok]
    return out


def through_thickness_profiles(
    emesh,
    n_slabs: int = 20,
    axis: int | str | None = None,
    transport=None,
    direction: str | None = None,
    densities_g_cm3: dict | None = None,
) -> Profiles:
    """Porosity, a_s, SIA and (with ``transport`` and ``direction``) the local tortuosity in
    ``n_slabs`` slabs along ``axis``; MPI-collective.

    Args:
        emesh: an :class:`electrofem.mesh.ElectrodeMesh`.
        n_slabs: number of slabs of equal thickness.
        axis: index or name; default the through-plane axis (the last one).
        transport: a :class:`electrofem.physics.transport.TransportResult` solved on ``emesh``.
        direction: the name of the solved direction to use; must be ``axis``.
        densities_g_cm3: for SIA, overriding ``DEFAULT_DENSITY_G_CM3`` (ids or names).
    """
    if not (isinstance(n_slabs, int | np.integer) and n_slabs >= 1):
        raise ValueError(f"n_slabs: must be a positive integer, got {n_slabs!r}")
    n = int(n_slabs)
    dim = emesh.dim
    ax = _axis_index(axis, dim)
    ext = _extent(emesh)
    z0, z1 = float(ext[ax, 0]), float(ext[ax, 1])
    edges = np.linspace(z0, z1, n + 1)
    slabs = (ax, z0, z1, n)

    ctags, _, cbin = cell_measures(emesh, slabs)
    ftags, _, fbin = facet_measures(emesh, slabs)
    vol = {int(t): cbin[i] for i, t in enumerate(ctags)}
    area = {int(t): fbin[i] for i, t in enumerate(ftags)}
    zero = np.zeros(n)
    slab_volume = cbin.sum(axis=0)
    fractions = {tags.phase_name(p): _ratio(v, slab_volume) for p, v in vol.items()}
    porosity = _ratio(vol.get(tags.ELECTROLYTE, zero), slab_volume)
    a_s = _ratio(area.get(tags.interface_tag(tags.ELECTROLYTE, tags.ACTIVE), zero), slab_volume)
    a_s *= PER_UM_TO_PER_M
    rho = densities(densities_g_cm3)
    totals = {p: float(v.sum()) for p, v in vol.items()}
    sia = {}
    for a, b in solid_pairs(totals):
        s = area.get(tags.interface_tag(a, b), zero)
        sia[pair_name(a, b)] = _ratio(s, rho[a] * vol[a] + rho[b] * vol[b])

    prof = Profiles(
        axis=AXES[ax],
        edges=edges,
        slab_volume=slab_volume,
        porosity=porosity,
        a_s=a_s,
        sia=sia,
        volume_fractions=fractions,
        comm=emesh.comm,
    )
    if transport is not None and direction is not None:
        if direction != AXES[ax]:
            raise ValueError(
                f"direction: the local tortuosity needs transport along the profile axis "
                f"{AXES[ax]!r}, got {direction!r}"
            )
        if direction not in transport.directions:
            raise ValueError(
                f"direction: {direction!r} was not solved ({list(transport.directions)})"
            )
        _local_tortuosity(emesh, prof, transport, direction, ax, ext)
    return prof


def _local_tortuosity(emesh, prof: Profiles, transport, direction: str, ax: int, ext) -> None:
    """Fill ``transport_fraction`` and ``tortuosity`` (see the module docstring)."""
    u = transport.fields[direction]
    res = transport.directions[direction]
    V = u.function_space
    sub = V.mesh
    comm = sub.comm
    tdim = sub.topology.dim
    n = prof.n_slabs
    z0, z1 = prof.edges[0], prof.edges[-1]
    owned = np.arange(sub.topology.index_map(tdim).size_local, dtype=np.int32)
    coeff = _sub_cell_coefficients(emesh, transport, sub)
    u.x.scatter_forward()
    degree = V.ufl_element().embedded_superdegree
    if degree == 1 and sub.geometry.cmaps[0].degree == 1:
        vol, _, energy = p1_slab_integrals(
            sub.geometry.x,
            sub.geometry.dofmaps[0],
            V.dofmap.list,
            u.x.array,
            coeff,
            owned,
            ax,
            z0,
            z1,
            n,
        )
    else:  # curved cells or a P2 potential: quadrature
        vol, energy = curved.slab_integrals(
            sub, V.dofmap.list, degree, u.x.array, coeff, owned, ax, z0, z1, n
        )
    vol, energy = _allreduce(comm, vol), _allreduce(comm, energy)
    length = float(ext[ax, 1] - ext[ax, 0])
    area = float(np.prod(ext[:, 1] - ext[:, 0])) / length
    h = length / n
    d0 = float(transport.reference)
    q = float(res.flux_in)
    eps = vol / (area * h)
    prof.direction = direction
    prof.transport_fraction = eps
    empty = ~(eps > 0)
    if not res.percolating or not q > 0:
        prof.tortuosity = np.where(empty, np.nan, math.inf)
        return
    tau = eps * d0 * area * energy / (h * q * q)
    tau[empty] = np.nan
    prof.tortuosity = tau


def _sub_cell_coefficients(emesh, transport, sub) -> np.ndarray:
    """Coefficient ``k`` of every (owned and ghost) cell of the transport submesh ``sub``."""
    tdim = sub.topology.dim
    imap = sub.topology.index_map(tdim)
    n_sub = imap.size_local + imap.num_ghosts
    values = {int(p): float(k) for p, k in transport.phases.items()}
    if len(set(values.values())) == 1:
        return np.full(n_sub, next(iter(values.values())))
    parent_tag = _parent_tags_of_submesh(emesh, list(values), sub)
    if parent_tag is None:
        return _coefficients_by_location(emesh, values, sub)
    return np.array([values[int(t)] for t in parent_tag], dtype=float)


def _parent_tags_of_submesh(emesh, phases, sub) -> np.ndarray | None:
    """Cell tags of the parent cells of ``sub``'s cells, from the same (deterministic)
    ``create_submesh`` call as the solver's; None if the rebuilt submesh does not match."""
    from dolfinx.mesh import create_submesh

    msh = emesh.mesh
    tdim = msh.topology.dim
    ct = emesh.cell_tags
    cells = np.sort(ct.indices[np.isin(ct.values, phases)]).astype(np.int32)
    sub2, emap, _, _ = create_submesh(msh, tdim, cells)
    same = np.array_equal(sub2.geometry.x, sub.geometry.x) and np.array_equal(
        sub2.geometry.dofmaps[0], sub.geometry.dofmaps[0]
    )
    if not sub.comm.allreduce(same, op=MPI.LAND):
        return None
    imap = sub.topology.index_map(tdim)
    n_sub = imap.size_local + imap.num_ghosts
    parent = emap.sub_topology_to_topology(np.arange(n_sub, dtype=np.int32), False)
    pmap = msh.topology.index_map(tdim)
    ptag = np.zeros(pmap.size_local + pmap.num_ghosts, np.int32)
    ptag[ct.indices] = ct.values
    return ptag[parent]


def _coefficients_by_location(emesh, values: dict[int, float], sub) -> np.ndarray:
    """Fallback: DG0 coefficient of the parent mesh sampled at the submesh cell midpoints."""
    from dolfinx import fem

    msh = emesh.mesh
    tdim = msh.topology.dim
    ct = emesh.cell_tags
    kp = fem.Function(fem.functionspace(msh, ("DG", 0)))
    pick = np.isin(ct.values, list(values))
    dofs = kp.function_space.dofmap.list[ct.indices[pick], 0]
    kp.x.array[dofs] = [values[int(t)] for t in ct.values[pick]]
    kp.x.scatter_forward()
    ks = fem.Function(fem.functionspace(sub, ("DG", 0)))
    imap = sub.topology.index_map(tdim)
    cells = np.arange(imap.size_local + imap.num_ghosts, dtype=np.int32)
    data = fem.create_interpolation_data(ks.function_space, kp.function_space, cells)
    ks.interpolate_nonmatching(kp, cells, data)
    ks.x.scatter_forward()
    return np.asarray(ks.x.array[ks.function_space.dofmap.list[cells, 0]], dtype=float)
