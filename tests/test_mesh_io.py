"""Mesh files: corrupt files fail the same way on every rank, meshes without their metadata
sidecar load, and facet counts. Marked ``mpi``: also run under
``mpirun -n 2``."""

import math
import shutil
import tempfile
from pathlib import Path

import numpy as np
import pytest
from mpi4py import MPI

from electrofem import tags
from electrofem.mesh import ElectrodeMesh, MeshFileError, MeshOptions
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
    meta = ElectrodeMesh.read(shared_tmp / "mesh.xdmf", COMM).metadata
    assert "box_um" not in meta and "box_um" in meta["missing"]
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
