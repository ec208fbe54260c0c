"""One case of a study: run its job (chain) in its folder and return its flat metrics.

Layout of a case folder ``DIR/cases/<case id>/``: ``case.json`` (its parameters, written
first), one sub-folder per job (``generate/``, ``transport/``, ... as the jobs write them;
``cell/`` and, for ``["cell", "discharge"]``, ``full/`` with the fully wetted discharge) and
``result.json`` (status, flat metrics, error, wall time), written last. A job whose own JSON
says ``done`` is not run again (its metrics are read back), so a case killed half-way resumes
at the job it was in; a discharge or infiltration with a checkpoint continues from it.

:func:`execute_case` is what a worker runs: it never raises for a failing case; the error and
the tail of its traceback go into the result.
"""

from __future__ import annotations

import json
import math
import time
import traceback
from pathlib import Path

from mpi4py import MPI

from .. import __version__
from .spec import StudySpec, case_id, resolve_python_job

#: What a case folder holds.
CASE_FILE = "case.json"
RESULT_FILE = "result.json"
#: The metrics file of each job in its sub-folder (generate: the summary).
JOB_FILES = {
    "generate": "summary.json",
    "transport": "transport.json",
    "conductivity": "conductivity.json",
    "infiltrate": "infiltration.json",
    "discharge": "discharge.json",
    "cell": "cell.json",
}
#: Keys of a job's JSON that are not metrics (the inputs, file names, the definitions text).
SKIPPED_KEYS = ("parameters", "files", "definitions")
#: The folder (and metrics prefix) of the fully wetted discharge of ``["cell", "discharge"]``.
FULL_DIR = "full"
TRACEBACK_LINES = 15


def flatten_metrics(data: dict, prefix: str = "") -> dict:
    """Every scalar (number, string, bool) of a metrics dict under a dotted name; nested
    dicts recurse, a list of per-C-rate dicts becomes ``<name>.<rate>C.<key>``, other lists
    and None are left out."""
    out = {}
    for key, value in data.items():
        if key in SKIPPED_KEYS and not prefix.count("."):
            continue
        name = f"{prefix}.{key}" if prefix else str(key)
        if isinstance(value, dict):
            out.update(flatten_metrics(value, name))
        elif isinstance(value, list):
            if value and all(isinstance(v, dict) and "c_rate" in v for v in value):
                for v in value:
                    rest = {k: x for k, x in v.items() if k != "c_rate"}
                    out.update(flatten_metrics(rest, f"{name}.{v['c_rate']:g}C"))
        elif isinstance(value, bool | int | str):
            out[name] = value
        elif isinstance(value, float):
            out[name] = value if math.isfinite(value) else str(value)
    return out


def _read_json(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def _done(folder: Path, job: str) -> dict | None:
    """The metrics of a job finished earlier in ``folder`` (None: run it)."""
    data = _read_json(folder / JOB_FILES[job])
    if data is None:
        return None
    if job == "generate":
        return data if (folder / "mesh.xdmf").is_file() else None
    return data if data.get("status") == "done" else None


def _has_checkpoint(folder: Path) -> bool:
    from ..jobs.output import CHECKPOINT_DIR

    return (folder / CHECKPOINT_DIR / "state.json").is_file()


def _run_job(job: str, source, cfg, folder: Path, comm) -> dict:
    """Run one job on ``source`` (an ElectrodeMesh or the Config) into ``folder``."""
    if job == "transport":
        from ..jobs.transport import run_transport

        rep = run_transport(
            source, folder, cfg.transport, cfg.density or None, comm=comm, progress=False
        )
        return rep.metrics
    if job == "conductivity":
        from ..jobs.conductivity import run_conductivity

        return run_conductivity(source, folder, cfg.conductivity, comm=comm, progress=False)
    restart = _has_checkpoint(folder)
    if job == "infiltrate":
        from ..jobs.infiltrate import run_infiltration

        return run_infiltration(
            source, folder, cfg.infiltration, comm=comm, progress=False, restart=restart
        ).metrics
    if job == "discharge":
        from ..jobs.discharge import run_discharge

        return run_discharge(
            source, folder, cfg.discharge, comm=comm, progress=False, restart=restart
        ).metrics
    raise ValueError(f"job: {job!r} cannot run on a mesh")


def run_chain(spec: StudySpec, params: dict, folder: Path, comm) -> dict:
    """Run the case's jobs in ``folder``; return ``{job: metrics dict}`` (collective on
    ``comm``)."""
    if spec.is_python:
        fn = resolve_python_job(spec.jobs[0])
        return {"": fn(spec.config_dict(params), folder)}
    cfg = spec.check_case(params)
    if "cell" in spec.jobs:
        from ..jobs.cell import run_cell

        out = run_cell(cfg, folder / "cell", comm=comm, progress=False)
        results = {"infiltrate": out["infiltrate"], "discharge": out["discharge"]}
        if "discharge" in spec.jobs:  # the reference: the same mesh, fully wetted
            full = folder / FULL_DIR
            results[FULL_DIR] = _done(full, "discharge")
            if results[FULL_DIR] is None:
                results[FULL_DIR] = _run_job("discharge", out["mesh"], cfg, full, comm)
        return results
    from ..mesh import ElectrodeMesh

    results = {}
    gen = folder / "generate"
    results["generate"] = _done(gen, "generate")
    if results["generate"] is None:
        from ..jobs.generate import run_generate

        emesh, results["generate"] = run_generate(cfg, gen, comm=comm, progress=False)
    else:
        emesh = ElectrodeMesh.read(gen / "mesh.xdmf", comm)
    for job in spec.jobs:
        if job == "generate":
            continue
        sub = folder / job
        results[job] = _done(sub, job) or _run_job(job, emesh, cfg, sub, comm)
    return results


def execute_case(payload: dict, params: dict, root: str, collective: bool = False) -> dict:
    """Run one case in ``root/<case id>`` and return its result record (also written to
    ``result.json``). One rank (``MPI.COMM_SELF``) unless ``collective``: then every rank of
    ``MPI.COMM_WORLD`` runs it together and rank 0 writes. Never raises for a failing case."""
    comm = MPI.COMM_WORLD if collective else MPI.COMM_SELF
    spec = StudySpec.from_payload(payload)
    cid = case_id(params)
    folder = Path(root) / cid
    if comm.rank == 0:
        folder.mkdir(parents=True, exist_ok=True)
        (folder / CASE_FILE).write_text(json.dumps({"case_id": cid, "params": params}, indent=2))
    comm.barrier()
    t0 = time.perf_counter()
    record = {"case_id": cid, "params": params, "folder": str(folder), "version": __version__}
    try:
        results = run_chain(spec, params, folder, comm)
        metrics = {}
        for job, m in results.items():
            metrics.update(flatten_metrics(m or {}, job))
        record.update(status="done", metrics=metrics, error=None, traceback=None)
    except Exception as err:  # a failing case is recorded, the study goes on
        tail = traceback.format_exc().splitlines()[-TRACEBACK_LINES:]
        record.update(
            status="failed", metrics={}, error=f"{type(err).__name__}: {err}", traceback=tail
        )
    record["wall_time_s"] = time.perf_counter() - t0
    if comm.rank == 0:
        tmp = folder / (RESULT_FILE + ".tmp")
        tmp.write_text(json.dumps(record, indent=2, default=str))
        tmp.replace(folder / RESULT_FILE)
    return record


def read_result(root: Path, params: dict) -> dict | None:
    """The result record of a case run earlier, or None."""
    return _read_json(Path(root) / case_id(params) / RESULT_FILE)
