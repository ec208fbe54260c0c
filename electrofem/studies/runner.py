"""Run a study's cases, in parallel on ``mpi4py.futures`` or a local process pool.

A study folder ``DIR`` holds ``study.json`` (the study: base config, job chain, cases),
``cases/<case id>/`` (one folder per case, see :mod:`electrofem.studies.cases`) and
``study.sqlite`` (:mod:`electrofem.studies.db`). A case with a ``result.json`` of status
``done`` is never run again; a ``failed`` one only with ``retry_failed``; a case killed before
its ``result.json`` runs again (its finished jobs are reused). So running the same command again
resumes a study.

Where the cases run (``workers``):

* ``1``: in this process, one after another. Under plain ``mpirun -n R electrofem study ...``
  every case runs collectively on the R ranks of ``MPI.COMM_WORLD`` (rank 0 writes).
* ``N > 1`` launched as ``mpirun -n N+1 python -m mpi4py.futures -m electrofem.cli study ...``:
  an :class:`mpi4py.futures.MPIPoolExecutor` on the N worker ranks (any number of nodes).
* ``N > 1`` otherwise: a local :class:`concurrent.futures.ProcessPoolExecutor` (spawn) of N
  processes; no server to start.

A worker runs its case on one rank (``MPI.COMM_SELF``): N concurrent cases use N cores, so
give ``N`` ≤ the cores (minus one for the parent under ``mpi4py.futures``). The parent process
alone writes the database, as the futures complete. At most ``N`` cases are in flight: a new
one is submitted as one finishes, so a ``deadline_s`` stops submitting (the running cases
finish; the rest wait for the next run of the same command).
"""

from __future__ import annotations

import contextlib
import functools
import json
import logging
import os
import time
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from multiprocessing import get_context
from pathlib import Path

from mpi4py import MPI

from .cases import execute_case, read_result
from .db import open_db
from .spec import StudyError, StudySpec, case_id

log = logging.getLogger("electrofem")

STUDY_FILE = "study.json"
CASES_DIR = "cases"
#: Launcher variables a spawned local worker must not inherit (it is its own MPI singleton).
LAUNCHER_ENV = ("PMI_", "HYDRA_", "MPIR_", "OMPI_", "PMIX_")


def futures_launched() -> bool:
    """True in the main process of ``python -m mpi4py.futures`` (its worker ranks wait in a
    shared pool; only this process runs the study)."""
    try:
        from mpi4py.futures import _core  # mpi4py's own record of its shared pool
    except ImportError:
        return False
    return getattr(_core, "SharedPool", None) is not None


def parent_comm() -> MPI.Comm:
    """The ranks that run the study's loop: all of ``COMM_WORLD`` under plain ``mpirun``,
    this process alone under ``mpi4py.futures``."""
    return MPI.COMM_SELF if futures_launched() else MPI.COMM_WORLD


def check_workers(workers: int) -> None:
    """Refuse a worker count this launch cannot give, with the command that can."""
    if workers < 1:
        raise StudyError(f"--workers: must be >= 1, got {workers}")
    if workers > 1 and MPI.COMM_WORLD.size > 1 and not futures_launched():
        raise StudyError(
            f"--workers {workers}: under mpirun, launch the pool with mpirun -n "
            f"{workers + 1} python -m mpi4py.futures -m electrofem.cli study ... (or give "
            "--workers 1: each case then runs on all ranks)"
        )


@contextlib.contextmanager
def _clean_launcher_env():
    saved = {k: v for k, v in os.environ.items() if k.startswith(LAUNCHER_ENV)}
    for k in saved:
        del os.environ[k]
    try:
        yield
    finally:
        os.environ.update(saved)


@contextlib.contextmanager
def make_executor(workers: int):
    """The executor of ``workers`` > 1 concurrent cases (see the module docstring)."""
    if futures_launched():
        from mpi4py.futures import MPIPoolExecutor

        with MPIPoolExecutor(max_workers=workers) as ex:
            yield ex
        return
    with _clean_launcher_env():
        ex = ProcessPoolExecutor(max_workers=workers, mp_context=get_context("spawn"))
        try:
            yield ex
        finally:
            ex.shutdown(wait=True, cancel_futures=True)


def prepare_study_dir(spec: StudySpec, outdir: str | Path) -> Path:
    """Create ``outdir`` and its ``study.json``; refuse a folder of another study (another
    job chain or base config: its case folders would not match)."""
    outdir = Path(outdir)
    (outdir / CASES_DIR).mkdir(parents=True, exist_ok=True)
    path = outdir / STUDY_FILE
    payload = {**spec.to_payload(), "fingerprint": spec.fingerprint()}
    if path.is_file():
        old = json.loads(path.read_text())
        if old.get("fingerprint") != payload["fingerprint"]:
            raise StudyError(
                f"-o: {outdir} holds a study of another job or base config; use a new folder"
            )
        known = {case_id(c) for c in payload["cases"]}
        payload["cases"] += [c for c in old.get("cases", []) if case_id(c) not in known]
    path.write_text(json.dumps(payload, indent=2))
    return outdir


