"""Phase volumes, interface areas, specific surface area and SIA of an :class:`ElectrodeMesh`.

All measures come from the Cython kernels of ``electrofem._postprocess`` (one pass over the
owned cells or tagged facets of each rank, then one ``Allreduce``), not from UFL forms. Each
facet and cell is counted once across ranks: only entities owned by the rank (local index below
``index_map(d).size_local``) are summed, ghosts are skipped.

Units: the mesh is in µm (:data:`electrofem.LENGTH_UNIT_M`); volumes are µm³ (µm² in 2D) and
areas µm² (µm in 2D). Derived quantities are SI where stated:

* **specific surface area** ``a_s = S(electrolyte|solid) / V_box`` in 1/m
  (µm²/µm³ = 1e6 /m);
* **SIA** (specific interface area, paper 003 eqn (1): ``SIA = S_{1-2} / (m_1 + m_2)``) in
  m²/g, the unit that paper uses for specific areas (m² g⁻¹). With ``S`` in µm², volumes in
  µm³ and densities in g/cm³ the powers of ten cancel: ``SIA [m²/g] = S / (rho_1 V_1 +
  rho_2 V_2)``. A 2D section is taken as extruded by any depth ``d``: ``S d / (rho V d)``, so the
  depth cancels and the same formula holds with lengths and areas.

Simplex meshes: triangles and tetrahedra. On curved cells (second-order geometry,
``MeshOptions.order = 2``) the totals per tag come from quadrature through each cell's quadratic
map (:mod:`.curved`, numpy); a tag's split over slabs then follows the split of its straight
cells (exact per slab on straight cells, the curved total scaled over the slabs).
"""

from __future__ import annotations

import itertools

import numpy as np
from mpi4py import MPI

from .. import tags
from .._postprocess import cell_volumes_by_tag, facet_areas_binned, facet_areas_by_tag
from ..microstructure.measure import DEFAULT_DENSITY_G_CM3
from . import curved

#: 1 µm⁻¹ in 1/m.
PER_UM_TO_PER_M = 1.0e6


# ------------------------------------------------------------------------------------------------
# Owned tagged entities and their geometry
# ------------------------------------------------------------------------------------------------
def _check_simplex(msh) -> None:
    name = msh.topology.cell_type.name
    if name not in ("triangle", "tetrahedron"):
        raise ValueError(f"electrofem.analysis: simplex meshes only, got {name} cells")
    if msh.geometry.cmaps[0].degree not in (1, 2):
        raise ValueError("electrofem.analysis: geometry of order 1 or 2 only")


def _vertex_dofmap(msh) -> np.ndarray:
    """The geometry dofs of the cells' vertices (the first ``dim + 1``, basix order)."""
    dm = msh.geometry.dofmaps[0]
    return np.ascontiguousarray(dm[:, : msh.topology.dim + 1])


def _curved_totals(msh, values, measures, utags, total, binned):
    """Replace the straight totals by the curved ones, scaling each tag's slabs alike."""
    curved = np.zeros(len(utags))
    np.add.at(curved, np.searchsorted(utags, values), measures)
    curved = _allreduce(msh.comm, curved)
    if binned is not None:
        ratio = np.divide(curved, total, out=np.ones_like(curved), where=total > 0)
        binned = binned * ratio[:, None]
    return curved, binned


def _owned(meshtags, msh, dim: int) -> tuple[np.ndarray, np.ndarray]:
    """``(indices, values)`` of the tagged entities of dimension ``dim`` owned by this rank."""
    n_owned = msh.topology.index_map(dim).size_local
    idx = np.asarray(meshtags.indices, dtype=np.int32)
    keep = idx < n_owned
    return idx[keep], np.asarray(meshtags.values, dtype=np.int32)[keep]


def _allreduce(comm: MPI.Comm, arr: np.ndarray) -> np.ndarray:
    arr = np.ascontiguousarray(arr, dtype=np.float64)
    comm.Allreduce(MPI.IN_PLACE, arr, op=MPI.SUM)
    return arr


def _slab_args(slabs) -> tuple[int, float, float, int]:
    if slabs is None:
        return 0, 0.0, 1.0, 0
    axis, z0, z1, n = slabs
    return int(axis), float(z0), float(z1), int(n)


def cell_measures(emesh, slabs=None) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """``(cell tags, volumes, binned)`` summed over ranks; MPI-collective.

    ``slabs = (axis, z0, z1, n)`` also splits the volumes exactly into ``n`` slabs (``binned``
    is ``(n_tags, n)``; otherwise None).
    """
    msh = emesh.mesh
    _check_simplex(msh)
    tdim = msh.topology.dim
    utags = np.asarray(emesh.tag_values(emesh.cell_tags), dtype=np.int32)
    cells, values = _owned(emesh.cell_tags, msh, tdim)
    axis, z0, z1, n = _slab_args(slabs)
    total, binned = cell_volumes_by_tag(
        msh.geometry.x, _vertex_dofmap(msh), cells, values, utags, axis, z0, z1, n
    )
    total = _allreduce(msh.comm, total)
    if binned is not None:
        binned = _allreduce(msh.comm, binned)
    if msh.geometry.cmaps[0].degree > 1:
        vols = curved.cell_volumes(msh, cells)
        total, binned = _curved_totals(msh, values, vols, utags, total, binned)
    return utags, total, binned


