"""The conformal OCC geometry of particles in a box and its physical groups: :func:`build_geometry`.

Fragments the box with the truncated balls (:mod:`.pieces`), removes what lies outside the
box, gives every volume a phase and every facet a box-face or interface tag, and adds the
physical groups. See :mod:`electrofem.mesh.geometry` for the whole construction.
"""

from __future__ import annotations

import json
import logging
import time
from typing import TYPE_CHECKING

import gmsh
import numpy as np

from .. import tags
from .glue import PoreTopologyError, box_faces, glue, piece_volume, pore_volumes
from .options import GEOMETRY_ROUTES, GeometryReport, glues
from .pieces import CutSharing, _build_pieces
from .plan import _effective_shell, _fingerprint, _hint_text, _plan

if TYPE_CHECKING:
    from ..microstructure.particles import Particles

log = logging.getLogger("electrofem.mesh")

#: gmsh model attribute holding the geometry bookkeeping (JSON).
ATTRIBUTE = "electrofem.geometry"


def _box_faces(dim: int) -> list[tuple[int, int]]:
    """(low, high) boundary tags per axis."""
    if dim == 2:
        return [(tags.LEFT, tags.RIGHT), (tags.BOTTOM, tags.TOP)]
    return [(tags.LEFT, tags.RIGHT), (tags.FRONT, tags.BACK), (tags.BOTTOM, tags.TOP)]


def _face_location(dim: int, ent: int, size: tuple[float, ...]) -> int | None:
    """Box-face tag of a dim-1 entity lying on a face of the box, else None."""
    bb = gmsh.model.getBoundingBox(dim - 1, ent)
    tol = max(1e-6 * max(size), 1e-6)  # OCC bounding boxes are padded by 1e-7
    for k, (lo_tag, hi_tag) in enumerate(_box_faces(dim)):
        lo, hi = bb[k], bb[3 + k]
        if hi - lo < 3 * tol:
            if abs(lo) < tol or abs(hi) < tol:
                return lo_tag
            if abs(hi - size[k]) < tol or abs(lo - size[k]) < tol:
                return hi_tag
    return None


def build_geometry(
    particles: Particles,
    model_name: str = "electrofem",
    *,
    verbose: bool | None = None,
    sharing: CutSharing | None = None,
    route: str = "auto",
) -> GeometryReport:
    """Build the conformal OCC geometry of ``particles`` in their box, with physical groups.

    Adds a new gmsh model ``model_name`` (replacing one of that name) and makes it current.
    ``verbose`` sets gmsh's terminal output (None: leave it as it is). Sets
    ``General.NumThreads = 1`` (determinism). ``sharing`` has other MPI ranks cut part of the
    particles (:mod:`.parallel`); the model is the same.

    ``route`` (``MeshOptions.geometry_route``): ``"auto"`` or ``"occ"`` glues the pieces in 3D
    (:mod:`.glue`; the pore is a discrete volume) and fragments the box in 2D; when the glued
    pore's shells cannot be placed it logs a warning and fragments the box instead.
    ``"fragment"`` always fragments the box with the pieces.

    The parts of periodic images outside the box are removed from the gmsh model but stay in
    its OCC kernel (removing them there costs O(n^2)): do not call
    ``gmsh.model.occ.synchronize()`` on the model afterwards.

    Raises RuntimeError when the OCC booleans fail or give an inconsistent result.
    """
    if not gmsh.isInitialized():
        raise RuntimeError("geometry: gmsh is not initialised; call gmsh.initialize() first")
    if route not in GEOMETRY_ROUTES or route == "discrete":
        raise ValueError(
            f"geometry: route must be one of {GEOMETRY_ROUTES[:3]}, got {route!r} (the "
            "discrete route has no OCC geometry: build_and_mesh)"
        )
    if verbose is not None:
        gmsh.option.setNumber("General.Terminal", 1 if verbose else 0)
    if glues(route, particles.box.dim):
        try:
            return _build(particles, model_name, sharing, glued=True)
        except PoreTopologyError as err:
            log.warning("geometry: glued pore: %s; fragmenting the box instead", err)
            sharing = None  # the other ranks have sent their cuts already
    return _build(particles, model_name, sharing, glued=False)