def load_study_dir(outdir: str | Path) -> StudySpec:
    """The study a folder was run with (its ``study.json``)."""
    path = Path(outdir) / STUDY_FILE
    if not path.is_file():
        raise StudyError(f"{outdir}: no {STUDY_FILE} (not a study folder?)")
    return StudySpec.from_payload(json.loads(path.read_text()))


def _todo(root: Path, cases, retry_failed: bool, db) -> tuple[list[dict], list[dict]]:
    """(cases to run, records of cases finished earlier); a finished case missing from the
    database is added to it."""
    todo, old = [], []
    have = db.case_ids()
    for params in cases:
        rec = read_result(root, params)
        if rec is None or (rec.get("status") != "done" and retry_failed):
            todo.append(params)
            continue
        old.append(rec)
        if rec["case_id"] not in have:
            db.write(rec)
    return todo, old


def _past(deadline: float | None, comm) -> bool:
    """True once ``deadline`` (a ``time.monotonic()``) has passed; rank 0 decides for all."""
    late = deadline is not None and time.monotonic() >= deadline
    return comm.bcast(late, root=0) if comm is not None and comm.size > 1 else late


def _run_pool(ex, run, todo: list[dict], workers: int, deadline, done) -> int:
    """Keep ``workers`` cases in flight on ``ex``; submit none after ``deadline``. The number
    of cases not submitted."""
    queue, running = list(todo), set()
    while queue or running:
        while queue and len(running) < workers and not _past(deadline, None):
            running.add(ex.submit(run, queue.pop(0)))
        if not running:
            break
        finished, running = wait(running, return_when=FIRST_COMPLETED)
        for fut in finished:
            done(fut.result())
    return len(queue)


def run_cases(
    spec: StudySpec,
    outdir: str | Path,
    cases=None,
    *,
    workers: int = 1,
    retry_failed: bool = False,
    deadline_s: float | None = None,
    on_result: Callable[[dict], None] | None = None,
) -> list[dict | None]:
    """Run the cases (default: the study's) not finished yet; return every case's record
    (``case_id``, ``params``, ``status``, ``metrics``, ``error``, ``wall_time_s``, ...) in
    the order given, None for a case left for later by ``deadline_s`` (no case starts after
    that many wall seconds from this call; the running ones finish). ``on_result(record)``
    runs in the parent as each case completes."""
    check_workers(workers)
    deadline = None if deadline_s is None else time.monotonic() + deadline_s
    cases = list(spec.cases if cases is None else cases)
    comm = parent_comm()
    collective = comm.size > 1
    todo, old, db, error = None, None, None, None
    if comm.rank == 0:
        try:  # a refused folder fails on every rank, not only here
            outdir = prepare_study_dir(spec, outdir)
            db = open_db(outdir)
            todo, old = _todo(outdir / CASES_DIR, cases, retry_failed, db)
        except (StudyError, OSError) as err:
            error = err
        else:
            log.info(
                "study %s: %d cases, %d finished earlier, %d to run on %d worker(s)",
                spec.name, len(cases), len(old), len(todo), workers,
            )  # fmt: skip
    todo, error = comm.bcast((todo, error), root=0)
    if error is not None:
        if db is not None:
            db.close()
        raise error
    root = str(Path(comm.bcast(str(outdir) if comm.rank == 0 else None, root=0)) / CASES_DIR)
    payload = spec.to_payload()
    new = []

    def done(rec: dict) -> None:
        new.append(rec)
        if comm.rank == 0:
            db.write(rec)
            log.info(
                "case %d/%d %s %s (%.1f s)%s", len(new), len(todo), rec["case_id"],
                rec["status"], rec["wall_time_s"], f": {rec['error']}" if rec["error"] else "",
            )  # fmt: skip
            if on_result is not None:
                on_result(rec)

    left = 0
    try:
        if workers == 1 or len(todo) <= 1:
            for k, params in enumerate(todo):
                if _past(deadline, comm):
                    left = len(todo) - k
                    break
                done(execute_case(payload, params, root, collective))
        else:
            with make_executor(workers) as ex:
                run = functools.partial(execute_case, payload, root=root)
                left = _run_pool(ex, run, todo, workers, deadline, done)
    finally:
        if db is not None:
            db.close()
    if left and comm.rank == 0:
        log.warning(
            "study %s: deadline (%g s) reached, %d case(s) not started; run the same command "
            "again to resume", spec.name, deadline_s, left,
        )  # fmt: skip
    by_id = {r["case_id"]: r for r in (old or []) + new}
    records = [by_id.get(case_id(p)) for p in cases] if comm.rank == 0 else None
    return comm.bcast(records, root=0)


def run_study(spec: StudySpec, outdir: str | Path, **kw) -> list[dict]:
    """Validate every case of ``spec`` (one StudyError naming each bad key), then
    :func:`run_cases` them all."""
    spec.validate()
    return run_cases(spec, outdir, **kw)
