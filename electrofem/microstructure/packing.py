"""Dense packing of disks and spheres: growth + FIRE relaxation, contacts, calendering.

Algorithm (all hot loops in ``ext/packing.pyx``, O(N) per sweep with cell lists):

1. **Growth** (a Lubachevsky–Stillinger-like compression). Particles start at random positions
   with radii scaled down to a loose solid fraction; radii then grow in steps of
   ``GROWTH_STEP`` in solid fraction, and after every step the overlaps are removed by FIRE
   minimisation of a harmonic overlap energy. A step whose overlaps cannot be removed means the
   packing has jammed: the protocol then backs off and bisects the step to find the densest
   reachable state, which an :class:`UnreachablePorosity` error reports.
2. **Contacts** (:class:`ContactModel`). Jammed packings are full of near-tangent contacts, which
   mesh into slivers and conduct through a single point. Every pair closer than a gap of
   ``gap`` is pulled into a finite overlap ``overlap`` ("overlap" mode, connected solids), or
   every pair is kept at least ``gap`` apart ("gap" mode, open pores); the same rule applies to
   the bottom/top walls, and no particle crosses a periodic side by less than ``gap`` · r.
   Lengths are fractions of the smaller radius of the pair.
3. **Porosity target**: radii are rescaled (typically by < 1 %) until the solid volume inside
   the box, closed form with lens and wall-cap corrections, is within 0.002 of the target.
4. **Calendering** (:func:`calender`): the box height is compressed, affinely moving the
   centres, while overlaps up to ``max_overlap`` are allowed, until a target porosity is met.
"""

from __future__ import annotations

import logging
import sys
from dataclasses import dataclass, field

import numpy as np
from tqdm import tqdm

from .._packing import relax
from .measure import phase_profile, union_volume
from .particles import Box, MicrostructureError, Particles, ball_volume

log = logging.getLogger("electrofem.packing")


def _bar(progress: bool) -> bool:
    """A progress bar only on a terminal (a log file would keep its carriage-return debris;
    the job logs a line when packing ends)."""
    return bool(progress) and sys.stderr.isatty()


#: Solid-fraction increment of one growth step.
GROWTH_STEP = 0.02
#: Starting solid fraction of the growth protocol.
START_FRACTION = 0.25
#: Relaxation converged when no overlap exceeds this fraction of a radius.
OVERLAP_TOL = 1e-4
#: A relaxation whose overlap has not halved in this many iterations is jammed.
STALL_ITERATIONS = 1500
#: Porosity tolerance of the final radius correction (absolute).
POROSITY_TOL = 0.002


class UnreachablePorosity(MicrostructureError):
    """The requested porosity cannot be reached; ``best`` is the lowest porosity found."""

    def __init__(self, field: str, target: float, best: float, hint: str = ""):
        self.field, self.target, self.best = field, target, best
        msg = (
            f"{field}: porosity {target:.4f} is not reachable; the best reachable porosity is "
            f"≈ {best:.4f}"
        )
        super().__init__(msg + (f" ({hint})" if hint else ""))


