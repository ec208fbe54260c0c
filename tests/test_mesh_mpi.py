"""Meshing and the distributed mesh. Marked ``mpi``: `make test` also runs these under
``mpirun -n 2`` with the same assertions, so serial and parallel must agree."""

import json
import math

import numpy as np
import pytest
from mpi4py import MPI

from electrofem import tags
from electrofem.config import parse
from electrofem.jobs.generate import run_generate
from electrofem.mesh import ElectrodeMesh, MeshFileError, MeshOptions
from electrofem.microstructure import Box, Particles
from electrofem.microstructure.measure import union_volume

pytestmark = pytest.mark.mpi

CFG = {
    "seed": 2,
    "preset": "L-Dry-S",
    "porosity": 0.45,
    "box": {"width": 50.0, "height": 60.0},
    "mesh": {"size": 1.0},
}


@pytest.fixture
def generated(shared_tmp):
    emesh, summary = run_generate(parse(CFG), shared_tmp, progress=False, picture=False)
    return emesh, summary, shared_tmp


def test_generate_writes_everything(generated):
    emesh, summary, out = generated
    for name in ("mesh.xdmf", "mesh.h5", "mesh.msh", "mesh.json", "summary.json", "particles.csv"):
        assert (out / name).is_file(), name
    s = json.loads((out / "summary.json").read_text())
    assert s["version"] and s["seed"] == 2 and s["parameters"]["preset"] == "L-Dry-S"
    assert abs(s["porosity"] - 0.45) <= 0.01
    assert s["mesh"]["n_cells"] == summary["mesh"]["n_cells"] > 1000
    assert s["mesh"]["min_quality"] > 0.02


def test_phase_volumes_match_particles(generated):
    emesh, summary, out = generated
    vols = emesh.phase_volumes()
    parts = Particles.from_csv(out / "particles.csv", Box((50.0, 60.0)))
    solid = union_volume(parts)
    assert math.isclose(sum(vols.values()), 50.0 * 60.0, rel_tol=1e-9)
    # polygonal disks lose area O(h²): well under 1 % here
    assert abs(vols[tags.ACTIVE] - solid) / solid < 0.01


def test_interface_tags_complete_and_exclusive(generated):
    emesh, _, _ = generated
    mesh = emesh.mesh
    tdim = mesh.topology.dim
    mesh.topology.create_connectivity(tdim - 1, tdim)
    f2c = mesh.topology.connectivity(tdim - 1, tdim)
    ncell = mesh.topology.index_map(tdim).size_local + mesh.topology.index_map(tdim).num_ghosts
    phase = np.zeros(ncell, dtype=np.int32)
    phase[emesh.cell_tags.indices] = emesh.cell_tags.values
    assert np.all(phase > 0), "every cell has a phase"
    ftag = dict(
        zip(emesh.facet_tags.indices.tolist(), emesh.facet_tags.values.tolist(), strict=True)
    )
    nfacet = mesh.topology.index_map(tdim - 1).size_local
    for f in range(nfacet):
        cells = f2c.links(f)
        if len(cells) == 2:
            a, b = phase[cells[0]], phase[cells[1]]
            if a != b:
                assert ftag.get(f) == tags.interface_tag(a, b), f"untagged {a}|{b} facet"
            elif a == tags.ELECTROLYTE:
                assert f not in ftag, "electrolyte-electrolyte facet tagged"
            elif f in ftag:  # a contact between two particles of the same phase
                assert ftag[f] == tags.interface_tag(a, a)
        else:
            assert ftag.get(f) in tags.BOUNDARIES.values(), "untagged boundary facet"


def test_xdmf_and_msh_roundtrip(generated):
    emesh, _, out = generated
    ref_v = emesh.phase_volumes()
    ref_f = emesh.facet_measures()
    for name in ("mesh.xdmf", "mesh.msh"):
        back = ElectrodeMesh.read(out / name, MPI.COMM_WORLD)
        assert back.metadata["seed"] == 2
        v = back.phase_volumes()
        f = back.facet_measures()
        assert v.keys() == ref_v.keys() and f.keys() == ref_f.keys()
        for k in ref_v:
            assert math.isclose(v[k], ref_v[k], rel_tol=1e-10)
        for k in ref_f:
            assert math.isclose(f[k], ref_f[k], rel_tol=1e-10)


