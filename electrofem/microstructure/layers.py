"""Layered electrodes: the recipe (:class:`Electrode`), the paper's presets, and ``generate``.

A recipe is an ordered list of layers from the current collector (bottom, z = 0) to the
separator (top, z = H). Each layer has a thickness fraction, a target porosity and one or more
particle populations (size distribution, phase, share of the layer's solid volume, optional
coating shell). Particle *centres* are confined to their layer; an optional intermixed band of
width ``intermix`` around each internal boundary lets both layers' particles mix there, as in
wet-on-wet coating (paper 002: "L-S" against "L-Dry-S").
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field

import numpy as np

from .. import __version__, tags
from .distributions import Fixed, LogNormal, SizeDistribution, fill_volume
from .measure import loading_mg_cm2, phase_profile, union_porosity, union_volume
from .packing import (
    ContactModel,
    UnreachablePorosity,
    _check_fit,
    calender,
    grow,
    initial_state,
    match_porosity,
    random_radii_to_fraction,
    settle_contacts,
)
from .particles import Box, MicrostructureError, Particles
from .resources import check_resources

log = logging.getLogger("electrofem.microstructure")

#: Paper 002 particle diameters (µm): NMC83 "L" and "S".
LARGE_DIAMETER_UM = 11.3
SMALL_DIAMETER_UM = 4.5


@dataclass(frozen=True)
class Population:
    """One kind of particle in a layer.

    Attributes:
        size: radius distribution (µm).
        phase: solid phase id of the particle (core).
        volume_fraction: share of the layer's solid volume (populations of a layer sum to 1).
        shell_thickness: coating thickness (µm), 0 for none. Must be below the smallest radius.
        shell_phase: phase id of the coating.
    """

    size: SizeDistribution
    phase: int = tags.ACTIVE
    volume_fraction: float = 1.0
    shell_thickness: float = 0.0
    shell_phase: int = tags.SECOND


@dataclass(frozen=True)
class Layer:
    """A layer: thickness fraction of H, target porosity (before calendering), populations."""

    thickness_fraction: float
    porosity: float
    populations: tuple[Population, ...]
    name: str = ""


@dataclass(frozen=True)
class Electrode:
    """A complete microstructure recipe.

    Attributes:
        box: the box (µm), lateral sides periodic by default.
        layers: bottom (current collector) to top (separator).
        intermix: width (µm) of the intermixed band centred on each internal layer boundary.
        contacts: contact model (overlap/gap, see :class:`ContactModel`).
        calender_porosity: if set, compress the height to this porosity after packing.
        seed: random seed; the same recipe and seed give the same particles.
        density: g/cm³ by phase id, overriding ``measure.DEFAULT_DENSITY_G_CM3``.
    """

    box: Box
    layers: tuple[Layer, ...]
    intermix: float = 0.0
    contacts: ContactModel = field(default_factory=ContactModel)
    calender_porosity: float | None = None
    seed: int = 0
    density: dict = field(default_factory=dict)

    def validate(self) -> None:
        if not self.layers:
            raise MicrostructureError("layers: at least one layer is needed")
        tf = [ly.thickness_fraction for ly in self.layers]
        if not (all(t > 0 for t in tf) and abs(sum(tf) - 1) <= 1e-6):
            raise MicrostructureError(
                f"layers.thickness_fraction: must be > 0 and sum to 1, got {tf}"
            )
        for k, ly in enumerate(self.layers):
            if not 0 < ly.porosity < 1:
                raise MicrostructureError(
                    f"layers[{k}].porosity: must be in (0, 1), got {ly.porosity}"
                )
            if not ly.populations:
                raise MicrostructureError(f"layers[{k}].particles: at least one is needed")
            vf = [p.volume_fraction for p in ly.populations]
            if not (all(v >= 0 for v in vf) and abs(sum(vf) - 1) <= 1e-6):
                raise MicrostructureError(
                    f"layers[{k}].particles.volume_fraction: must be >= 0 and sum to 1, got {vf}"
                )
            for j, pop in enumerate(ly.populations):
                if not 0 <= pop.shell_thickness < pop.size.r_min:
                    raise MicrostructureError(
                        f"layers[{k}].particles[{j}].shell_thickness: must be in [0, "
                        f"{pop.size.r_min:.4g}) µm (the smallest radius), got {pop.shell_thickness}"
                    )
                tags.phase_id(pop.phase)
                if pop.phase not in tags.SOLID_PHASES:
                    raise MicrostructureError(
                        f"layers[{k}].particles[{j}].phase: must be a solid phase"
                    )
                if 2 * pop.size.r_max > self.box.height:
                    raise MicrostructureError(
                        f"layers[{k}].particles[{j}]: particle diameter {2 * pop.size.r_max:.4g}"
                        f" µm is larger than the box height {self.box.height:.4g} µm"
                    )
        if not (math.isfinite(self.intermix) and self.intermix >= 0):
            raise MicrostructureError(f"intermix: must be >= 0 µm, got {self.intermix}")
        if self.calender_porosity is not None and not 0 < self.calender_porosity < 1:
            raise MicrostructureError(
                f"calender.porosity: must be in (0, 1), got {self.calender_porosity}"
            )

    def layer_bounds(self) -> list[tuple[float, float]]:
        """``(z0, z1)`` of every layer, µm."""
        edges = np.concatenate([[0.0], np.cumsum([ly.thickness_fraction for ly in self.layers])])
        edges = edges * self.box.height
        edges[-1] = self.box.height
        return [(float(a), float(b)) for a, b in zip(edges[:-1], edges[1:], strict=True)]

    @property
    def target_porosity(self) -> float:
        """Porosity of the whole box before calendering (thickness-weighted)."""
        return float(sum(ly.thickness_fraction * ly.porosity for ly in self.layers))


def _sample_layers(spec: Electrode, rng: np.random.Generator):
    box = spec.box
    dim = box.dim
    bounds = spec.layer_bounds()
    cols = {k: [] for k in ("r", "phase", "shell", "shell_phase", "layer", "zlo", "zhi")}
    for k, (ly, (z0, z1)) in enumerate(zip(spec.layers, bounds, strict=True)):
        vol = box.area * (z1 - z0)
        target = (1 - ly.porosity) * vol
        radii, pops = [], []
        for j, pop in enumerate(ly.populations):
            r = fill_volume(pop.size, rng, pop.volume_fraction * target, dim)
            radii.append(r)
            pops.append(np.full(len(r), j))
        r = np.concatenate(radii) if radii else np.zeros(0)
        pop_index = np.concatenate(pops).astype(int) if pops else np.zeros(0, int)
        r = random_radii_to_fraction(r, vol, 1 - ly.porosity, dim)
        lo = z0 - (spec.intermix / 2 if k > 0 else 0.0)
        hi = z1 + (spec.intermix / 2 if k < len(spec.layers) - 1 else 0.0)
        cols["r"].append(r)
        cols["phase"].append([ly.populations[j].phase for j in pop_index])
        cols["shell"].append([ly.populations[j].shell_thickness for j in pop_index])
        cols["shell_phase"].append([ly.populations[j].shell_phase for j in pop_index])
        cols["layer"].append(np.full(len(r), k))
        cols["zlo"].append(np.full(len(r), max(lo, 0.0)))
        cols["zhi"].append(np.full(len(r), min(hi, box.height)))
    return {k: np.concatenate([np.asarray(a, float) for a in v]) for k, v in cols.items()}


def generate(spec: Electrode, progress: bool = False, force: bool = False) -> Particles:
    """Pack the recipe; return particles whose ``meta`` records the provenance.

    Raises :class:`MicrostructureError` (or its subclass UnreachablePorosity) with the
    offending field named, also before any work when the packing would not fit in this
    machine's memory (:func:`resources.check_resources`; ``force`` packs anyway).
    """
    spec.validate()  # also: no particle larger than the box height
    check_resources(spec, force=force)
    rng = np.random.default_rng(spec.seed)
    cols = _sample_layers(spec, rng)
    _check_fit(spec.box, cols["r"], "layers")
    state = initial_state(spec.box, cols["r"], cols["zlo"], cols["zhi"], rng)
    arrays = dict(
        phase=cols["phase"].astype(np.int32),
        shell_thickness=cols["shell"],
        shell_phase=cols["shell_phase"].astype(np.int32),
        layer=cols["layer"].astype(np.int32),
    )
    hint = "calender.porosity reaches lower porosities with a bounded overlap"
    hard = -spec.contacts.gap if spec.contacts.mode == "gap" else 0.0
    field_name = "layers[0].porosity" if len(spec.layers) == 1 else "layers.porosity"
    inflate = spec.contacts.inflation
    state.r /= inflate  # pack hard cores; inflating them afterwards makes the contact overlaps
    targets = [
        (z0, z1, 1 - ly.porosity)
        for ly, (z0, z1) in zip(spec.layers, spec.layer_bounds(), strict=True)
    ]
    try:
        grow(state, hard_frac=hard, progress=progress, field=field_name)
    except UnreachablePorosity as err:
        # measure the best reachable porosity exactly: the jammed state, with contacts applied
        jammed = 1 - err.best
        state.r *= (jammed / state.solid_fraction()) ** (1 / spec.box.dim) * inflate
        settle_contacts(state, spec.contacts)
        best = 1 - union_volume(Particles(spec.box, state.x, state.r, **arrays)) / spec.box.volume
        raise UnreachablePorosity(field_name, spec.target_porosity, best, hint) from None
    state.r *= inflate
    scales = match_porosity(state, spec.contacts, arrays, targets, field=field_name)
    parts = Particles(spec.box, state.x.copy(), state.r.copy(), **arrays)
    parts.meta = {
        "seed": spec.seed,
        "algorithm": "growth + FIRE relaxation (electrofem.microstructure.packing)",
        "radius_scale_per_layer": scales.tolist(),
        "zlo": state.zlo.tolist(),
        "zhi": state.zhi.tolist(),
        "layer_bounds_um": spec.layer_bounds(),
        "version": __version__,
    }
    if spec.calender_porosity is not None:
        parts = calender(parts, spec.calender_porosity, spec.contacts, progress=progress)
        f = parts.box.height / spec.box.height
        parts.meta["layer_bounds_um"] = [(a * f, b * f) for a, b in spec.layer_bounds()]
    return parts


def summarize(parts: Particles, density: dict | None = None) -> dict:
    """Porosity (total and per layer), loading, counts; everything JSON-serialisable.

    ``porosity`` is that of the union of the particles (overlaps counted once, parts beyond the
    top/bottom faces or lateral walls cut off): exact when the closed form is
    (``porosity_method`` "exact", ``porosity_error`` 0), else a stratified Monte Carlo estimate
    ("monte_carlo") with its standard error; the per-layer values are sampled, with
    ``porosity_error_per_layer`` (see :func:`measure.union_porosity`). ``porosity_sampled`` is
    an independent check on the grid of the phase fractions.
    """
    box = parts.box
    _, frac = phase_profile(parts)
    bounds = parts.meta.get("layer_bounds_um") or [(0.0, box.height)]
    solid_by_phase = {
        int(p): float(frac[:, p].mean()) for p in tags.SOLID_PHASES if frac[:, p].any()
    }
    per_phase, total = loading_mg_cm2(solid_by_phase, box.height, density)
    por = union_porosity(parts, [tuple(b) for b in bounds])
    contact = parts.meta.get("contacts")
    out = {
        "dim": box.dim,
        "box_um": list(box.size),
        "periodic": box.periodic,
        "n_particles": len(parts),
        "n_particles_per_layer": [int(np.sum(parts.layer == k)) for k in range(len(bounds))],
        "porosity": por["porosity"],
        "porosity_method": por["method"],
        "porosity_error": por["error"],
        "porosity_sampled": float(frac[:, tags.ELECTROLYTE].mean()),
        "porosity_per_layer": por["per_layer"],
        "porosity_error_per_layer": por["per_layer_error"],
        "layer_bounds_um": [list(b) for b in bounds],
        "loading_mg_cm2": total,
        "loading_mg_cm2_per_phase": {tags.phase_name(k): v for k, v in per_phase.items()},
        "solid_fraction_per_phase": {tags.phase_name(k): v for k, v in solid_by_phase.items()},
        "radius_um": {
            "min": float(parts.radii.min()) if len(parts) else None,
            "max": float(parts.radii.max()) if len(parts) else None,
            "mean": float(parts.radii.mean()) if len(parts) else None,
        },
    }
    if por["reason"]:
        out["porosity_note"] = f"sampled: the closed form is not exact here ({por['reason']})"
    if contact:
        out["contacts"] = contact
    if "radius_scale_per_layer" in parts.meta:
        # radii are scaled (per layer) so the porosity target is met exactly; in small boxes
        # with few large particles this corrects the particle-count discreteness
        out["radius_scale_per_layer"] = parts.meta["radius_scale_per_layer"]
    if "calendering" in parts.meta:
        out["calendering"] = parts.meta["calendering"]
    if box.dim == 2:
        out["loading_note"] = "2D: the structure is taken as extruded (area fraction × height)"
    return out


def preset(
    name: str,
    *,
    dim: int = 2,
    width: float = 50.0,
    depth: float = 50.0,
    height: float = 146.0,
    ratio: tuple[float, float] = (5, 5),
    porosity: float = 0.40,
    intermix: float | None = None,
    large_diameter: float = LARGE_DIAMETER_UM,
    small_diameter: float = SMALL_DIAMETER_UM,
    std_fraction: float = 0.0,
    contacts: ContactModel | None = None,
    calender_porosity: float | None = None,
    seed: int = 0,
    periodic: bool = True,
) -> Electrode:
    """Paper 002's architectures.

    * ``"L-S"`` / ``"L-Dry-S"``: large particles at the bottom, small on top;
    * ``"S-L"`` / ``"S-Dry-L"``: the reverse;
    * ``"Mix"`` / ``"Mix-Dry-Mix"``: one layer, L and S mixed in equal volume.

    ``ratio`` is the L:S thickness ratio (any, e.g. 3:7 … 7:3); for Mix it is the L:S volume
    ratio. The "Dry" names have a sharp boundary; the wet-on-wet names default to an
    intermixed band one large diameter wide (``intermix`` overrides). ``std_fraction`` > 0
    turns the fixed sizes into truncated lognormals with std = std_fraction · mean.
    """
    key = name.strip().upper()
    aliases = {"L-S": "LS", "L-DRY-S": "LS", "S-L": "SL", "S-DRY-L": "SL", "MIX": "MIX"}
    aliases["MIX-DRY-MIX"] = "MIX"
    if key not in aliases:
        raise MicrostructureError(f"preset: unknown {name!r}; known: L-S, S-L, Mix (and -Dry-)")
    dry = "DRY" in key
    if intermix is None:
        intermix = 0.0 if dry or aliases[key] == "MIX" else large_diameter
    try:
        a, b = (float(v) for v in ratio)
    except (TypeError, ValueError, OverflowError):
        raise MicrostructureError(f"ratio: must be two non-negative numbers, got {ratio}") from None
    if not (math.isfinite(a) and math.isfinite(b) and a >= 0 and b >= 0 and a + b > 0):
        raise MicrostructureError(f"ratio: must be two non-negative numbers, got {ratio}")
    if not (math.isfinite(std_fraction) and std_fraction >= 0):
        raise MicrostructureError(f"std_fraction: must be >= 0, got {std_fraction}")

    def size(d):
        r = d / 2
        if std_fraction == 0:
            return Fixed(r)
        try:
            return LogNormal(r, std_fraction * r)
        except MicrostructureError:
            raise MicrostructureError(
                f"std_fraction: too large, the truncated lognormal of the {d:g} µm particles "
                f"keeps (almost) none of its draws, got {std_fraction}"
            ) from None

    large = Population(size(large_diameter))
    small = Population(size(small_diameter))
    box = Box((width, height) if dim == 2 else (width, depth, height), periodic)
    if aliases[key] == "MIX":
        fl = a / (a + b)
        pops = tuple(
            p
            for p in (
                Population(large.size, volume_fraction=fl),
                Population(small.size, volume_fraction=1 - fl),
            )
            if p.volume_fraction > 0
        )
        layers = (Layer(1.0, porosity, pops, "Mix"),)
    else:
        lower, upper = (large, small) if aliases[key] == "LS" else (small, large)
        names = ("L", "S") if aliases[key] == "LS" else ("S", "L")
        fa = a / (a + b) if aliases[key] == "LS" else b / (a + b)
        layers = tuple(
            Layer(f, porosity, (pop,), nm)
            for f, pop, nm in ((fa, lower, names[0]), (1 - fa, upper, names[1]))
            if f > 0
        )
    return Electrode(
        box,
        layers,
        intermix=intermix if len(layers) > 1 else 0.0,
        contacts=contacts or ContactModel(),
        calender_porosity=calender_porosity,
        seed=seed,
    )


__all__ = [
    "Population",
    "Layer",
    "Electrode",
    "generate",
    "summarize",
    "preset",
    "LARGE_DIAMETER_UM",
    "SMALL_DIAMETER_UM",
]