@dataclass(frozen=True)
class ContactModel:
    """How particles touch. Lengths are fractions of the smaller radius of a pair.

    Attributes:
        mode: ``"overlap"``: contacts of the packing overlap by about ``overlap`` (radii are
            inflated by ``overlap/2`` after jamming), giving a connected solid network and a
            finite current-collector contact; ``"gap"``: every pair and wall keeps ``gap``
            (an open pore network, e.g. for 2D infiltration).
        overlap: contact overlap created in "overlap" mode (default 0.08).
        gap: clearance of every pair in "gap" mode (default 0.08).
        clearance: no pair, wall or periodic side is near-tangent: ``|d - (r_i + r_j)|`` stays
            above ``clearance`` (up to a quarter of it, the relaxation tolerance), so there are
            neither slivers nor point contacts (default 0.04).
        max_overlap: largest overlap ever allowed, also when calendering (default 0.15).
    """

    mode: str = "overlap"
    overlap: float = 0.08
    gap: float = 0.08
    clearance: float = 0.04
    max_overlap: float = 0.15

    def __post_init__(self):
        if self.mode not in ("overlap", "gap"):
            raise MicrostructureError(
                f"contacts.mode: must be 'overlap' or 'gap', got {self.mode!r}"
            )
        for name in ("overlap", "gap", "clearance", "max_overlap"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int | float) or not 0 <= v < 0.5:
                raise MicrostructureError(f"contacts.{name}: must be in [0, 0.5), got {v!r}")
        if self.mode == "overlap" and not self.clearance < self.overlap <= self.max_overlap:
            raise MicrostructureError(
                f"contacts.overlap: need clearance < overlap <= max_overlap, got "
                f"{self.clearance} / {self.overlap} / {self.max_overlap}"
            )
        if self.mode == "gap" and self.gap <= self.clearance:
            raise MicrostructureError(
                f"contacts.gap: must exceed contacts.clearance {self.clearance}, got {self.gap}"
            )

    @property
    def tolerance(self) -> float:
        """Relaxation tolerance of the contact stage: a quarter of the clearance."""
        return 0.25 * self.clearance if self.clearance > 0 else OVERLAP_TOL

    @property
    def inflation(self) -> float:
        """Radius inflation factor applied after packing ("overlap" mode)."""
        return 1 + self.overlap / 2 if self.mode == "overlap" else 1.0


@dataclass
class PackState:
    """Positions and radii while packing (arrays are modified in place by the kernel)."""

    box: Box
    x: np.ndarray
    r: np.ndarray
    zlo: np.ndarray
    zhi: np.ndarray
    log: list[dict] = field(default_factory=list)

    @property
    def L(self) -> np.ndarray:
        return np.asarray(self.box.size, dtype=float)

    def solid_fraction(self, scale: float = 1.0) -> float:
        return float(np.sum(ball_volume(self.r * scale, self.box.dim)) / self.box.volume)

    def relax(self, scale: float = 1.0, max_iter: int = 20000, tol: float = OVERLAP_TOL, **kw):
        it, viol = relax(
            self.x,
            np.ascontiguousarray(self.r * scale),
            self.zlo,
            self.zhi,
            self.L,
            self.box.periodic,
            max_iter=max_iter,
            tol=tol,
            **kw,
        )
        return it, viol


def initial_state(box: Box, radii, zlo, zhi, rng: np.random.Generator) -> PackState:
    """Random centres: lateral uniform, through-plane uniform within each particle's bounds."""
    n = len(radii)
    x = np.empty((n, box.dim))
    for a in range(box.dim - 1):
        x[:, a] = rng.uniform(0.0, box.size[a], n)
    lo = np.maximum(zlo, 0.0)
    hi = np.minimum(zhi, box.height)
    x[:, -1] = lo + (hi - lo) * rng.uniform(0.0, 1.0, n)
    return PackState(
        box,
        np.ascontiguousarray(x),
        np.asarray(radii, float),
        np.ascontiguousarray(zlo, float),
        np.ascontiguousarray(zhi, float),
    )


def _check_fit(box: Box, radii: np.ndarray, field: str = "layers") -> None:
    if len(radii) == 0:
        return
    rmax = float(radii.max())
    if 2 * rmax > box.height:
        raise MicrostructureError(
            f"{field}: particle diameter {2 * rmax:.4g} µm is larger than the box height "
            f"{box.height:.4g} µm"
        )
    for name, length in zip(box.axis_names[:-1], box.lateral, strict=True):
        need = 4.4 * rmax if box.periodic else 2 * rmax
        if length < need:
            raise MicrostructureError(
                f"box.{name}: {length:.4g} µm is too small for particles of diameter "
                f"{2 * rmax:.4g} µm (need >= {need:.4g} µm"
                f"{' with periodic sides' if box.periodic else ''})"
            )


