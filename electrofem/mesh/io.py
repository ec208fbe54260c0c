"""The distributed electrode mesh: dolfinx mesh + tags + microstructure metadata, and its I/O.

* built from a Gmsh model on one rank and distributed (``shared_facet`` ghost mode, which the
  interface integrals ``dS`` of later solvers need);
* written to / read from XDMF (with cell and facet tags) and Gmsh ``.msh``, under MPI. Reading
  either checks the file on rank 0 first (:mod:`.files`; gmsh parses a ``.msh`` there) and
  raises the same one-line :class:`MeshFileError` on every rank when any rank fails: a corrupt
  file never leaves ranks waiting in a collective call;
* metadata (microstructure parameters, version) travel in a JSON sidecar ``<name>.json``; a
  mesh without it still loads, with what can be derived from the mesh (:mod:`.metadata`);
* other formats go through meshio (:func:`convert`, serial, :mod:`.conversion`).
"""

from __future__ import annotations

import itertools
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from mpi4py import MPI

from .. import __version__, tags
from .conversion import convert
from .distribute import model_to_mesh
from .files import CELL_TAGS_NAME, FACET_TAGS_NAME, MeshFileError, check_msh, check_xdmf, one_line
from .metadata import complete, global_bounds, jsonable, read_sidecar

__all__ = ["CELL_TAGS_NAME", "FACET_TAGS_NAME", "ElectrodeMesh", "MeshFileError", "convert"]


def _partitioner(comm: MPI.Comm):
    """The cell partitioner for ``comm``: shared-facet ghosts (interface ``dS`` integrals need
    them), or none on one rank (the same mesh, cell for cell; 12 % less time in dolfinx's
    ``create_mesh`` on 1 M cells)."""
    if comm.size == 1:
        return None
    from dolfinx.mesh import GhostMode, create_cell_partitioner

    return create_cell_partitioner(GhostMode.shared_facet, 2)


def _on_root(comm: MPI.Comm, call, *args):
    """``call(*args)`` on rank 0, returning ``(message, value)``; its message (or exception,
    as one line) is broadcast and raised as MeshFileError on every rank; returns the value
    on rank 0 and None elsewhere."""
    message, value = None, None
    if comm.rank == 0:
        try:
            message, value = call(*args)
        except MeshFileError as err:
            message = str(err)
        except Exception as err:  # noqa: BLE001 - rank 0 must reach the broadcast
            message = f"{args[0]}: cannot read it ({one_line(err)})"
    message = comm.bcast(message, root=0)
    if message:
        raise MeshFileError(message)
    return value


def _agree(comm: MPI.Comm, message: str | None) -> None:
    """Raise MeshFileError on every rank when any rank has a ``message`` (collective)."""
    first = next((m for m in comm.allgather(message) if m), None)
    if first:
        raise MeshFileError(first)


def _sidecar(comm: MPI.Comm, path: Path) -> tuple[dict | None, str | None]:
    return comm.bcast(read_sidecar(path) if comm.rank == 0 else None, root=0)


_models = itertools.count()


class _GmshFile:
    """Rank 0: a ``.msh`` file merged into a fresh gmsh model, with the terminal output off.
    :meth:`close` removes the model and leaves a caller's gmsh session as it found it
    (dolfinx's ``read_from_msh`` finalizes gmsh instead)."""

    def __init__(self, path: Path):
        import gmsh

        self.path = path
        self.started = not gmsh.isInitialized()
        if self.started:
            gmsh.initialize(readConfigFiles=False, interruptible=False)
        self.previous = gmsh.model.getCurrent()
        self.terminal = gmsh.option.getNumber("General.Terminal")
        gmsh.option.setNumber("General.Terminal", 0)
        self.name = f"electrofem-read-{next(_models)}"
        gmsh.model.add(self.name)

    def load(self) -> tuple[str | None, int]:
        """Merge the file; ``(problem, gdim)``."""
        import gmsh

        try:
            gmsh.merge(str(self.path))
        except Exception as err:  # noqa: BLE001 - gmsh raises plain Exception
            return f"{self.path}: not a readable Gmsh mesh ({one_line(err)})", 0
        groups = gmsh.model.getPhysicalGroups()
        dims = {d for d, _ in groups}
        tdim = gmsh.model.getDimension()
        if not groups:
            return f"{self.path}: has no physical groups; not an electrofem mesh", 0
        if tdim not in dims or tdim - 1 not in dims:
            return (
                f"{self.path}: no {tdim}D cell or facet physical groups; not an electrofem mesh",
                0,
            )
        _, coords, _ = gmsh.model.mesh.getNodes()
        if len(coords) == 0:
            return f"{self.path}: has no mesh nodes", 0
        flat = tdim == 2 and np.allclose(np.asarray(coords)[2::3], 0.0)
        return None, 2 if flat else 3

    def close(self) -> None:
        import gmsh

        if not gmsh.isInitialized():
            return
        if self.started:
            gmsh.finalize()
            return
        if self.name in gmsh.model.list():
            gmsh.model.setCurrent(self.name)
            gmsh.model.remove()
        gmsh.option.setNumber("General.Terminal", self.terminal)
        if self.previous in gmsh.model.list():
            gmsh.model.setCurrent(self.previous)


