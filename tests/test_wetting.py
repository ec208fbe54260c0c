"""The wetting state (electrofem.physics.wetting) and the infiltration job's wetting outputs.

On the shipped 2D meshes (ls_2d: 50 × 60 µm). Marked ``mpi``: the same assertions run under
``mpirun -n 2``, and every distributed result is compared with the same computation on a copy
of the mesh read on ``COMM_SELF`` (serial = 2 ranks)."""

import json
from pathlib import Path

import numpy as np
import pytest
from mpi4py import MPI

from electrofem import tags
from electrofem.jobs.infiltrate import run_infiltration
from electrofem.mesh import ElectrodeMesh
from electrofem.physics.vof import InfiltrationOptions
from electrofem.physics.wetting import (
    WettingState,
    analyse_wetting,
    electrolyte_components,
    interface_facets,
    mesh_fingerprint,
    read_wetting,
    wet_cells,
    wetting_metrics,
)

pytestmark = pytest.mark.mpi
COMM = MPI.COMM_WORLD
MESHES = Path(__file__).resolve().parents[1] / "meshes"
BAND = (20.0, 28.0)  # µm: a dry layer across the whole 50 µm width of ls_2d (height 60 µm)


@pytest.fixture(scope="module")
def ls():
    return ElectrodeMesh.read(MESHES / "ls_2d.xdmf", COMM)


@pytest.fixture(scope="module")
def ls_serial():
    return ElectrodeMesh.read(MESHES / "ls_2d.xdmf", MPI.COMM_SELF)


@pytest.fixture(scope="module")
def sl():
    return ElectrodeMesh.read(MESHES / "sl_2d.xdmf", COMM)


def local_arrays(em):
    """Phase and centroid (µm) of every local cell."""
    n = (
        em.mesh.topology.index_map(em.dim).size_local
        + em.mesh.topology.index_map(em.dim).num_ghosts
    )
    phase = np.full(n, -1)
    phase[em.cell_tags.indices] = em.cell_tags.values
    x = em.mesh.geometry.x[em.mesh.geometry.dofmaps[0][:n]].mean(axis=1)
    return phase, x


def band_state(em):
    """Every pore cell wet but those with a centroid in BAND."""
    st = WettingState.full(em)
    y = st.centroids_um[:, 1]
    alpha = np.where((y > BAND[0]) & (y < BAND[1]), 0.0, 1.0)
    return WettingState(1.0, alpha, st.centroids_um, st.fingerprint, "band")


def test_fingerprint_is_the_mesh_not_the_file(ls, ls_serial, sl, shared_tmp):
    fp = mesh_fingerprint(ls)
    assert len(fp) == 16 and int(fp, 16) >= 0
    assert mesh_fingerprint(ls_serial) == fp  # 1 rank = this many ranks
    again = ElectrodeMesh.read(MESHES / "ls_2d.xdmf", COMM)
    assert mesh_fingerprint(again) == fp
    # a copy under another name has the same fingerprint
    copy = ls.write(shared_tmp / "renamed.xdmf")
    assert mesh_fingerprint(ElectrodeMesh.read(copy, COMM)) == fp
    assert mesh_fingerprint(sl) != fp


def test_a_state_from_another_mesh_is_refused(ls, sl):
    state = WettingState.full(sl)
    with pytest.raises(ValueError) as err:
        wet_cells(ls, state)
    text = str(err.value)
    assert text.startswith("--wetting: the wetting state is from another mesh (fingerprint ")
    assert mesh_fingerprint(sl) in text and mesh_fingerprint(ls) in text
    assert "\n" not in text