def grow(
    state: PackState,
    hard_frac: float = 0.0,
    progress: bool = False,
    field: str = "porosity",
    max_iter: int = 20000,
) -> float:
    """Grow radii from ``START_FRACTION`` to their nominal size, relaxing at every step.

    Returns the reached solid fraction (the nominal one). Raises UnreachablePorosity with the
    densest reachable solid fraction when the packing jams first.
    """
    dim = state.box.dim
    target = state.solid_fraction()
    if target <= 0:
        return 0.0
    phis = list(np.arange(min(START_FRACTION, target), target, GROWTH_STEP)) + [target]
    kw = dict(hard_frac=hard_frac, stall=STALL_ITERATIONS)
    good_x, good_phi = state.x.copy(), None
    bar = tqdm(phis, desc="packing", unit="step", disable=not _bar(progress), leave=False)
    for phi in bar:
        scale = (phi / target) ** (1 / dim)
        it, viol = state.relax(scale, max_iter=max_iter, **kw)
        state.log.append({"solid_fraction": float(phi), "iterations": int(it), "violation": viol})
        bar.set_postfix(phi=f"{phi:.3f}", it=it, refresh=False)
        if viol >= OVERLAP_TOL:
            best = _bisect_jam(state, good_x, good_phi or phi, phi, target, kw, max_iter)
            raise UnreachablePorosity(field, 1 - target, 1 - best, "the packing jams")
        good_x, good_phi = state.x.copy(), phi
    return target


def _bisect_jam(state, good_x, lo, hi, target, kw, max_iter) -> float:
    """Densest solid fraction in [lo, hi] the relaxation still resolves (lo known good)."""
    dim = state.box.dim
    for _ in range(6):
        if hi - lo < 2e-3:
            break
        mid = 0.5 * (lo + hi)
        state.x[:] = good_x
        _, viol = state.relax((mid / target) ** (1 / dim), max_iter=max_iter, **kw)
        if viol < OVERLAP_TOL:
            lo, good_x = mid, state.x.copy()
        else:
            hi = mid
    state.x[:] = good_x
    return lo


def jam(box: Box, radii, rng: np.random.Generator, progress: bool = False, max_iter: int = 20000):
    """Compress until jammed (no overlap); return ``(centers, radii, solid_fraction)``.

    ``radii`` set the size ratios; they are scaled to the jammed state.
    """
    radii = random_radii_to_fraction(
        np.asarray(radii, float), box.volume, 0.75 if box.dim == 3 else 0.92, box.dim
    )
    state = initial_state(box, radii, np.zeros(len(radii)), np.full(len(radii), box.height), rng)
    try:
        phi = grow(state, progress=progress, max_iter=max_iter)
    except UnreachablePorosity as err:
        phi = 1 - err.best
    scale = (phi / state.solid_fraction()) ** (1 / box.dim)
    return state.x, state.r * scale, phi


def settle_contacts(
    state: PackState,
    contacts: ContactModel,
    calendering=False,
    max_iter=30000,
    band: bool = True,
):
    """Enforce the contact model on the current state; returns ``(iterations, violation)``.

    Overlaps are limited to ``max_overlap`` ("overlap" mode) or forbidden with a ``gap``
    ("gap" mode), and (``band``) no pair, wall or periodic side is left near-tangent. With
    ``calendering`` the rule for the OCC start points of contact circles at the faces is off
    (``relax``'s ``occ_vertices``).
    The violation is relative to the smaller radius; converged when below
    ``contacts.tolerance``.
    """
    c = contacts
    kw = dict(max_iter=max_iter, tol=c.tolerance)
    if c.mode == "gap":
        hard1 = hard2 = -c.gap
    else:
        hard1, hard2 = c.max_overlap - 2 * c.tolerance, c.max_overlap - c.tolerance
    # 1. hard cores only (converges fast); 2. clear the near-tangent band, the hard core now
    # slack. Doing both at once chatters: pairs pressed together sit on the band's edge.
    it, viol = state.relax(1.0, hard_frac=hard1, stall=STALL_ITERATIONS, **kw)
    occ = not calendering
    if band and viol < c.tolerance:
        x0 = state.x.copy()
        # a gentler step from the same start; last, without the start-point rule, which can
        # make a dense 3D packing unresolvable (L-S 5:5 at 0.45 in a 26 x 26 x 30 µm box):
        # the packing is then the one of the rules before it (its cells by the faces may be
        # flatter), which the log records
        tries = [(0.3, STALL_ITERATIONS, occ), (0.05, 0, occ)]
        if occ:
            tries.append((0.05, 0, False))
        for dt_max, stall, occ in tries:
            it2, viol = state.relax(
                1.0,
                hard_frac=hard2,
                band=c.clearance,
                dt_max=dt_max,
                stall=stall,
                occ_vertices=occ,
                **kw,
            )
            it += it2
            if viol < c.tolerance:
                break
            state.x[:] = x0
    state.log.append(
        {"stage": "contacts", "iterations": int(it), "violation": float(viol), "occ_rule": occ}
    )
    return it, viol