def test_corrupt_and_foreign_files(shared_tmp):
    comm = MPI.COMM_WORLD
    if comm.rank == 0:
        (shared_tmp / "bad.xdmf").write_text("<Xdmf><Domain>")
        (shared_tmp / "foreign.msh").write_text("hello\n")
        (shared_tmp / "x.vtk").write_text("")
    comm.barrier()
    with pytest.raises(MeshFileError, match="corrupt XDMF"):
        ElectrodeMesh.read(shared_tmp / "bad.xdmf", comm)
    with pytest.raises(MeshFileError, match="not a Gmsh"):
        ElectrodeMesh.read(shared_tmp / "foreign.msh", comm)
    with pytest.raises(MeshFileError, match="unknown mesh format"):
        ElectrodeMesh.read(shared_tmp / "x.vtk", comm)
    with pytest.raises(MeshFileError, match="no such"):
        ElectrodeMesh.read(shared_tmp / "missing.xdmf", comm)


def test_reference_meshes_load():
    from pathlib import Path

    ref = Path(__file__).parent.parent / "meshes"
    files = sorted(ref.glob("*.xdmf"))
    assert len(files) >= 3
    for path in files:
        em = ElectrodeMesh.read(path, MPI.COMM_WORLD)
        vols = em.phase_volumes()
        meta = em.metadata
        box = np.prod(meta["box_um"])
        assert math.isclose(sum(vols.values()), box, rel_tol=1e-8)
        por = vols[tags.ELECTROLYTE] / box
        # coarse reference meshes: polyhedral spheres lose a little volume
        assert abs(por - meta["porosity"]) < 0.02


def test_mesh_volume_converges_under_refinement(shared_tmp):
    """Solid area of a fixed packing: the P1 (polygon) error falls ~4x when h halves."""
    import gmsh

    from electrofem.mesh import build_and_mesh

    box = Box((30.0, 30.0), periodic=False)
    parts = Particles(box, [[8.0, 8.0], [20.0, 10.0], [14.0, 21.0]], [4.0, 5.0, 5.5])
    exact = union_volume(parts)
    errs = []
    for h in (2.0, 1.0, 0.5):
        if MPI.COMM_WORLD.rank == 0:
            gmsh.initialize()
            build_and_mesh(parts, MeshOptions(size=h, radius_factor=10.0))
        em = ElectrodeMesh.from_gmsh(MPI.COMM_WORLD, 2)
        if MPI.COMM_WORLD.rank == 0:
            gmsh.finalize()
        errs.append(abs(em.phase_volumes()[tags.ACTIVE] - exact) / exact)
    rates = [math.log2(errs[i] / errs[i + 1]) for i in range(2)]
    assert errs[-1] < 2e-3
    assert min(rates) > 1.6, (errs, rates)


def test_meshio_convert_and_info_cli(generated, capsys):
    from electrofem.cli import main

    _, _, out = generated
    comm = MPI.COMM_WORLD
    if comm.rank == 0:
        import meshio

        from electrofem.mesh import convert

        convert(out / "mesh.msh", out / "mesh.vtu")
        m = meshio.read(out / "mesh.vtu")
        assert "tags" in m.cell_data
        values = np.unique(np.concatenate(m.cell_data["tags"]))
        assert {tags.ELECTROLYTE, tags.ACTIVE, tags.BOTTOM} <= set(values.tolist())
    comm.barrier()
    assert main(["info", str(out / "mesh.xdmf")]) == 0
    if comm.rank == 0:
        info = json.loads(capsys.readouterr().out)
        assert info["n_cells"] > 1000 and "electrolyte|active" in info["facet_measures"]
