"""The electrolyte region of a partly wetted electrode, as the discharge job uses it.

From a wetting state (an infiltration's α, :mod:`electrofem.physics.wetting`): the pore cells
with α ≥ ``wetting_threshold`` are wetted, the others hold air. The wetted cells fall into
connected pockets; those whose electrolyte reaches the separator (the top face, where the Li
metal is) carry the electrolyte equations. Pockets with no such path carry no current by
default (``wetting_pockets = "inactive"``: they hold electrolyte, but no ion can leave them, so
their particles cannot be (dis)charged beyond a vanishing amount) or take part
(``"active"``). Air does not dissolve during the discharge: the region is fixed for the whole
run (to model soaking, run again with a later wetting state, ``DIR:TIME``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class WettedRegion:
    """The pore cells that carry the electrolyte equations, and what the JSON reports."""

    mask: np.ndarray  # per local parent cell (owned + ghost)
    metrics: dict
    has_path: bool  # some wetted electrolyte connects the separator to a particle surface


def wetted_region(emesh, options, wetting=None) -> WettedRegion:
    """The region of ``wetting`` (a WettingState or ``"DIR[:TIME]"``; default
    ``options.wetting``) on ``emesh`` under ``options.wetting_threshold`` and
    ``options.wetting_pockets`` (collective). ValueError for a state from another mesh."""
    from ..physics.wetting import (
        WettingState,
        electrolyte_components,
        read_wetting,
        wet_cells,
        wetting_metrics,
    )

    comm = emesh.comm
    state = wetting if wetting is not None else options.wetting
    if not isinstance(state, WettingState):
        state = read_wetting(str(state), comm)
    wet = wet_cells(emesh, state, options.wetting_threshold)
    _, connected = electrolyte_components(emesh, wet)
    metrics = wetting_metrics(emesh, wet, connected, threshold=options.wetting_threshold)
    mask = connected if options.wetting_pockets == "inactive" else wet
    has_path = metrics["wetted_active_area_fraction"] > 0 and bool(
        comm.allreduce(bool(np.any(connected)), op=_lor())
    )
    metrics = {
        "source": state.source,
        "time_s": state.time_s,
        "fingerprint": state.fingerprint,
        **metrics,
        "threshold": options.wetting_threshold,
        "pockets": options.wetting_pockets,
        "air": "does not dissolve during the discharge (a fixed region)",
    }
    return WettedRegion(mask, metrics, has_path)


def _lor():
    from mpi4py import MPI

    return MPI.LOR
