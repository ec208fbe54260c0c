"""3D meshing is deterministic: the same particles and options give the same mesh, node for
node, in two gmsh sessions, and the mesh distributed over the ranks is the one made on rank 0
(so 1 and 2 ranks agree). Marked ``mpi``: `make test` also runs it under ``mpirun -n 2``."""

import dataclasses
import json

import gmsh
import numpy as np
import pytest
from mpi4py import MPI

from electrofem.mesh import ElectrodeMesh, MeshOptions, build_and_mesh
from electrofem.microstructure import Box, Electrode, Layer, LogNormal, Population, generate

pytestmark = pytest.mark.mpi

OPTIONS = MeshOptions(size=1.5)
#: both geometry routes: OCC (glued) and the discrete one (electrofem.mesh.discrete)
ROUTES = pytest.mark.parametrize("route", ["auto", "discrete"])


@pytest.fixture(scope="module")
def particles():
    pops = (Population(LogNormal(3.2, 0.3)),)
    spec = Electrode(Box((16.0, 16.0, 16.0), periodic=False), (Layer(1.0, 0.6, pops),), seed=3)
    return generate(spec)


def _gmsh_mesh():
    """Node tags, coordinates and tetrahedra (node tags) of the current model, per volume."""
    tags, coords, _ = gmsh.model.mesh.getNodes()
    cells = []
    for _, v in gmsh.model.getEntities(3):
        _, _, nodes = gmsh.model.mesh.getElements(3, v)
        cells.append(np.concatenate(nodes) if len(nodes) else np.zeros(0, np.uint64))
    return np.asarray(tags), np.asarray(coords).reshape(-1, 3), cells


def _canonical(tets: np.ndarray) -> np.ndarray:
    """Tetrahedra ``(n, 4, 3)`` as rows of 12 coordinates, vertices in lexicographic order."""
    order = np.lexsort((tets[:, :, 2], tets[:, :, 1], tets[:, :, 0]), axis=-1)
    return np.take_along_axis(tets, order[:, :, None], axis=1).reshape(len(tets), 12)


def _mesh(particles, distribute=False, options=OPTIONS):
    comm = MPI.COMM_WORLD
    out, em = None, None
    if comm.rank == 0 or not distribute:
        gmsh.initialize()
        gmsh.option.setNumber("General.Terminal", 0)
        try:
            _, stats = build_and_mesh(particles, options)
            out = (stats, *_gmsh_mesh())
            if distribute:
                em = ElectrodeMesh.from_gmsh(comm, 3)
        finally:
            if not distribute:
                gmsh.finalize()
    if distribute:
        if comm.rank != 0:
            em = ElectrodeMesh.from_gmsh(comm, 3)
        else:
            gmsh.finalize()
    return out, em


@ROUTES
def test_same_mesh_node_for_node_in_two_sessions(particles, route):
    options = dataclasses.replace(OPTIONS, geometry_route=route)
    (s1, tags1, x1, cells1), _ = _mesh(particles, options=options)
    (s2, tags2, x2, cells2), _ = _mesh(particles, options=options)
    assert s1.n_cells > 5000
    assert (s2.n_nodes, s2.n_cells) == (s1.n_nodes, s1.n_cells)
    assert np.array_equal(tags1, tags2) and np.array_equal(x1, x2)
    assert all(np.array_equal(a, b) for a, b in zip(cells1, cells2, strict=True))
    # issue 14, item 4: no sliver after optimisation
    assert s1.min_quality >= 0.1


def test_a_mended_mesh_is_the_same_in_two_sessions(poor_neck_pack):
    """The discrete route's mend (``MeshOptions.mend_rounds``) meshes again from the first
    mesh's poor cells: the same particles still give the same mesh, node for node."""
    p, size = poor_neck_pack
    options = MeshOptions(size=size, geometry_route="discrete")
    (s1, tags1, x1, cells1), _ = _mesh(p, options=options)
    (s2, tags2, x2, cells2), _ = _mesh(p, options=options)
    assert "mend" in s1.seconds_split and s1.min_quality >= 0.1
    assert np.array_equal(tags1, tags2) and np.array_equal(x1, x2)
    assert all(np.array_equal(a, b) for a, b in zip(cells1, cells2, strict=True))


@ROUTES
def test_distributed_mesh_is_the_rank0_mesh(particles, route):
    """Every cell of the distributed mesh (all ranks) is a tetrahedron of rank 0's gmsh mesh,
    with the same vertex coordinates, bit for bit, and none is missing."""
    comm = MPI.COMM_WORLD
    options = dataclasses.replace(OPTIONS, geometry_route=route)
    made, em = _mesh(particles, distribute=True, options=options)
    mesh = em.mesh
    n_owned = mesh.topology.index_map(3).size_local
    dofs = mesh.geometry.dofmaps[0][:n_owned]
    x = mesh.geometry.x
    gathered = comm.gather(_canonical(x[dofs]), root=0)
    if comm.rank == 0:
        _, tags, coords, cells = made
        index = np.empty(int(tags.max()) + 1, int)
        index[tags.astype(int)] = np.arange(len(tags))
        tets = coords[index[np.concatenate(cells).astype(int)]].reshape(-1, 4, 3)
        ref, got = _canonical(tets), np.concatenate(gathered)
        assert got.shape == ref.shape
        assert np.array_equal(got[np.lexsort(got.T[::-1])], ref[np.lexsort(ref.T[::-1])])


