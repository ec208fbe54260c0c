"""What every job writes, written one way: JSON (with its run status), CSV, XDMF time series,
checkpoints (restart files) and the checkpoint schedule.

* JSON and CSV files are written by rank 0, atomically (a temporary file, then a rename), so a
  kill never leaves half a file; :class:`JobRecord` holds a job's metrics dict and rewrites its
  JSON with the status ``running`` / ``done`` / ``failed`` / ``interrupted``.
* A checkpoint is a directory with ``state_<seq>.npz`` (field arrays gathered to rank 0, each
  with the coordinates of its dofs, so a run restarts on any number of ranks) and
  ``state.json`` (everything else), written in that order, each atomically: a kill while
  writing keeps the previous checkpoint. Older ``state_*.npz`` are removed.
* :class:`CheckpointSchedule` decides when a checkpoint is due (every N steps or S wall
  seconds); rank 0 decides, since wall clocks differ between ranks.

PNG figures come from :mod:`electrofem.plot`. Every function here is MPI-collective unless it
says otherwise.
"""

from __future__ import annotations

import csv
import json
import math
import time
from pathlib import Path

import numpy as np

#: The checkpoint directory of a job's output folder.
CHECKPOINT_DIR = "checkpoint"


def json_default(obj):
    """``json.dumps(default=...)`` for paths, numpy values and non-finite floats."""
    if isinstance(obj, Path):
        return str(obj)
    if isinstance(obj, float) and not math.isfinite(obj):
        return str(obj)
    if hasattr(obj, "tolist"):
        return obj.tolist()
    return str(obj)


def jsonable(obj):
    """``obj`` as plain JSON types (the round trip through :func:`json_default`)."""
    return json.loads(json.dumps(obj, default=json_default))


def write_json(path: Path, data, comm, indent: int | None = 2, barrier: bool = True) -> None:
    """Write ``data`` as JSON on rank 0, atomically; ``barrier``: every rank returns after the
    file exists."""
    if comm.rank == 0:
        path = Path(path)
        tmp = path.with_suffix(path.suffix + ".tmp")
        tmp.write_text(json.dumps(data, indent=indent, default=json_default))
        tmp.replace(path)
    if barrier:
        comm.barrier()


