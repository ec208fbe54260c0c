"""Mesh files: corrupt files fail the same way on every rank, meshes without their metadata
sidecar load, facet counts, and meshio conversion. Marked ``mpi``: also run under
``mpirun -n 2``."""

import math
import shutil
import tempfile
from pathlib import Path

import numpy as np
import pytest
from mpi4py import MPI

from electrofem import tags
from electrofem.mesh import ElectrodeMesh, MeshFileError, MeshOptions, convert
from electrofem.microstructure import Box, Particles

pytestmark = pytest.mark.mpi

COMM = MPI.COMM_WORLD
BOX = (30.0, 24.0)


def _particles():
    box = Box(BOX, periodic=False)
    return Particles(box, [[8.0, 8.0], [20.0, 10.0], [14.0, 18.0]], [4.0, 5.0, 4.5])


def _build(out: Path, shift: float = 0.0) -> ElectrodeMesh:
    """Mesh the particles; write ``mesh.xdmf`` (+ .h5, .json) and ``mesh.msh`` into ``out``."""
    import gmsh

    from electrofem.mesh import build_and_mesh

    if COMM.rank == 0:
        gmsh.initialize(interruptible=False)
        build_and_mesh(_particles(), MeshOptions(size=1.5))
        gmsh.write(str(out / "mesh.msh"))
    try:
        em = ElectrodeMesh.from_gmsh(COMM, 2, {"dim": 2, "box_um": list(BOX), "seed": 7})
    finally:
        if COMM.rank == 0:
            gmsh.finalize()
    em.mesh.geometry.x[:, :2] += shift
    em.write(out / "mesh.xdmf")
    return em


@pytest.fixture(scope="module")
def meshdir():
    """A directory shared by all ranks with a small 2D mesh (module scope: built once)."""
    path = Path(COMM.bcast(tempfile.mkdtemp(prefix="electrofem-io-") if COMM.rank == 0 else None))
    em = _build(path)
    yield path, em
    COMM.barrier()
    if COMM.rank == 0:
        shutil.rmtree(path, ignore_errors=True)