def _as_particles(state: PackState, **arrays) -> Particles:
    return Particles(state.box, state.x.copy(), state.r.copy(), **arrays)


def match_porosity(
    state: PackState,
    contacts: ContactModel,
    arrays: dict,
    layer_targets: list[tuple[float, float, float]] | None = None,
    calendering: bool = False,
    field: str = "porosity",
    max_rounds: int = 10,
) -> np.ndarray:
    """Rescale radii (per layer) until every layer's porosity is within POROSITY_TOL.

    ``layer_targets`` are ``(z0, z1, solid_fraction)`` slabs, one per value of
    ``arrays["layer"]``; a slab's solid fraction is measured by grid sampling
    (:func:`measure.phase_profile`), a single layer's by the closed form. The packing is
    re-settled after every rescale. Returns the radius scale applied to each layer.
    """
    layer = np.asarray(arrays["layer"])
    nl = len(layer_targets)
    scales = np.ones(nl)
    dim = state.box.dim
    for _ in range(max_rounds):
        it, viol = settle_contacts(state, contacts, calendering)
        if viol >= contacts.tolerance:
            raise UnreachablePorosity(
                field,
                1 - sum((z1 - z0) * t for z0, z1, t in layer_targets) / state.box.height,
                1 - union_volume(_as_particles(state, **arrays)) / state.box.volume,
                f"contacts could not be resolved (violation {viol:.3g})",
            )
        parts = _as_particles(state, **arrays)
        if nl == 1:
            phis = [union_volume(parts) / state.box.volume]
        else:
            z, frac = phase_profile(parts)
            solid = 1 - frac[:, 1]
            phis = [float(solid[(z >= z0) & (z < z1)].mean()) for z0, z1, _ in layer_targets]
        err = [t - phi for (_, _, t), phi in zip(layer_targets, phis, strict=True)]
        if max(abs(e) for e in err) < POROSITY_TOL:
            break
        for k, ((_, _, t), phi) in enumerate(zip(layer_targets, phis, strict=True)):
            f = (t / phi) ** (1 / dim)
            state.r[layer == k] *= f
            scales[k] *= f
    else:
        log.warning(
            "per-layer porosity within %.3g of target after %d rounds",
            max(map(abs, err)),
            max_rounds,
        )
    return scales


