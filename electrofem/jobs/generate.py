"""The ``generate`` job: packing -> geometry -> mesh -> write, under MPI.

Packing, Gmsh geometry and meshing run on rank 0 (they are serial and deterministic); the mesh
is then distributed to all ranks, written collectively to XDMF, and measured with MPI
reductions. Any error on rank 0 is broadcast, so every rank stops with the same message.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import time
from pathlib import Path

from mpi4py import MPI

from .. import __version__, tags
from ..config import Config
from ..microstructure import MicrostructureError, Particles, generate, summarize
from ..microstructure.measure import contact_pairs
from ..microstructure.resources import check_resources

log = logging.getLogger("electrofem")


class PipelineError(RuntimeError):
    """A stage failed; the message names it."""


def _root_call(comm: MPI.Comm, stage: str, fn, *args, others=None, **kw):
    """Run fn on rank 0 (``others()`` on the other ranks, which must not raise); broadcast
    rank 0's error (if any) so all ranks raise together."""
    result, error = None, None
    if comm.rank != 0 and others is not None:
        others()
    if comm.rank == 0:
        try:
            result = fn(*args, **kw)
        except (MicrostructureError, ValueError) as err:
            error = str(err)
        except RuntimeError as err:
            error = f"{stage}: {err}"
    error = comm.bcast(error, root=0)
    if error:
        raise PipelineError(error)
    return result


def build_particles(cfg: Config, progress: bool = False, force: bool = False) -> Particles:
    """Generate the packing of a config, or read the user's CSV particles. A request whose
    packing or mesh would not fit in this machine's memory is refused first (one line naming
    the key to change); ``force`` runs it anyway."""
    if cfg.particles_csv is not None:
        parts = Particles.from_csv(cfg.particles_csv, cfg.box)
        check_resources(parts, mesh_size_um=cfg.mesh.size, force=force)
        i, j, d = contact_pairs(parts, 1e-3)
        near = abs(d - parts.radii[i] - parts.radii[j]) < 1e-3 * parts.radii[[i, j]].min(axis=0)
        if near.any():
            log.warning(
                "%d near-tangent particle pairs in %s (first: %d-%d): they may not mesh; "
                "give contacts a finite overlap or gap",
                int(near.sum()),
                cfg.particles_csv,
                int(i[near][0]),
                int(j[near][0]),
            )
        parts.meta.update({"seed": None, "version": __version__})
        return parts
    check_resources(cfg.electrode, mesh_size_um=cfg.mesh.size, force=force)
    return generate(cfg.electrode, progress=progress, force=True)  # checked just above


def _mesh_on_root(parts: Particles, cfg: Config, msh_path: Path, comm: MPI.Comm):
    """Rank 0: geometry and mesh, the other ranks cutting part of the particles
    (:func:`electrofem.mesh.parallel.help_mesh`) and then sleeping."""
    import gmsh

    from ..mesh import build_and_mesh
    from ..mesh.parallel import RankCutSharing

    if comm.size == 1:
        report, stats = build_and_mesh(parts, cfg.mesh)
    else:
        with RankCutSharing(comm) as sharing:
            report, stats = build_and_mesh(parts, cfg.mesh, sharing=sharing)
    gmsh.write(str(msh_path))
    return report, stats


def run_generate(
    cfg: Config,
    outdir: str | Path,
    comm: MPI.Comm = MPI.COMM_WORLD,
    progress: bool = True,
    picture: bool = True,
    force: bool = False,
):
    """Run the whole job; return ``(ElectrodeMesh, summary dict)``.

    Writes into ``outdir``: ``particles.csv``, ``mesh.msh``, ``mesh.xdmf`` (+ ``.h5``),
    ``mesh.json`` (metadata sidecar), ``summary.json`` and ``microstructure.png``.
    """
    import gmsh

    from ..mesh import ElectrodeMesh
    from ..plot import plot_microstructure

    outdir = Path(outdir)
    if comm.rank == 0:
        outdir.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    log.info("packing particles")
    parts = _root_call(comm, "packing", build_particles, cfg, progress, force)
    t_pack = time.perf_counter() - t0
    summary = None
    if comm.rank == 0:
        summary = summarize(parts, cfg.density)
        log.info(
            "%d particles, porosity %.4f, loading %.2f mg/cm² (%.1f s)",
            summary["n_particles"],
            summary["porosity"],
            summary["loading_mg_cm2"],
            t_pack,
        )
        parts.to_csv(outdir / "particles.csv")
        if picture:
            plot_microstructure(
                parts,
                outdir / "microstructure.png",
                f"porosity {summary['porosity']:.3f}, {len(parts)} particles",
            )
    log.info("building the Gmsh geometry and meshing")
    msh = outdir / "mesh.msh"
    from ..mesh.build import resolve_route
    from ..mesh.parallel import help_mesh

    if comm.size > 1:
        parts = comm.bcast(parts, root=0)  # the other ranks cut part of the particles
    if comm.rank == 0:
        gmsh.initialize(interruptible=False)
    try:
        res = _root_call(
            comm,
            "meshing",
            _mesh_on_root,
            parts,
            cfg,
            msh,
            comm,
            others=lambda: help_mesh(comm, parts, resolve_route(cfg.mesh, parts)),
        )
        meta = None
        if comm.rank == 0:
            report, stats = res
            meta = {
                "dim": parts.dim,
                "box_um": list(parts.box.size),
                "periodic": parts.box.periodic,
                "length_unit_m": 1e-6,
                "seed": parts.meta.get("seed"),
                "porosity": summary["porosity"],
                "porosity_method": summary.get("porosity_method"),
                "porosity_error": summary.get("porosity_error"),
                "porosity_per_layer": summary["porosity_per_layer"],
                "layer_bounds_um": parts.meta.get("layer_bounds_um"),
                "mesh_options": dataclasses.asdict(cfg.mesh),
                "mesh_stats": dataclasses.asdict(stats),
                "geometry": {
                    "phase_volumes": {
                        tags.phase_name(k): v for k, v in report.phase_volumes.items()
                    },
                    "interface_areas": {
                        tags.interface_name(k): v for k, v in report.interface_areas.items()
                    },
                },
                "version": __version__,
            }
        dim = comm.bcast(parts.dim if comm.rank == 0 else None, root=0)
        emesh = ElectrodeMesh.from_gmsh(comm, dim, meta)
    finally:
        if comm.rank == 0:
            gmsh.finalize()
    xdmf = emesh.write(outdir / "mesh.xdmf")
    mstats = emesh.statistics()
    vols = emesh.phase_volumes()  # collective: every rank calls it
    if comm.rank == 0:
        # an electrolyte-only mesh fills the pore alone: the porosity is over the box
        total = parts.box.volume if cfg.mesh.electrolyte_only else sum(vols.values())
        summary.update(
            {
                "version": __version__,
                "seed": parts.meta.get("seed"),
                "parameters": cfg.source,
                "mesh": {
                    **mstats,
                    **meta["mesh_stats"],
                    "porosity_mesh": vols.get(tags.ELECTROLYTE, 0.0) / total,
                    "files": {"xdmf": xdmf.name, "msh": msh.name},
                    "mpi_ranks": comm.size,
                },
                "seconds": {"packing": t_pack, "total": time.perf_counter() - t0},
            }
        )
        (outdir / "summary.json").write_text(json.dumps(summary, indent=2, default=str))
        log.info("wrote %s", outdir)
    summary = comm.bcast(summary, root=0)
    return emesh, summary