def _shared_then_serial(particles, options):
    """Rank 0: the mesh with the OCC cuts shared by all ranks, then the one made alone, as
    ``[(stats, geometry route, mesh)]``; the other ranks help (:mod:`electrofem.mesh.parallel`)
    and get None."""
    from electrofem.mesh.occ import ATTRIBUTE
    from electrofem.mesh.parallel import RankCutSharing, help_mesh

    comm = MPI.COMM_WORLD
    if comm.rank != 0:
        help_mesh(comm, particles, options.geometry_route)
        return None

    def made(stats):
        route = json.loads(gmsh.model.getAttribute(ATTRIBUTE)[0])["route"]
        return stats, route, _gmsh_mesh()

    gmsh.initialize()
    gmsh.option.setNumber("General.Terminal", 0)
    try:
        with RankCutSharing(comm) as sharing:
            shared = made(build_and_mesh(particles, options, sharing=sharing)[1])
        return [shared, made(build_and_mesh(particles, options)[1])]
    finally:
        gmsh.finalize()


def _assert_same_mesh(got, ref) -> None:
    assert np.array_equal(got[0], ref[0]) and np.array_equal(got[1], ref[1])
    assert all(np.array_equal(a, b) for a, b in zip(got[2], ref[2], strict=True))


@ROUTES
def test_shared_cuts_give_the_serial_mesh(particles, route):
    """Under MPI the ranks share the OCC cuts (:mod:`electrofem.mesh.parallel`; the discrete
    route has none, and the helpers only wait): the mesh is the serial one, node for node."""
    runs = _shared_then_serial(particles, dataclasses.replace(OPTIONS, geometry_route=route))
    if runs is not None:
        (shared, _, got), (serial, _, ref) = runs
        assert (shared.n_nodes, shared.n_cells) == (serial.n_nodes, serial.n_cells)
        _assert_same_mesh(got, ref)


def test_the_glued_fallback_under_shared_cuts_gives_the_serial_mesh():
    """A sphere floating under a layer that seals the box: the glued pore cannot place it,
    so rank 0 falls back to the box fragment after the ranks shared the glued cuts, and
    cuts again alone (:func:`electrofem.mesh.occ.build_geometry`): no hang, and the serial
    mesh."""
    from electrofem.microstructure import Particles

    centers = [[x, y, 15.0] for x in (1.0, 5.0, 9.0) for y in (1.0, 5.0, 9.0)] + [[5, 5, 5]]
    p = Particles(Box((10.0, 10.0, 30.0), periodic=False), centers, [3.2] * 9 + [2.0])
    runs = _shared_then_serial(p, MeshOptions(size=2.0, radius_factor=0.3))
    if runs is not None:
        (_, route, got), (_, _, ref) = runs
        assert route == "fragment"
        _assert_same_mesh(got, ref)


def test_a_failed_geometry_on_rank0_does_not_hang_the_helpers(particles):
    """Rank 0 fails before its cuts: the other ranks' collective calls are still met."""
    from electrofem.mesh.parallel import RankCutSharing, help_mesh

    comm = MPI.COMM_WORLD
    if comm.rank == 0:
        with pytest.raises(RuntimeError, match="before the cuts"):
            with RankCutSharing(comm):
                raise RuntimeError("failed before the cuts")
    else:
        help_mesh(comm, particles)
    comm.barrier()


def test_batches_go_largest_first_to_the_least_loaded_rank():
    from electrofem.mesh.parallel import assign

    assert assign([5, 3, 3, 2, 1], 2) == [0, 1, 1, 0, 1]  # loads 7 and 7
    assert assign([1, 1, 1], 1) == [0, 0, 0]
    assert assign([], 2) == []


def test_auto_fallback_from_the_discrete_route_under_mpi(particles, monkeypatch):
    """``"auto"`` chose the discrete route, so the helpers cut nothing (as `electrofem
    generate` tells them), and it failed: rank 0 meshes by OCC alone, with no hang, and gets
    the serial OCC mesh."""
    from electrofem.mesh import build as build_module
    from electrofem.mesh.build import resolve_route
    from electrofem.mesh.parallel import RankCutSharing, help_mesh

    def fail(*args, **kwargs):
        raise RuntimeError("mesh: gmsh failed on the discrete route's volumes: HXT")

    monkeypatch.setattr(build_module, "AUTO_DISCRETE_PARTICLES", 2)
    monkeypatch.setattr(build_module, "build_and_mesh_discrete", fail)
    comm = MPI.COMM_WORLD
    assert resolve_route(OPTIONS, particles) == "discrete"
    if comm.rank != 0:
        help_mesh(comm, particles, resolve_route(OPTIONS, particles))
        return
    gmsh.initialize()
    gmsh.option.setNumber("General.Terminal", 0)
    try:
        with RankCutSharing(comm) as sharing:
            build_and_mesh(particles, OPTIONS, sharing=sharing)
        got = _gmsh_mesh()
        build_and_mesh(particles, dataclasses.replace(OPTIONS, geometry_route="occ"))
        _assert_same_mesh(got, _gmsh_mesh())
    finally:
        gmsh.finalize()
