"""Fuzz the config reader (issue 12): every input either parses or raises ConfigError with one
line "<field>: <what>, got <value>"; the command line answers every invalid config with exit
status 2 and one stderr line. No other exception may escape (TypeError, KeyError,
ZeroDivisionError, OverflowError, numpy warnings ...).

Inputs are TOML-like trees of the known tables and keys (``electrofem.config``) with random
types and values: NaN, inf, negative, huge and tiny numbers, strings, booleans, dates, lists,
nested tables, unknown keys. Three generators: valid configurations with a few keys changed
(reaching every check), random trees, and each table alone (deep places such as a particle's
phase get as many examples as the top level). A config that parses must hold finite numbers
only and pass or fail the pre-packing size estimate in one line. 300 examples each, fixed seed;
``ELECTROFEM_FUZZ_EXAMPLES=5000`` runs a longer random search. The particles CSV reader
(``[particles] csv``) gets the same treatment: random headers and rows either read or fail in
one line naming the file. The bugs found are pinned as explicit regression tests at the end.
"""

from __future__ import annotations

import contextlib
import copy
import csv
import dataclasses
import datetime
import io
import json
import math
import os
import re
import tempfile
import warnings
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from electrofem import cli, tags
from electrofem.config import (
    BOX_KEYS,
    JOB_TABLES,
    LAYER_KEYS,
    PARTICLE_KEYS,
    TOP_KEYS,
    Config,
    ConfigError,
    parse,
)
from electrofem.mesh.options import MeshOptions
from electrofem.microstructure import (
    Box,
    ContactModel,
    MicrostructureError,
    Particles,
    check_resources,
)

_EXAMPLES = os.environ.get("ELECTROFEM_FUZZ_EXAMPLES")
FUZZ = settings(
    max_examples=int(_EXAMPLES or 300),
    deadline=None,
    derandomize=_EXAMPLES is None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)

#: A message "<field>: <what>": the field is a dotted path of bare or quoted TOML keys, with
#: indices (``layers[0].particles[1].diameter``, ``box."a b"``, ``v_min_V/v_max_V``).
_SEGMENT = r'(?:[A-Za-z0-9_\-\[\]/]+|"(?:[^"\\]|\\.)*")'
MESSAGE = re.compile(rf"^{_SEGMENT}(?:\.{_SEGMENT})*: \S")

# --- values ---------------------------------------------------------------------------------

NAMES = [
    "active", "second", "binder", "electrolyte", "solid", "active,second", "L-S", "S-L", "Mix",
    "L-Dry-S", "Mix-Dry-Mix", "gap", "overlap", "fixed", "lognormal", "mixture", "3:7", "5:5",
    "0:0", "1:-1", "nan:1", "a:b", "x", "y", "z", "all", "positive", "negative", "courant",
    "scheduled", "", " ", "ä", "particles.csv",
]  # fmt: skip
NUMBERS = [
    0, 1, 2, 3, -1, 0.0, 0.5, 0.4, 0.3, 0.02, 0.08, 0.15, 0.45, 0.999, 1.0, 1.5, 2.0, 4.5, 5.0,
    11.3, 20.0, 50.0, 146.0, 1e-4, 1e-12, 1e6, 1e300, -1e300, 5e-324, 2**31, 2**63 - 1, -(2**63),
    math.inf, -math.inf, math.nan,
]  # fmt: skip

INT64 = st.integers(min_value=-(2**63), max_value=2**63 - 1)
scalars = st.one_of(
    st.sampled_from(NUMBERS),
    st.sampled_from(NAMES),
    st.booleans(),
    INT64,
    st.floats(allow_nan=True, allow_infinity=True),
    st.floats(min_value=0, max_value=1),
    st.text(max_size=6),
    st.dates(),
    st.times(),
    st.datetimes(),
)
keys = st.text(alphabet="abcdehilmnoprstuwxyz_.-[] 0", min_size=0, max_size=8)
anything = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(keys, inner, max_size=3),
    max_leaves=8,
)
# mostly plausible values, sometimes anything (a list where a number belongs, a table, ...)
# (tomllib reads integers of any size: 10**400 is a valid TOML value for it)
EXTREMES = [math.nan, math.inf, -math.inf, 1e300, -1e300, 1e-300, 5e-324, 2**63 - 1, 10**400]
values = st.one_of(
    st.sampled_from(NUMBERS),
    st.sampled_from(EXTREMES),
    st.sampled_from(NAMES),
    st.booleans(),
    anything,
)


