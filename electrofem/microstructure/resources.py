"""Refuse oversized requests before packing: particle count and peak memory, estimated in
microseconds from the recipe alone (issue 12, item 4: a 10 000 µm box of 1 µm particles grew
past 6 GB in 100 s drawing radii, then died with MemoryError).

Memory model (measured on the 2-core machine, November 2026, numpy 2 / Python 3.12; for
scale: a 2D 10 000 x 146 µm box of 1 µm particles, 1.1e6 of them, stayed below 0.2 GB RSS over
4 minutes of packing, while the 3D 10 000 x 10 000 x 146 µm box needs ~1.7e10 particles):

* packing (``generate`` + ``summarize``): peak RSS grows by ~0.4 kB per particle in 2D and
  ~0.9 kB in 3D (2D: 48 k -> 194 k particles, 3D: 7 k -> 28 k); the model takes twice that,
  :data:`PACK_BYTES_PER_PARTICLE`, plus :data:`BASE_BYTES` for the interpreter and libraries.
* meshing (gmsh + dolfinx): ``cells ≈ factor · box volume / h^dim`` with the global element
  size h; the factors are fitted to 0.94 M tets for a 50×50×60 µm box at h = 1 µm
  (0.16 M at 2 µm) and 73 k triangles for 50×146 µm at 0.5 µm; ~1 kB per tet, 0.5 kB per
  triangle. Refinement at particles smaller than ``h / radius_factor`` adds cells on top.
"""

from __future__ import annotations

import logging
import math
import os

import numpy as np

from .distributions import Fixed, LogNormal, Mixture
from .particles import MicrostructureError, Particles, ball_volume

log = logging.getLogger("electrofem.microstructure")

#: Peak bytes per particle of packing and summarising (twice the measured growth).
PACK_BYTES_PER_PARTICLE = {2: 800, 3: 1800}
#: Interpreter, numpy, Cython kernels.
BASE_BYTES = 150e6
#: Mesh cells per (element size)^dim of box volume.
CELLS_PER_H_DIM = {2: 2.5, 3: 8.0}
#: Bytes per mesh cell through gmsh and dolfinx.
BYTES_PER_CELL = {2: 500, 3: 1000}
#: Share of the machine's memory a request may plan to use.
USABLE_MEMORY_FRACTION = 0.8
#: Packing time per particle (s), measured for presets at 1e4-2e5 particles (it grows slowly
#: with N); informational only, nothing is refused on time.
PACK_SECONDS_PER_PARTICLE = {2: 1e-4, 3: 2e-4}


def _ball(r: float, dim: int) -> float:
    """``ball_volume`` in Python floats: an overflow gives inf, with no numpy warning."""
    return math.pi * r * r if dim == 2 else 4.0 / 3.0 * math.pi * r * r * r


def _ratio(a: float, b: float) -> float:
    """``a / b`` for counts: inf when ``b`` underflowed to 0 (particles of ~1e-300 µm)."""
    return a / b if b > 0 else math.inf


def mean_ball_volume(size, dim: int) -> float:
    """Mean particle volume (µm³, µm² in 2D) of a radius distribution, by count."""
    if isinstance(size, Fixed):
        return _ball(size.radius, dim)
    if isinstance(size, Mixture):
        # components share the *volume*: particles per unit solid volume add up
        per_volume = sum(_ratio(f, mean_ball_volume(d, dim)) for d, f in size.components if f > 0)
        return _ratio(1.0, per_volume)
    if isinstance(size, LogNormal):
        if size.std == 0:
            return _ball(size.mean, dim)
        # truncated lognormal (as LogNormal.sample): E[r^k | a <= r <= b] in closed form
        mu, sigma = size.log_params()
        s2 = sigma * sigma
        lo, hi = math.log(size.r_min), math.log(size.r_max)

        def cdf(t):
            return 0.5 * (1 + math.erf(t / math.sqrt(2)))

        k = dim
        mass = cdf((hi - mu) / sigma) - cdf((lo - mu) / sigma)
        part = cdf((hi - mu - k * s2) / sigma) - cdf((lo - mu - k * s2) / sigma)
        try:
            moment = math.exp(k * mu + 0.5 * k**2 * s2) * part / mass
        except OverflowError:  # a spread far beyond any box: counted as no particle
            moment = math.inf
        return float(ball_volume(1.0, dim)) * moment
    raise MicrostructureError(f"size: unknown distribution {type(size).__name__}")


def memory_of_machine() -> int:
    """Physical memory in bytes (``SC_PAGE_SIZE * SC_PHYS_PAGES``)."""
    return int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))