def test_full_state_wets_every_pore_cell(ls):
    state = WettingState.full(ls)
    phase, _ = local_arrays(ls)
    wet = wet_cells(ls, state)
    assert wet.shape == phase.shape and np.array_equal(wet, phase == tags.ELECTROLYTE)
    labels, connected = electrolyte_components(ls, wet)
    assert np.array_equal(connected, wet) and np.all(labels[~wet] == -1)
    m = wetting_metrics(ls, wet, connected, labels=labels, threshold=0.5)
    assert m["wetted_pore_fraction"] == pytest.approx(1.0, rel=1e-12)
    assert m["connected_pore_fraction"] == pytest.approx(1.0, rel=1e-12)
    assert m["wetted_active_area_fraction"] == pytest.approx(1.0, rel=1e-12)
    assert m["dry_active_area_fraction"] == 0.0 and m["n_pockets"] == 0
    assert m["isolated_electrolyte_volume_um3"] == 0.0
    assert m["pore_volume_um3"] == pytest.approx(ls.phase_volumes()[tags.ELECTROLYTE], rel=1e-12)
    assert m["active_area_um2"] == pytest.approx(ls.facet_measures()[112], rel=1e-12)


def write_states(folder: Path, state: WettingState, times):
    """States at ``times`` with an index, as the infiltration job writes them (rank 0)."""
    if COMM.rank == 0:
        entries = []
        for i, t in enumerate(times):
            name = f"state_{i:04d}.npz"
            WettingState(
                t, state.alpha * (i + 1) / len(times), state.centroids_um, state.fingerprint
            ).save(folder / "wetting" / name)
            entries.append({"file": name, "time_s": t})
        (folder / "wetting" / "index.json").write_text(json.dumps(entries))
    COMM.barrier()


def test_save_load_and_read_wetting(ls, shared_tmp):
    state = band_state(ls)
    one = shared_tmp / "one.npz"
    if COMM.rank == 0:
        state.save(one)
    COMM.barrier()
    back = WettingState.load(one)
    assert back.time_s == state.time_s and back.fingerprint == state.fingerprint
    assert np.array_equal(back.alpha, state.alpha)
    assert np.array_equal(back.centroids_um, state.centroids_um)
    assert read_wetting(str(one), COMM).time_s == 1.0
    out = shared_tmp / "infil"
    write_states(out, state, [0.0, 1e-3, 2e-3])
    assert read_wetting(str(out), COMM).time_s == 2e-3  # the last one
    assert read_wetting(str(out / "wetting"), COMM).time_s == 2e-3
    assert read_wetting(f"{out}:1.5e-3", COMM).time_s == 1e-3  # the last one at or before
    assert read_wetting(f"{out}:0.001", COMM).time_s == 1e-3
    got = read_wetting(f"{out}:1", COMM)
    assert got.time_s == 2e-3 and "state_0002.npz" in got.source
    assert np.array_equal(got.alpha, state.alpha)
    write_states(shared_tmp / "late", state, [1e-3, 2e-3])
    cases = [
        (f"{out}:abc", "--wetting: bad TIME 'abc'"),
        (f"{out}:-1", "--wetting: bad TIME '-1'"),
        (f"{shared_tmp / 'late'}:1e-4", "--wetting: no wetting state at or before t = 0.0001 s"),
        (str(shared_tmp / "missing"), "--wetting: "),
        (str(shared_tmp), "--wetting: "),  # a folder without states
    ]
    for spec, start in cases:
        with pytest.raises(ValueError) as err:
            read_wetting(spec, COMM)
        assert str(err.value).startswith(start) and "\n" not in str(err.value), spec
    with pytest.raises(ValueError, match="available: 0.001, 0.002 s"):
        read_wetting(f"{shared_tmp / 'late'}:1e-4", COMM)
    with pytest.raises(ValueError, match="no such folder"):
        read_wetting(str(shared_tmp / "missing"), COMM)
    with pytest.raises(ValueError, match="no wetting states"):
        read_wetting(str(shared_tmp), COMM)


