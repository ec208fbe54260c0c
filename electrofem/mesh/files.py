"""Mesh files on disk, without dolfinx: format checks and raw reads (serial, one rank).

* :func:`check_xdmf` / :func:`check_msh`: everything that can be wrong with an electrofem
  ``.xdmf`` (+ ``.h5``) or a Gmsh ``.msh`` header, as one line naming the file, or None. The HDF5
  data file is probed with h5py (which keeps HDF5's error stack quiet), so that dolfinx never
  opens a truncated or inconsistent file: under MPI a failure inside dolfinx's collective
  reads would leave the other ranks waiting, and HDF5 prints its ~20-line diagnostic stack.
* :func:`read_xdmf_arrays`: points, cells and both tag sets of an electrofem XDMF, read with
  h5py (for :func:`electrofem.mesh.conversion.convert`).

The XDMF written by :meth:`ElectrodeMesh.write <electrofem.mesh.io.ElectrodeMesh.write>`
(dolfinx) holds three grids: ``mesh`` (topology + geometry), ``cell_tags`` and
``facet_tags`` (each its own topology, the mesh geometry by ``xi:include``, and a cell
attribute of tag values).
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

import numpy as np

CELL_TAGS_NAME = "cell_tags"
FACET_TAGS_NAME = "facet_tags"
#: The grids of an electrofem XDMF.
GRIDS = ("mesh", CELL_TAGS_NAME, FACET_TAGS_NAME)
#: XDMF topology type (P1 cells) -> meshio cell type.
MESHIO_CELL_TYPES = {
    "Triangle": "triangle",
    "Tetrahedron": "tetra",
    "Quadrilateral": "quad",
    "Hexahedron": "hexahedron",
    "PolyLine": "line",
    "Polyvertex": "vertex",
}
#: Rows read at a time when scanning a topology for out-of-range node indices.
_CHUNK_ROWS = 1 << 20


class MeshFileError(RuntimeError):
    """A mesh file that is missing, foreign or corrupt (the message is one line)."""


@dataclass
class _Item:
    """An HDF5-backed XDMF DataItem: ``h5`` file, dataset path and declared shape."""

    h5: Path
    dataset: str
    shape: tuple[int, ...]


@dataclass
class _Grid:
    name: str
    topology_type: str
    nodes_per_element: int
    topology: _Item | None
    geometry: _Item | None
    values: _Item | None


def one_line(err: BaseException | str) -> str:
    """The first non-empty line of an error message, stripped."""
    text = str(err).strip()
    return text.splitlines()[0].strip() if text else type(err).__name__


# --------------------------------------------------------------------------------------------
# XDMF
# --------------------------------------------------------------------------------------------
def _item(xdmf: Path, elem) -> _Item | None:
    """The HDF5 reference of the DataItem under ``elem`` (None if inline or absent)."""
    if elem is None:
        return None
    item = elem.find("DataItem")
    if item is None or item.get("Format") != "HDF" or not (item.text or "").strip():
        return None
    ref = item.text.strip()
    if ":" not in ref:
        raise MeshFileError(f"{xdmf}: corrupt XDMF (HDF reference {ref!r} has no ':')")
    fname, dataset = ref.split(":", 1)
    try:
        shape = tuple(int(v) for v in (item.get("Dimensions") or "").split())
    except ValueError:
        raise MeshFileError(
            f"{xdmf}: corrupt XDMF (Dimensions {item.get('Dimensions')!r})"
        ) from None
    return _Item(xdmf.parent / fname, dataset, shape)


def _parse_xdmf(path: Path) -> dict[str, _Grid]:
    """The grids of an XDMF file by name; raises MeshFileError naming what is wrong."""
    if not path.is_file():
        raise MeshFileError(f"{path}: no such mesh file")
    try:
        root = ET.parse(path).getroot()
    except ET.ParseError as err:
        raise MeshFileError(f"{path}: corrupt XDMF (not valid XML: {err})") from None
    if root.tag != "Xdmf":
        raise MeshFileError(f"{path}: not an XDMF file (root element {root.tag!r})")
    grids = {}
    for g in root.iter("Grid"):
        topo = g.find("Topology")
        try:
            npe = int(topo.get("NodesPerElement", "0")) if topo is not None else 0
        except ValueError:
            npe = 0
        grids[g.get("Name")] = _Grid(
            name=g.get("Name"),
            topology_type=topo.get("TopologyType", "") if topo is not None else "",
            nodes_per_element=npe,
            topology=_item(path, topo),
            geometry=_item(path, g.find("Geometry")),
            values=_item(path, g.find("Attribute")),
        )
    return grids


def _electrofem_grids(path: Path) -> dict[str, _Grid]:
    grids = _parse_xdmf(path)
    missing = set(GRIDS) - set(grids)
    if missing:
        raise MeshFileError(f"{path}: not an electrofem mesh (missing grids {sorted(missing)})")
    mesh = grids["mesh"]
    if mesh.topology is None or mesh.geometry is None:
        raise MeshFileError(f"{path}: not an electrofem mesh (grid 'mesh' has no HDF5 data)")
    for name in (CELL_TAGS_NAME, FACET_TAGS_NAME):
        if grids[name].topology is None or grids[name].values is None:
            raise MeshFileError(f"{path}: not an electrofem mesh (grid {name!r} has no HDF5 data)")
    return grids


def _open_h5(xdmf: Path, h5: Path):
    """h5py file object, or MeshFileError (HDF5's own error stack stays silent)."""
    import h5py

    if not h5.is_file():
        raise MeshFileError(f"{xdmf}: its data file {h5.name} is missing")
    try:
        with open(h5, "rb") as fh:
            if fh.read(8) != b"\x89HDF\r\n\x1a\n":
                raise MeshFileError(f"{xdmf}: its data file {h5.name} is not HDF5 (corrupt)")
        return h5py.File(h5, "r")
    except MeshFileError:
        raise
    except Exception as err:  # noqa: BLE001 - h5py raises OSError, sometimes others
        raise MeshFileError(
            f"{xdmf}: its data file {h5.name} is unreadable ({one_line(err)})"
        ) from None


def _dataset(xdmf: Path, files: dict, item: _Item, what: str):
    """The h5py dataset of ``item``, checked against its declared shape."""
    if item.h5 not in files:
        files[item.h5] = _open_h5(xdmf, item.h5)
    f = files[item.h5]
    try:
        ds = f[item.dataset]
        shape = tuple(ds.shape)
    except Exception:  # noqa: BLE001 - KeyError, or a corrupt object header
        raise MeshFileError(
            f"{xdmf}: {what}: dataset {item.dataset} missing or unreadable in {item.h5.name}"
        ) from None
    if item.shape and shape != item.shape:
        raise MeshFileError(
            f"{xdmf}: {what}: dataset {item.dataset} has shape {shape}, the XDMF says "
            f"{item.shape} (files do not match)"
        )
    if ds.dtype.kind not in "iuf":
        raise MeshFileError(f"{xdmf}: {what}: dataset {item.dataset} is not numeric")
    return ds


def _read(ds, xdmf: Path, what: str, rows: slice | None = None) -> np.ndarray:
    try:
        return ds[rows] if rows is not None else ds[()]
    except Exception as err:  # noqa: BLE001
        raise MeshFileError(f"{xdmf}: {what}: cannot read the data ({one_line(err)})") from None


def check_xdmf(path: str | Path) -> str | None:
    """Why ``path`` is not a readable electrofem XDMF mesh (one line), or None.

    Checks the XML, the three grids, that every HDF5 dataset exists with the declared shape
    and can be read to its end, and that topology node indices lie in the geometry (reading
    the topologies once, in chunks).
    """
    path = Path(path)
    files: dict = {}
    try:
        grids = _electrofem_grids(path)
        geo = _dataset(path, files, grids["mesh"].geometry, "mesh geometry")
        if geo.ndim != 2 or geo.shape[1] not in (2, 3) or geo.shape[0] == 0:
            return f"{path}: mesh geometry has shape {geo.shape}, not (points, 2 or 3)"
        _read(geo, path, "mesh geometry", slice(geo.shape[0] - 1, None))
        n_points = geo.shape[0]
        for name in GRIDS:
            grid = grids[name]
            topo = _dataset(path, files, grid.topology, f"{name} topology")
            if topo.ndim != 2 or topo.dtype.kind not in "iu":
                return f"{path}: {name} topology is not an integer table"
            for start in range(0, topo.shape[0], _CHUNK_ROWS):
                block = _read(topo, path, f"{name} topology", slice(start, start + _CHUNK_ROWS))
                if block.size and (block.min() < 0 or block.max() >= n_points):
                    return f"{path}: {name} topology refers to points outside the geometry"
            if grid.values is not None:
                vals = _dataset(path, files, grid.values, f"{name} values")
                if vals.shape[0] != topo.shape[0]:
                    return f"{path}: {name}: {vals.shape[0]} values for {topo.shape[0]} entities"
                if vals.shape[0]:
                    _read(vals, path, f"{name} values", slice(vals.shape[0] - 1, None))
        if grids["mesh"].topology.shape and grids["mesh"].topology.shape[0] == 0:
            return f"{path}: the mesh has no cells"
    except MeshFileError as err:
        return str(err)
    except Exception as err:  # noqa: BLE001 - anything else is still "cannot read it"
        return f"{path}: not a readable electrofem XDMF mesh ({one_line(err)})"
    finally:
        for f in files.values():
            f.close()
    return None


def read_xdmf_arrays(path: str | Path) -> dict:
    """Points, cells and tags of an electrofem XDMF (serial, h5py), for meshio.

    Returns ``{"points": (n, 3), "cell_type": str, "cells": (c, k), "cell_tags": (c,),
    "facet_type": str, "facets": (f, k), "facet_tags": (f,)}`` with meshio cell types; cells
    with no tag get 0. Raises MeshFileError.
    """
    path = Path(path)
    msg = check_xdmf(path)
    if msg:
        raise MeshFileError(msg)
    grids = _electrofem_grids(path)
    files: dict = {}
    try:

        def load(name, part):
            item = getattr(grids[name], part)
            return _read(_dataset(path, files, item, f"{name} {part}"), path, f"{name} {part}")

        points = np.asarray(load("mesh", "geometry"), dtype=float)
        cells = np.asarray(load("mesh", "topology"), dtype=np.int64)
        ct_cells = np.asarray(load(CELL_TAGS_NAME, "topology"), dtype=np.int64)
        ct_values = np.asarray(load(CELL_TAGS_NAME, "values")).reshape(-1)
        facets = np.asarray(load(FACET_TAGS_NAME, "topology"), dtype=np.int64)
        ft_values = np.asarray(load(FACET_TAGS_NAME, "values")).reshape(-1)
    finally:
        for f in files.values():
            f.close()
    types = {}
    for name in ("mesh", FACET_TAGS_NAME):
        ttype = grids[name].topology_type
        if ttype not in MESHIO_CELL_TYPES:
            raise MeshFileError(f"{path}: {name}: unsupported XDMF topology type {ttype!r}")
        types[name] = MESHIO_CELL_TYPES[ttype]
    if points.shape[1] == 2:
        points = np.column_stack([points, np.zeros(len(points))])
    return {
        "points": points,
        "cell_type": types["mesh"],
        "cells": cells,
        "cell_tags": _match_rows(cells, ct_cells, ct_values, path),
        "facet_type": types[FACET_TAGS_NAME],
        "facets": facets,
        "facet_tags": ft_values.astype(np.int32),
    }


def _match_rows(cells: np.ndarray, tagged: np.ndarray, values: np.ndarray, path: Path):
    """Tag value of every row of ``cells`` (0 if untagged): ``tagged[i]`` has the same nodes
    as some row of ``cells``, in any order."""
    out = np.zeros(len(cells), dtype=np.int32)
    if len(tagged) == 0:
        return out
    if tagged.shape == cells.shape and np.array_equal(tagged, cells):
        out[:] = values
        return out
    width = cells.shape[1]
    if tagged.shape[1] != width:
        raise MeshFileError(f"{path}: cell tags are not cells of the mesh")

    def keys(a):
        a = np.ascontiguousarray(np.sort(a, axis=1))
        return a.view(np.dtype((np.void, a.dtype.itemsize * width))).ravel()

    ck, tk = keys(cells), keys(tagged)
    order = np.argsort(ck)
    pos = np.searchsorted(ck[order], tk)
    pos = np.minimum(pos, len(order) - 1)
    hit = ck[order][pos] == tk
    if not np.all(hit):
        raise MeshFileError(f"{path}: {int((~hit).sum())} cell tags match no cell of the mesh")
    out[order[pos]] = values
    return out


# --------------------------------------------------------------------------------------------
# Gmsh .msh
# --------------------------------------------------------------------------------------------
def check_msh(path: str | Path) -> str | None:
    """Why ``path`` is not a Gmsh ``.msh`` file (missing, no ``$MeshFormat`` header), or None.
    The content is checked by gmsh itself when the file is read."""
    path = Path(path)
    if not path.is_file():
        return f"{path}: no such mesh file"
    try:
        with open(path, "rb") as fh:
            head = fh.read(64)
    except OSError as err:
        return f"{path}: cannot read it ({one_line(err)})"
    if not head.startswith(b"$MeshFormat"):
        return f"{path}: not a Gmsh .msh file (no $MeshFormat header)"
    return None
