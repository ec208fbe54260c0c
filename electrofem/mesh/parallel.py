"""Meshing under MPI: the OCC cuts shared by the ranks; rank 0 meshes while the others sleep.

Rank 0 builds the gmsh model (the fragment and the mesh need one OCC model), but the cuts of
the truncated balls (:mod:`.pieces`) are independent batches written to BREP files: every
rank computes the same plan, cuts its share of the batches (largest first, to the least
loaded rank) and sends the files to rank 0, which imports all of them in batch order. The
model is therefore the one a serial run builds, node for node.

While rank 0 meshes, the other ranks wait in a sleeping barrier: MPI's blocking calls spin,
and would take a core from whatever else runs on the node. The mesher itself stays on one
thread (gmsh's threads change the mesh, :mod:`.sizing`).

Rank 0::

    with RankCutSharing(comm) as sharing:
        build_and_mesh(particles, options, sharing=sharing)

every other rank::

    help_mesh(comm, particles)
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from mpi4py import MPI

from .options import glues
from .pieces import CutPlan, _cut_plan, cut_batch
from .plan import _effective_shell, _Plan, _plan

if TYPE_CHECKING:
    from ..microstructure.particles import Particles

#: Seconds between two polls of the sleeping barrier.
POLL_SECONDS = 0.005


class _NothingToCut(Exception):
    """The route makes no OCC cut."""


def sleeping_barrier(comm: MPI.Comm) -> None:
    """A barrier that sleeps between polls instead of spinning."""
    req = comm.Ibarrier()
    while not req.Test():
        time.sleep(POLL_SECONDS)


def assign(costs: list[int], n: int) -> list[int]:
    """Owner rank of each batch: largest first, each to the least loaded rank (ties: lowest)."""
    load = np.zeros(n)
    owner = [0] * len(costs)
    for b in sorted(range(len(costs)), key=lambda b: (-costs[b], b)):
        r = int(np.argmin(load))
        owner[b] = r
        load[r] += costs[b]
    return owner


def _owners(comm: MPI.Comm, plan: _Plan, cp: CutPlan) -> list[int]:
    return assign([cp.cost(plan, b) for b in range(len(cp.batches))], comm.size)


class RankCutSharing:
    """Rank 0's side (a :class:`.pieces.CutSharing`); a context manager that always meets the
    other ranks' collective calls, also when the geometry fails before or during the cuts."""

    def __init__(self, comm: MPI.Comm):
        if comm.rank != 0:
            raise RuntimeError("RankCutSharing is rank 0's side; other ranks call help_mesh")
        self.comm = comm
        self.collected = False

    def batches_here(self, plan: _Plan, cp: CutPlan) -> list[int]:
        return [b for b, r in enumerate(_owners(self.comm, plan, cp)) if r == 0]

    def collect(self, cp: CutPlan | None, tmpdir: str | None) -> dict[int, list]:
        """The other ranks' batches: their files written into ``tmpdir``, ``{b: made}``."""
        self.collected = True
        payloads = self.comm.gather(None, root=0)
        made: dict[int, list] = {}
        errors = [f"rank {r}: {p}" for r, p in enumerate(payloads) if isinstance(p, str)]
        if errors:
            raise RuntimeError("geometry: cutting on other ranks failed: " + "; ".join(errors))
        if tmpdir is None:
            return made
        for p in payloads[1:]:
            for b, (m, data) in p.items():
                with open(os.path.join(tmpdir, f"batch{b}.brep"), "wb") as f:
                    f.write(data)
                made[b] = m
        return made

    def __enter__(self) -> RankCutSharing:
        return self

    def __exit__(self, *exc) -> None:
        try:
            if not self.collected:
                self.collect(None, None)  # the geometry failed before the cuts
        finally:
            sleeping_barrier(self.comm)


def help_mesh(comm: MPI.Comm, particles: Particles, route: str = "auto") -> None:
    """A rank other than 0: cut this rank's batches and send them to rank 0, then sleep until
    rank 0 has meshed. ``route`` is rank 0's ``MeshOptions.geometry_route``. Never raises: an
    error travels to rank 0, which raises it."""
    import gmsh

    payload: dict | str = {}
    started = not gmsh.isInitialized()
    try:
        if started:
            gmsh.initialize(readConfigFiles=False, interruptible=False)
        gmsh.option.setNumber("General.Terminal", 0)
        gmsh.option.setNumber("General.NumThreads", 1)
        if route == "discrete":  # no OCC cut: rank 0 triangulates alone
            raise _NothingToCut
        plan = _plan(particles, quiet=True)
        size = tuple(float(s) for s in particles.box.size)
        cp = _cut_plan(plan, _effective_shell(particles), size, glues(route, particles.dim))
        owners = _owners(comm, plan, cp)
        with tempfile.TemporaryDirectory(prefix="electrofem-") as tmp:
            for b, r in enumerate(owners):
                if r != comm.rank:
                    continue
                path = os.path.join(tmp, f"batch{b}.brep")
                made = cut_batch(particles.dim, plan, cp, b, path)
                payload[b] = (made, Path(path).read_bytes() if made else b"")
    except _NothingToCut:
        pass
    except Exception as err:  # noqa: BLE001 - rank 0 raises it
        payload = f"{type(err).__name__}: {err}"
    finally:
        if started and gmsh.isInitialized():
            gmsh.finalize()
    comm.gather(payload, root=0)
    sleeping_barrier(comm)