@st.composite
def table(draw, known, special=None, unknown=True):
    """A table of some of the ``known`` keys (``special``: key -> strategy), sometimes with an
    unknown key."""
    special = special or {}
    out = {}
    for key in draw(st.lists(st.sampled_from(sorted(known)), unique=True, max_size=len(known))):
        out[key] = draw(special.get(key, values))
    if unknown and draw(st.integers(0, 9)) == 0:
        out[draw(keys)] = draw(values)
    return out


def _toml(v):
    """A default as TOML gives it back (tuples are arrays)."""
    if isinstance(v, tuple | list):
        return [_toml(x) for x in v]
    if isinstance(v, dict):
        return {k: _toml(x) for k, x in v.items()}
    return v


def _defaults(cls) -> dict:
    """The options class's defaults as a TOML table (``None``: no TOML value, left out)."""
    return {k: _toml(v) for k, v in dataclasses.asdict(cls()).items() if v is not None}


def _subset(draw, full: dict) -> dict:
    names = draw(st.lists(st.sampled_from(sorted(full)), unique=True, max_size=6))
    return {k: full[k] for k in names}


def _fields(cls) -> set[str]:
    return {f.name for f in dataclasses.fields(cls)}


lengths = st.one_of(st.sampled_from([1.0, 4.5, 11.3, 20.0, 50.0, 146.0]), values)
sizes = st.lists(st.sampled_from([2.0, 4.5, 8.0, 11.3, -1.0, 0.0, math.nan]), max_size=3)
fractions = st.lists(st.sampled_from([0.0, 0.4, 0.6, 1.0, -0.5, math.inf]), max_size=3)
particle = table(
    PARTICLE_KEYS,
    {
        "diameters": st.one_of(sizes, values),
        "volume_fractions": st.one_of(fractions, values),
        "distribution": st.one_of(st.sampled_from(["fixed", "lognormal", "mixture"]), values),
        "diameter": lengths,
        "mean_diameter": lengths,
    },
)
layer = table(
    LAYER_KEYS,
    {"particles": st.one_of(st.lists(particle, min_size=1, max_size=2), values)},
)
schedule = st.lists(st.lists(st.sampled_from([0.0, 1e-4, 0.1, 2e-4, -1.0, math.nan])), max_size=2)
TABLES = {
    "box": table(BOX_KEYS, {k: lengths for k in ("width", "height", "depth")}),
    "contacts": table(_fields(ContactModel)),
    "calender": table({"porosity"}),
    "particles": table({"csv"}),
    "density": table(set(tags.PHASES)),
    "mesh": table(_fields(MeshOptions)),
    "layers": st.one_of(st.lists(layer, min_size=1, max_size=2), values),
    **{
        name: table(
            _fields(cls),
            {
                "coefficients": table(set(tags.PHASES)),
                "conductivities_S_m": table(set(tags.PHASES)),
                "dt_schedule_s": schedule,
                "petsc_options": st.dictionaries(keys, scalars, max_size=2),
            },
        )
        for name, cls in JOB_TABLES.items()
    },
}


# --- valid configurations, then mutated -------------------------------------------------------

POPULATIONS = [
    {"diameter": 11.3},
    {"diameter": 4.5, "phase": "active", "shell_thickness": 0.25, "shell_phase": "second"},
    {"distribution": "lognormal", "mean_diameter": 6.0, "std_diameter": 0.6},
    {"distribution": "lognormal", "mean_diameter": 5.0, "std_diameter": 1.0, "min_diameter": 3.0,
     "max_diameter": 8.0},
    {"distribution": "mixture", "diameters": [8.0, 4.0], "volume_fractions": [0.6, 0.4]},
    {"diameter": 2.5, "phase": "binder"},
]  # fmt: skip