def _build(
    particles: Particles, model_name: str, sharing: CutSharing | None, glued: bool
) -> GeometryReport:
    t0 = time.perf_counter()
    box = particles.box
    dim = box.dim
    size = tuple(float(s) for s in box.size)

    if model_name in gmsh.model.list():
        gmsh.model.setCurrent(model_name)
        gmsh.model.remove()
    gmsh.model.add(model_name)
    gmsh.option.setNumber("General.NumThreads", 1)
    occ = gmsh.model.occ

    plan = _plan(particles)
    inst, contacts, live = plan.inst, plan.contacts, plan.live
    hints = plan.hints
    for h in hints:
        log.warning("geometry: %s (expect sliver elements)", h)
    t_shell = _effective_shell(particles)

    # --- truncated balls (outer, core) ------------------------------------------------------
    try:
        if glued:
            box_tag = None  # the box faces come with the glue, the pore after it
        elif dim == 2:
            box_tag = occ.addRectangle(0, 0, 0, size[0], size[1])
        else:
            box_tag = occ.addBox(0, 0, 0, size[0], size[1], size[2])
        made = _build_pieces(dim, plan, t_shell, size, sharing, glued=glued)
    except Exception as err:
        raise RuntimeError(
            f"geometry: OCC radical-plane cut failed: {err}{_hint_text(hints)}"
        ) from err
    made.sort(key=lambda m: (m[1], m[2] != "outer", m[0]))
    pieces = [e for e, _, _ in made]
    piece_info = [(k, kind) for _, k, kind in made]
    with_outer = {k for _, k, kind in made if kind == "outer"}
    for k in live:
        if k not in with_outer:
            # e.g. an image whose part inside the box belongs to a neighbour
            log.debug("geometry: particle %d: instance %d has nothing left", inst[k].particle, k)

    t_cut = time.perf_counter()
    log.debug("geometry: %d radical cuts in %.2f s", len(contacts), t_cut - t0)

    # --- fragment and classification --------------------------------------------------------
    try:
        if glued:
            out_map = glue(pieces, box_faces(size))
            out_map = [[]] + out_map[: len(pieces)]  # no box solid: the pore comes later
        elif pieces:
            _, out_map = occ.fragment([(dim, box_tag)], pieces)
        else:
            out_map = [[(dim, box_tag)]]
    except Exception as err:
        raise RuntimeError(f"geometry: OCC fragment failed: {err}{_hint_text(hints)}") from err

    t_frag = time.perf_counter()
    log.debug("geometry: fragment in %.2f s", t_frag - t_cut)
    if glued:  # every glued piece lies in the box
        inside = sorted({t for outs in out_map for d, t in outs if d == dim})
    else:
        inside = sorted({t for d, t in out_map[0] if d == dim})
    owner: dict[int, tuple[int, str]] = {}
    for (k, kind), outs in zip(piece_info, out_map[1:], strict=True):
        for d, t in outs:
            if d != dim:
                continue
            if t in owner and owner[t][0] != k:
                raise RuntimeError(
                    f"geometry: fragment gave a volume shared by particles "
                    f"{inst[owner[t][0]].particle} and {inst[k].particle}{_hint_text(hints)}"
                )
            if kind == "core" or t not in owner:
                owner[t] = (k, kind)
    all_out = {t for outs in out_map for d, t in outs if d == dim}
    outside = sorted(all_out - set(inside))
    occ.synchronize()
    discrete: list[int] = []
    if glued:
        discrete = pore_volumes(lambda s: _face_location(dim, s, size) is not None)
        inside = sorted(inside + discrete)
    if outside:
        # removing them from the gmsh model, not from the OCC kernel: occ.remove is O(n^2)
        # here (46 s against 6 s for 1000 particles). Do not synchronise the model again.
        gmsh.model.removeEntities([(dim, t) for t in outside], recursive=True)

    vol_phase: dict[int, int] = {}
    vol_inst: dict[int, int] = {}
    for v in inside:
        if v in owner:
            k, kind = owner[v]
            i = inst[k].particle
            shelled = t_shell[i] > 0
            if kind == "core" or not shelled:
                vol_phase[v] = int(particles.phase[i])
            else:
                vol_phase[v] = int(particles.shell_phase[i])
            vol_inst[v] = k
        else:
            vol_phase[v] = tags.ELECTROLYTE
            vol_inst[v] = -1

    log.debug("geometry: outside parts removed in %.2f s", time.perf_counter() - t_cut)
    # --- facets ------------------------------------------------------------------------------
    facet_groups: dict[int, list[int]] = {}
    orphans = []
    for _, s in gmsh.model.getEntities(dim - 1):
        up, _ = gmsh.model.getAdjacencies(dim - 1, s)
        vols = sorted(int(v) for v in up if int(v) in vol_phase)
        if len(vols) == 0:
            orphans.append(s)
            continue
        if len(vols) == 1:
            loc = _face_location(dim, s, size)
            if loc is None:
                bb = np.round(gmsh.model.getBoundingBox(dim - 1, s), 4).tolist()
                raise RuntimeError(
                    f"geometry: facet {s} (bounding box {bb}) bounds only volume {vols[0]} but "
                    f"is not on the box boundary: the OCC fragment is not conformal"
                    f"{_hint_text(hints)}"
                )
            facet_groups.setdefault(loc, []).append(s)
            continue
        if len(vols) > 2:
            raise RuntimeError(
                f"geometry: facet {s} is shared by {len(vols)} volumes (non-manifold)"
                f"{_hint_text(hints)}"
            )
        va, vb = vols
        pa, pb = vol_phase[va], vol_phase[vb]
        ia, ib = vol_inst[va], vol_inst[vb]
        if pa == pb and ia == ib:
            log.warning("geometry: facet %d lies inside one particle; left untagged", s)
            continue
        facet_groups.setdefault(tags.interface_tag(pa, pb), []).append(s)
    if orphans:
        gmsh.model.removeEntities([(dim - 1, s) for s in orphans], recursive=True)

    log.debug("geometry: facets classified in %.2f s", time.perf_counter() - t_cut)
    # --- physical groups ---------------------------------------------------------------------
    by_phase: dict[int, list[int]] = {}
    for v in sorted(vol_phase):
        by_phase.setdefault(vol_phase[v], []).append(v)
    report = GeometryReport(n_volumes=len(vol_phase))
    areas: dict[int, float] = {}
    cp_core = {
        k: inst[k].radius - float(t_shell[inst[k].particle])
        for k in live
        if t_shell[inst[k].particle] > 0
    }

    def area(s: int) -> float:
        if s not in areas:
            areas[s] = occ.getMass(dim - 1, s)
        return areas[s]

    def volume(v: int) -> float:
        got = None
        if glued:  # the cone rule on the faces' areas (.glue; the glued route is 3D)
            k, kind = owner[v]
            q = inst[k]
            if kind == "core":  # a core has no hole
                own, hole = cp_core[k], None
            else:
                own, hole = q.radius, cp_core.get(k)
            got = piece_volume(v, q.center, own, hole, plan.planes[k], size, area)
        return occ.getMass(dim, v) if got is None else got

    for p in sorted(by_phase):
        gmsh.model.addPhysicalGroup(dim, by_phase[p], tag=p, name=tags.phase_name(p))
        report.phase_volumes[p] = float(sum(volume(v) for v in by_phase[p] if v not in discrete))
    if discrete:  # the pore is what the pieces leave of the box; mesh_geometry checks that
        # the cells fill the box, which is what the sum check below means on this route
        report.phase_volumes[tags.ELECTROLYTE] = box.volume - sum(
            v for p, v in report.phase_volumes.items() if p != tags.ELECTROLYTE
        )
    names = {v: k for k, v in tags.BOUNDARIES.items()}
    for ftag in sorted(facet_groups):
        ents = sorted(facet_groups[ftag])
        name = names[ftag] if ftag in names else tags.interface_name(ftag)
        gmsh.model.addPhysicalGroup(dim - 1, ents, tag=ftag, name=name)
        total_area = float(sum(area(s) for s in ents))
        (report.boundary_areas if ftag in names else report.interface_areas)[ftag] = total_area

    total = sum(report.phase_volumes.values())
    if abs(total - box.volume) > 1e-4 * box.volume:
        raise RuntimeError(
            f"geometry: phase volumes add up to {total:.9g}, not the box volume "
            f"{box.volume:.9g}: the OCC fragment lost or duplicated material{_hint_text(hints)}"
        )

    # --- bookkeeping for mesh_geometry ------------------------------------------------------
    info = {
        "dim": dim,
        "particles": _fingerprint(particles),
        "hints": hints,
        "seconds_geometry": time.perf_counter() - t0,
        "seconds_cut": t_cut - t0,
        "seconds_fragment": t_frag - t_cut,
        "route": "glue" if glued else "fragment",
        "box_volume": box.volume,
    }
    gmsh.model.setAttribute(ATTRIBUTE, [json.dumps(info)])
    log.info(
        "geometry: %d volumes, %d particle instances, %d contacts in %.2f s",
        report.n_volumes,
        len(live),
        len(contacts),
        info["seconds_geometry"],
    )
    return report