def estimate_resources(electrode, mesh_size_um: float | None = None) -> dict:
    """Particle count and peak memory of packing (and meshing) a request; no packing done.

    ``electrode`` is an :class:`~.layers.Electrode` recipe, or :class:`Particles` already at
    hand (then nothing is packed). ``mesh_size_um``: the global mesh element size; without it
    meshing is not estimated. Returns a JSON-serialisable dict: ``n_particles`` (and
    ``n_particles_per_layer`` for a recipe), ``packing_bytes``, ``packing_seconds`` (rough),
    ``mesh_cells``, ``meshing_bytes``, ``peak_bytes`` and the ``largest`` stage.
    """
    box = electrode.box
    dim = box.dim
    out: dict = {"dim": dim, "box_um": list(box.size)}
    if isinstance(electrode, Particles):
        n = float(len(electrode))
        packing = BASE_BYTES + PACK_BYTES_PER_PARTICLE[dim] * n / 2  # summarising only
    else:
        per_layer = []
        for ly, (z0, z1) in zip(electrode.layers, electrode.layer_bounds(), strict=True):
            solid = (1 - ly.porosity) * box.area * (z1 - z0)
            per_layer.append(
                sum(
                    _ratio(p.volume_fraction * solid, mean_ball_volume(p.size, dim))
                    for p in ly.populations
                    if p.volume_fraction > 0
                )
            )
        n = float(sum(per_layer))
        out["n_particles_per_layer"] = per_layer
        packing = BASE_BYTES + PACK_BYTES_PER_PARTICLE[dim] * n
    out["n_particles"] = n
    out["packing_bytes"] = packing
    out["packing_seconds"] = (
        0.0 if isinstance(electrode, Particles) else (PACK_SECONDS_PER_PARTICLE[dim] * n)
    )
    cells = meshing = None
    if mesh_size_um is not None:
        if not (math.isfinite(mesh_size_um) and mesh_size_um > 0):
            raise MicrostructureError(f"mesh.size: must be a positive length, got {mesh_size_um}")
        try:
            h_dim = mesh_size_um**dim
        except OverflowError:
            h_dim = math.inf
        cells = _ratio(CELLS_PER_H_DIM[dim] * box.volume, h_dim)
        meshing = BASE_BYTES + BYTES_PER_CELL[dim] * cells + PACK_BYTES_PER_PARTICLE[dim] * n / 4
    out["mesh_cells"] = cells
    out["meshing_bytes"] = meshing
    out["peak_bytes"] = max(packing, meshing or 0.0)
    out["largest"] = "meshing" if meshing is not None and meshing > packing else "packing"
    return out


def _gb(b: float) -> str:
    """Bytes in GB of 2^30 bytes (as ``free -g``): '45 GB', '0.52 GB', '30069 GB'."""
    gb = b / 2**30
    return f"{gb:.0f} GB" if gb >= 10 else f"{gb:.2g} GB"


def _count(n: float) -> str:
    """'2.1e8' for large counts, plain below 10^4."""
    if not math.isfinite(n):
        return "inf"
    if n < 1e4:
        return f"{n:.0f}"
    mant, exp = f"{n:.1e}".split("e")
    return f"{mant}e{int(exp)}"


def check_resources(
    electrode,
    mesh_size_um: float | None = None,
    memory_bytes: int | None = None,
    force: bool = False,
) -> dict:
    """Raise MicrostructureError (one line, naming the key to change) when the request's
    estimated peak memory exceeds :data:`USABLE_MEMORY_FRACTION` of ``memory_bytes`` (default:
    this machine's physical memory); with ``force`` only log a warning. Returns the estimate
    of :func:`estimate_resources`, plus ``memory_bytes`` and ``fits``.

    The key named is ``box.<largest side>`` when the packing alone does not fit, else
    ``mesh.size``. Sizes in the message are GB of 2^30 bytes.
    """
    est = estimate_resources(electrode, mesh_size_um)
    memory = memory_of_machine() if memory_bytes is None else int(memory_bytes)
    est["memory_bytes"] = memory
    usable = USABLE_MEMORY_FRACTION * memory
    est["fits"] = est["peak_bytes"] <= usable
    if est["fits"]:
        return est
    box = electrode.box
    if est["packing_bytes"] <= usable:  # a coarser mesh is enough
        key, fix = "mesh.size", "use a coarser mesh.size or a smaller box"
        what = f"~{_count(est['mesh_cells'])} mesh cells"
    else:  # the box must shrink (or the particles grow), whatever the mesh
        key = "box." + box.axis_names[int(np.argmax(box.size))]
        fix = "reduce the box or the particle count"
        what = f"~{_count(est['n_particles'])} particles"
    msg = (
        f"{key}: the request needs {what} and ~{_gb(est['peak_bytes'])} (this machine has "
        f"{_gb(memory)}); {fix}, or pass --force"
    )
    if not force:
        raise MicrostructureError(msg)
    log.warning("%s (forced: going ahead)", msg)
    return est


__all__ = ["estimate_resources", "check_resources", "mean_ball_volume", "memory_of_machine"]