@st.composite
def valid_configs(draw):
    """A configuration that parses (most of the time): box, a preset or layers or a CSV, and
    some of the other tables with their default or example values."""
    dim = draw(st.sampled_from([2, 3]))
    box = {"width": draw(st.sampled_from([20.0, 30.0, 50]))}
    box["height"] = draw(st.sampled_from([40.0, 60, 146.0]))
    if dim == 3:
        box["depth"] = draw(st.sampled_from([20.0, 30]))
    if draw(st.booleans()):
        box["periodic"] = draw(st.booleans())
    data = {"box": box}
    if draw(st.booleans()):
        data["seed"] = draw(st.integers(0, 5))
    if draw(st.integers(0, 4)) == 0:
        data["dim"] = dim
    kind = draw(st.sampled_from(["preset", "preset", "layers", "csv"]))
    if kind == "preset":
        data["preset"] = draw(st.sampled_from(["L-S", "S-L", "Mix", "L-Dry-S", "S-Dry-L"]))
        for key, choices in (
            ("ratio", ["3:7", "5:5", [7, 3]]),
            ("porosity", [0.4, 0.45]),
            ("intermix", [0.0, 5.0]),
            ("std_fraction", [0.0, 0.1]),
        ):
            if draw(st.booleans()):
                data[key] = draw(st.sampled_from(choices))
    elif kind == "layers":
        n = draw(st.integers(1, 2))
        data["layers"] = []
        for k in range(n):
            chosen = draw(st.lists(st.sampled_from(POPULATIONS), min_size=1, max_size=2))
            pops = [copy.deepcopy(p) for p in chosen]
            if len(pops) == 2:
                pops[0]["volume_fraction"], pops[1]["volume_fraction"] = 0.7, 0.3
            layer = {"porosity": draw(st.sampled_from([0.4, 0.5])), "particles": pops}
            if n == 2:
                layer["thickness_fraction"] = [0.4, 0.6][k]
            if draw(st.booleans()):
                layer["name"] = f"layer{k}"
            data["layers"].append(layer)
    else:
        data["particles"] = {"csv": "particles.csv"}
    if draw(st.booleans()):
        mode = draw(st.sampled_from(["overlap", "gap"]))
        data["contacts"] = {"mode": mode, **_subset(draw, _defaults(ContactModel))}
        data["contacts"]["mode"] = mode
    if kind != "csv" and draw(st.integers(0, 3)) == 0:
        data["calender"] = {"porosity": 0.3}
    if draw(st.integers(0, 3)) == 0:
        data["density"] = {"active": 4.75, "second": 3.95}
    if draw(st.booleans()):
        data["mesh"] = {**_subset(draw, _defaults(MeshOptions)), "size": 2.0}
    for name, cls in JOB_TABLES.items():
        if draw(st.integers(0, 3)) == 0:
            data[name] = _subset(draw, _defaults(cls))
    return data


#: The keys of every table a mutation may touch ("" is the top level).
KNOWN = {
    "": TOP_KEYS,
    "box": BOX_KEYS,
    "contacts": _fields(ContactModel),
    "calender": {"porosity"},
    "particles": {"csv"},
    "density": set(tags.PHASES),
    "mesh": _fields(MeshOptions),
    **{name: _fields(cls) for name, cls in JOB_TABLES.items()},
}
#: Values that fit a key's shape (tables, pairs, phases), tried besides the plain ones.
phases = st.sampled_from(["active", "SECOND", "binder", "electrolyte", 1, 2, 3, 4, 9, -1, 2.7,
                          math.inf, math.nan, True, 2**63 - 1, [2]])  # fmt: skip
SHAPED = {
    "phase": phases,
    "shell_phase": phases,
    "coefficients": table(set(tags.PHASES)),
    "conductivities_S_m": table(set(tags.PHASES)),
    "dt_schedule_s": schedule,
    "petsc_options": st.dictionaries(keys, scalars, max_size=2),
    "diameters": sizes,
    "volume_fractions": fractions,
    "ratio": st.lists(st.sampled_from([0, 1, 3.0, -1, math.nan, math.inf]), max_size=3),
    "c_rates": st.lists(st.sampled_from([0.1, 1, 1, -1, 0, math.nan, True]), max_size=3),
    "directions": st.lists(st.sampled_from(["x", "y", "z", "all", "w", 1]), max_size=3),
}


