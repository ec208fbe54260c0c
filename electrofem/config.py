"""TOML configuration -> typed recipe. Every error names the offending field.

Lengths are micrometres (µm), densities g/cm³. A complete example, every key optional unless
marked::

    seed = 1
    preset = "L-S"          # L-S, S-L, Mix, L-Dry-S, S-Dry-L, Mix-Dry-Mix; or [[layers]]
    ratio = "5:5"           # preset: L:S thickness ratio (Mix: volume ratio)
    porosity = 0.40         # preset: porosity of every layer
    intermix = 0.0          # µm, intermixed band at internal layer boundaries
    std_fraction = 0.0      # preset: lognormal spread (std / mean radius)

    [box]                   # required
    width = 50.0
    depth = 50.0            # 3D only: its presence makes the case 3D
    height = 146.0
    periodic = true         # lateral sides periodic (default) or walls

    [[layers]]              # bottom (current collector) to top (separator)
    name = "L"
    thickness_fraction = 0.5
    porosity = 0.40
    [[layers.particles]]
    phase = "active"        # active | second | binder
    volume_fraction = 1.0   # share of the layer's solid volume
    diameter = 11.3         # fixed size; or distribution = "lognormal" with mean_diameter,
                            # std_diameter[, min_diameter, max_diameter]; or distribution =
                            # "mixture" with diameters = [...] and volume_fractions = [...]
    shell_thickness = 0.0   # µm coating
    shell_phase = "second"

    [contacts]              # see electrofem.microstructure.ContactModel
    mode = "overlap"        # or "gap"
    overlap = 0.05
    gap = 0.05
    clearance = 0.02
    max_overlap = 0.15

    [calender]
    porosity = 0.25         # compress the height to this porosity

    [particles]
    csv = "particles.csv"   # bring your own particles (x, y[, z], r, phase): no packing

    [density]               # g/cm³ by phase
    active = 4.75

    [mesh]                  # see electrofem.mesh.MeshOptions
    size = 1.0
    radius_factor = 0.25
    order = 1               # 2: curved cells (transport and conductivity only)
    electrolyte_only = false  # 3D: mesh the pore alone (electrolyte transport only)
    mend_rounds = 2         # 3D: mesh again, refined, while a cell is below quality 0.1
    same_phase_contacts = false  # 3D discrete route: active|active contact facets too

    [transport]             # see electrofem.physics.transport.TransportOptions
    phase = "electrolyte"   # or "solid", or "active,second"
    directions = ["all"]    # or e.g. ["z"]
    n_slabs = 20            # through-thickness profiles
    electrode = "positive"  # PyBaMM export
    degree = 2              # Lagrange degree (default: the mesh's geometry order)
    [transport.coefficients]
    electrolyte = 1.0       # per-phase diffusivity/conductivity (ratios matter)

    [discharge]             # see electrofem.physics.electrochem.DischargeOptions
    c_rates = [0.1, 0.5, 1.0]
    v_min_V = 2.7           # discharge cut-off
    v_max_V = 4.3           # charge cut-off
    rest_s = 0.0            # rest after the discharge
    charge = false          # CC charge after the discharge (and rest)
    cv_hold = false         # CC-CV: then hold v_max_V until the current < cv_cutoff_c_rate
    checkpoint_every_steps = 50
    wetting = "infil-out"   # a partly wetted electrode: an infiltration output [:TIME s]
    wetting_threshold = 0.5 # pore cells below this electrolyte fraction hold air

    [infiltration]          # see electrofem.physics.vof.InfiltrationOptions (SI units)
    inlet_speed_m_s = 1e-4
    surface_tension_N_m = 0.035
    contact_angle_deg = 30.0
    t_end_s = 0.5           # omit: fill_factor x the pore-filling time
    capillary_factor = 20.0
    output_interval_s = 0.01
    checkpoint_every_steps = 200
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from pathlib import Path

from . import tags
from .mesh.options import MeshOptions
from .microstructure import (
    Box,
    ContactModel,
    Electrode,
    Fixed,
    Layer,
    LogNormal,
    MicrostructureError,
    Mixture,
    Population,
    preset,
)
from .params import OptionsError, check_keys, finite, from_table, read_toml
from .physics.electrochem.options import DischargeOptions
from .physics.transport import ConductivityOptions, TransportOptions
from .physics.vof.options import InfiltrationOptions


class ConfigError(OptionsError):
    """A bad configuration; the message starts with the offending field."""


#: The options class of each job table (one options object per physics).
JOB_TABLES = {
    "transport": TransportOptions,
    "discharge": DischargeOptions,
    "infiltration": InfiltrationOptions,
    "conductivity": ConductivityOptions,
}


@dataclass
class Config:
    """A parsed configuration: what to build and how to mesh it."""

    box: Box
    electrode: Electrode | None
    particles_csv: Path | None
    mesh: MeshOptions
    density: dict[int, float] = field(default_factory=dict)
    seed: int = 0
    source: dict = field(default_factory=dict)
    transport: TransportOptions = field(default_factory=TransportOptions)
    discharge: DischargeOptions = field(default_factory=DischargeOptions)
    infiltration: InfiltrationOptions = field(default_factory=InfiltrationOptions)
    conductivity: ConductivityOptions = field(default_factory=ConductivityOptions)


TOP_KEYS = {
    "seed",
    "preset",
    "ratio",
    "porosity",
    "intermix",
    "std_fraction",
    "box",
    "layers",
    "contacts",
    "calender",
    "particles",
    "density",
    "mesh",
    "dim",
    "transport",
    "discharge",
    "infiltration",
    "conductivity",
}
BOX_KEYS = {"width", "depth", "height", "periodic"}
LAYER_KEYS = {"name", "thickness_fraction", "porosity", "particles"}
PARTICLE_KEYS = {
    "phase",
    "volume_fraction",
    "diameter",
    "distribution",
    "mean_diameter",
    "std_diameter",
    "min_diameter",
    "max_diameter",
    "diameters",
    "volume_fractions",
    "shell_thickness",
    "shell_phase",
}


def _check_keys(table: dict, allowed: set, where: str) -> None:
    try:
        check_keys(table, allowed, where)
    except OptionsError as err:
        raise ConfigError(str(err)) from None


def _is_number(v) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


def _num(table: dict, key: str, where: str, default=None, positive=False, kind=float):
    name = f"{where}.{key}" if where else key
    if key not in table:
        if default is None:
            raise ConfigError(f"{name}: required")
        return default
    v = table[key]
    if not _is_number(v):
        raise ConfigError(f"{name}: must be a number, got {v!r}")
    if not finite(v):
        raise ConfigError(f"{name}: must be a finite number, got {v}")
    if positive and not v > 0:
        raise ConfigError(f"{name}: must be positive, got {v}")
    return kind(v)


def _phase(value, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise ConfigError(f"{where}: must be a phase name or id, got {value!r}")
    try:
        p = tags.phase_id(value)
    except ValueError as err:
        raise ConfigError(f"{where}: {err}") from None
    if p not in tags.SOLID_PHASES:
        raise ConfigError(f"{where}: particles must be a solid phase, got {value!r}")
    return p


def _population(t: dict, where: str) -> Population:
    _check_keys(t, PARTICLE_KEYS, where)
    try:
        size = _size(t, where)
    except MicrostructureError as err:  # the distribution's own checks (radii, µm)
        raise ConfigError(f"{where}: {err}") from None
    return Population(
        size,
        _phase(t.get("phase", "active"), f"{where}.phase"),
        _num(t, "volume_fraction", where, default=1.0),
        _num(t, "shell_thickness", where, default=0.0),
        _phase(t.get("shell_phase", "second"), f"{where}.shell_phase"),
    )


def _size(t: dict, where: str):
    """The radius distribution of a ``[[layers.particles]]`` table (diameters in it)."""
    kind = t.get("distribution", "fixed")
    if kind == "fixed":
        size = Fixed(_num(t, "diameter", where, positive=True) / 2)
    elif kind == "lognormal":
        mean = _num(t, "mean_diameter", where, positive=True) / 2
        std = _num(t, "std_diameter", where, default=0.0) / 2
        if std < 0:
            raise ConfigError(f"{where}.std_diameter: must be >= 0, got {2 * std}")
        lo = t.get("min_diameter")
        hi = t.get("max_diameter")
        size = LogNormal(
            mean,
            std,
            None if lo is None else _num(t, "min_diameter", where, positive=True) / 2,
            None if hi is None else _num(t, "max_diameter", where, positive=True) / 2,
        )
    elif kind == "mixture":
        ds = t.get("diameters")
        fs = t.get("volume_fractions")
        if not isinstance(ds, list) or not isinstance(fs, list) or len(ds) != len(fs) or not ds:
            raise ConfigError(
                f"{where}.diameters: a mixture needs equal-length lists diameters and "
                "volume_fractions"
            )
        for k, d in enumerate(ds):
            if not _is_number(d) or not (finite(d) and d > 0):
                raise ConfigError(f"{where}.diameters[{k}]: must be positive, got {d!r}")
        for k, f in enumerate(fs):
            if not _is_number(f) or not (finite(f) and f >= 0):
                raise ConfigError(f"{where}.volume_fractions[{k}]: must be >= 0, got {f!r}")
        size = Mixture(tuple((Fixed(d / 2), float(f)) for d, f in zip(ds, fs, strict=True)))
    else:
        raise ConfigError(
            f"{where}.distribution: must be fixed, lognormal or mixture, got {kind!r}"
        )
    return size


def _ratio(value) -> tuple[float, float]:
    """``"3:7"`` or ``[3, 7]``: two finite non-negative numbers, not both 0; or one number in
    [0, 1], the L share (``0.3`` is ``"3:7"``; a study can sweep it as a continuous value)."""
    ab = None
    if _is_number(value) and finite(value) and 0 <= value <= 1:
        ab = (float(value), 1.0 - float(value))
    elif isinstance(value, str) and ":" in value:
        try:
            ab = tuple(float(v) for v in value.split(":", 1))
        except ValueError:
            pass
    elif isinstance(value, list) and len(value) == 2 and all(_is_number(v) for v in value):
        ab = tuple(value)
    if ab is None or not all(finite(v) and v >= 0 for v in ab) or not sum(ab) > 0:
        raise ConfigError(
            "ratio: must look like '3:7' or [3, 7] (non-negative, not both 0), or be an L share "
            f"in [0, 1], got {value!r}"
        )
    return float(ab[0]), float(ab[1])


def parse(data: dict, base_dir: Path | None = None) -> Config:
    """Build a :class:`Config` from a TOML-like dict; raise ConfigError naming the field."""
    try:
        return _parse(data, base_dir or Path.cwd())
    except MicrostructureError as err:
        raise ConfigError(str(err)) from None


def parse_options(cls, table: dict, where: str):
    """An options table (``[transport]``, ``[discharge]``, ``[infiltration]``, ``[mesh]``) ->
    its options object; every key and value checked, ConfigError names the field."""
    try:
        return from_table(cls, table, where)
    except (TypeError, ValueError) as err:
        msg = str(err)
        raise ConfigError(msg if msg.startswith(where) else f"{where}: {msg}") from None


def _parse(data: dict, base_dir: Path) -> Config:
    cfg = _parse_structure(data, base_dir)
    for name, cls in JOB_TABLES.items():
        setattr(cfg, name, parse_options(cls, data.get(name, {}), name))
    w = cfg.discharge.wetting  # like particles.csv: relative to the config file
    if w and not Path(w.split(":")[0]).is_absolute():
        cfg.discharge.wetting = str(base_dir / w)
    return cfg


def _parse_structure(data: dict, base_dir: Path) -> Config:
    _check_keys(data, TOP_KEYS, "")
    if "box" not in data:
        raise ConfigError("box: required (width, height[, depth])")
    bt = data["box"]
    _check_keys(bt, BOX_KEYS, "box")
    width = _num(bt, "width", "box", positive=True)
    height = _num(bt, "height", "box", positive=True)
    dim = 3 if "depth" in bt else 2
    if "dim" in data and data["dim"] != dim:
        depth = "a depth" if dim == 3 else "no depth"
        raise ConfigError(f"dim: must be {dim} (box has {depth}), got {data['dim']!r}")
    size = (width, height) if dim == 2 else (width, _num(bt, "depth", "box", positive=True), height)
    periodic = bt.get("periodic", True)
    if not isinstance(periodic, bool):
        raise ConfigError(f"box.periodic: must be true or false, got {periodic!r}")
    box = Box(size, periodic)
    seed = data.get("seed", 0)
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ConfigError(f"seed: must be a non-negative integer, got {seed!r}")

    ct = data.get("contacts", {})
    _check_keys(ct, {f.name for f in fields(ContactModel)}, "contacts")
    contacts = ContactModel(**ct)

    cal = data.get("calender", {})
    _check_keys(cal, {"porosity"}, "calender")
    cal_por = _num(cal, "porosity", "calender") if "porosity" in cal else None

    dens = data.get("density", {})
    _check_keys(dens, set(tags.PHASES) - {"electrolyte"}, "density")
    density = {tags.phase_id(k): _num(dens, k, "density", positive=True) for k in dens}

    mesh = parse_options(MeshOptions, data.get("mesh", {}), "mesh")

    intermix = _num(data, "intermix", "", default=0.0) if "intermix" in data else None
    csv = data.get("particles", {})
    _check_keys(csv, {"csv"}, "particles")
    particles_csv = None
    if "csv" in csv:
        if not isinstance(csv["csv"], str) or not csv["csv"].strip():
            raise ConfigError(f"particles.csv: must be a file name, got {csv['csv']!r}")
        particles_csv = Path(csv["csv"])
        if not particles_csv.is_absolute():
            particles_csv = base_dir / particles_csv
        if "layers" in data or "preset" in data:
            raise ConfigError("particles.csv: give either particles.csv or layers/preset, not both")
        return Config(box, None, particles_csv, mesh, density, seed, data)

    if "preset" in data and "layers" in data:
        raise ConfigError("preset: give either preset or [[layers]], not both")
    if "preset" in data:
        kw = dict(
            dim=dim,
            width=size[0],
            depth=size[1] if dim == 3 else 50.0,
            height=height,
            ratio=_ratio(data.get("ratio", "5:5")),
            porosity=_num(data, "porosity", "", default=0.40),
            intermix=intermix,
            std_fraction=_num(data, "std_fraction", "", default=0.0),
            contacts=contacts,
            calender_porosity=cal_por,
            seed=seed,
            periodic=periodic,
        )
        electrode = preset(str(data["preset"]), **kw)
    elif "layers" in data:
        for key in ("ratio", "porosity", "std_fraction"):
            if key in data:
                raise ConfigError(f"{key}: only used with preset; set it per layer instead")
        lts = data["layers"]
        if not isinstance(lts, list) or not lts:
            raise ConfigError("layers: must be a non-empty array of tables [[layers]]")
        layers = []
        for k, lt in enumerate(lts):
            where = f"layers[{k}]"
            _check_keys(lt, LAYER_KEYS, where)
            pts = lt.get("particles")
            if not isinstance(pts, list) or not pts:
                raise ConfigError(f"{where}.particles: required ([[layers.particles]])")
            pops = tuple(_population(pt, f"{where}.particles[{j}]") for j, pt in enumerate(pts))
            layers.append(
                Layer(
                    _num(lt, "thickness_fraction", where, default=1.0 if len(lts) == 1 else None),
                    _num(lt, "porosity", where),
                    pops,
                    str(lt.get("name", f"layer{k}")),
                )
            )
        electrode = Electrode(
            box,
            tuple(layers),
            intermix=intermix or 0.0,
            contacts=contacts,
            calender_porosity=cal_por,
            seed=seed,
            density=density,
        )
    else:
        raise ConfigError("layers: give a preset, [[layers]] or particles.csv")
    electrode.validate()
    return Config(box, electrode, None, mesh, density, seed, data)


def load(path: str | Path) -> Config:
    """Read and parse a TOML configuration file."""
    path = Path(path)
    return parse(read_toml(path, "config", ConfigError), path.parent)
