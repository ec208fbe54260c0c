"""One definition per parameter: name, default, unit, check, source and help, in one place.

An options class is a dataclass whose fields are made with :func:`param`. From that one
definition come the TOML table reader (:func:`from_table`: unknown keys with a "did you mean"),
the validation (:func:`validate`: one message per failure, naming the field as the caller
shows it: ``infiltration.contact_angle_deg`` in a config, ``--contact-angle`` on the command
line), the command-line flags (:func:`add_flags`, :func:`apply_flags`) and the documentation
(:func:`describe`). Nothing here imports dolfinx.

Example::

    @dataclass
    class Options:
        contact_angle_deg: float = param(30.0, unit="deg", check=open_interval(0, 180),
                                         doc="static contact angle", flag="--contact-angle")

    opts = from_table(Options, {"contact_angle_deg": 45}, "infiltration")
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import tomllib
import types
import typing
from collections.abc import Callable
from dataclasses import MISSING, dataclass, field, fields
from pathlib import Path


class OptionsError(ValueError):
    """A bad option value or key; the message starts with the field's name."""


def read_toml(path, field: str, error: type[Exception], missing: str = "no such file") -> dict:
    """The table of the TOML file ``path``; a missing file or bad TOML raises ``error`` with a
    one-line message that starts with ``field``."""
    path = Path(path)
    if not path.is_file():
        raise error(f"{field}: {missing} {path}")
    try:
        return tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as err:
        raise error(f"{field}: {path} is not valid TOML: {err}") from None


@dataclass(frozen=True)
class Spec:
    """The definition of one parameter (a field's ``metadata["param"]``)."""

    unit: str = ""
    doc: str = ""
    check: Callable | None = None  # value -> None (ok) or the text of the failure
    source: str = ""
    flag: str | None = None  # the command-line flag, e.g. "--t-end"
    choices: tuple | None = None


def param(
    default=MISSING,
    *,
    unit: str = "",
    doc: str = "",
    check: Callable | None = None,
    source: str = "",
    flag: str | None = None,
    choices: tuple | None = None,
    factory: Callable | None = None,
):
    """A dataclass field with its :class:`Spec`. ``factory`` for mutable defaults."""
    spec = Spec(unit, doc, check, source, flag, tuple(choices) if choices else None)
    if factory is not None:
        return field(default_factory=factory, metadata={"param": spec})
    return field(default=default, metadata={"param": spec})


# --- checks (each returns None or the text of the failure) --------------------------------------


def positive(v):
    return None if v > 0 else "must be positive"


def nonneg(v):
    return None if v >= 0 else "must be >= 0"


def open_interval(lo: float, hi: float):
    def check(v):
        return None if lo < v < hi else f"must be in ({lo:g}, {hi:g})"

    return check


def half_open(lo: float, hi: float):
    """``lo < v <= hi``."""

    def check(v):
        return None if lo < v <= hi else f"must be in ({lo:g}, {hi:g}]"

    return check


def at_least(lo: int):
    def check(v):
        return None if v >= lo else (f"must be an integer >= {lo}")

    return check


# --- types ---------------------------------------------------------------------------------------


def _hints(cls) -> dict:
    return typing.get_type_hints(cls)


