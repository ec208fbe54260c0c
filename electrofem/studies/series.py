"""The series runner every study uses: a list of cases, one folder each, run one after another.

A finished case leaves ``<folder>/result.json`` (one row of the study's table); with
``skip_done`` it is read back instead of rerun, so a study resumes after an interrupt. With
``deadline_s`` no new case starts after that many wall seconds (finished cases are still
read). ``on_result(rows)`` runs after every case, e.g. to rewrite the study's table. The
decisions are made on rank 0 and broadcast, so every rank runs the same cases (MPI-collective).
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterable
from pathlib import Path

from mpi4py import MPI

from ..jobs.output import prepare_outdir, write_json

log = logging.getLogger("electrofem")

#: The file a finished case leaves in its folder.
RESULT_FILE = "result.json"


def read_result(folder: Path, comm) -> dict | None:
    """The row of a finished case in ``folder``, or None (on every rank)."""
    row = None
    path = Path(folder) / RESULT_FILE
    if comm.rank == 0 and path.is_file():
        row = json.loads(path.read_text())
    return comm.bcast(row, root=0)


def run_series(
    cases: Iterable,
    folder_of: Callable[[object], Path],
    run_case: Callable[[object, Path], dict],
    *,
    comm: MPI.Comm = MPI.COMM_WORLD,
    skip_done: bool = True,
    deadline_s: float | None = None,
    on_result: Callable[[list[dict]], None] | None = None,
    name: str = "study",
) -> list[dict]:
    """Run ``run_case(case, folder)`` for every case not finished yet; return the rows.

    ``run_case`` returns the case's row (a JSON-able dict; rank 0's is kept and written)."""
    rows: list[dict] = []
    t0 = time.perf_counter()
    for case in cases:
        folder = Path(folder_of(case))
        done = read_result(folder, comm) if skip_done else None
        if done is not None:
            rows.append(done)
            continue
        late = deadline_s is not None and time.perf_counter() - t0 > deadline_s
        if comm.bcast(late, root=0):
            log.warning("%s: deadline reached, %s not run", name, folder.name)
            continue
        row = comm.bcast(run_case(case, folder), root=0)  # one record on every rank
        write_json(prepare_outdir(folder, comm) / RESULT_FILE, row, comm)
        rows.append(row)
        if on_result is not None:
            on_result(rows)
    return rows