@st.composite
def _mutate(draw, data: dict) -> None:
    """Replace, delete or add one key of one table (every table as likely as the others)."""
    target = draw(st.sampled_from(["", "layers", "layers", "layers", *sorted(set(KNOWN) - {""})]))
    if target == "layers":
        layers = data.get("layers")
        if not (isinstance(layers, list) and layers and isinstance(layers[0], dict)):
            return
        tbl, known = draw(st.sampled_from(layers)), LAYER_KEYS
        pts = tbl.get("particles")
        if isinstance(pts, list) and pts and isinstance(pts[0], dict) and draw(st.integers(0, 2)):
            tbl, known = draw(st.sampled_from(pts)), PARTICLE_KEYS
    elif target:
        tbl, known = data.setdefault(target, {}), KNOWN[target]
        if not isinstance(tbl, dict):
            return
    else:
        tbl, known = data, KNOWN[""]
    action = draw(st.sampled_from(["replace", "replace", "replace", "delete", "add"]))
    if action == "delete" and tbl:
        del tbl[draw(st.sampled_from(sorted(tbl)))]
    elif action == "add":
        tbl[draw(keys)] = draw(values)
    else:
        key = draw(st.sampled_from(sorted(known)))
        tbl[key] = draw(st.one_of(SHAPED[key], values) if key in SHAPED else values)


@st.composite
def mutated_configs(draw):
    """A valid configuration with one to three keys replaced (by plausible or wild values),
    deleted or added: every check of the reader gets reached."""
    data = copy.deepcopy(draw(valid_configs()))
    for _ in range(draw(st.integers(1, 3))):
        draw(_mutate(data))
    return data


@st.composite
def random_configs(draw):
    """A TOML-like tree of the known tables and keys with random values: usually a box."""
    data = draw(table(TOP_KEYS - {"box"}, TABLES))
    if draw(st.integers(0, 9)) > 0:
        data["box"] = draw(TABLES["box"])
    if draw(st.integers(0, 2)) == 0:
        data.setdefault("preset", draw(st.sampled_from(["L-S", "Mix", "S-Dry-L"])))
    return data


configs = st.one_of(mutated_configs(), mutated_configs(), random_configs(), valid_configs())


# --- one table at a time ---------------------------------------------------------------------

#: A valid table for each place of the one-table fuzz ("" is the top level, with a preset).
VALID = {
    "": {"seed": 1, "preset": "L-S", "ratio": "3:7", "porosity": 0.4, "std_fraction": 0.0},
    "box": {"width": 30.0, "height": 40.0, "periodic": True},
    "layers[0]": {"name": "L", "thickness_fraction": 1.0, "porosity": 0.4},
    "layers[0].particles[0]": {
        "diameter": 5.0,
        "phase": "active",
        "volume_fraction": 1.0,
        "shell_thickness": 0.2,
        "shell_phase": "second",
    },
    "contacts": _defaults(ContactModel),
    "calender": {"porosity": 0.3},
    "particles": {"csv": "particles.csv"},
    "density": {"active": 4.75, "second": 3.95, "binder": 1.9},
    "mesh": _defaults(MeshOptions),
    **{name: _defaults(cls) for name, cls in JOB_TABLES.items()},
}
KNOWN_AT = {**KNOWN, "layers[0]": LAYER_KEYS, "layers[0].particles[0]": PARTICLE_KEYS}


#: For a key that holds a number: extremes first, then plausible numbers, then anything.
NUMERIC = st.one_of(st.sampled_from(EXTREMES), st.sampled_from(NUMBERS), values)


_SHAPED = {k: s if k.endswith("phase") else st.one_of(s, values) for k, s in SHAPED.items()}
_SHAPED.update({k: lengths for k in ("width", "height", "depth", "diameter", "mean_diameter")})


@st.composite
def one_table(draw, where: str) -> dict:
    """The valid table of ``where`` with one to three keys replaced, deleted or added."""
    tbl = copy.deepcopy(VALID[where])
    for _ in range(draw(st.integers(1, 3))):
        action = draw(st.sampled_from(["replace"] * 6 + ["delete", "add"]))
        if action == "delete" and tbl:
            del tbl[draw(st.sampled_from(sorted(tbl)))]
        elif action == "add":
            tbl[draw(keys)] = draw(values)
        else:
            key = draw(st.sampled_from(sorted(KNOWN_AT[where])))
            was = VALID[where].get(key)
            numeric = isinstance(was, int | float) and not isinstance(was, bool)
            tbl[key] = draw(_SHAPED.get(key, NUMERIC if numeric else values))
    return tbl


# --- TOML writer (tomllib reads only) -------------------------------------------------------