def _base(tp):
    """``(base type, optional)`` of an annotation (``float | None`` -> ``(float, True)``)."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        return (args[0] if len(args) == 1 else tp), type(None) in typing.get_args(tp)
    return tp, False


def finite(v) -> bool:
    """``math.isfinite`` that is False, not an OverflowError, for an integer beyond the float
    range (TOML integers have no bound in ``tomllib``)."""
    try:
        return math.isfinite(v)
    except OverflowError:
        return False


def _type_error(v, tp) -> str | None:
    base = typing.get_origin(tp) or tp
    if base is bool:
        return None if isinstance(v, bool) else "must be true or false"
    if base is int:
        ok = isinstance(v, int) and not isinstance(v, bool)
        return None if ok else "must be an integer"
    if base is float:
        if isinstance(v, bool) or not isinstance(v, int | float):
            return "must be a number"
        return None if finite(v) else "must be a finite number"
    if base is str:
        return None if isinstance(v, str) else "must be a string"
    if base in (tuple, list):
        return None if isinstance(v, list | tuple) else "must be a list"
    if base is dict:
        return None if isinstance(v, dict) else "must be a table"
    return None


def specs(cls) -> dict[str, tuple[dataclasses.Field, Spec]]:
    """``{name: (field, Spec)}`` of the :func:`param` fields of an options class."""
    return {f.name: (f, f.metadata["param"]) for f in fields(cls) if "param" in f.metadata}


def default_of(f: dataclasses.Field):
    return f.default_factory() if f.default_factory is not MISSING else f.default


# --- validation and tables ----------------------------------------------------------------------


def validate(obj, where: str, names: dict[str, str] | None = None) -> None:
    """Check every :func:`param` field of ``obj`` (type, then its check); raise
    :class:`OptionsError` ``"<name>: <what>, got <value>"`` at the first failure. ``where``
    prefixes the field (``"discharge"`` -> ``discharge.rest_s``); ``names`` maps fields to the
    names the user typed instead (e.g. command-line flags)."""
    hints = _hints(type(obj))
    names = names or {}
    for name, (_, spec) in specs(type(obj)).items():
        v = getattr(obj, name)
        tp, optional = _base(hints[name])
        if v is None and optional:
            continue
        err = _type_error(v, tp)
        if err is None and spec.choices is not None and v not in spec.choices:
            err = "must be one of " + ", ".join(repr(c) for c in spec.choices)
        if err is None and spec.check is not None:
            try:
                err = spec.check(v)
            except OverflowError:  # an integer beyond the float range in a list or table
                err = "must be finite numbers"
        if err:
            label = names.get(name) or (f"{where}.{name}" if where else name)
            got = "" if "got " in err else f", got {v!r}"  # a check may name the bad item
            raise OptionsError(f"{label}: {err}{got}")


def check_keys(table, allowed, where: str) -> None:
    """Raise :class:`OptionsError` for a non-table or an unknown key (with a suggestion)."""
    if not isinstance(table, dict):
        raise OptionsError(f"{where}: must be a table, got {_short(table)}")
    for key in table:
        if key not in allowed:
            close = difflib.get_close_matches(str(key), sorted(allowed), n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise OptionsError(f"{where + '.' if where else ''}{toml_key(key)}: unknown key{hint}")


def toml_key(key) -> str:
    """A key as TOML writes it: bare (``height``) or quoted (``"a b"``, ``""``)."""
    key = str(key)
    if key and all(c.isascii() and (c.isalnum() or c in "_-") for c in key):
        return key
    return '"' + key.encode("unicode_escape").decode("ascii").replace('"', '\\"') + '"'


def _short(value, limit: int = 60) -> str:
    """``repr`` of a bad value, cut to one short line."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def from_table(cls, table: dict, where: str):
    """An options object from a TOML table: unknown keys refused, every value validated."""
    check_keys(table, {f.name for f in fields(cls)}, where)
    obj = cls(**table)
    obj.validate()
    return obj


# --- command line ---------------------------------------------------------------------------------


def add_flags(parser, cls) -> None:
    """Add the command-line flag of every :func:`param` field of ``cls`` that declares one."""
    hints = _hints(cls)
    for name, (f, spec) in specs(cls).items():
        if not spec.flag:
            continue
        tp, _ = _base(hints[name])
        unit = f" ({spec.unit})" if spec.unit else ""
        default = default_of(f)
        text = f"{spec.doc}{unit}; default {default!r}" if spec.doc else None
        if tp is bool:
            parser.add_argument(spec.flag, dest=name, action="store_true", default=None, help=text)
        else:
            conv = {int: int, float: float, str: str}.get(tp, str)
            parser.add_argument(
                spec.flag, dest=name, type=conv, default=None, help=text, choices=spec.choices
            )


def flag_names(cls) -> dict[str, str]:
    """``{field: flag}`` of the fields with a command-line flag."""
    return {name: spec.flag for name, (_, spec) in specs(cls).items() if spec.flag}


def apply_flags(obj, args):
    """A copy of ``obj`` with the flags given on the command line (``args`` from argparse),
    validated; a failure names the flag the user typed. ``obj.validate`` takes ``names``."""
    flags = flag_names(type(obj))
    given = {n: getattr(args, n) for n in flags if getattr(args, n, None) is not None}
    new = dataclasses.replace(obj, **given)
    new.validate(names={n: flags[n] for n in given})
    return new


def describe(cls) -> list[dict]:
    """One row per parameter: name, default, unit, flag, doc, source (for docs and tests)."""
    return [
        {
            "name": name,
            "default": default_of(f),
            "unit": spec.unit,
            "flag": spec.flag,
            "doc": spec.doc,
            "source": spec.source,
        }
        for name, (f, spec) in specs(cls).items()
    ]
