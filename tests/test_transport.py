"""Effective-transport cell problem against closed forms (non-unit coefficients).
Marked ``mpi``: the same assertions run under mpirun -n 2."""

import math

import gmsh
import numpy as np
import pytest
from mpi4py import MPI

from electrofem import tags
from electrofem.mesh import ElectrodeMesh, MeshOptions, build_and_mesh
from electrofem.microstructure import Box, Particles
from electrofem.physics.transport import solve_transport

pytestmark = pytest.mark.mpi
COMM = MPI.COMM_WORLD


def stacked_mesh(bands, width=10.0, h=0.5, axis=1):
    """2D box of horizontal (axis=1) or vertical (axis=0) bands: [(thickness, phase), ...]."""
    if COMM.rank == 0:
        gmsh.initialize()
        gmsh.option.setNumber("General.Terminal", 0)
        occ = gmsh.model.occ
        pos, surfs = 0.0, []
        for t, phase in bands:
            if axis == 1:
                s = occ.addRectangle(0, pos, 0, width, t)
            else:
                s = occ.addRectangle(pos, 0, 0, t, width)
            surfs.append((s, phase))
            pos += t
        occ.fragment([(2, s) for s, _ in surfs[:1]], [(2, s) for s, _ in surfs[1:]])
        occ.synchronize()
        total = pos
        size = (width, total) if axis == 1 else (total, width)
        for phase in {p for _, p in bands}:
            ents = []
            for _, tag in gmsh.model.getEntities(2):
                c = occ.getCenterOfMass(2, tag)
                lo = 0.0
                for t, p in bands:
                    if lo <= c[axis] < lo + t and p == phase:
                        ents.append(tag)
                    lo += t
            gmsh.model.addPhysicalGroup(2, ents, phase)
        faces = {tags.LEFT: [], tags.RIGHT: [], tags.BOTTOM: [], tags.TOP: []}
        inner = []
        for _, tag in gmsh.model.getEntities(1):
            x0, y0, _, x1, y1, _ = gmsh.model.getBoundingBox(1, tag)
            if abs(x1) < 1e-9:
                faces[tags.LEFT].append(tag)
            elif abs(x0 - size[0]) < 1e-9:
                faces[tags.RIGHT].append(tag)
            elif abs(y1) < 1e-9:
                faces[tags.BOTTOM].append(tag)
            elif abs(y0 - size[1]) < 1e-9:
                faces[tags.TOP].append(tag)
            else:
                inner.append(tag)
        for t, ents in faces.items():
            gmsh.model.addPhysicalGroup(1, ents, t)
        gmsh.model.addPhysicalGroup(1, inner, 199)
        gmsh.option.setNumber("Mesh.MeshSizeMax", h)
        gmsh.model.mesh.generate(2)
    em = ElectrodeMesh.from_gmsh(COMM, 2, {"box_um": list(size) if COMM.rank == 0 else None})
    if COMM.rank == 0:
        gmsh.finalize()
    em.metadata["box_um"] = COMM.bcast(em.metadata.get("box_um"), root=0)
    return em


@pytest.mark.parametrize("degree", [1, 2])
def test_straight_pores_tau_exactly_one(degree):
    # pore channels along x between solid bands: tau = 1, D_eff/D0 = epsilon
    em = stacked_mesh([(2.0, 1), (3.0, 2), (1.5, 1), (3.5, 2)], width=12.0, axis=1)
    res = solve_transport(em, {tags.ELECTROLYTE: 2.7}, directions=("x", "y"), degree=degree)
    x = res.directions["x"]
    assert math.isclose(x.epsilon, 3.5 / 10.0, rel_tol=1e-12)
    assert math.isclose(x.tortuosity, 1.0, rel_tol=1e-8)
    assert math.isclose(x.relative_diffusivity, 0.35, rel_tol=1e-8)
    assert x.flux_imbalance < 1e-7
    # across the bands the pores are dead ends: no percolation, reported as such
    y = res.directions["y"]
    assert not y.percolating and y.relative_diffusivity == 0.0 and math.isinf(y.tortuosity)