def _key(k: str) -> str:
    return k if re.fullmatch(r"[A-Za-z0-9_-]+", k) else _string(k)


def _string(s: str) -> str:
    return json.dumps(s, ensure_ascii=False).replace("\x7f", "\\u007f")


def _value(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        return (
            "nan" if math.isnan(v) else ("inf" if v > 0 else "-inf") if math.isinf(v) else repr(v)
        )
    if isinstance(v, str):
        return _string(v)
    if isinstance(v, datetime.date | datetime.time):
        return v.isoformat()
    if isinstance(v, list):
        return "[" + ", ".join(_value(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{" + ", ".join(f"{_key(k)} = {_value(x)}" for k, x in v.items()) + "}"
    raise TypeError(v)


def to_toml(data: dict) -> str:
    return "".join(f"{_key(k)} = {_value(v)}\n" for k, v in data.items())


# --- the properties -------------------------------------------------------------------------


def _parse_or_config_error(data: dict, base: Path) -> Config | None:
    """Parse; a ConfigError must be one line "<field>: <what>". ``None`` for an error."""
    try:
        cfg = parse(data, base)
    except ConfigError as err:
        msg = str(err)
        assert len(msg.splitlines()) == 1, msg
        assert MESSAGE.match(msg), msg
        return None
    assert isinstance(cfg, Config)
    bad = list(_non_finite(cfg, "config"))
    assert not bad, f"parsed, but not finite: {bad}"
    if cfg.electrode is not None:  # the checks before packing: the estimate of its size
        try:
            check_resources(cfg.electrode, mesh_size_um=cfg.mesh.size)
        except MicrostructureError as err:
            assert len(str(err).splitlines()) == 1 and MESSAGE.match(str(err)), str(err)
    return cfg


def _non_finite(obj, where: str):
    """Paths of the NaN/inf numbers in a parsed config (its raw ``source`` excepted)."""
    if isinstance(obj, float):
        if not math.isfinite(obj):
            yield where
    elif dataclasses.is_dataclass(obj):
        for f in dataclasses.fields(obj):
            if f.name not in ("source", "petsc_options"):
                yield from _non_finite(getattr(obj, f.name), f"{where}.{f.name}")
    elif isinstance(obj, dict):
        for k, v in obj.items():
            yield from _non_finite(v, f"{where}[{k!r}]")
    elif isinstance(obj, list | tuple):
        for k, v in enumerate(obj):
            yield from _non_finite(v, f"{where}[{k}]")


@FUZZ
@given(configs)
def test_parse_returns_a_config_or_one_line_config_error(data):
    _parse_or_config_error(data, Path(tempfile.gettempdir()))


@FUZZ
@pytest.mark.parametrize("where", sorted(VALID))
@given(data=st.data())
def test_each_table_fuzzed_alone(where, data):
    """One table of a valid config with a few keys changed: deep places (a particle's phase,
    a schedule's pairs) get as many examples as the top level."""
    cfg = {
        "box": {"width": 30.0, "height": 40.0},
        "layers": [{"porosity": 0.4, "particles": [{"diameter": 5.0}]}],
    }
    new = data.draw(one_table(where), label=where or "top level")
    if where in ("", "particles"):
        del cfg["layers"]  # a preset or a CSV instead
    if where == "":
        cfg.update(new)
    elif where == "layers[0]":
        cfg["layers"][0] = {"particles": [{"diameter": 5.0}], **new}
    elif where == "layers[0].particles[0]":
        cfg["layers"][0]["particles"][0] = new
    else:
        cfg[where] = new
    _parse_or_config_error(cfg, Path(tempfile.gettempdir()))


# --- the command line -----------------------------------------------------------------------


class _Accepted(Exception):
    """The stand-in for packing: the config was valid and passed the resource check."""


def _checks_only(cfg, outdir, comm=None, progress=True, picture=True, force=False):
    """``run_generate`` up to packing: the resource check (or the CSV read) on rank 0, with
    its errors broadcast as in the real job; then stop before any work."""
    from mpi4py import MPI

    from electrofem.jobs.generate import _root_call
    from electrofem.microstructure import Particles

    def checks():
        if cfg.particles_csv is not None:
            Particles.from_csv(cfg.particles_csv, cfg.box)
        else:
            check_resources(cfg.electrode, mesh_size_um=cfg.mesh.size, force=force)

    _root_call(comm or MPI.COMM_WORLD, "packing", checks)
    raise _Accepted


@pytest.fixture(scope="module")
def no_packing():
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr("electrofem.jobs.generate.run_generate", _checks_only)
        yield


@FUZZ
@given(data=configs)
def test_cli_generate_exit_2_and_one_line(no_packing, data):
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "config.toml"
        path.write_text(to_toml(data), encoding="utf-8")
        err = io.StringIO()
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
            try:
                code = cli.main(["generate", str(path), "-o", str(Path(tmp) / "out"), "-q"])
            except _Accepted:
                return
        lines = err.getvalue().strip().splitlines()
        assert code == 2, (code, lines)
        assert len(lines) == 1 and lines[0].startswith("electrofem: error: "), lines


def test_toml_writer_round_trips():
    import tomllib

    data = {
        "a b": [1, 2.5, "x\x7f\n", {"c": math.inf}],
        "box": {"width": -0.0, "when": datetime.date(2020, 1, 2)},
    }
    assert tomllib.loads(to_toml(data)) == data


# --- the particles CSV ---------------------------------------------------------------------

CSV_COLUMNS = ["x", "y", "z", "r", "d", "radius", "diameter", "phase", "shell_thickness",
               "shell_phase", "layer", "extra", "", "X", " r ", "\r", "a\nb", "\u2028"]  # fmt: skip
cells = st.one_of(
    st.sampled_from(["1", "2.5", "10", "25", "0", "-1", "1e400", "nan", "inf", "", " ", "active",
                     "SECOND", "binder", "electrolyte", "2", "3", "2.0", "2.5e0", "9" * 30]),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.floats(min_value=0, max_value=60).map(lambda v: f"{v:.3g}"),
    st.text(max_size=5),
)  # fmt: skip


@st.composite
def csv_files(draw):
    """``(text, box)``: a header of known and odd columns, rows of numbers, names and junk."""
    dim = draw(st.sampled_from([2, 3]))
    box = Box((30.0, 40.0) if dim == 2 else (30.0, 30.0, 40.0), draw(st.booleans()))
    base = ["x", "y", "z"][:dim] + [draw(st.sampled_from(["r", "d", "radius", "diameter"]))]
    header = base + draw(st.lists(st.sampled_from(CSV_COLUMNS) | st.text(max_size=4), max_size=3))
    if draw(st.integers(0, 4)) == 0:
        header = draw(st.permutations(header))
    rows = draw(st.lists(st.lists(cells, min_size=len(header), max_size=len(header)), max_size=4))
    if rows and draw(st.integers(0, 4)) == 0:
        rows[-1] = rows[-1][: draw(st.integers(0, len(header)))]  # a short row
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(header)
    writer.writerows(rows)
    text = out.getvalue()
    if draw(st.integers(0, 9)) == 0:
        text = draw(st.sampled_from(["", "\n\n", 'x,y\n"unclosed', "\ufeffx,y,r\n1,2,3\n"]))
    return text, box


@FUZZ
@given(csv_files())
def test_particles_csv_reads_or_one_line_error(case):
    text, box = case
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "particles.csv"
        path.write_text(text, encoding="utf-8")
        try:
            parts = Particles.from_csv(path, box)
        except MicrostructureError as err:
            assert len(str(err).splitlines()) == 1, str(err)
            assert str(err).startswith(str(path)), str(err)  # names the file (and the row)
            return
    assert len(parts) >= 1 and np.all(np.isfinite(parts.centers)) and np.all(parts.radii > 0)


# --- regressions: the bugs found (by the fuzzer, and by probing its extremes) ---------------

B2 = {"box": {"width": 30.0, "height": 40.0}}
PRESET = {**B2, "preset": "L-S"}


def _layer(**particle) -> dict:
    """One layer of one population: 5 µm particles unless a distribution is given."""
    p = particle if "distribution" in particle else {"diameter": 5.0, **particle}
    return {**B2, "layers": [{"porosity": 0.4, "particles": [p]}]}


@pytest.mark.parametrize(
    "data, message",
    [
        # unknown keys that are not bare TOML keys are quoted (was ": unknown key")
        ({**PRESET, "": 0}, '"": unknown key'),
        ({**PRESET, "box": {**B2["box"], "a b": 1}}, 'box."a b": unknown key'),
        # top-level numbers are named without a leading dot (was ".intermix: ...")
        ({**PRESET, "intermix": True}, "intermix: must be a number, got True"),
        ({**PRESET, "porosity": [595]}, "porosity: must be a number, got [595]"),
        # a wrong type in [contacts] (was TypeError: '<=' not supported ...)
        ({**PRESET, "contacts": {"clearance": "active"}}, "contacts.clearance: must be in"),
        # mixture fractions that are not numbers (was TypeError in float())
        (
            _layer(distribution="mixture", diameters=[8.0, 4.0], volume_fractions=[{"": 1}, 0.4]),
            "layers[0].particles[0].volume_fractions[0]: must be >= 0, got {'': 1}",
        ),
        ({**B2, "particles": {"csv": False}}, "particles.csv: must be a file name, got False"),
        ({**PRESET, "ratio": [7, [1]]}, "ratio: must look like '3:7' or [3, 7]"),
        # NaN/inf were accepted into the recipe (NaN thickness fractions and volume fractions)
        ({**PRESET, "ratio": "nan:1"}, "ratio: must look like"),
        ({**PRESET, "ratio": "inf:1"}, "ratio: must look like"),
        ({**PRESET, "intermix": math.nan}, "intermix: must be a finite number, got nan"),
        (_layer(volume_fraction=math.nan), "layers[0].particles[0].volume_fraction: must be a f"),
        (_layer(shell_thickness=math.inf), "layers[0].particles[0].shell_thickness: must be a f"),
        (
            {
                **B2,
                "layers": [
                    {
                        "thickness_fraction": math.nan,
                        "porosity": 0.4,
                        "particles": [{"diameter": 5.0}],
                    }
                ],
            },
            "layers[0].thickness_fraction: must be a finite number, got nan",
        ),
        ({**PRESET, "dim": " "}, "dim: must be 2 (box has no depth), got ' '"),
        # a phase given as a float (was OverflowError for inf; 2.7 silently became 2, active)
        (
            _layer(phase=math.inf),
            "layers[0].particles[0].phase: must be a phase name or id, got inf",
        ),
        (_layer(shell_phase=2.7), "layers[0].particles[0].shell_phase: must be a phase name or id"),
        (
            {**PRESET, "mesh": {"optimize": math.inf}},
            "mesh.optimize: must be true or false, got inf",
        ),
        # a negative spread was silently ignored; a huge one overflowed (OverflowError)
        ({**PRESET, "std_fraction": -1}, "std_fraction: must be >= 0, got -1"),
        ({**PRESET, "std_fraction": 1e300}, "std_fraction: too large"),
        (
            _layer(distribution="lognormal", mean_diameter=5.0, std_diameter=-1.0),
            "layers[0].particles[0].std_diameter: must be >= 0, got -1.0",
        ),
        (
            _layer(distribution="lognormal", mean_diameter=5.0, std_diameter=1e300),
            "layers[0].particles[0]: size.std: too large for the mean 2.5 µm",
        ),
        # a truncation window in the far tail: ZeroDivisionError in the size estimate, and an
        # endless rejection-sampling loop in the packing
        (
            _layer(
                distribution="lognormal",
                mean_diameter=5.0,
                std_diameter=0.1,
                min_diameter=100.0,
                max_diameter=101.0,
            ),
            "layers[0].particles[0]: size.lower/upper: [50, 50.5] µm keeps a fraction 0",
        ),
        # integers beyond the float range, which tomllib reads (was OverflowError)
        (
            {**B2, "box": {"width": 10**400, "height": 40}, "preset": "L-S"},
            "box.width: must be a f",
        ),
        ({**PRESET, "ratio": [10**400, 1]}, "ratio: must look like"),
        ({**PRESET, "discharge": {"rest_s": 10**400}}, "discharge.rest_s: must be a finite"),
        ({**PRESET, "discharge": {"c_rates": [10**400]}}, "discharge.c_rates: must be finite"),
        ({**PRESET, "mesh": {"size": 10**400}}, "mesh.size: must be > 0"),
        # too large for the box: refused at parse time (was found only after drawing radii)
        (_layer(diameter=1e300), "layers[0].particles[0]: particle diameter 1e+300 µm is larger"),
    ],
)
def test_regressions_parse(data, message):
    with pytest.raises(ConfigError) as err:
        parse(data, Path(tempfile.gettempdir()))
    assert str(err.value).startswith(message), str(err.value)
    assert _parse_or_config_error(data, Path(tempfile.gettempdir())) is None


@pytest.mark.parametrize(
    "data, message",
    [
        # particles so small their volume underflows: ZeroDivisionError (now: ~inf particles)
        (_layer(diameter=1e-300), "box.height: the request needs ~inf particles"),
        # element sizes out of the float range: ZeroDivisionError / OverflowError
        ({**PRESET, "mesh": {"size": 1e-300, "size_min": 1e-300}}, "mesh.size: the request"),
        ({**PRESET, "mesh": {"size": 1e300}}, None),
        # a box past the float range: a numpy overflow warning, then "not enough values to
        # unpack" from the particle count inf
        ({**PRESET, "box": {"width": 1e300, "height": 1e300}}, "box.width: the request needs ~inf"),
    ],
)
def test_regressions_before_packing(data, message):
    cfg = parse(data, Path(tempfile.gettempdir()))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no numpy warning: one line on stderr
        if message is None:
            assert check_resources(cfg.electrode, mesh_size_um=cfg.mesh.size)["fits"]
        else:
            with pytest.raises(MicrostructureError) as err:
                check_resources(cfg.electrode, mesh_size_um=cfg.mesh.size)
            assert str(err.value).startswith(message), str(err.value)


def test_regression_cli_huge_box_one_line(no_packing, tmp_path):
    path = tmp_path / "c.toml"
    path.write_text(to_toml({**PRESET, "box": {"width": 1e300, "height": 1e300}}))
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        code = cli.main(["generate", str(path), "-o", str(tmp_path / "out"), "-q"])
    lines = err.getvalue().strip().splitlines()
    assert code == 2 and len(lines) == 1, lines
    assert lines[0].startswith("electrofem: error: box.width: the request needs ~inf particles")


def test_regressions_python_api():
    """The same checks for recipes built in Python (no config in between)."""
    from electrofem.microstructure import (
        Box,
        Electrode,
        Fixed,
        Layer,
        LogNormal,
        Population,
        preset,
    )

    with pytest.raises(MicrostructureError, match=r"size.lower/upper: .* keeps a fraction"):
        LogNormal(2.5, 0.05, 50.0, 50.5)  # would sample forever
    with pytest.raises(MicrostructureError, match="size.mean"):
        LogNormal(math.nan, 1.0)
    with pytest.raises(MicrostructureError, match="ratio"):
        preset("L-S", ratio=(math.nan, 1))
    with pytest.raises(MicrostructureError, match="std_fraction"):
        preset("L-S", std_fraction=-0.1)
    with pytest.raises(MicrostructureError, match="contacts.gap: must be in"):
        ContactModel(mode="gap", gap=[0.1])
    box = Box((30.0, 40.0))
    pop = Population(Fixed(2.5))
    for layer in (
        Layer(math.nan, 0.4, (pop,)),
        Layer(1.0, 0.4, (Population(Fixed(2.5), volume_fraction=math.nan),)),
        Layer(1.0, 0.4, (Population(Fixed(2.5), shell_thickness=math.nan),)),
    ):
        with pytest.raises(MicrostructureError):
            Electrode(box, (layer,)).validate()
    with pytest.raises(MicrostructureError, match="intermix"):
        Electrode(box, (Layer(1.0, 0.4, (pop,)),), intermix=math.nan).validate()
    # lognormal packings are unchanged by the overflow-safe parameters
    d = LogNormal(2.5, 0.5)
    s2 = math.log(1 + (0.5 / 2.5) ** 2)
    assert d.log_params() == (math.log(2.5) - 0.5 * s2, math.sqrt(s2))


@pytest.mark.parametrize(
    "text",
    [
        'x,y,r,"\r"\r\n1\r\n',  # a short row under a header cell "\r" (was a 2-line message)
        'x,"a\nb",r\n1,2,3\n',  # a header without y, one cell holding a line break
    ],
)
def test_regression_csv_header_with_line_breaks_one_line(tmp_path, text):
    path = tmp_path / "particles.csv"
    path.write_text(text, encoding="utf-8", newline="")
    with pytest.raises(MicrostructureError) as err:
        Particles.from_csv(path, Box((30.0, 40.0)))
    assert len(str(err.value).splitlines()) == 1, str(err.value)