def facet_measures(emesh, slabs=None) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """``(facet tags, areas, binned)`` summed over ranks (each facet once); MPI-collective."""
    from dolfinx.mesh import entities_to_geometry

    msh = emesh.mesh
    _check_simplex(msh)
    fdim = msh.topology.dim - 1
    utags = np.asarray(emesh.tag_values(emesh.facet_tags), dtype=np.int32)
    facets, values = _owned(emesh.facet_tags, msh, fdim)
    nodes = np.ascontiguousarray(entities_to_geometry(msh, fdim, facets)[:, : fdim + 1])
    rows = np.arange(len(facets), dtype=np.int32)
    if slabs is None:
        total, binned = facet_areas_by_tag(msh.geometry.x, nodes, rows, values, utags), None
    else:
        axis, z0, z1, n = _slab_args(slabs)
        total, binned = facet_areas_binned(
            msh.geometry.x, nodes, rows, values, utags, axis, z0, z1, n
        )
        binned = _allreduce(msh.comm, binned)
    total = _allreduce(msh.comm, total)
    if msh.geometry.cmaps[0].degree > 1:
        areas = curved.facet_areas(msh, facets)
        total, binned = _curved_totals(msh, values, areas, utags, total, binned)
    return utags, total, binned


# ------------------------------------------------------------------------------------------------
# Public API
# ------------------------------------------------------------------------------------------------
def phase_volumes(emesh) -> dict[int, float]:
    """Volume of every cell tag (phase id), µm³ (µm² in 2D), summed over ranks."""
    utags, total, _ = cell_measures(emesh)
    return {int(t): float(v) for t, v in zip(utags, total, strict=True)}


def interface_areas(emesh) -> dict[int, float]:
    """Area of every facet tag, box faces included, µm² (µm in 2D); each facet counted once."""
    utags, total, _ = facet_measures(emesh)
    return {int(t): float(a) for t, a in zip(utags, total, strict=True)}


def box_volume(emesh, volumes: dict[int, float] | None = None) -> float:
    """Box volume (µm³; µm² in 2D): from ``metadata['box_um']``, else the mesh volume."""
    box = emesh.metadata.get("box_um")
    if box:
        return float(np.prod(box))
    return float(sum((volumes or phase_volumes(emesh)).values()))


def specific_surface_area(emesh, solid: int | str = tags.ACTIVE) -> float:
    """``a_s``: electrolyte|``solid`` interface area per total box volume, in 1/m."""
    tag = tags.interface_tag(tags.ELECTROLYTE, tags.phase_id(solid))
    area = interface_areas(emesh).get(tag, 0.0)
    return area / box_volume(emesh) * PER_UM_TO_PER_M


def densities(densities_g_cm3: dict | None = None) -> dict[int, float]:
    """``DEFAULT_DENSITY_G_CM3`` overridden by ``densities_g_cm3`` (keys: phase ids or names)."""
    rho = dict(DEFAULT_DENSITY_G_CM3)
    for k, v in (densities_g_cm3 or {}).items():
        v = float(v)
        if not v > 0:
            raise ValueError(f"density of {k!r}: must be positive, got {v}")
        rho[tags.phase_id(k)] = v
    return rho


def solid_pairs(volumes: dict[int, float]) -> list[tuple[int, int]]:
    """Pairs ``(a, b)``, ``a < b``, of distinct solid phases present (non-zero volume)."""
    present = sorted(p for p in tags.SOLID_PHASES if volumes.get(p, 0.0) > 0.0)
    return list(itertools.combinations(present, 2))


def pair_name(a: int, b: int) -> str:
    """``'active|second'`` (the :func:`electrofem.tags.interface_name` of the pair)."""
    return tags.interface_name(tags.interface_tag(a, b))


def sia_value(area: float, vol_a: float, vol_b: float, rho_a: float, rho_b: float) -> float:
    """``S / (rho_a V_a + rho_b V_b)`` in m²/g for S in µm², V in µm³, rho in g/cm³."""
    mass = rho_a * vol_a + rho_b * vol_b  # g/cm³ × µm³ = 1e-12 g; S µm² = 1e-12 m²
    return area / mass if mass > 0 else float("nan")


def sia(emesh, densities_g_cm3: dict | None = None) -> dict[str, float]:
    """Specific interface area of every pair of distinct solid phases present, in m²/g.

    ``SIA_12 = S_12 / (m_1 + m_2)`` (paper 003, eqn (1)) with ``S_12`` the area of the
    ``interface_tag(1, 2)`` facets (0 when they do not touch) and ``m_p = rho_p V_p`` the mass
    of all of phase ``p`` in the box. Densities (g/cm³) default to
    :data:`DEFAULT_DENSITY_G_CM3`; keys may be phase ids or names. 2D: the section is taken
    as extruded; the depth cancels. Keys are ``'active|second'`` etc.; same-phase contacts
    (``active|active``) are not a pair of two solids and are left out (their areas are in
    :func:`interface_areas`).
    """
    vols = phase_volumes(emesh)
    areas = interface_areas(emesh)
    rho = densities(densities_g_cm3)
    out = {}
    for a, b in solid_pairs(vols):
        s = areas.get(tags.interface_tag(a, b), 0.0)
        out[pair_name(a, b)] = sia_value(s, vols[a], vols[b], rho[a], rho[b])
    return out
