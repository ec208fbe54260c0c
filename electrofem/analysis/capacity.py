"""Discharge capacity at the end-of-discharge event, from a discharge job's CSV rows.

The job's own capacity is that of the step that crossed the cut-off (with backward Euler the
time step at the end is up to ``dt_max_fraction`` of 1/C, i.e. up to about 2 mAh/g at its 1 %;
BDF2 lands within a hundredth of a step of it);
:func:`event_capacity` removes that quantisation by interpolating within the last step.
"""

from __future__ import annotations

import csv
from pathlib import Path


def event_capacity(rows: list[dict], v_min_V: float, x_stop_max: float) -> float | None:
    """Discharge capacity (mAh/g) at the end-of-discharge event, located by linear
    interpolation between the last two accepted discharge steps of ``rows`` (CSV rows of the
    job): where the voltage crosses ``v_min_V`` or the largest particle stoichiometry crosses
    ``x_stop_max``, whichever comes first. None if no event."""
    rr = [r for r in rows if r.get("phase", "discharge") == "discharge"]
    if len(rr) < 2:
        return None
    a, b = rr[-2], rr[-1]
    qa, qb = float(a["capacity_mAh_g"]), float(b["capacity_mAh_g"])
    fracs = []
    va, vb = float(a["voltage_V"]), float(b["voltage_V"])
    if vb <= v_min_V < va:
        fracs.append((va - v_min_V) / (va - vb))
    xa, xb = float(a["x_max"]), float(b["x_max"])
    if xa < x_stop_max <= xb:
        fracs.append((x_stop_max - xa) / (xb - xa))
    if not fracs:
        return None
    return qa + min(fracs) * (qb - qa)


def event_capacity_csv(path: str | Path, v_min_V: float, x_stop_max: float) -> float | None:
    """:func:`event_capacity` of a job's ``discharge_<rate>C.csv`` (None if it is missing)."""
    path = Path(path)
    if not path.is_file():
        return None
    with open(path, newline="") as fh:
        return event_capacity(list(csv.DictReader(fh)), v_min_V, x_stop_max)