@pytest.mark.parametrize("degree", [1, 2])
def test_series_layers_exact(degree):
    # two phases in series along y with coefficients 3.0 and 0.5 (reference 3.0)
    L1, L2, k1, k2 = 4.0, 6.0, 3.0, 0.5
    em = stacked_mesh([(L1, tags.ELECTROLYTE), (L2, tags.SECOND)], width=5.0, axis=1)
    coeffs = {tags.ELECTROLYTE: k1, tags.SECOND: k2}
    res = solve_transport(em, coeffs, directions=("x", "y"), degree=degree)
    y = res.directions["y"]
    deff = (L1 + L2) / (L1 / k1 + L2 / k2)
    assert math.isclose(y.relative_diffusivity, deff / k1, rel_tol=1e-8)
    assert math.isclose(y.tortuosity, 1.0 * k1 / deff, rel_tol=1e-8)  # epsilon = 1
    # parallel along x: the arithmetic mean
    x = res.directions["x"]
    assert math.isclose(x.relative_diffusivity, (L1 * k1 + L2 * k2) / (L1 + L2) / k1, rel_tol=1e-8)


def disk_cell(phi, h):
    """One insulating disk in a unit cell (side 10 µm): a square array by symmetry."""
    side = 10.0
    r = side * math.sqrt(phi / math.pi)
    parts = Particles(Box((side, side), periodic=False), [[side / 2, side / 2]], [r])
    if COMM.rank == 0:
        gmsh.initialize()
        build_and_mesh(parts, MeshOptions(size=h, radius_factor=0.05))
    em = ElectrodeMesh.from_gmsh(COMM, 2, {"box_um": [side, side]})
    if COMM.rank == 0:
        gmsh.finalize()
    return em


def rayleigh_square(phi):
    """Exact (series) effective conductivity of a square array of insulating cylinders
    (Perrins, McKenzie & McPhedran 1979), accurate to ~1e-6 for phi <= 0.4."""
    f = phi
    return 1 - 2 * f / (1 + f - 0.305827 * f**4 / (1 - 1.402958 * f**8) - 0.013362 * f**8)


def test_square_array_against_rayleigh_and_maxwell():
    """D_eff/D0 of a square array of cylinders (coefficient 1.7, not 1):

    * against the exact Rayleigh series, converging under refinement (observed order > 1);
    * against Maxwell (1 - phi)/(1 + phi), whose model error is O(phi^4): the deviation stays
      inside 0.35 phi^4 + discretisation error, so it shrinks as phi -> 0.
    """
    errs = {}
    for h in (0.25, 0.125):
        for phi in (0.4, 0.3, 0.2, 0.1):
            em = disk_cell(phi, h)
            d = solve_transport(em, {tags.ELECTROLYTE: 1.7}, directions=("x",)).directions["x"]
            f = 1.0 - d.epsilon  # the meshed (polygonal) solid fraction
            assert math.isclose(f, phi, rel_tol=5e-3)
            errs[h, phi] = abs(d.relative_diffusivity - rayleigh_square(f)) / rayleigh_square(f)
            if h == 0.125:
                maxwell = (1 - f) / (1 + f)
                dev = abs(d.relative_diffusivity - maxwell) / maxwell
                assert dev < 0.35 * f**4 + 3e-4, (phi, dev)
    for phi in (0.4, 0.3, 0.2, 0.1):
        assert errs[0.125, phi] < 3e-4
        assert math.log2(errs[0.25, phi] / errs[0.125, phi]) > 1.0


def test_quadratic_potential_is_more_accurate_per_mesh():
    """degree=2 on the same (straight-sided) mesh: the field error drops below P1's, so what
    is left against Rayleigh (for the meshed fraction) is mostly the polygonal geometry."""
    em = disk_cell(0.3, 0.5)
    errs = []
    for degree in (1, 2):
        d = solve_transport(em, {tags.ELECTROLYTE: 1.7}, directions=("x",), degree=degree)
        x = d.directions["x"]
        f = 1.0 - x.epsilon
        errs.append(abs(x.relative_diffusivity - rayleigh_square(f)) / rayleigh_square(f))
        assert x.flux_imbalance < 1e-6
    assert errs[1] < 0.5 * errs[0], errs
    with pytest.raises(ValueError, match="degree"):
        solve_transport(em, directions=("x",), degree=3)


def test_reference_mesh_serial_parallel_agree_values():
    """Regression values of the shipped 2D L-S mesh; identical on 1 and 2 ranks."""
    from pathlib import Path

    em = ElectrodeMesh.read(Path(__file__).parent.parent / "meshes" / "ls_2d.xdmf", COMM)
    res = solve_transport(em, (tags.ELECTROLYTE,), directions=("x", "y"))
    for d in res.directions.values():
        assert d.percolating and 1.0 < d.tortuosity < 5.0
        assert d.flux_imbalance < 1e-6
    taus = np.array([res.directions[k].tortuosity for k in ("x", "y")])
    # all ranks hold the same numbers
    assert np.allclose(COMM.allgather(taus)[0], taus, rtol=0, atol=0)
