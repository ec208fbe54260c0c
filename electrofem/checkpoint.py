"""Restart files shared by the long jobs (discharge, infiltration), and their JSON encoding.

A checkpoint is a directory with ``state_<seq>.npz`` (field arrays gathered to rank 0, each
with the coordinates of its dofs, so a run restarts on any number of ranks) and
``state.json`` (everything else), written in that order, each atomically (temporary file then
rename): a kill while writing keeps the previous checkpoint. Older ``state_*.npz`` are removed.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np


def json_default(obj):
    """``json.dumps(default=...)`` for paths, numpy values and non-finite floats."""
    if isinstance(obj, Path):
        return str(obj)
    if isinstance(obj, float) and not math.isfinite(obj):
        return str(obj)
    if hasattr(obj, "tolist"):
        return obj.tolist()
    return str(obj)


def write_checkpoint(ckdir: Path, seq: int, state: dict, arrays: dict, comm) -> None:
    """Write checkpoint ``seq``: ``arrays`` (on rank 0; ignored elsewhere) and ``state``.

    Collective (ends with a barrier, so every rank may read it afterwards)."""
    if comm.rank == 0:
        ckdir.mkdir(parents=True, exist_ok=True)
        npz = ckdir / f"state_{seq}.npz"
        tmp = ckdir / f"state_{seq}.tmp.npz"
        np.savez(tmp, **arrays)
        tmp.replace(npz)
        tmpj = ckdir / "state.json.tmp"
        tmpj.write_text(json.dumps({**state, "seq": seq, "arrays": npz.name}, default=json_default))
        tmpj.replace(ckdir / "state.json")  # written last: a kill keeps the previous checkpoint
        for old in ckdir.glob("state_*.npz"):
            if old.name != npz.name:
                old.unlink(missing_ok=True)
    comm.barrier()


def read_checkpoint(ckdir: Path, comm) -> tuple[dict, dict]:
    """``(state, arrays)`` of the last checkpoint in ``ckdir``, on every rank.

    Raises ValueError (on every rank) if there is none or it cannot be read."""
    state, arrays, err = None, None, None
    if comm.rank == 0:
        try:
            state = json.loads((ckdir / "state.json").read_text())
            with np.load(ckdir / state["arrays"]) as z:
                arrays = {k: z[k] for k in z.files}
        except (OSError, ValueError, KeyError) as e:
            err = f"--restart: no usable checkpoint in {ckdir} ({e})"
    err = comm.bcast(err, root=0)
    if err:
        raise ValueError(err)
    return comm.bcast(state, root=0), comm.bcast(arrays, root=0)