def write_csv(path: Path, rows: list[dict], comm) -> None:
    """Write ``rows`` (dicts with the keys of the first) on rank 0, atomically; floats by
    ``repr`` (round-trip exact). Nothing is written for no rows."""
    if comm.rank != 0 or not rows:
        return
    path = Path(path)
    tmp = path.with_suffix(".csv.tmp")
    with open(tmp, "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0].keys()))
        w.writeheader()
        for r in rows:
            w.writerow({k: (repr(v) if isinstance(v, float) else v) for k, v in r.items()})
    tmp.replace(path)


class JobRecord:
    """A job's metrics dict and its JSON file (rewritten on :meth:`write`).

    ``metrics["status"]`` is ``"running"`` until :meth:`finish` (``"done"``) or :meth:`fail`
    (``"failed"`` / ``"interrupted"`` with the error text)."""

    def __init__(self, path: Path, metrics: dict, comm, barrier: bool = True):
        self.path = Path(path)
        self.metrics = metrics
        self.comm = comm
        self.barrier = barrier
        metrics.setdefault("status", "running")

    def write(self) -> None:
        write_json(self.path, self.metrics, self.comm, barrier=self.barrier)

    def finish(self) -> None:
        self.metrics["status"] = "done"
        self.write()

    def fail(self, error, status: str = "failed") -> None:
        self.metrics["status"] = status
        self.metrics["error"] = str(error)
        self.write()


class XDMFSeries:
    """An XDMF time series of functions on one mesh (``append``: continue an existing file,
    e.g. after a restart)."""

    def __init__(self, path: Path, mesh, append: bool = False):
        self.path = Path(path)
        self.mesh = mesh
        self.started = append and self.path.is_file()

    def write(self, t: float, functions) -> None:
        from dolfinx.io import XDMFFile

        with XDMFFile(self.mesh.comm, str(self.path), "a" if self.started else "w") as f:
            if not self.started:
                f.write_mesh(self.mesh)
            for fn in functions:
                f.write_function(fn, t)
        self.started = True


# --- checkpoints ---------------------------------------------------------------------------------


def write_checkpoint(ckdir: Path, seq: int, state: dict, arrays: dict, comm) -> None:
    """Write checkpoint ``seq``: ``arrays`` (on rank 0; ignored elsewhere) and ``state``.

    Collective (ends with a barrier, so every rank may read it afterwards)."""
    if comm.rank == 0:
        ckdir = Path(ckdir)
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
            state = json.loads((Path(ckdir) / "state.json").read_text())
            with np.load(Path(ckdir) / state["arrays"]) as z:
                arrays = {k: z[k] for k in z.files}
        except (OSError, ValueError, KeyError) as e:
            err = f"--restart: no usable checkpoint in {ckdir} ({e})"
    err = comm.bcast(err, root=0)
    if err:
        raise ValueError(err)
    return comm.bcast(state, root=0), comm.bcast(arrays, root=0)


class CheckpointSchedule:
    """When a checkpoint is due: every ``every_steps`` accepted steps or ``every_s`` wall
    seconds (0 disables a trigger); :meth:`due` counts a step and answers on every rank
    (rank 0 decides). ``seq`` numbers the checkpoints."""

    def __init__(self, comm, every_steps: int, every_s: float, seq: int = 0):
        self.comm = comm
        self.every_steps = every_steps
        self.every_s = every_s
        self.seq = seq
        self.steps = 0
        self.wall = time.perf_counter()

    def due(self, force: bool = False, count: bool = True) -> bool:
        if count:
            self.steps += 1
        due = (
            force
            or (self.every_steps > 0 and self.steps >= self.every_steps)
            or (self.every_s > 0 and time.perf_counter() - self.wall >= self.every_s)
        )
        return bool(self.comm.bcast(due, root=0))

    def written(self) -> int:
        """Mark a checkpoint as written; return its sequence number."""
        seq = self.seq
        self.seq += 1
        self.steps = 0
        self.wall = time.perf_counter()
        return seq


def prepare_outdir(outdir, comm) -> Path:
    """Create ``outdir`` (rank 0) and return it once every rank can see it."""
    outdir = Path(outdir)
    if comm.rank == 0:
        outdir.mkdir(parents=True, exist_ok=True)
    comm.barrier()
    return outdir


#: What the jobs write into an output folder (``--overwrite`` removes exactly these).
OUTPUT_PATTERNS = (
    "summary.json",
    "particles.csv",
    "microstructure.png",
    "mesh.msh",
    "mesh.xdmf",
    "mesh.h5",
    "mesh.json",
    "transport.json",
    "profiles.csv",
    "profiles.png",
    "fields.xdmf",
    "fields.h5",
    "pybamm.json",
    "conductivity.json",
    "discharge.json",
    "discharge_*C.csv",
    "rate_capability.csv",
    "discharge_curves.png",
    "concentration_map.png",
    "fields_*C_*.xdmf",
    "fields_*C_*.h5",
    "infiltration.json",
    "infiltration.csv",
    "infiltration.png",
    "*.tmp",
    CHECKPOINT_DIR,
    "snapshots",
    "wetting",
)


def previous_outputs(outdir: Path) -> list[Path]:
    """The files and folders of an earlier run in ``outdir`` (by :data:`OUTPUT_PATTERNS`)."""
    outdir = Path(outdir)
    if not outdir.is_dir():
        return []
    found = {p for pat in OUTPUT_PATTERNS for p in outdir.glob(pat)}
    return sorted(found)


def claim_outdir(outdir, comm, overwrite: bool = False, restart: bool = False) -> Path:
    """Make ``outdir`` ready for a new run (collective; the command line calls it).

    A folder that holds an earlier run's outputs is refused (ValueError naming them), so that a
    new mesh never sits beside results computed on another one; ``overwrite`` removes those
    outputs first (and nothing else); ``restart`` continues the run that is there."""
    import shutil

    outdir = Path(outdir)
    err = None
    if comm.rank == 0 and not restart:
        old = previous_outputs(outdir)
        if old and not overwrite:
            names = ", ".join(p.name for p in old[:3]) + (", ..." if len(old) > 3 else "")
            err = (
                f"-o {outdir}: holds the outputs of an earlier run ({names}); pass --overwrite "
                "to replace them"
                + (
                    " or --restart to continue it"
                    if any(p.name == CHECKPOINT_DIR for p in old)
                    else ""
                )
            )
        for p in old if overwrite else ():
            shutil.rmtree(p) if p.is_dir() else p.unlink(missing_ok=True)
    err = comm.bcast(err, root=0)
    if err:
        raise ValueError(err)
    return prepare_outdir(outdir, comm)
