"""The distributed electrode mesh: dolfinx mesh + tags + microstructure metadata, and its I/O.

* built from a Gmsh model on one rank and distributed (``shared_facet`` ghost mode, which the
  interface integrals ``dS`` of later solvers need);
* written to / read from XDMF (with cell and facet tags) and Gmsh ``.msh``, under MPI;
* metadata (microstructure parameters, version) travel in a JSON sidecar ``<name>.json``;
* other formats go through meshio (:func:`convert`, serial).
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from mpi4py import MPI

from .. import __version__, tags

CELL_TAGS_NAME = "cell_tags"
FACET_TAGS_NAME = "facet_tags"


class MeshFileError(RuntimeError):
    """A mesh file that is missing, foreign or corrupt."""


def _partitioner():
    from dolfinx.mesh import GhostMode, create_cell_partitioner

    return create_cell_partitioner(GhostMode.shared_facet, 2)


def _bcast_error(comm: MPI.Comm, message: str | None) -> None:
    """Raise MeshFileError on every rank if rank 0 found a problem."""
    message = comm.bcast(message, root=0)
    if message:
        raise MeshFileError(message)


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
        import gmsh
        from dolfinx.io.gmsh import model_to_mesh

        data = model_to_mesh(
            gmsh.model if comm.rank == rank else None,
            comm,
            rank,
            gdim=gdim,
            partitioner=_partitioner(),
        )
        return cls._from_meshdata(data, comm.bcast(metadata, root=rank))

    @classmethod
    def _from_meshdata(cls, data, metadata):
        mesh = data.mesh
        tdim = mesh.topology.dim
        mesh.topology.create_connectivity(tdim - 1, tdim)
        data.cell_tags.name = CELL_TAGS_NAME
        data.facet_tags.name = FACET_TAGS_NAME
        return cls(mesh, data.cell_tags, data.facet_tags, dict(metadata or {}))

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
            path.with_suffix(".json").write_text(json.dumps(meta, indent=2, default=_jsonable))
        self.comm.barrier()
        return path

    # --- input ----------------------------------------------------------------------------
    @classmethod
    def read(cls, path: str | Path, comm: MPI.Comm = MPI.COMM_WORLD) -> ElectrodeMesh:
        """Read an electrofem mesh from ``.xdmf`` or Gmsh ``.msh``; clear error if corrupt."""
        path = Path(path)
        if path.suffix == ".xdmf":
            return cls._read_xdmf(path, comm)
        if path.suffix == ".msh":
            return cls._read_msh(path, comm)
        raise MeshFileError(f"{path}: unknown mesh format {path.suffix!r} (use .xdmf or .msh)")

    @classmethod
    def _read_xdmf(cls, path: Path, comm: MPI.Comm):
        from dolfinx.io import XDMFFile

        msg = None
        if comm.rank == 0:
            msg = _check_xdmf(path)
        _bcast_error(comm, msg)
        try:
            with XDMFFile(comm, str(path), "r") as f:
                mesh = f.read_mesh(name="mesh")
                tdim = mesh.topology.dim
                mesh.topology.create_connectivity(tdim - 1, tdim)
                ct = f.read_meshtags(mesh, CELL_TAGS_NAME)
                ft = f.read_meshtags(mesh, FACET_TAGS_NAME)
        except RuntimeError as err:
            raise MeshFileError(f"{path}: not a readable electrofem XDMF mesh ({err})") from None
        return cls(mesh, ct, ft, _read_sidecar(path, comm))

    @classmethod
    def _read_msh(cls, path: Path, comm: MPI.Comm):
        import gmsh
        from dolfinx.io.gmsh import read_from_msh

        msg = None
        gdim = 3
        if comm.rank == 0:
            msg, gdim = _check_msh(path)
        _bcast_error(comm, msg)
        gdim = comm.bcast(gdim, root=0)
        try:
            started = gmsh.isInitialized()
            data = read_from_msh(str(path), comm, 0, gdim=gdim, partitioner=_partitioner())
            if started and not gmsh.isInitialized():
                gmsh.initialize()
        except Exception as err:  # gmsh raises plain Exception
            raise MeshFileError(f"{path}: not a readable Gmsh mesh ({err})") from None
        if data.cell_tags is None or data.facet_tags is None:
            raise MeshFileError(f"{path}: has no physical groups; not an electrofem mesh")
        return cls._from_meshdata(data, _read_sidecar(path, comm))

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

    def tag_values(self, meshtags) -> list[int]:
        """Tag values present on any rank (sorted)."""
        local = set(np.unique(meshtags.values).tolist())
        return sorted(set().union(*self.comm.allgather(local)))

    def statistics(self) -> dict:
        """Global counts of cells, vertices and facets per tag."""
        tdim = self.dim
        imap = self.mesh.topology.index_map(tdim)
        vmap = self.mesh.topology.index_map(0)
        return {
            "n_cells": int(imap.size_global),
            "n_vertices": int(vmap.size_global),
            "phase_volumes": {tags.phase_name(k): v for k, v in self.phase_volumes().items()},
            "facet_measures": {tags.facet_name(k): v for k, v in self.facet_measures().items()},
        }


def _jsonable(obj):
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"not JSON-serialisable: {type(obj)}")


def _read_sidecar(path: Path, comm: MPI.Comm) -> dict:
    meta = {}
    if comm.rank == 0:
        side = path.with_suffix(".json")
        if side.is_file():
            try:
                meta = json.loads(side.read_text())
            except json.JSONDecodeError:
                meta = {"warning": f"unreadable metadata {side.name}"}
    return comm.bcast(meta, root=0)


def _check_xdmf(path: Path) -> str | None:
    if not path.is_file():
        return f"{path}: no such mesh file"
    try:
        root = ET.parse(path).getroot()
    except ET.ParseError as err:
        return f"{path}: corrupt XDMF (not valid XML: {err})"
    if root.tag != "Xdmf":
        return f"{path}: not an XDMF file (root element {root.tag!r})"
    names = {g.get("Name") for g in root.iter("Grid")}
    missing = {"mesh", CELL_TAGS_NAME, FACET_TAGS_NAME} - names
    if missing:
        return f"{path}: not an electrofem mesh (missing grids {sorted(missing)})"
    for item in root.iter("DataItem"):
        if item.get("Format") == "HDF" and item.text:
            h5 = path.parent / item.text.strip().split(":")[0]
            if not h5.is_file():
                return f"{path}: its data file {h5.name} is missing"
            try:
                with open(h5, "rb") as fh:
                    if fh.read(8) != b"\x89HDF\r\n\x1a\n":
                        return f"{path}: its data file {h5.name} is not HDF5 (corrupt)"
            except OSError as err:
                return f"{path}: cannot read {h5.name}: {err}"
            break
    return None


def _check_msh(path: Path) -> tuple[str | None, int]:
    if not path.is_file():
        return f"{path}: no such mesh file", 3
    with open(path, "rb") as fh:
        head = fh.read(64)
    if not head.startswith(b"$MeshFormat"):
        return f"{path}: not a Gmsh .msh file (no $MeshFormat header)", 3
    meta = {}
    side = path.with_suffix(".json")
    if side.is_file():
        try:
            meta = json.loads(side.read_text())
        except json.JSONDecodeError:
            pass
    gdim = int(meta.get("dim", 0)) or _msh_dim(path)
    return None, gdim


def _msh_dim(path: Path) -> int:
    """Geometric dimension of a .msh: 2 when every node has z == 0."""
    import meshio

    try:
        m = meshio.read(path)
    except Exception:  # noqa: BLE001 - any meshio failure means "cannot tell"
        return 3
    return 2 if np.allclose(m.points[:, 2:], 0.0) else 3


def convert(src: str | Path, dst: str | Path) -> Path:
    """Convert a mesh between formats with meshio (serial), keeping physical tags as
    ``cell_data["tags"]``. Example: ``convert("mesh.msh", "mesh.vtu")``."""
    import meshio

    src, dst = Path(src), Path(dst)
    try:
        m = meshio.read(src)
    except Exception as err:  # noqa: BLE001
        raise MeshFileError(f"{src}: meshio cannot read it ({err})") from None
    if "gmsh:physical" in m.cell_data:
        m.cell_data["tags"] = m.cell_data.pop("gmsh:physical")
        m.cell_data.pop("gmsh:geometrical", None)
    m.cell_sets = {}  # named groups are already in the "tags" cell data
    meshio.write(dst, m)
    return dst
