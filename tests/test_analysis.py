"""electrofem.analysis: Cython measures against UFL and closed forms; profiles and local τ.
Marked ``mpi``: the same assertions run under mpirun -n 2 (each facet counted once)."""

import importlib.util
import math
from pathlib import Path

import gmsh
import numpy as np
import pytest
from electrofem._postprocess import cell_volumes_by_tag, facet_areas_binned, p1_slab_integrals
from mpi4py import MPI

from electrofem import tags
from electrofem.analysis import (
    DEFAULT_DENSITY_G_CM3,
    Profiles,
    interface_areas,
    phase_volumes,
    sia,
    specific_surface_area,
    through_thickness_profiles,
)
from electrofem.mesh import ElectrodeMesh, MeshOptions, build_and_mesh
from electrofem.microstructure import Box, Particles
from electrofem.physics.transport import solve_transport

pytestmark = pytest.mark.mpi
COMM = MPI.COMM_WORLD
MESHES = Path(__file__).parent.parent / "meshes"
REFERENCE = ("ls_2d", "sl_2d", "bi_3d")


def _load_stacked_mesh():
    """``stacked_mesh`` of test_transport.py (tests/ is not a package)."""
    spec = importlib.util.spec_from_file_location(
        "_electrofem_test_transport", Path(__file__).parent / "test_transport.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.stacked_mesh


stacked_mesh = _load_stacked_mesh()


def same_on_all_ranks(values) -> bool:
    arr = np.asarray(values, dtype=float)
    return all(np.array_equal(a, arr, equal_nan=True) for a in COMM.allgather(arr))


def particles_mesh(particles: Particles, options: MeshOptions) -> ElectrodeMesh:
    """Mesh on rank 0, distribute."""
    if COMM.rank == 0:
        gmsh.initialize()
        gmsh.option.setNumber("General.Terminal", 0)
        build_and_mesh(particles, options)
    em = ElectrodeMesh.from_gmsh(
        COMM, particles.dim, {"box_um": list(particles.box.size)} if COMM.rank == 0 else None
    )
    if COMM.rank == 0:
        gmsh.finalize()
    return em


@pytest.fixture(scope="module")
def reference():
    return {name: ElectrodeMesh.read(MESHES / f"{name}.xdmf", COMM) for name in REFERENCE}


# --- kernels -----------------------------------------------------------------------------------
@pytest.mark.parametrize("name", REFERENCE)
def test_kernel_measures_equal_ufl(reference, name):
    em = reference[name]
    areas, ufl_areas = interface_areas(em), em.facet_measures()
    assert set(areas) == set(ufl_areas)
    for t, a in ufl_areas.items():
        assert math.isclose(areas[t], a, rel_tol=1e-10), (t, areas[t], a)
    vols, ufl_vols = phase_volumes(em), em.phase_volumes()
    assert set(vols) == set(ufl_vols)
    for p, v in ufl_vols.items():
        assert math.isclose(vols[p], v, rel_tol=1e-10), (p, vols[p], v)
    box = em.metadata["box_um"]
    assert math.isclose(sum(vols.values()), float(np.prod(box)), rel_tol=1e-12)
    # a_s is the electrolyte|active area over the box volume, in 1/m
    a_s = specific_surface_area(em)
    assert math.isclose(a_s, areas[112] / float(np.prod(box)) * 1e6, rel_tol=1e-12)
    assert same_on_all_ranks([*areas.values(), *vols.values(), a_s])


def test_exact_clipping_of_single_simplices():
    """A tetrahedron / triangle split between slabs: the parts match closed forms, including
    vertices exactly on a slab plane and two vertices at the same height."""
    x = np.array([[0, 0, 0], [1, 0, 0], [0, 1, 0], [0, 0, 1]], dtype=float)
    one = np.array([0], np.int32)
    tot, b = cell_volumes_by_tag(x, np.array([[0, 1, 2, 3]], np.int32), one, one, one, 2, 0, 1, 2)
    # volume below z = t of the corner tet is (1 - (1-t)^3) / 6
    assert math.isclose(tot[0], 1 / 6, rel_tol=1e-14)
    assert np.allclose(b[0], [(1 - 0.5**3) / 6, 0.5**3 / 6], rtol=1e-14, atol=0)
    # the same tet cut along x at 0.25: the tip part beyond x=0.25 is (0.75)^3 / 6
    _, b = cell_volumes_by_tag(x, np.array([[0, 1, 2, 3]], np.int32), one, one, one, 0, 0, 1, 4)
    below = [1 - (1 - t) ** 3 for t in (0.25, 0.5, 0.75, 1.0)]
    assert np.allclose(b[0], np.diff([0, *below]) / 6, rtol=1e-13, atol=1e-16)
    # a facet triangle in 3D crossing three slabs: area fractions a^2 laws
    tri = np.array([[0, 1, 3]], np.int32)  # in the plane y = 0
    tot, b = facet_areas_binned(x, tri, one, one, one, 2, 0.0, 1.0, 3)
    below = [1 - (1 - t) ** 2 for t in (1 / 3, 2 / 3, 1.0)]
    assert np.allclose(b[0], np.diff([0, *below]) * tot[0], rtol=1e-13, atol=1e-16)
    # P1 gradient integrals of a linear field: exact constant gradient, clipped volumes
    u = np.array([0.0, 2.0, -3.0, 0.5])
    dofs = np.array([[0, 1, 2, 3]], np.int32)
    vol, grad, energy = p1_slab_integrals(x, dofs, dofs, u, np.array([2.0]), one, 2, 0, 1, 2)
    assert np.allclose(grad / vol, 0.5, rtol=1e-13)
    assert np.allclose(energy / vol, 2.0 * (4 + 9 + 0.25), rtol=1e-13)


# --- closed forms ------------------------------------------------------------------------------
def core_shell_sia(R, r):
    rho_core, rho_shell = DEFAULT_DENSITY_G_CM3[tags.ACTIVE], DEFAULT_DENSITY_G_CM3[tags.SECOND]
    m = 4 / 3 * math.pi * (rho_core * r**3 + rho_shell * (R**3 - r**3))
    return 4 * math.pi * r**2 / m  # µm² / (g/cm³ µm³) = m²/g


def test_core_shell_sphere_sia_converges():
    L, R, t = 5.0, 1.5, 0.5
    centre = [L / 2 + 0.01, L / 2 - 0.013, L / 2 + 0.007]  # off-symmetric: no special meshes
    exact = core_shell_sia(R, R - t)
    errors = []
    for rf in (0.3, 0.12):
        p = Particles(
            Box((L, L, L), periodic=False),
            [centre],
            [R],
            phase=[tags.ACTIVE],
            shell_thickness=[t],
            shell_phase=[tags.SECOND],
        )
        em = particles_mesh(p, MeshOptions(size=1.0, radius_factor=rf, optimize=False))
        values = sia(em)
        assert set(values) == {"active|second"}
        errors.append(abs(values["active|second"] - exact) / exact)
        # the interface itself: 4 pi r^2 from below (inscribed polyhedron)
        assert 0 < 4 * math.pi * (R - t) ** 2 - interface_areas(em)[123]
        assert same_on_all_ranks(list(values.values()))
    assert errors[1] < 5e-3 and errors[1] < errors[0], errors
    # density overrides (by name or id) enter the masses
    rho = {"active": 2.0, tags.SECOND: 1.0}
    m = 4 / 3 * math.pi * (2.0 * (R - t) ** 3 + 1.0 * (R**3 - (R - t) ** 3))
    got = sia(em, rho)["active|second"]
    assert math.isclose(got, 4 * math.pi * (R - t) ** 2 / m, rel_tol=5e-3)


def test_two_spheres_contact_area_converges():
    L, r1, r2, d = 6.0, 1.5, 1.2, 2.2
    x = (d * d + r1 * r1 - r2 * r2) / (2 * d)  # distance of the radical plane from centre 1
    exact = math.pi * (r1 * r1 - x * x)
    c = np.array([L / 2, L / 2 + 0.013, L / 2 - 0.007])
    p = Particles(Box((L, L, L), periodic=False), [c - [d / 2, 0, 0], c + [d / 2, 0, 0]], [r1, r2])
    errors = []
    for rf, nf in ((0.3, 0.5), (0.2, 0.25), (0.15, 0.12)):
        opts = MeshOptions(size=1.0, radius_factor=rf, neck_factor=nf, optimize=False)
        em = particles_mesh(p, opts)
        area = interface_areas(em)[tags.interface_tag(tags.ACTIVE, tags.ACTIVE)]
        assert math.isclose(area, em.facet_measures()[122], rel_tol=1e-10)
        errors.append(abs(area - exact) / exact)
    assert errors[-1] < 5e-3, errors
    assert errors[0] > errors[1] > errors[2], errors
    assert sia(em) == {}  # one solid phase: no pair of solids


# --- profiles ----------------------------------------------------------------------------------
@pytest.mark.parametrize("name", REFERENCE)
def test_profiles_average_to_totals(reference, name, tmp_path):
    em = reference[name]
    prof = through_thickness_profiles(em, n_slabs=7)
    assert isinstance(prof, Profiles) and prof.n_slabs == 7 and prof.axis == "xyz"[em.dim - 1]
    box = em.metadata["box_um"]
    assert np.allclose(prof.edges, np.linspace(0, box[-1], 8), rtol=0, atol=0)
    vols = phase_volumes(em)
    total = sum(vols.values())
    w = prof.slab_volume / prof.slab_volume.sum()
    assert math.isclose(prof.slab_volume.sum(), total, rel_tol=1e-12)
    assert abs(np.dot(w, prof.porosity) - vols[tags.ELECTROLYTE] / total) < 1e-12
    assert math.isclose(np.dot(w, prof.a_s), specific_surface_area(em), rel_tol=1e-12)
    for phase, frac in prof.volume_fractions.items():
        assert abs(np.dot(w, frac) - vols[tags.phase_id(phase)] / total) < 1e-12
    assert np.all(np.isnan(prof.tortuosity))  # no transport result given
    # along another axis too
    px = through_thickness_profiles(em, n_slabs=5, axis="x")
    assert abs(np.dot(px.slab_volume / total, px.porosity) - vols[tags.ELECTROLYTE] / total) < 1e-12
    assert same_on_all_ranks(np.concatenate([prof.porosity, prof.a_s, px.porosity]))
    path = prof.to_csv(Path(COMM.bcast(str(tmp_path), root=0)) / "p.csv")
    if COMM.rank == 0:
        rows = path.read_text().splitlines()
        assert rows[0].startswith(f"{prof.axis}_lo_um,") and "a_s_per_m" in rows[0]
        assert len(rows) == 8
    assert prof.as_dict()["porosity"] == prof.porosity.tolist()


def test_local_tortuosity_straight_pores_is_one():
    # bands along x, so the pores run straight along y (the profile axis)
    em = stacked_mesh([(2.0, 1), (3.0, 2), (1.5, 1), (3.5, 2)], width=12.0, axis=0)
    res = solve_transport(em, {tags.ELECTROLYTE: 2.7}, directions=("y",))
    prof = through_thickness_profiles(em, n_slabs=7, transport=res, direction="y")
    assert prof.direction == "y"
    assert np.allclose(prof.transport_fraction, 0.35, rtol=1e-12, atol=0)
    assert np.allclose(prof.porosity, 0.35, rtol=1e-12, atol=0)
    assert np.allclose(prof.tortuosity, 1.0, rtol=1e-8, atol=0)
    assert same_on_all_ranks(prof.tortuosity)
    with pytest.raises(ValueError, match="profile axis"):
        through_thickness_profiles(em, transport=res, direction="x", axis="y")
    # bands across y: dead-end pores, no percolation -> inf where there is pore, NaN elsewhere
    em = stacked_mesh([(2.0, 1), (3.0, 2), (1.5, 1), (3.5, 2)], width=12.0, axis=1)
    res = solve_transport(em, {tags.ELECTROLYTE: 2.7}, directions=("y",))
    prof = through_thickness_profiles(em, n_slabs=20, transport=res, direction="y")
    pore = prof.porosity > 0
    assert np.all(np.isinf(prof.tortuosity[pore])) and np.all(np.isnan(prof.tortuosity[~pore]))


@pytest.mark.parametrize("fallback", [False, True])
def test_local_tortuosity_series_layers_exact(monkeypatch, fallback):
    L1, L2, k1, k2 = 4.0, 6.0, 3.0, 0.5
    em = stacked_mesh([(L1, tags.ELECTROLYTE), (L2, tags.SECOND)], width=5.0, axis=1)
    res = solve_transport(em, {tags.ELECTROLYTE: k1, tags.SECOND: k2}, directions=("y",))
    if fallback:  # the coefficients found by point location instead of the entity map
        import electrofem.analysis.profiles as profiles

        monkeypatch.setattr(profiles, "_parent_tags_of_submesh", lambda *a: None)
    d = res.directions["y"]
    # slabs of 1 µm: each slab gets its layer's own tau (eps = 1, D0 = k1)
    prof = through_thickness_profiles(em, n_slabs=10, transport=res, direction="y")
    want = np.array([1.0] * 4 + [k1 / k2] * 6)
    assert np.allclose(prof.tortuosity, want, rtol=1e-7, atol=0)
    # 3 slabs: the middle one straddles the layers and gets the exact series tau of its parts
    prof = through_thickness_profiles(em, n_slabs=3, transport=res, direction="y")
    h = 10.0 / 3
    mid = k1 * ((L1 - h) / k1 + (2 * h - L1) / k2) / h
    assert np.allclose(prof.tortuosity, [1.0, mid, k1 / k2], rtol=1e-7, atol=0)
    # thickness-weighted N_M,k = the global MacMullin number
    mean = np.dot(prof.thickness, prof.macmullin) / 10.0
    assert math.isclose(mean, d.macmullin, rel_tol=1e-7)
    assert same_on_all_ranks(prof.tortuosity)


def test_local_tortuosity_reference_mesh_reproduces_global(reference):
    em = reference["ls_2d"]
    res = solve_transport(em, (tags.ELECTROLYTE,), directions=("y",))
    d = res.directions["y"]
    prof = through_thickness_profiles(em, n_slabs=12, transport=res, direction="y")
    assert np.allclose(prof.transport_fraction, prof.porosity, rtol=1e-10)
    mean = np.dot(prof.thickness, prof.macmullin) / prof.edges[-1]
    assert math.isclose(mean, d.macmullin, rel_tol=1e-7)
    assert np.all(prof.tortuosity >= 1.0 - 1e-3)  # local Wiener bound, up to discretisation
    assert same_on_all_ranks(prof.tortuosity)
