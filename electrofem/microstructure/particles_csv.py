"""Particles to and from CSV: ``x,y[,z],r,phase[,shell_thickness,shell_phase,layer]`` in µm.

The reader checks every row and rejects a bad one with a one-line
:class:`~.particles.MicrostructureError` naming the file, the 1-based data row (and its line in
the file) and the column, e.g.::

    particles.csv row 3 (line 4): particle at x = 250 lies entirely outside the box [0, 50]

Accepted: a header row; required columns ``x, y[, z]`` and ``r`` (or ``radius``, or ``d`` /
``diameter``); optional ``phase`` (id or name, default active), ``shell_thickness`` (µm,
default 0), ``shell_phase`` (default second), ``layer`` (default -1); other columns are ignored.
Blank lines are skipped. A particle must intersect the box; with periodic lateral sides its
lateral centre coordinates are then wrapped into ``[0, L)``. On the through-plane axis the centre
must lie inside ``[0, H]``.
"""

from __future__ import annotations

import csv
import math
from pathlib import Path

import numpy as np

from .. import tags
from .box import Box, MicrostructureError

RADIUS_COLUMNS = ("r", "radius", "d", "diameter")
#: Largest layer index accepted (the arrays are int32).
MAX_LAYER = 2**31 - 1


def write_csv(parts, path: str | Path) -> None:
    """Write ``x,y[,z],r,phase,shell_thickness,shell_phase,layer`` (µm)."""
    axes = ["x", "y", "z"][: parts.dim]
    with open(path, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow([*axes, "r", "phase", "shell_thickness", "shell_phase", "layer"])
        for i in range(len(parts)):
            w.writerow(
                [*(f"{c:.9g}" for c in parts.centers[i]), f"{parts.radii[i]:.9g}"]
                + [int(parts.phase[i]), f"{parts.shell_thickness[i]:.9g}"]
                + [int(parts.shell_phase[i]), int(parts.layer[i])]
            )


class _RowError(Exception):
    """A bad value in the current row; the reader adds the file, row and line."""


def _number(text: str, column: str) -> float:
    s = text.strip()
    if not s:
        raise _RowError(f"column {column!r}: empty, a number is needed")
    try:
        v = float(s)
    except ValueError:
        raise _RowError(f"column {column!r}: {text!r} is not a number") from None
    if not math.isfinite(v):
        raise _RowError(f"column {column!r}: {s} is not a finite number")
    return v


def _integer(text: str, column: str) -> int:
    s = text.strip()
    try:
        return int(s)
    except ValueError:
        pass
    try:
        v = float(s)
    except ValueError:
        v = math.nan
    if not (math.isfinite(v) and v.is_integer()):
        raise _RowError(f"column {column!r}: {text!r} is not an integer")
    return int(v)


def _phase(text: str, column: str) -> int:
    s = text.strip()
    known = ", ".join(tags.phase_name(p) for p in tags.SOLID_PHASES)
    ids = ", ".join(str(p) for p in tags.SOLID_PHASES)
    try:
        pid = tags.PHASES.get(s.lower())
        if pid is None:
            pid = _integer(s, column)
    except _RowError:
        pid = None
    if pid not in tags.SOLID_PHASES:
        raise _RowError(
            f"column {column!r}: {text!r} is not a solid phase (names {known}, or ids {ids})"
        )
    return pid


def _names(cells: list[str]) -> str:
    """Header cells for a one-line message: as typed, odd ones (line breaks ...) quoted."""
    return ",".join(c if c.isprintable() else repr(c) for c in cells)


def _columns(header: list[str], box: Box) -> dict[str, int]:
    """Column name (lower case) -> index; raises _RowError for a header we cannot use."""
    names = [h.strip().lower() for h in header]
    cols: dict[str, int] = {}
    for k, name in enumerate(names):
        if not name:
            continue
        if name in cols:
            raise _RowError(f"column {name!r} appears twice in the header")
        cols[name] = k
    axes = ["x", "y", "z"][: box.dim]
    missing = [a for a in axes if a not in cols]
    if missing or not any(c in cols for c in RADIUS_COLUMNS):
        raise _RowError(
            f"the header needs columns {','.join(axes)} and r (or d); it has {_names(names)}"
        )
    if box.dim == 2 and "z" in cols:
        raise _RowError(
            "column 'z' given but the box is 2D (x = width, y = height); drop it, or use a 3D box"
        )
    return cols


def _parse_row(row: list[str], cols: dict[str, int], box: Box) -> tuple:
    """One data row -> (centre, radius, phase, shell_thickness, shell_phase, layer)."""
    axes = ["x", "y", "z"][: box.dim]
    c = [_number(row[cols[a]], a) for a in axes]
    rname = next(n for n in RADIUS_COLUMNS if n in cols)
    v = _number(row[cols[rname]], rname)
    what = "diameter" if rname in ("d", "diameter") else "radius"
    if v <= 0:
        raise _RowError(f"column {rname!r}: the {what} must be > 0 µm, got {v:.6g}")
    r = 0.5 * v if what == "diameter" else v
    limit = box.height / 2 if box.periodic else min(box.size) / 2
    if r > limit:
        raise _RowError(
            f"column {rname!r}: radius {r:.6g} µm is larger than the box allows (at most "
            f"{limit:.6g} µm, half the {'height' if box.periodic else 'smallest side'} of box "
            f"{box.size})"
        )
    for a, (name, x, length) in enumerate(zip(axes, c, box.size, strict=True)):
        if x + r <= 0 or x - r >= length:
            raise _RowError(
                f"particle at {name} = {x:.6g} lies entirely outside the box [0, {length:.6g}]"
            )
        if a == box.dim - 1 and not 0 <= x <= length:
            raise _RowError(
                f"particle centre at {name} = {x:.6g} lies outside the box height "
                f"[0, {length:.6g}] (centres must be inside on the through-plane axis)"
            )
    phase = _phase(row[cols["phase"]], "phase") if "phase" in cols else tags.ACTIVE
    shell = 0.0
    if "shell_thickness" in cols:
        shell = _number(row[cols["shell_thickness"]], "shell_thickness")
        if not 0 <= shell < r:
            raise _RowError(
                f"column 'shell_thickness': must be in [0, {r:.6g}) µm (the radius), "
                f"got {shell:.6g}"
            )
    sphase = _phase(row[cols["shell_phase"]], "shell_phase") if "shell_phase" in cols else None
    layer = -1
    if "layer" in cols:
        layer = _integer(row[cols["layer"]], "layer")
        if not -1 <= layer <= MAX_LAYER:
            raise _RowError(f"column 'layer': must be -1 (none) or an index >= 0, got {layer}")
    return c, r, phase, shell, tags.SECOND if sphase is None else sphase, layer


def read_csv(path: str | Path, box: Box, make):
    """Read and check particles from a CSV (see the module doc) into ``make(box, centers,
    radii, phase, shell, shell_phase, layer, meta=...)`` (the Particles class); raise
    MicrostructureError."""
    path = Path(path)
    if not path.is_file():
        raise MicrostructureError(f"particles.csv: no such file {path}")
    name = str(path)
    fields: list[tuple] = []
    cols = reader = None
    k = line = 0
    try:
        with open(path, newline="", encoding="utf-8-sig") as fh:
            reader = csv.reader(fh)
            for row in reader:
                line = reader.line_num
                if not any(f.strip() for f in row):
                    continue  # blank line
                if cols is None:
                    header = row
                    cols = _columns(header, box)
                    continue
                k += 1
                if len(row) != len(header):
                    raise _RowError(
                        f"{len(row)} fields, the header has {len(header)} ({_names(header)})"
                    )
                fields.append(_parse_row(row, cols, box))
    except _RowError as err:
        where = "header" if cols is None else f"row {k}"
        raise MicrostructureError(f"{name} {where} (line {line}): {err}") from None
    except (OSError, UnicodeDecodeError, csv.Error) as err:
        line = reader.line_num if reader is not None else 0
        where = f"{name} line {line}" if line else name
        raise MicrostructureError(f"{where}: cannot read the CSV ({err})") from None
    if cols is None:
        raise MicrostructureError(f"{name}: empty file, a header row is needed")
    if not fields:
        raise MicrostructureError(f"{name}: no particle rows after the header")
    centers, radii, phase, shell, shell_phase, layer = (list(v) for v in zip(*fields, strict=True))
    try:
        parts = make(
            box,
            np.array(centers, dtype=float),
            np.array(radii, dtype=float),
            phase,
            shell,
            shell_phase,
            layer,
            meta={"source": name},
        )
    except MicrostructureError as err:  # not expected after the row checks; keep the file
        raise MicrostructureError(f"{name}: {err}") from None
    if box.periodic:
        parts.centers[:, :-1] %= np.asarray(box.lateral)
    return parts
