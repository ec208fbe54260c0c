"""A gmsh model on one rank to a distributed dolfinx mesh and its tags: :func:`model_to_mesh`.

What dolfinx's ``dolfinx.io.gmsh.model_to_mesh`` does, for electrofem's models (one cell type,
every cell in one phase group, facets in boundary and interface groups), with two costs
taken out (box400, 1.28 M cells: 10.5 s in all):

* it reads the model entity by entity and concatenates each time; here each physical group's
  elements are read entity by entity and joined once;
* it sorts all cell tags to check that every cell is tagged once (0.7 s), and sends the cell
  tags through the facet machinery (``distribute_entity_data`` and
  ``meshtags_from_entities``: 1.4 s); here every cell's tag is looked up from its input index
  (``topology.original_cell_index``), which the geometry's physical groups make unique.

The facet tags take dolfinx's own path. The mesh is the one dolfinx's function makes: the same
``create_mesh`` call on the same cells and nodes.
"""

from __future__ import annotations

import numpy as np
from mpi4py import MPI


def _groups(dim: int) -> tuple[int, np.ndarray, np.ndarray]:
    """Root: ``(gmsh element type, nodes (n, k) 0-based, group tag per element)`` of the
    elements of every ``dim``-D physical group of the current model."""
    import gmsh

    types, nodes, values = set(), [], []
    for _, tag in gmsh.model.getPhysicalGroups(dim):
        for ent in gmsh.model.getEntitiesForPhysicalGroup(dim, tag):
            for t, nd in zip(*gmsh.model.mesh.getElements(dim, int(ent))[::2], strict=True):
                k = gmsh.model.mesh.getElementProperties(int(t))[3]
                types.add(int(t))
                nodes.append(np.asarray(nd, np.int64).reshape(-1, k) - 1)
                values.append(np.full(len(nodes[-1]), tag, np.int32))
    if len(types) > 1:
        raise RuntimeError(f"mesh: {dim}D elements of several types {sorted(types)}")
    if not types:
        return -1, np.zeros((0, 0), np.int64), np.zeros(0, np.int32)
    return types.pop(), np.concatenate(nodes), np.concatenate(values)


def model_to_mesh(comm: MPI.Comm, rank: int, gdim: int, partitioner):
    """The current gmsh model (on ``rank``) as ``(mesh, cell_tags, facet_tags)`` on ``comm``.

    Raises RuntimeError (on every rank) when the model has no tagged cells."""
    import gmsh
    from dolfinx.graph import adjacencylist
    from dolfinx.io.gmsh import cell_perm_array, ufl_mesh
    from dolfinx.io.utils import distribute_entity_data
    from dolfinx.mesh import create_mesh, meshtags, meshtags_from_entities, to_type

    header = None
    if comm.rank == rank:
        tdim = gmsh.model.getDimension()
        idx, xyz, _ = gmsh.model.mesh.getNodes()
        x = np.zeros((int(idx.max()) if len(idx) else 0, 3))
        x[np.asarray(idx, np.int64) - 1] = np.asarray(xyz).reshape(-1, 3)
        cell_type, cells, cell_values = _groups(tdim)
        facet_type, facets, facet_values = _groups(tdim - 1)
        header = (tdim, cell_type, facet_type, facets.shape[1] if facets.size else 0)
    tdim, cell_type, facet_type, facet_nodes = comm.bcast(header, root=rank)
    if cell_type < 0:
        raise RuntimeError("mesh: the gmsh model has no cells in a physical group")
    domain = ufl_mesh(cell_type, gdim, np.float64)
    k = domain.ufl_coordinate_element().basix_element.dim
    if comm.rank == rank:
        perm = cell_perm_array(to_type(str(domain.ufl_cell())), k)
        cells = cells[:, perm]
    else:
        x, cells = np.zeros((0, 3)), np.zeros((0, k), np.int64)
        cell_values = np.zeros(0, np.int32)
        facets, facet_values = np.zeros((0, facet_nodes), np.int64), np.zeros(0, np.int32)
    mesh = create_mesh(comm, cells, domain, x[:, :gdim], partitioner)

    # cell tags: the input index of every local cell (owned and ghost) picks its group
    values = comm.bcast(cell_values if comm.rank == rank else None, root=rank)
    imap = mesh.topology.index_map(tdim)
    local = np.arange(imap.size_local + imap.num_ghosts, dtype=np.int32)
    original = np.asarray(mesh.topology.original_cell_index, np.int64)[: local.size]
    cell_tags = meshtags(mesh, tdim, local, values[original])

    facet_tags = None
    if comm.bcast(facet_type, root=rank) >= 0:
        entities, entity_values = distribute_entity_data(
            mesh, tdim - 1, facets.astype(np.int64), facet_values
        )
        mesh.topology.create_connectivity(tdim - 1, tdim)
        facet_tags = meshtags_from_entities(
            mesh, tdim - 1, adjacencylist(entities), entity_values.astype(np.int32, copy=False)
        )
    return mesh, cell_tags, facet_tags