def calender(
    particles: Particles,
    porosity: float,
    contacts: ContactModel = ContactModel(),
    progress: bool = False,
    steps: int = 30,
) -> Particles:
    """Compress the electrode height until its porosity is ``porosity`` (± POROSITY_TOL).

    Centres move affinely with the height (layer bounds too), then relax while overlaps up to
    ``contacts.max_overlap`` are allowed. Radii are unchanged, so the loading (mass per area)
    is conserved. Raises UnreachablePorosity naming the lowest porosity reached.
    """
    if not 0 < porosity < 1:
        raise MicrostructureError(f"calender.porosity: must be in (0, 1), got {porosity}")
    box0 = particles.box
    solid0 = union_volume(particles)
    phi0 = solid0 / box0.volume
    target = 1 - porosity
    if target <= phi0 + 1e-9:
        raise MicrostructureError(
            f"calender.porosity: {porosity:.4f} is not below the uncalendered porosity "
            f"{1 - phi0:.4f}; calendering only compresses"
        )
    arrays = dict(
        phase=particles.phase,
        shell_thickness=particles.shell_thickness,
        shell_phase=particles.shell_phase,
        layer=particles.layer,
    )
    zlo = particles.meta.get("zlo")
    zhi = particles.meta.get("zhi")
    zlo = np.zeros(len(particles)) if zlo is None else np.asarray(zlo, float)
    zhi = np.full(len(particles), box0.height) if zhi is None else np.asarray(zhi, float)
    h_final = box0.height * phi0 / target  # first guess: no overlap loss
    heights = np.linspace(box0.height, h_final, steps + 1)[1:]
    x = particles.centers.copy()
    bar = tqdm(heights, desc="calendering", unit="step", disable=not _bar(progress), leave=False)

    def compress(x_ref, f_ref, f):
        box = Box((*box0.lateral, box0.height * f), box0.periodic)
        xs = x_ref.copy()
        xs[:, -1] *= f / f_ref
        st = PackState(box, np.ascontiguousarray(xs), particles.radii.copy(), zlo * f, zhi * f)
        _, viol = settle_contacts(st, contacts, calendering=True, band=False)
        return st, viol, union_volume(_as_particles(st, **arrays)) / box.volume

    def unreachable(best_phi):
        return UnreachablePorosity(
            "calender.porosity",
            porosity,
            1 - best_phi,
            f"overlaps would exceed {contacts.max_overlap:g} of the smaller radius",
        )

    state, f, phi = PackState(box0, x.copy(), particles.radii.copy(), zlo, zhi), 1.0, phi0
    for h in bar:
        st, viol, ph = compress(state.x, f, h / box0.height)
        if viol >= contacts.tolerance:
            raise unreachable(phi)
        state, f, phi = st, h / box0.height, ph
        bar.set_postfix(porosity=f"{1 - phi:.3f}", refresh=False)
    # secant iterations on the height absorb the overlap losses
    for _ in range(8):
        if abs(phi - target) < POROSITY_TOL:
            break
        st, viol, ph = compress(state.x, f, f * phi / target)
        if viol >= contacts.tolerance:
            raise unreachable(phi)
        state, f, phi = st, f * phi / target, ph
    # finally clear near-tangent contacts (slivers); a residual below the clearance is kept
    _, viol = settle_contacts(state, contacts, calendering=True)
    if viol >= contacts.clearance:
        raise unreachable(phi)
    if viol >= contacts.tolerance:
        log.warning(
            "calendering: near-tangent contacts resolved only to %.3g of the radius "
            "(clearance %.3g); the mesh may need a finer size near contacts",
            contacts.clearance - viol,
            contacts.clearance,
        )
    phi = union_volume(_as_particles(state, **arrays)) / state.box.volume
    out = _as_particles(state, **arrays)
    out.meta = {
        **particles.meta,
        "zlo": (zlo * f).tolist(),
        "zhi": (zhi * f).tolist(),
        "calendering": {
            "height_before_um": box0.height,
            "height_after_um": state.box.height,
            "porosity_before": 1 - phi0,
            "porosity_after": 1 - phi,
            "max_overlap": contacts.max_overlap,
            "clearance_achieved": max(contacts.clearance - viol, 0.0),
        },
    }
    return out


def check_overlap_free(state_or_particles, tol: float = 1e-3) -> float:
    """Largest pair overlap relative to the smaller radius (0 when none)."""
    from .measure import contact_pairs

    p = state_or_particles
    i, j, d = contact_pairs(p, 0.0)
    if len(i) == 0:
        return 0.0
    rmin = np.minimum(p.radii[i], p.radii[j])
    return float(np.max((p.radii[i] + p.radii[j] - d) / rmin))


def random_radii_to_fraction(
    radii: np.ndarray, volume: float, solid_fraction: float, dim: int
) -> np.ndarray:
    """Scale radii so their total volume is exactly ``solid_fraction * volume``."""
    v = float(np.sum(ball_volume(radii, dim)))
    if v == 0:
        return radii
    return radii * (solid_fraction * volume / v) ** (1 / dim)


__all__ = [
    "ContactModel",
    "UnreachablePorosity",
    "PackState",
    "calender",
    "grow",
    "jam",
    "match_porosity",
    "settle_contacts",
    "initial_state",
    "check_overlap_free",
    "random_radii_to_fraction",
]
