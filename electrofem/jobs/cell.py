"""The coupled ``cell`` job: generate → infiltrate → discharge on one mesh, in one command.

One output folder per stage under ``outdir``: ``generate/`` (the mesh), ``infiltrate/`` (the
VOF wetting of the pore space with the config's ``[infiltration]`` table) and ``discharge/``
(the config's ``[discharge]`` table on the electrode as the infiltration left it: its last
wetting state, :mod:`electrofem.jobs.wetting`). A stage whose JSON says ``done`` is not run
again; a stage with a checkpoint continues from it; so the job resumes after an interrupt by
running the same command again (or with ``--restart``). MPI-collective; serial = 2 ranks as
for each stage.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from pathlib import Path

from mpi4py import MPI

from ..config import Config, load
from ..mesh import ElectrodeMesh
from .discharge import run_discharge
from .generate import run_generate
from .infiltrate import run_infiltration
from .output import CHECKPOINT_DIR, prepare_outdir, write_json

log = logging.getLogger("electrofem")

STAGES = ("generate", "infiltrate", "discharge")


def _status(path: Path, comm) -> str | None:
    st = None
    if comm.rank == 0 and path.is_file():
        try:
            st = json.loads(path.read_text()).get("status")
        except (OSError, ValueError):
            st = "unreadable"
    return comm.bcast(st, root=0)


def _has_checkpoint(folder: Path, comm) -> bool:
    return bool(comm.bcast((folder / CHECKPOINT_DIR / "state.json").is_file(), root=0))


def run_cell(
    source: Config | str | Path,
    outdir: str | Path,
    comm: MPI.Comm = MPI.COMM_WORLD,
    progress: bool = True,
    stop=None,
) -> dict:
    """Run (or resume) the three stages; return ``{stage: metrics}`` (and the electrode
    mesh under ``"mesh"``) and write ``outdir/cell.json`` (the stages' status and the headline
    figures)."""
    cfg = source if isinstance(source, Config) else load(source)
    outdir = prepare_outdir(outdir, comm)
    dirs = {s: outdir / s for s in STAGES}
    summary = {"stages": {}}

    # 1. the mesh
    mesh_path = dirs["generate"] / "mesh.xdmf"
    if _status(dirs["generate"] / "summary.json", comm) is None or not mesh_path.is_file():
        log.info("cell: generate")
        emesh, _ = run_generate(cfg, dirs["generate"], comm=comm, progress=progress)
    else:
        log.info("cell: generate done, reading %s", mesh_path)
        emesh = ElectrodeMesh.read(mesh_path, comm)
    summary["stages"]["generate"] = "done"

    # 2. the wetting
    inf_json = dirs["infiltrate"] / "infiltration.json"
    if _status(inf_json, comm) != "done":
        restart = _has_checkpoint(dirs["infiltrate"], comm)
        log.info("cell: infiltrate%s", " (continuing)" if restart else "")
        rep = run_infiltration(
            emesh, dirs["infiltrate"], cfg.infiltration, comm=comm, progress=progress,
            restart=restart, stop=stop,
        )  # fmt: skip
        inf = rep.metrics
    else:
        inf = comm.bcast(json.loads(inf_json.read_text()) if comm.rank == 0 else None, root=0)
    summary["stages"]["infiltrate"] = "done"

    # 3. the discharge of the electrode as the infiltration left it
    dis_json = dirs["discharge"] / "discharge.json"
    options = dataclasses.replace(cfg.discharge, wetting=str(dirs["infiltrate"]))
    if _status(dis_json, comm) != "done":
        restart = _has_checkpoint(dirs["discharge"], comm)
        log.info("cell: discharge%s", " (continuing)" if restart else "")
        dis = run_discharge(
            emesh, dirs["discharge"], options, comm=comm, progress=progress, restart=restart,
            stop=stop,
        ).metrics  # fmt: skip
    else:
        dis = comm.bcast(json.loads(dis_json.read_text()) if comm.rank == 0 else None, root=0)
    summary["stages"]["discharge"] = "done"
    summary["infiltration"] = {
        k: inf.get(k) for k in ("breakthrough_time_s", "final_air_fraction", "t_final_s")
    }
    summary["wetting"] = dis.get("wetting")
    summary["rate_capability"] = dis.get("rate_capability")
    write_json(outdir / "cell.json", summary, comm)
    return {"infiltrate": inf, "discharge": dis, "summary": summary, "mesh": emesh}
