"""Mesh conversion with meshio (serial): :func:`convert`."""

from __future__ import annotations

import contextlib
import io
from pathlib import Path

import numpy as np

from .files import CELL_TAGS_NAME, FACET_TAGS_NAME, GRIDS, MeshFileError, one_line, read_xdmf_arrays


def _meshio_format(path: Path) -> str | None:
    """meshio's format name for the extension of ``path`` (``.vol.gz`` too), or None."""
    import meshio

    suffixes = [s.lower() for s in path.suffixes]
    for n in (2, 1):
        ext = "".join(suffixes[-n:])
        if len(suffixes) >= n and ext in meshio.extension_to_filetypes:
            formats = meshio.extension_to_filetypes[ext]
            # meshio lists ANSYS first for .msh; a .msh here is Gmsh's
            return "gmsh" if "gmsh" in formats else formats[0]
    return None


def _quiet_meshio(call, *args, **kwargs):
    """Run a meshio call with its console output captured; a failure (meshio.read calls
    ``sys.exit`` after printing) becomes ``RuntimeError(first line of what it said)``."""
    out = io.StringIO()
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
            return call(*args, **kwargs)
    except (Exception, SystemExit) as err:  # noqa: BLE001 - any meshio failure
        said = out.getvalue().strip()
        raise RuntimeError(one_line(said) if said else one_line(err)) from None


def _is_electrofem_xdmf(path: Path) -> bool:
    """An XDMF with the grids ElectrodeMesh.write writes (mesh, cell_tags, facet_tags)."""
    import xml.etree.ElementTree as ET

    try:
        names = {g.get("Name") for g in ET.parse(path).getroot().iter("Grid")}
    except (ET.ParseError, OSError):
        return False
    return set(GRIDS) <= names


def _electrofem_xdmf_to_meshio(path: Path):
    import meshio

    a = read_xdmf_arrays(path)
    n_cells, n_facets = len(a["cells"]), len(a["facets"])
    cells = [(a["cell_type"], a["cells"])]
    cell_tags = [a["cell_tags"]]
    facet_tags = [np.zeros(n_cells, np.int32)]
    if n_facets:
        cells.append((a["facet_type"], a["facets"]))
        cell_tags.append(np.zeros(n_facets, np.int32))
        facet_tags.append(a["facet_tags"])
    return meshio.Mesh(
        a["points"], cells, cell_data={CELL_TAGS_NAME: cell_tags, FACET_TAGS_NAME: facet_tags}
    )


def _as_gmsh22(m) -> None:
    """Tags as Gmsh physical (and elementary) tags, for meshio's MSH 2.2 writer: its 4.1
    writer needs entity information that a converted mesh does not have."""
    if CELL_TAGS_NAME in m.cell_data:  # cell tags on cells, facet tags on facets
        blocks = zip(*(m.cell_data[k] for k in (CELL_TAGS_NAME, FACET_TAGS_NAME)), strict=True)
        physical = [np.asarray(c) + np.asarray(f) for c, f in blocks]
    elif "tags" in m.cell_data:
        physical = [np.asarray(t) for t in m.cell_data["tags"]]
    else:
        return
    m.cell_data = {"gmsh:physical": physical, "gmsh:geometrical": physical}


def convert(src: str | Path, dst: str | Path) -> Path:
    """Convert a mesh between formats with meshio (serial). Example:
    ``convert("mesh.xdmf", "mesh.vtu")``.

    Sources:

    * an electrofem XDMF (``mesh.xdmf`` + ``mesh.h5`` as written by
      :meth:`~electrofem.mesh.io.ElectrodeMesh.write`): read with h5py (after the same checks as
      :meth:`~electrofem.mesh.io.ElectrodeMesh.read`). The output has two cell blocks, the cells
      and the tagged facets, and two cell-data arrays: ``cell_tags`` (phase id on cells, 0 on
      facets) and ``facet_tags`` (boundary/interface tag on facets, 0 on cells).
      Readers checked: meshio 5.3 cannot read this file itself (its XDMF reader stops at
      "Only supports one grid right now" and then calls ``sys.exit``), hence h5py here.
      ParaView's "Xdmf3 Reader" is what dolfinx's own documentation opens such files with (the
      tag grids take the mesh geometry through ``xi:include``); ParaView/VTK are not installed
      on the machines this was written on, so that is untested. The ``.vtu`` written from it
      is plain VTK XML, which meshio reads back (tested) and any VTK reader opens.
    * anything meshio reads (``.msh``, ``.vtu``, single-grid XDMF, ...): physical tags are kept
      as ``cell_data["tags"]`` (from Gmsh's ``gmsh:physical``).

    2D points are written with a zero z column. Nothing is written next to ``src``.

    Raises MeshFileError (one line) for a missing or corrupt source, an extension meshio does
    not know, or a format that cannot hold these cells.
    """
    import meshio

    src, dst = Path(src), Path(dst)
    fmt = _meshio_format(dst)
    if fmt is None:
        raise MeshFileError(f"{dst}: unknown mesh format {''.join(dst.suffixes)!r} for meshio")
    if not src.is_file():
        raise MeshFileError(f"{src}: no such mesh file")
    if src.suffix.lower() == ".xdmf" and _is_electrofem_xdmf(src):
        m = _electrofem_xdmf_to_meshio(src)
    else:
        src_fmt = _meshio_format(src)
        if src_fmt is None:
            raise MeshFileError(f"{src}: unknown mesh format {src.suffix!r} for meshio")
        try:
            m = _quiet_meshio(meshio.read, src, file_format=src_fmt)
        except RuntimeError as err:
            raise MeshFileError(f"{src}: meshio cannot read it ({err})") from None
        if "gmsh:physical" in m.cell_data:
            m.cell_data["tags"] = m.cell_data.pop("gmsh:physical")
            m.cell_data.pop("gmsh:geometrical", None)
        m.cell_sets = {}  # named groups are already in the "tags" cell data
        if m.points.shape[1] == 2:
            m.points = np.column_stack([m.points, np.zeros(len(m.points))])
    if fmt == "gmsh":
        _as_gmsh22(m)
        fmt = "gmsh22"
    existed = dst.exists()
    try:
        _quiet_meshio(meshio.write, dst, m, file_format=fmt)
    except RuntimeError as err:
        if not existed:
            dst.unlink(missing_ok=True)  # no half-written file
        raise MeshFileError(f"{dst}: meshio cannot write it as {fmt} ({err})") from None
    return dst