def direct_area(em, above: float):
    """The electrolyte|active area (UFL, dS) whose electrolyte cell has its centroid above
    ``above``, and the whole of it."""
    import ufl
    from dolfinx import fem

    phase, x = local_arrays(em)
    V0 = fem.functionspace(em.mesh, ("DG", 0))
    ind = fem.Function(V0)
    cells = np.arange(len(phase))
    ind.x.array[V0.dofmap.list[cells, 0]] = (phase == tags.ELECTROLYTE) & (x[:, 1] > above)
    dS = ufl.Measure("dS", domain=em.mesh, subdomain_data=em.facet_tags)

    def total(form):
        return em.comm.allreduce(fem.assemble_scalar(fem.form(form)), op=MPI.SUM)

    return total((ind("+") + ind("-")) * dS(112)), total(fem.Constant(em.mesh, 1.0) * dS(112))


def test_a_dry_band_cuts_every_path(ls):
    state = band_state(ls)
    w = analyse_wetting(ls, state, threshold=0.5)
    m = w.metrics
    phase, x = local_arrays(ls)
    elec = phase == tags.ELECTROLYTE
    below, above = elec & (x[:, 1] < BAND[0]), elec & (x[:, 1] > BAND[1])
    assert (
        np.all(w.wet[below]) and np.all(w.wet[above]) and not np.any(w.wet[elec & ~below & ~above])
    )
    assert not np.any(w.connected[below])  # wet, but no path to the separator
    assert np.all(w.connected[above])  # (this mesh has no pocket above the band)
    assert np.all(w.labels[below] >= 0) and np.all(w.labels[~w.wet] == -1)
    assert m["n_pockets"] >= 1
    assert m["connected_pore_fraction"] < m["wetted_pore_fraction"] < 1.0
    iso = ls.comm.allreduce(
        float(
            np.sum(
                np.abs(
                    np.linalg.det(  # the owned cells below the band, by hand
                        (lambda xc: xc[:, 1:] - xc[:, :1])(
                            ls.mesh.geometry.x[
                                ls.mesh.geometry.dofmaps[0][
                                    np.flatnonzero(
                                        below[: ls.mesh.topology.index_map(2).size_local]
                                    )
                                ],
                                :2,
                            ]
                        )
                    )
                )
                / 2.0
            )
        ),
        op=MPI.SUM,
    )
    assert m["isolated_electrolyte_volume_um3"] == pytest.approx(iso, rel=1e-12)
    a_above, a_all = direct_area(ls, BAND[1])
    a_below = direct_area(ls, -1.0)[0] - direct_area(ls, BAND[0])[0]
    assert m["active_area_um2"] == pytest.approx(a_all, rel=1e-12)
    assert m["wetted_active_area_fraction"] == pytest.approx(a_above / a_all, rel=1e-10)
    assert m["dry_active_area_fraction"] == pytest.approx(
        1.0 - (a_above + a_below) / a_all, rel=1e-10
    )
    assert m["isolated_active_area_fraction"] == pytest.approx(a_below / a_all, rel=1e-10)
    # the particle surface that carries current: the interface facets next to connected cells
    owned = interface_facets(ls, w.connected)
    n_f = ls.mesh.topology.index_map(1).size_local
    n_sel = ls.comm.allreduce(int(np.count_nonzero(owned < n_f)), op=MPI.SUM)
    n_all = ls.comm.allreduce(int(np.count_nonzero(interface_facets(ls, elec) < n_f)), op=MPI.SUM)
    assert 0 < n_sel < n_all == ls.facet_counts()[112]


def test_metrics_serial_equal_distributed(ls, ls_serial):
    dist = analyse_wetting(ls, band_state(ls)).metrics
    ser = analyse_wetting(ls_serial, band_state(ls_serial)).metrics
    assert dist["fingerprint"] == ser["fingerprint"]
    for key, value in ser.items():
        if isinstance(value, float):
            assert dist[key] == pytest.approx(value, rel=1e-12, abs=1e-12), key
        else:
            assert dist[key] == value, key


