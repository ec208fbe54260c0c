"""A gmsh model on one rank to a distributed dolfinx mesh and its tags: :func:`model_to_mesh`.

What dolfinx's ``dolfinx.io.gmsh.model_to_mesh`` does, for electrofem's models (one cell type,
every cell in one phase group, facets in boundary and interface groups), with three costs
taken out (box400, 1.28 M cells: 10.5 s in all before, 6.2 s now):

* it reads the model entity by entity and concatenates each time; here each physical group's
  elements are read entity by entity and joined once;
* it sorts all cell tags to check that every cell is tagged once (0.7 s), and sends the cell
  tags through the facet machinery (``distribute_entity_data`` and
  ``meshtags_from_entities``: 1.4 s); here every cell's tag is looked up from its input index
  (``topology.original_cell_index``), which the geometry's physical groups make unique;
* it sends the facet tags through the same machinery (1.5 s); here every rank receives the
  tagged facets' vertices and matches them against the local facets that can carry a tag
  (:func:`_facet_tags`, 0.2 s once the facets exist).

The mesh is the one dolfinx's function makes: the same ``create_mesh`` call on the same cells
and nodes, and the tags are the same, index for index (``tests/test_mesh_io.py``).
"""

from __future__ import annotations

import numpy as np
from mpi4py import MPI


def _groups(dim: int) -> tuple[int, np.ndarray, np.ndarray, np.ndarray]:
    """Root: ``(gmsh element type, nodes (n, k) 0-based, group tag per element, entity tag
    per element)`` of the elements of every ``dim``-D physical group of the current model."""
    import gmsh

    types, nodes, values, entities = set(), [], [], []
    for _, tag in gmsh.model.getPhysicalGroups(dim):
        for ent in gmsh.model.getEntitiesForPhysicalGroup(dim, tag):
            for t, nd in zip(*gmsh.model.mesh.getElements(dim, int(ent))[::2], strict=True):
                k = gmsh.model.mesh.getElementProperties(int(t))[3]
                types.add(int(t))
                nodes.append(np.asarray(nd, np.int64).reshape(-1, k) - 1)
                values.append(np.full(len(nodes[-1]), tag, np.int32))
                entities.append(np.full(len(nodes[-1]), ent, np.int32))
    if len(types) > 1:
        raise RuntimeError(f"mesh: {dim}D elements of several types {sorted(types)}")
    if not types:
        return -1, np.zeros((0, 0), np.int64), np.zeros(0, np.int32), np.zeros(0, np.int32)
    return types.pop(), np.concatenate(nodes), np.concatenate(values), np.concatenate(entities)


def model_to_mesh(comm: MPI.Comm, rank: int, gdim: int, partitioner):
    """The current gmsh model (on ``rank``) as ``(mesh, cell_tags, facet_tags)`` on ``comm``.

    Raises RuntimeError (on every rank) when the model has no tagged cells."""
    import gmsh
    from dolfinx.io.gmsh import cell_perm_array, ufl_mesh
    from dolfinx.mesh import create_mesh, meshtags, to_type

    header = None
    if comm.rank == rank:
        tdim = gmsh.model.getDimension()
        idx, xyz, _ = gmsh.model.mesh.getNodes()
        x = np.zeros((int(idx.max()) if len(idx) else 0, 3))
        x[np.asarray(idx, np.int64) - 1] = np.asarray(xyz).reshape(-1, 3)
        cell_type, cells, cell_values, cell_entities = _groups(tdim)
        facet_type, facets, facet_values, _ = _groups(tdim - 1)
        header = (tdim, cell_type, facet_type)
    tdim, cell_type, facet_type = comm.bcast(header, root=rank)
    if cell_type < 0:
        raise RuntimeError("mesh: the gmsh model has no cells in a physical group")
    domain = ufl_mesh(cell_type, gdim, np.float64)
    k = domain.ufl_coordinate_element().basix_element.dim
    if comm.rank == rank:
        perm = cell_perm_array(to_type(str(domain.ufl_cell())), k)
        cells = cells[:, perm]
    else:
        x, cells = np.zeros((0, 3)), np.zeros((0, k), np.int64)
        cell_values = cell_entities = np.zeros(0, np.int32)
    mesh = create_mesh(comm, cells, domain, x[:, :gdim], partitioner)

    # cell tags: the input index of every local cell (owned and ghost) picks its group
    values = comm.bcast(cell_values if comm.rank == rank else None, root=rank)
    imap = mesh.topology.index_map(tdim)
    local = np.arange(imap.size_local + imap.num_ghosts, dtype=np.int32)
    original = np.asarray(mesh.topology.original_cell_index, np.int64)[: local.size]
    local_values = values[original]
    cell_tags = meshtags(mesh, tdim, local, local_values)

    facet_tags = None
    if facet_type >= 0:  # a simplex facet's vertices come first in its gmsh nodes
        root_data = (facets[:, :tdim], facet_values, cell_entities) if comm.rank == rank else None
        keys, facet_values, entities = comm.bcast(root_data, root=rank)
        facet_tags = _facet_tags(mesh, entities[original], keys, facet_values)
    return mesh, cell_tags, facet_tags


def _facet_tags(mesh, cell_entities: np.ndarray, keys: np.ndarray, key_values: np.ndarray):
    """The facet tags of ``mesh``: the local facet whose vertices' input indices are the row
    ``keys[i]`` gets ``key_values[i]``.

    Only the facets that can carry a tag are looked up: those with one local cell (the
    boundary, and the process boundary) and those between cells of different gmsh volumes
    (``cell_entities``, per local cell). A facet listed twice keeps its first value.
    """
    from dolfinx.mesh import meshtags

    top = mesh.topology
    tdim = top.dim
    top.create_connectivity(tdim - 1, tdim)
    top.create_connectivity(tdim - 1, 0)
    f2c = top.connectivity(tdim - 1, tdim)
    offsets, links = f2c.offsets, f2c.array
    ncells = np.diff(offsets)
    first = links[offsets[:-1]]
    last = links[offsets[1:] - 1]
    candidates = np.flatnonzero((ncells == 1) | (cell_entities[first] != cell_entities[last]))
    # each local vertex's input node: a simplex cell's vertices are its first geometry nodes
    c2v = top.connectivity(tdim, 0).array.reshape(-1, tdim + 1)
    dofs = mesh.geometry.dofmaps[0][:, : tdim + 1]
    v2n = np.empty(top.index_map(0).size_local + top.index_map(0).num_ghosts, np.int64)
    v2n[c2v.ravel()] = np.asarray(mesh.geometry.input_global_indices, np.int64)[dofs.ravel()]
    f2v = top.connectivity(tdim - 1, 0).array.reshape(-1, tdim)
    ours = np.sort(v2n[f2v[candidates]], axis=1)
    theirs = np.sort(np.asarray(keys, np.int64), axis=1)
    # rows of both, sorted together: a candidate right after an equal key row is tagged
    rows = np.concatenate([theirs, ours])
    order = np.lexsort(rows.T[::-1])
    rows = rows[order]
    same = np.concatenate([[False], np.all(rows[1:] == rows[:-1], axis=1)])
    run_start = np.maximum.accumulate(np.where(~same, np.arange(len(rows)), 0))
    head = order[run_start]  # the first row of each run of equal rows
    n_keys = len(theirs)
    hit = (order >= n_keys) & (head < n_keys)
    facets = candidates[order[hit] - n_keys]
    tags = np.asarray(key_values, np.int32)[head[hit]]
    sort = np.argsort(facets, kind="stable")
    return meshtags(mesh, tdim - 1, facets[sort].astype(np.int32), tags[sort])