@dataclass
class ElectrodeMesh:
    """A distributed mesh with phase cell tags and boundary/interface facet tags.

    Attributes:
        mesh: the dolfinx mesh (coordinates in µm; ``LENGTH_UNIT_M`` metres per unit).
        cell_tags: phase id per cell (:mod:`electrofem.tags`).
        facet_tags: boundary and interface tags (:mod:`electrofem.tags`).
        metadata: microstructure parameters, statistics and version.
    """

    mesh: object
    cell_tags: object
    facet_tags: object
    metadata: dict = field(default_factory=dict)

    @property
    def comm(self) -> MPI.Comm:
        return self.mesh.comm

    @property
    def dim(self) -> int:
        return self.mesh.topology.dim

    # --- construction ---------------------------------------------------------------------
    @classmethod
    def from_gmsh(cls, comm: MPI.Comm, gdim: int, metadata: dict | None = None, rank: int = 0):
        """Distribute the current Gmsh model (on ``rank``) to all ranks of ``comm``."""
        data = model_to_mesh(comm, rank, gdim, _partitioner(comm))
        return cls._from_meshdata(data, comm.bcast(metadata, root=rank))

    @classmethod
    def _from_meshdata(cls, data, metadata):
        mesh, cell_tags, facet_tags = data
        tdim = mesh.topology.dim
        mesh.topology.create_connectivity(tdim - 1, tdim)
        cell_tags.name = CELL_TAGS_NAME
        facet_tags.name = FACET_TAGS_NAME
        return cls(mesh, cell_tags, facet_tags, dict(metadata or {}))

    # --- output ---------------------------------------------------------------------------
    def write(self, path: str | Path) -> Path:
        """Write XDMF (+ .h5) with both tag sets, and the ``.json`` metadata sidecar."""
        from dolfinx.io import XDMFFile

        path = Path(path)
        if path.suffix != ".xdmf":
            raise ValueError(f"write: only .xdmf is written by dolfinx; got {path.suffix}")
        if self.comm.rank == 0:
            path.parent.mkdir(parents=True, exist_ok=True)
        self.comm.barrier()
        with XDMFFile(self.comm, str(path), "w") as f:
            f.write_mesh(self.mesh)
            f.write_meshtags(self.cell_tags, self.mesh.geometry)
            f.write_meshtags(self.facet_tags, self.mesh.geometry)
        if self.comm.rank == 0:
            meta = {"electrofem_version": __version__, **self.metadata}
            path.with_suffix(".json").write_text(json.dumps(meta, indent=2, default=jsonable))
        self.comm.barrier()
        return path

    # --- input ----------------------------------------------------------------------------
    @classmethod
    def read(cls, path: str | Path, comm: MPI.Comm = MPI.COMM_WORLD) -> ElectrodeMesh:
        """Read an electrofem mesh from ``.xdmf`` (+ ``.h5``) or Gmsh ``.msh`` (collective).

        Raises the same :class:`MeshFileError`, one line naming the file and what is wrong, on
        every rank when the file is missing, foreign or corrupt on any rank. Without its
        ``.json`` sidecar the metadata is derived from the mesh (:func:`.metadata.complete`:
        ``derived`` and ``missing`` list what was derived and what is unknown).
        """
        path = Path(path)
        if path.suffix == ".xdmf":
            return cls._read_xdmf(path, comm)
        if path.suffix == ".msh":
            return cls._read_msh(path, comm)
        raise MeshFileError(f"{path}: unknown mesh format {path.suffix!r} (use .xdmf or .msh)")

    @classmethod
    def _read_xdmf(cls, path: Path, comm: MPI.Comm):
        from dolfinx.io import XDMFFile

        # rank 0 checks the XML and every HDF5 dataset first: dolfinx's reads are collective
        _on_root(comm, lambda p: (check_xdmf(p), None), path)
        meta, why = _sidecar(comm, path)
        problem, mesh, ct, ft = None, None, None, None
        try:
            with XDMFFile(comm, str(path), "r") as f:
                mesh = f.read_mesh(name="mesh")
                tdim = mesh.topology.dim
                mesh.topology.create_connectivity(tdim - 1, tdim)
                ct = f.read_meshtags(mesh, CELL_TAGS_NAME)
                ft = f.read_meshtags(mesh, FACET_TAGS_NAME)
        except Exception as err:  # noqa: BLE001 - RuntimeError from dolfinx, others
            problem = f"{path}: not a readable electrofem XDMF mesh ({one_line(err)})"
        _agree(comm, problem)
        return cls(mesh, ct, ft, complete(meta, why, path, mesh, ct))

    @classmethod
    def _read_msh(cls, path: Path, comm: MPI.Comm):
        def load(p):
            problem = check_msh(p)
            if problem:
                return problem, None
            reader = _GmshFile(p)
            problem, gdim = reader.load()
            if problem:
                reader.close()
                return problem, None
            return None, (reader, gdim)

        # rank 0 parses the whole file with gmsh before anything is distributed
        opened = _on_root(comm, load, path)
        reader, gdim = opened if comm.rank == 0 else (None, None)
        gdim = comm.bcast(gdim, root=0)
        meta, why = _sidecar(comm, path)
        problem, data = None, None
        try:
            data = model_to_mesh(comm, 0, gdim, _partitioner(comm))
        except Exception as err:  # noqa: BLE001
            problem = f"{path}: not a readable Gmsh mesh ({one_line(err)})"
        finally:
            if reader is not None:
                reader.close()
        if problem is None and data[2] is None:
            problem = f"{path}: has no physical groups; not an electrofem mesh"
        _agree(comm, problem)
        em = cls._from_meshdata(data, None)
        em.metadata = complete(meta, why, path, em.mesh, em.cell_tags)
        return em

    # --- measures (MPI-reduced) -----------------------------------------------------------
    def phase_volumes(self) -> dict[int, float]:
        """Volume (area in 2D) of every cell tag, in µm³ (µm²), summed over ranks."""
        import ufl
        from dolfinx import fem

        dx = ufl.Measure("dx", domain=self.mesh, subdomain_data=self.cell_tags)
        one = fem.Constant(self.mesh, 1.0)
        out = {}
        for t in self.tag_values(self.cell_tags):
            local = fem.assemble_scalar(fem.form(one * dx(int(t))))
            out[int(t)] = self.comm.allreduce(local, op=MPI.SUM)
        return out

    def facet_measures(self) -> dict[int, float]:
        """Area (length in 2D) of every facet tag, µm² (µm), each facet counted once."""
        import ufl
        from dolfinx import fem

        ds = ufl.Measure("ds", domain=self.mesh, subdomain_data=self.facet_tags)
        dS = ufl.Measure("dS", domain=self.mesh, subdomain_data=self.facet_tags)
        one = fem.Constant(self.mesh, 1.0)
        out = {}
        for t in self.tag_values(self.facet_tags):
            meas = ds(int(t)) if int(t) < 100 else dS(int(t))
            local = fem.assemble_scalar(fem.form(one * meas))
            out[int(t)] = self.comm.allreduce(local, op=MPI.SUM)
        return out

    def bounding_box(self) -> tuple[np.ndarray, np.ndarray]:
        """``(lo, hi)``: the global coordinate bounds, µm, ``dim`` values each (collective).
        A generated mesh has ``lo == 0`` and ``hi == metadata["box_um"]``."""
        lo, hi = global_bounds(self.mesh)
        return lo[: self.dim], hi[: self.dim]

    def box_um(self) -> list[float]:
        """The box size, µm: ``metadata["box_um"]``, else the bounding box if it starts at the
        origin (collective); ValueError otherwise (a solver needs the box)."""
        box = self.metadata.get("box_um")
        if box:
            return [float(v) for v in box][: self.dim]
        lo, hi = self.bounding_box()
        if np.any(np.abs(lo) > 1e-9 * max(float(np.max(np.abs(hi))), 1.0)):
            raise ValueError(
                "mesh: no box_um and the mesh does not start at the origin (bounds "
                f"{np.round(lo, 6).tolist()} to {np.round(hi, 6).tolist()} µm); shift it to 0 or "
                "give its mesh.json"
            )
        return [float(v) for v in hi]

    def tag_values(self, meshtags) -> list[int]:
        """Tag values present on any rank (sorted)."""
        local = set(np.unique(meshtags.values).tolist())
        return sorted(set().union(*self.comm.allgather(local)))

    def facet_counts(self) -> dict[int, int]:
        """Number of facets of every facet tag, over all ranks, each facet counted once."""
        tdim = self.dim
        self.mesh.topology.create_entities(tdim - 1)
        n_owned = self.mesh.topology.index_map(tdim - 1).size_local
        owned = self.facet_tags.indices < n_owned
        values, counts = np.unique(self.facet_tags.values[owned], return_counts=True)
        total: dict[int, int] = {}
        for part in self.comm.allgather(dict(zip(values.tolist(), counts.tolist(), strict=True))):
            for k, n in part.items():
                total[k] = total.get(k, 0) + n
        return {k: total[k] for k in sorted(total)}

    def statistics(self) -> dict:
        """Global counts of cells, vertices and facets per tag (``facets_by_tag``), and the
        volume of every phase and the area of every facet tag (collective)."""
        tdim = self.dim
        imap = self.mesh.topology.index_map(tdim)
        vmap = self.mesh.topology.index_map(0)
        return {
            "n_cells": int(imap.size_global),
            "n_vertices": int(vmap.size_global),
            "phase_volumes": {tags.phase_name(k): v for k, v in self.phase_volumes().items()},
            "facet_measures": {tags.facet_name(k): v for k, v in self.facet_measures().items()},
            "facets_by_tag": {tags.facet_name(k): n for k, n in self.facet_counts().items()},
        }
