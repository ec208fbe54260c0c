"""The plan of the geometry, before any OCC call: particle instances and radical planes.

Pure numpy/scipy (no gmsh). Shared by the OCC construction (:mod:`.occ`, :mod:`.pieces`) and
the size field (:mod:`.sizing`), which both need the same instances, radical planes and contacts:

* :func:`_instances`: the particles and their periodic images that intersect the box;
* :func:`_plan`: drops instances contained in another one, and gives every overlapping pair
  its **radical plane** (power diagram) and contact neck (centre, normal, radius ``a``);
* :func:`_tangency_hints`: near-tangent contacts and wall crossings (they make slivers), quoted
  in error messages by :func:`_hint_text`;
* :func:`_effective_shell` and :func:`_fingerprint`: shell thicknesses that matter, and the
  hash that ties a gmsh model to the particles it was built from.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from ..microstructure.particles import Particles

log = logging.getLogger("electrofem.mesh")

#: Relative distance below which a contact or a wall crossing counts as near-tangent.
TANGENT_TOL = 1e-3


@dataclass
class _Instance:
    particle: int
    center: np.ndarray
    radius: float


def _instances(particles: Particles) -> list[_Instance]:
    """Particle copies that intersect the box: the particles and their periodic images."""
    box = particles.box
    size = np.asarray(box.size)
    dim = box.dim
    out: list[_Instance] = []
    for i in range(len(particles)):
        c, r = particles.centers[i], float(particles.radii[i])
        shifts_per_axis = []
        for k in range(dim - 1):
            s = [0.0]
            if box.periodic:
                if c[k] - r < 0:
                    s.append(size[k])
                if c[k] + r > size[k]:
                    s.append(-size[k])
            shifts_per_axis.append(s)
        for shift in np.array(np.meshgrid(*shifts_per_axis, indexing="ij")).reshape(dim - 1, -1).T:
            cc = c.copy()
            cc[: dim - 1] += shift
            # keep only copies whose ball intersects the box (distance to the box < r)
            gap = np.maximum(np.maximum(-cc, cc - size), 0.0)
            if float(np.sqrt(np.sum(gap**2))) < r:
                out.append(_Instance(i, cc, r))
    return out


def _overlapping_pairs(inst: list[_Instance]) -> list[tuple[int, int, float]]:
    """Sorted instance pairs ``(a, b, d)`` whose balls overlap."""
    if len(inst) < 2:
        return []
    from scipy.spatial import cKDTree

    x = np.array([q.center for q in inst])
    r = np.array([q.radius for q in inst])
    pairs = cKDTree(x).query_pairs(2.0 * float(r.max()), output_type="ndarray")
    out = []
    for a, b in sorted(map(tuple, pairs)):
        d = float(np.linalg.norm(x[b] - x[a]))
        if d < r[a] + r[b]:
            out.append((int(a), int(b), d))
    return out


@dataclass
class _Plan:
    """Particle instances (with periodic images), radical planes and contacts."""

    inst: list[_Instance]
    live: list[int]  # instances not contained in another one
    planes: dict[int, list[tuple[np.ndarray, np.ndarray]]]  # k -> [(point, normal away from k)]
    contacts: list[tuple[int, int, np.ndarray, np.ndarray, float]]  # (a, b, centre, u_ab, radius)
    hints: list[str]


def _plan(particles: Particles, quiet: bool = False) -> _Plan:
    inst = _instances(particles)
    hints = _tangency_hints(particles, inst)
    pairs = _overlapping_pairs(inst)
    # an instance inside another one does not change the union: drop it
    contained = set()
    for a, b, d in pairs:
        ra, rb = inst[a].radius, inst[b].radius
        if d + min(ra, rb) <= max(ra, rb):
            small, big = (a, b) if ra <= rb else (b, a)
            if small not in contained:
                contained.add(small)
                if quiet:
                    continue
                log.warning(
                    "geometry: particle %d lies inside particle %d; ignored",
                    inst[small].particle,
                    inst[big].particle,
                )
    planes: dict[int, list] = {k: [] for k in range(len(inst))}
    contacts = []
    for a, b, d in pairs:
        if a in contained or b in contained:
            continue
        ca, cb = inst[a].center, inst[b].center
        ra, rb = inst[a].radius, inst[b].radius
        u = (cb - ca) / d
        x = (d * d + ra * ra - rb * rb) / (2 * d)
        p = ca + u * x  # the same point and plane for both sides
        planes[a].append((p, u))
        planes[b].append((p, -u))
        contacts.append((a, b, p, u, math.sqrt(max(ra * ra - x * x, 0.0))))
    live = [k for k in range(len(inst)) if k not in contained]
    return _Plan(inst, live, planes, contacts, hints)


def _tangency_hints(particles: Particles, inst: list[_Instance]) -> list[str]:
    """Near-tangent contacts/gaps and near-tangent wall crossings (they make slivers)."""
    hints = []
    if len(inst) >= 2:
        from scipy.spatial import cKDTree

        x = np.array([q.center for q in inst])
        r = np.array([q.radius for q in inst])
        pairs = cKDTree(x).query_pairs(2.0 * float(r.max()) * (1 + TANGENT_TOL))
        for a, b in sorted(pairs):
            d = float(np.linalg.norm(x[b] - x[a]))
            gap = d - r[a] - r[b]
            if abs(gap) < TANGENT_TOL * min(r[a], r[b]):
                i, j = inst[a].particle, inst[b].particle
                kind = "overlap" if gap < 0 else "gap"
                hints.append(
                    f"near-tangent contact between particles {i} and {j} ({kind} {abs(gap):.3g} µm)"
                )
    box = particles.box
    names = (
        [("left", "right"), ("bottom", "top")]
        if box.dim == 2
        else [("left", "right"), ("front", "back"), ("bottom", "top")]
    )
    for i in range(len(particles)):
        c, r = particles.centers[i], float(particles.radii[i])
        for k in range(box.dim):
            for dist, name in ((c[k], names[k][0]), (box.size[k] - c[k], names[k][1])):
                if abs(dist - r) < TANGENT_TOL * r:
                    hints.append(f"particle {i} nearly touches the {name} box face")
    return list(dict.fromkeys(hints))  # periodic images repeat pairs


def _hint_text(hints: list[str]) -> str:
    if not hints:
        return ""
    more = f" (and {len(hints) - 3} more)" if len(hints) > 3 else ""
    return "; likely cause: " + "; ".join(hints[:3]) + more


def _effective_shell(particles: Particles) -> np.ndarray:
    """Shell thickness, zero where the shell phase equals the core phase."""
    t = np.asarray(particles.shell_thickness, float).copy()
    t[particles.shell_phase == particles.phase] = 0.0
    return t


def _fingerprint(particles: Particles) -> str:
    """Hash of everything in ``particles`` that shapes the geometry."""
    import hashlib

    h = hashlib.sha1()
    h.update(np.asarray(particles.box.size, float).tobytes())
    h.update(bytes([int(particles.box.periodic)]))
    for arr in (particles.centers, particles.radii, particles.shell_thickness):
        h.update(np.ascontiguousarray(arr, float).tobytes())
    for arr in (particles.phase, particles.shell_phase):
        h.update(np.ascontiguousarray(arr, np.int64).tobytes())
    return h.hexdigest()


def contact_count(particles: Particles) -> int:
    """Number of overlapping pairs of particle instances (contact necks) in the geometry."""
    return len(_plan(particles, quiet=True).contacts)
