"""Effective DFN parameters for PyBaMM from a ``transport.json`` (no PyBaMM import).

PyBaMM scales the bulk electrolyte diffusivity and conductivity by the *transport efficiency*
``B = ε/τ`` (τ: tortuosity factor, TauFactor's convention, the one electrofem reports).
Two equivalent ways to hand it the measured τ are written:

* ``options = {"transport efficiency": "tortuosity factor"}`` with
  ``"<Electrode> electrode tortuosity factor (electrolyte)" = τ`` (exact);
* PyBaMM's default Bruggeman option with the *equivalent exponent* ``b`` that gives the same
  ``B`` at the measured porosity: ``ε^b = ε/τ``, i.e. ``b = 1 - ln τ / ln ε``.

PyBaMM (lithium-ion models) derives the surface area per volume from spherical particles,
``a = 3 ε_s / R``. To hand it the **measured** reactive surface area ``a_s`` (electrolyte|active
area, plus the active|second area under a coating, per electrode volume, 1/m) the particle
radius is set to the surface-equivalent radius ``R = 3 ε_s / a_s``; the DFN's solid-diffusion
length is then that radius too. The measured ``a_s`` and the volume-to-surface radius of the
active phase (``3 V / S``, 2D ``2 A / P``, over its whole surface, contacts included) are
also written under ``measured``.

Only the through-plane direction matters to a 1D DFN model. 2D sections are not 3D
electrodes: the JSON then carries a ``warning``.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

from .. import __version__


def _tau(entry: dict) -> float:
    t = entry["tortuosity"]
    return math.inf if t == "inf" else float(t)


def pybamm_parameters(transport: dict, electrode: str = "positive", solid: dict | None = None):
    """DFN parameters from the content of a ``transport.json`` (electrolyte phase).

    Args:
        transport: the dict written by ``electrofem transport`` for the electrolyte.
        electrode: ``"positive"`` or ``"negative"``.
        solid: optionally the same for ``--phase solid``: adds the electrode tortuosity.

    Returns:
        ``{"parameters": {...}, "options": {...}, "source": {...}}``; values in SI.
    """
    if electrode not in ("positive", "negative"):
        raise ValueError(f"electrode: positive or negative, got {electrode!r}")
    if transport.get("phase") != "electrolyte":
        raise ValueError(
            "pybamm export needs the electrolyte transport result (--phase electrolyte)"
        )
    name = electrode.capitalize()
    axis = transport["through_plane"]
    if axis not in transport["directions"]:
        raise ValueError(f"pybamm export needs the through-plane direction {axis!r} solved")
    d = transport["directions"][axis]
    eps = float(d["epsilon"])
    tau = _tau(d)
    if not math.isfinite(tau):
        raise ValueError("the electrolyte does not percolate through-plane (tau = inf)")
    fractions = transport["volume_fractions"]
    active = float(fractions.get("active", 0.0))
    dim = int(transport["dim"])
    vol = transport["phase_volumes_um3"].get("active", 0.0)
    surf = transport["active_surface_area_um2"]
    a_s = float(transport.get("reactive_surface_area_m-1", transport["specific_surface_area_m-1"]))
    if not (active > 0 and a_s > 0):
        raise ValueError("no active surface in contact with the electrolyte: a_s = 0")
    if transport.get("thickness_um") is None:
        raise ValueError("the electrode thickness is unknown (the mesh has no box_um)")
    params = {
        f"{name} electrode porosity": eps,
        f"{name} electrode active material volume fraction": active,
        f"{name} electrode thickness [m]": float(transport["thickness_um"]) * 1e-6,
        f"{name} electrode tortuosity factor (electrolyte)": tau,
        f"{name} electrode Bruggeman coefficient (electrolyte)": 1.0
        - math.log(tau) / math.log(eps),
        f"{name} particle radius [m]": 3.0 * active / a_s,
    }
    measured = {
        "surface_area_to_volume_ratio_m-1": a_s,
        "volume_to_surface_radius_m": (dim * vol / surf) * 1e-6 if surf > 0 else None,
    }
    options = {"transport efficiency": "tortuosity factor"}
    out = {
        "parameters": params,
        "options": options,
        "measured": measured,
        "source": {
            "electrofem_version": __version__,
            "transport_version": transport.get("version"),
            "mesh": transport.get("parameters", {}).get("mesh"),
            "direction": axis,
        },
        "notes": (
            "Update a PyBaMM ParameterValues with check_already_exists=False and build the "
            "model with `options`; or drop the tortuosity entry and keep the Bruggeman "
            "coefficient with PyBaMM's default options."
        ),
    }
    if solid is not None:
        s = solid["directions"].get(axis)
        if s is not None:
            ts = _tau(s)
            params[f"{name} electrode tortuosity factor (electrode)"] = (
                ts if math.isfinite(ts) else 1e30
            )
            if not math.isfinite(ts):
                out["warning_solid"] = (
                    "the solid does not percolate: electrode tortuosity set to 1e30"
                )
    if dim == 2:
        out["warning"] = (
            "2D section: its tortuosity and surface area are those of disks, not of a 3D "
            "electrode; use a 3D mesh for quantitative DFN parameters"
        )
    return out


def write_pybamm_parameters(transport_json: str | Path, path: str | Path, electrode="positive"):
    """Read ``transport.json``, write the PyBaMM parameter JSON to ``path``; return the dict."""
    data = json.loads(Path(transport_json).read_text())
    out = pybamm_parameters(data, electrode)
    Path(path).write_text(json.dumps(out, indent=2))
    return out