def test_cells_touching_at_a_vertex_are_not_connected():
    """A unit square of 8 × 8 squares cut in triangles: two wet quarters that share only the
    centre vertex are two components; only the upper one touches the top."""
    from dolfinx import mesh

    msh = mesh.create_unit_square(COMM, 8, 8, ghost_mode=mesh.GhostMode.shared_facet)
    tdim = 2
    imap = msh.topology.index_map(tdim)
    n = imap.size_local + imap.num_ghosts
    cells = np.arange(n, dtype=np.int32)
    ct = mesh.meshtags(msh, tdim, cells, np.full(n, tags.ELECTROLYTE, dtype=np.int32))
    msh.topology.create_connectivity(tdim - 1, tdim)
    top = mesh.locate_entities_boundary(msh, 1, lambda x: np.isclose(x[1], 1.0))
    ft = mesh.meshtags(msh, 1, top, np.full(len(top), tags.TOP, dtype=np.int32))
    em = ElectrodeMesh(msh, ct, ft, {"box_um": [1.0, 1.0]})
    x = msh.geometry.x[msh.geometry.dofmaps[0][:n]].mean(axis=1)
    low = (x[:, 0] < 0.5) & (x[:, 1] < 0.5)
    high = (x[:, 0] > 0.5) & (x[:, 1] > 0.5)
    labels, connected = electrolyte_components(em, low | high)
    assert np.all(connected[high]) and not np.any(connected[low])
    assert np.all(labels[~(low | high)] == -1)
    found = set().union(*COMM.allgather(set(labels[low | high].tolist())))
    assert len(found) == 2  # the same two global ids on every rank
    assert len(set(labels[low])) <= 1 and len(set(labels[high])) <= 1
    m = wetting_metrics(em, low | high, connected, labels=labels)
    assert m["n_pockets"] == 1
    assert m["connected_pore_fraction"] == pytest.approx(0.25, rel=1e-12)
    assert m["isolated_electrolyte_volume_um3"] == pytest.approx(0.25, rel=1e-12)


def test_infiltration_writes_wetting_states(ls, shared_tmp):
    out = shared_tmp / "run"
    o = InfiltrationOptions(
        max_steps=3, snapshots=False, output_interval_s=1e-12, initial_film_um=6.0
    )
    rep = run_infiltration(ls, out, o, progress=False, plots=False)
    assert rep.metrics["files"]["wetting"] == "wetting"
    assert rep.metrics["mesh_fingerprint"] == mesh_fingerprint(ls)
    index = json.loads((out / "wetting" / "index.json").read_text())
    assert len(index) == 4  # t = 0 and every step
    times = [e["time_s"] for e in index]
    assert times == sorted(times) and times[0] == 0.0
    assert times[-1] == pytest.approx(rep.metrics["t_final_s"], rel=1e-12)
    last = read_wetting(str(out), COMM)
    assert last.time_s == times[-1] and last.fingerprint == mesh_fingerprint(ls)
    wet = wet_cells(ls, last)
    n_wet = COMM.allreduce(int(np.count_nonzero(wet[: ls.mesh.topology.index_map(2).size_local])))
    assert n_wet == int(np.count_nonzero(last.alpha >= 0.5)) > 0
    first = read_wetting(f"{out}:0", COMM)
    assert first.time_s == 0.0
    phase, x = local_arrays(ls)
    film = wet_cells(ls, first)  # the initial film below the inlet (y > 54 µm)
    assert np.array_equal(film, (phase == tags.ELECTROLYTE) & (x[:, 1] > 54.0))
    # a restart appends to the index
    o.max_steps = 5
    run_infiltration(ls, out, o, progress=False, plots=False, restart=True)
    index2 = json.loads((out / "wetting" / "index.json").read_text())
    assert index2[:4] == index and len(index2) == 6
    assert [e["time_s"] for e in index2] == sorted(e["time_s"] for e in index2)