def _copy(src: Path, dst: Path, names, truncate: dict | None = None) -> None:
    """Rank 0 copies ``names`` from ``src`` to ``dst``, cutting ``truncate[name]`` to half."""
    if COMM.rank == 0:
        dst.mkdir(parents=True, exist_ok=True)
        for name in names:
            data = (src / name).read_bytes()
            if name in (truncate or {}):
                data = data[: len(data) // 2]
            (dst / name).write_bytes(data)
    COMM.barrier()


def _error_everywhere(path: Path) -> str:
    """The MeshFileError of reading ``path``; asserts every rank got the same one line."""
    with pytest.raises(MeshFileError) as info:
        ElectrodeMesh.read(path, COMM)
    msg = str(info.value)
    assert len(set(COMM.allgather(msg))) == 1, "ranks disagree"
    assert "\n" not in msg and str(path) in msg
    return msg


# --- corrupt files: one clear error, on every rank, never a hang --------------------------------
def test_truncated_msh(meshdir, shared_tmp):
    src, _ = meshdir
    _copy(src, shared_tmp, ["mesh.msh", "mesh.json"], truncate={"mesh.msh"})
    msg = _error_everywhere(shared_tmp / "mesh.msh")
    assert "not a readable Gmsh mesh" in msg


def test_truncated_h5_is_caught_before_hdf5_prints(meshdir, shared_tmp, capfd):
    src, _ = meshdir
    _copy(src, shared_tmp, ["mesh.xdmf", "mesh.h5", "mesh.json"], truncate={"mesh.h5"})
    msg = _error_everywhere(shared_tmp / "mesh.xdmf")
    assert "mesh.h5" in msg and "truncated" in msg
    assert "HDF5-DIAG" not in capfd.readouterr().err


def test_garbage_xdmf(shared_tmp):
    if COMM.rank == 0:
        rng = np.random.default_rng(0)
        (shared_tmp / "garbage.xdmf").write_bytes(rng.integers(0, 256, 3000, np.uint8).tobytes())
        (shared_tmp / "other.xdmf").write_text('<Xdmf><Domain><Grid Name="u"/></Domain></Xdmf>')
    COMM.barrier()
    assert "corrupt XDMF" in _error_everywhere(shared_tmp / "garbage.xdmf")
    assert "missing grids" in _error_everywhere(shared_tmp / "other.xdmf")


def test_xdmf_and_h5_that_do_not_match(meshdir, shared_tmp):
    """An XDMF whose declared sizes are not those of its .h5 (e.g. files from two runs)."""
    src, _ = meshdir
    _copy(src, shared_tmp, ["mesh.xdmf", "mesh.h5"])
    if COMM.rank == 0:
        xdmf = shared_tmp / "mesh.xdmf"
        text = xdmf.read_text()
        n = text.split('NumberOfElements="')[1].split('"')[0]
        xdmf.write_text(text.replace(f'Dimensions="{n} 3"', f'Dimensions="{int(n) + 5} 3"', 1))
    COMM.barrier()
    assert "do not match" in _error_everywhere(shared_tmp / "mesh.xdmf")


# --- a mesh without its mesh.json sidecar ------------------------------------------------------
@pytest.mark.parametrize("name", ["mesh.xdmf", "mesh.msh"])
def test_mesh_without_sidecar_loads(meshdir, shared_tmp, name):
    src, ref = meshdir
    _copy(src, shared_tmp, ["mesh.xdmf", "mesh.h5", "mesh.msh"])  # no mesh.json
    em = ElectrodeMesh.read(shared_tmp / name, COMM)
    meta = em.metadata
    assert meta["dim"] == 2 and meta["length_unit_m"] == 1e-6
    assert np.allclose(meta["box_um"], BOX, rtol=0, atol=1e-9)
    assert meta["phases"] == ["electrolyte", "active"]
    assert set(meta["derived"]) == {"dim", "box_um", "length_unit_m", "phases"}
    assert {"seed", "porosity"} <= set(meta["missing"]) and "box_um" not in meta["missing"]
    assert "mesh.json" in meta["warning"]
    assert meta.get("seed") is None
    vols = em.phase_volumes()
    assert math.isclose(sum(vols.values()), np.prod(meta["box_um"]), rel_tol=1e-9)
    assert vols == pytest.approx(ref.phase_volumes(), rel=1e-10)


def test_sidecar_metadata_is_kept(meshdir):
    src, _ = meshdir
    meta = ElectrodeMesh.read(src / "mesh.xdmf", COMM).metadata
    assert meta["seed"] == 7 and meta["box_um"] == list(BOX)
    assert meta["derived"] == ["length_unit_m"]  # the only key this sidecar lacks
    assert "warning" not in meta and meta["missing"][0] == "porosity"


def test_box_not_at_origin_is_reported(shared_tmp):
    _build(shared_tmp, shift=5.0)
    if COMM.rank == 0:
        (shared_tmp / "mesh.json").unlink()
    COMM.barrier()
    em = ElectrodeMesh.read(shared_tmp / "mesh.xdmf", COMM)
    meta = em.metadata
    assert "box_um" not in meta and "box_um" in meta["missing"]
    assert np.allclose(em.bounding_box(), [[5.0, 5.0], [35.0, 29.0]])
    assert np.allclose(meta["bounds_um"], [[5.0, 5.0], [35.0, 29.0]])
    assert "not at the origin" in meta["warning"]


# --- statistics ------------------------------------------------------------------------------
def test_facet_counts_match_the_msh(meshdir):
    src, em = meshdir
    stats = em.statistics()
    counts = stats["facets_by_tag"]
    expected = None
    if COMM.rank == 0:
        import meshio

        m = meshio.read(src / "mesh.msh")
        expected = {}
        for block, phys in zip(m.cells, m.cell_data["gmsh:physical"], strict=True):
            if block.type == "line":
                for t, n in zip(*np.unique(phys, return_counts=True), strict=True):
                    name = tags.facet_name(int(t))
                    expected[name] = expected.get(name, 0) + int(n)
    assert counts == COMM.bcast(expected, root=0)
    assert {"bottom", "top", "left", "right", "electrolyte|active"} <= set(counts)
    assert counts.keys() == stats["facet_measures"].keys()


# --- meshio conversion (serial: rank 0) ------------------------------------------------------
def _on_rank0(fn):
    ok = None
    if COMM.rank == 0:
        fn()
        ok = True
    assert COMM.bcast(ok, root=0)


def test_convert_own_xdmf_to_vtu(meshdir, shared_tmp):
    src, em = meshdir
    n_cells = em.mesh.topology.index_map(2).size_global
    vols = em.phase_volumes()

    def check():
        import meshio

        convert(src / "mesh.xdmf", shared_tmp / "mesh.vtu")
        m = meshio.read(shared_tmp / "mesh.vtu")
        blocks = {b.type: i for i, b in enumerate(m.cells)}
        cells = m.cells[blocks["triangle"]].data
        ct = m.cell_data["cell_tags"][blocks["triangle"]]
        assert len(cells) == n_cells and set(np.unique(ct).tolist()) == {1, 2}
        p = m.points[cells]
        e1, e2 = p[:, 1] - p[:, 0], p[:, 2] - p[:, 0]
        area = 0.5 * np.abs(e1[:, 0] * e2[:, 1] - e1[:, 1] * e2[:, 0])
        for phase, v in vols.items():
            assert math.isclose(area[ct == phase].sum(), v, rel_tol=1e-10)
        ft = m.cell_data["facet_tags"][blocks["line"]]
        assert {tags.BOTTOM, tags.TOP, tags.interface_tag(1, 2)} <= set(ft.tolist())

    _on_rank0(check)


def test_convert_own_xdmf_to_msh_reads_back(meshdir, shared_tmp):
    src, em = meshdir
    _on_rank0(lambda: convert(src / "mesh.xdmf", shared_tmp / "conv.msh"))
    back = ElectrodeMesh.read(shared_tmp / "conv.msh", COMM)
    assert back.phase_volumes() == pytest.approx(em.phase_volumes(), rel=1e-12)
    assert back.statistics()["facets_by_tag"] == em.statistics()["facets_by_tag"]


def test_convert_errors_are_one_line(meshdir, shared_tmp):
    src, _ = meshdir

    def check():
        bad = shared_tmp / "bad"
        bad.mkdir()
        (bad / "mesh.msh").write_bytes((src / "mesh.msh").read_bytes()[:5000])
        (bad / "mesh.xdmf").write_bytes((src / "mesh.xdmf").read_bytes())
        (bad / "mesh.h5").write_bytes((src / "mesh.h5").read_bytes()[:3000])
        cases = [
            (src / "mesh.xdmf", shared_tmp / "out.nope", "unknown mesh format"),
            (shared_tmp / "missing.msh", shared_tmp / "out.vtu", "no such mesh file"),
            (bad / "mesh.msh", shared_tmp / "out.vtu", "meshio cannot read it"),
            (bad / "mesh.xdmf", shared_tmp / "out.vtu", "mesh.h5"),
            (src / "mesh.json", shared_tmp / "out.vtu", "unknown mesh format"),
        ]
        for s, d, text in cases:
            with pytest.raises(MeshFileError, match=text) as info:
                convert(s, d)
            assert "\n" not in str(info.value)
            assert not d.exists()

    _on_rank0(check)


def test_convert_cli_reports_one_line(meshdir, shared_tmp, capsys):
    from electrofem.cli import main

    if COMM.rank == 0:
        (shared_tmp / "cut.msh").write_bytes((meshdir[0] / "mesh.msh").read_bytes()[:5000])
        assert main(["convert", str(shared_tmp / "cut.msh"), str(shared_tmp / "o.vtu")]) == 2
        err = capsys.readouterr().err.strip()
        assert err.startswith("electrofem: error:") and "\n" not in err
    COMM.barrier()


@pytest.mark.parametrize("dim, order", [(2, 1), (3, 1), (3, 2)])
def test_model_to_mesh_gives_dolfinx_tags(dim, order):
    """electrofem's conversion of the gmsh model gives the tags dolfinx's ``model_to_mesh``
    gives: per cell tag the number of cells and its volume, per facet tag the number of
    facets and its area, on any number of ranks."""
    import gmsh
    import ufl
    from dolfinx import fem
    from dolfinx.io.gmsh import model_to_mesh as dolfinx_model_to_mesh

    from electrofem.mesh import build_and_mesh
    from electrofem.mesh.distribute import model_to_mesh
    from electrofem.mesh.io import _partitioner

    if dim == 2:
        particles, options = _particles(), MeshOptions(size=1.5)
    else:
        particles = Particles(
            Box((10.0, 10.0, 10.0), periodic=False),
            [[3.0, 3.0, 4.0], [6.5, 5.0, 5.0], [5.0, 8.0, 9.5]],
            [2.5, 2.8, 2.0],
        )
        options = MeshOptions(size=1.5, order=order)
    if COMM.rank == 0:
        gmsh.initialize(interruptible=False)
        build_and_mesh(particles, options)
    try:
        ours = model_to_mesh(COMM, 0, dim, _partitioner(COMM))
        ref = dolfinx_model_to_mesh(
            gmsh.model if COMM.rank == 0 else None,
            COMM,
            0,
            gdim=dim,
            partitioner=_partitioner(COMM),
        )
        theirs = (ref.mesh, ref.cell_tags, ref.facet_tags)
    finally:
        if COMM.rank == 0:
            gmsh.finalize()

    def measures(mesh, cell_tags, facet_tags):
        tdim = mesh.topology.dim
        out = {}
        for kind, mt, size in ((0, cell_tags, tdim), (1, facet_tags, tdim - 1)):
            imap = mesh.topology.index_map(size)
            owned = mt.indices < imap.size_local
            for v in sorted({int(x) for vs in COMM.allgather(np.unique(mt.values)) for x in vs}):
                count = COMM.allreduce(int(np.sum(mt.values[owned] == v)))
                if kind == 0:
                    m = ufl.Measure("dx", domain=mesh, subdomain_data=mt)(int(v))
                else:
                    m = ufl.Measure("ds", domain=mesh, subdomain_data=mt)(int(v))
                    m = m + ufl.Measure("dS", domain=mesh, subdomain_data=mt)(int(v))
                one = fem.Constant(mesh, 1.0)
                value = COMM.allreduce(fem.assemble_scalar(fem.form(one * m)))
                out[(kind, int(v))] = (count, value)
        return out

    a, b = measures(*ours), measures(*theirs)
    assert a.keys() == b.keys() and len(a) > 3
    for key in a:
        assert a[key][0] == b[key][0], key
        assert a[key][1] == pytest.approx(b[key][1], rel=1e-12), key
    # the same mesh on every rank, so the same local facets carry the same tags
    for mine, ref in ((ours[1], theirs[1]), (ours[2], theirs[2])):
        assert np.array_equal(mine.indices, ref.indices)
        assert np.array_equal(mine.values, ref.values)
