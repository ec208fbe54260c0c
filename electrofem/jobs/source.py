"""The source of a job: an :class:`~electrofem.mesh.ElectrodeMesh`, a mesh file or a config
(generated first into the job's output folder)."""

from __future__ import annotations

from pathlib import Path

from mpi4py import MPI

from ..config import Config, load
from ..mesh import ElectrodeMesh
from .generate import run_generate

#: File suffixes read as a mesh (anything else is a config).
MESH_SUFFIXES = (".xdmf", ".msh")


def load_source(source, outdir: Path, comm: MPI.Comm, progress: bool, reuse_mesh: bool = False):
    """``(ElectrodeMesh, Config | None, mesh path)`` of a job's source: a mesh, a mesh file or a
    config (generated into ``outdir``). ``reuse_mesh``: for a config whose mesh is already in
    ``outdir`` (a restart), read that mesh instead of generating it again."""
    if isinstance(source, ElectrodeMesh):
        return source, None, None
    if isinstance(source, str | Path) and Path(source).suffix in MESH_SUFFIXES:
        return ElectrodeMesh.read(source, comm), None, Path(source)
    cfg = source if isinstance(source, Config) else load(source)
    mesh_path = Path(outdir) / "mesh.xdmf"
    if reuse_mesh and mesh_path.is_file():
        return ElectrodeMesh.read(mesh_path, comm), cfg, mesh_path
    emesh, _ = run_generate(cfg, outdir, comm=comm, progress=progress)
    return emesh, cfg, mesh_path
