"""electrofem.mesh.geometry: OCC geometry, physical groups and meshing, against closed forms."""

import dataclasses
import json
import logging
import math

import gmsh
import numpy as np
import pytest

from electrofem import tags
from electrofem.mesh.geometry import (
    MeshOptions,
    _tangency_hints,
    build_and_mesh,
    build_geometry,
    mesh_geometry,
)
from electrofem.microstructure.particles import Box, Particles

REL = 1e-6


# --- closed forms ------------------------------------------------------------------------------
def radical_x(r1, r2, d):
    """Distance of the radical plane from centre 1."""
    return (d * d + r1 * r1 - r2 * r2) / (2 * d)


def segment_area(r, x):
    """2D: area of the part of a disk of radius r beyond a chord at distance x from the centre."""
    return r * r * math.acos(x / r) - x * math.sqrt(r * r - x * x)


def cap_volume(r, h):
    return math.pi * h * h * (3 * r - h) / 3


def rel(a, b):
    return abs(a - b) / abs(b)


# --- helpers -----------------------------------------------------------------------------------
def facet_groups():
    """dim-1 entity -> list of dim-1 physical groups containing it."""
    dim = gmsh.model.getDimension()
    groups = {t: [] for _, t in gmsh.model.getEntities(dim - 1)}
    for _, g in gmsh.model.getPhysicalGroups(dim - 1):
        for e in gmsh.model.getEntitiesForPhysicalGroup(dim - 1, g):
            groups[int(e)].append(g)
    return groups


def mesh_phase_volumes():
    """Phase id -> sum of element volumes (areas in 2D) of the mesh."""
    dim = gmsh.model.getDimension()
    node_tags, coords, _ = gmsh.model.mesh.getNodes()
    xyz = np.zeros((int(node_tags.max()) + 1, 3))
    xyz[node_tags.astype(int)] = coords.reshape(-1, 3)
    out = {}
    for _, phase in gmsh.model.getPhysicalGroups(dim):
        total = 0.0
        for ent in gmsh.model.getEntitiesForPhysicalGroup(dim, phase):
            types, _, nodes = gmsh.model.mesh.getElements(dim, int(ent))
            for t, nd in zip(types, nodes, strict=True):
                assert t == (2 if dim == 2 else 4)  # linear triangles / tetrahedra
                p = xyz[nd.astype(int).reshape(-1, dim + 1)]
                e = p[:, 1:] - p[:, :1]
                if dim == 2:
                    cross = e[:, 0, 0] * e[:, 1, 1] - e[:, 0, 1] * e[:, 1, 0]
                    total += 0.5 * np.abs(cross).sum()
                else:
                    total += np.abs(np.linalg.det(e)).sum() / 6
        out[phase] = total
    return out


def two_disks():
    return Particles(
        Box((20.0, 20.0), periodic=False), centers=[[8.0, 10.0], [12.0, 10.0]], radii=[3.0, 2.0]
    )


# --- options -----------------------------------------------------------------------------------
def test_mesh_options_validate():
    MeshOptions().validate()
    with pytest.raises(ValueError, match=r"mesh\.size: must be > 0"):
        MeshOptions(size=0).validate()
    with pytest.raises(ValueError, match=r"mesh\.radius_factor"):
        MeshOptions(radius_factor=-1).validate()
    with pytest.raises(ValueError, match=r"mesh\.size_min"):
        MeshOptions(size=0.1, size_min=0.5).validate()
    with pytest.raises(ValueError, match=r"mesh\.quality_warn"):
        MeshOptions(quality_warn=2).validate()
    for bad in (-1, 1.5, True):
        with pytest.raises(ValueError, match=r"mesh\.mend_rounds"):
            MeshOptions(mend_rounds=bad).validate()
    with pytest.raises(ValueError, match=r"mesh\.same_phase_contacts"):
        MeshOptions(same_phase_contacts=1).validate()


def test_tangency_hints():
    from electrofem.mesh.geometry import _instances

    p = Particles(
        Box((20.0, 20.0), periodic=False), centers=[[5.0, 10.0], [9.0001, 10.0]], radii=[2.0, 2.0]
    )
    hints = _tangency_hints(p, _instances(p))
    assert any("particles 0 and 1" in h for h in hints)
    p = Particles(Box((20.0, 20.0), periodic=False), centers=[[5.0, 2.0005]], radii=[2.0])
    assert any("bottom" in h for h in _tangency_hints(p, _instances(p)))


# --- 2D ----------------------------------------------------------------------------------------
def test_two_disks_closed_form(session):
    r1, r2, d = 3.0, 2.0, 4.0
    rep = build_geometry(two_disks())
    x = radical_x(r1, r2, d)
    a = math.sqrt(r1 * r1 - x * x)
    assert rel(rep.interface_areas[tags.interface_tag(2, 2)], 2 * a) < REL
    solid1 = math.pi * r1**2 - segment_area(r1, x)
    solid2 = math.pi * r2**2 - segment_area(r2, d - x)
    assert rel(rep.phase_volumes[tags.ACTIVE], solid1 + solid2) < REL
    assert rel(rep.phase_volumes[tags.ELECTROLYTE], 400.0 - solid1 - solid2) < REL
    arcs = 2 * math.pi * r1 - 2 * r1 * math.acos(x / r1)
    arcs += 2 * math.pi * r2 - 2 * r2 * math.acos((d - x) / r2)
    assert rel(rep.interface_areas[112], arcs) < REL
    for t in (tags.BOTTOM, tags.TOP, tags.LEFT, tags.RIGHT):
        assert rel(rep.boundary_areas[t], 20.0) < REL
    # each particle is one volume; the groups carry the documented names
    assert rep.n_volumes == 3
    assert gmsh.model.getPhysicalName(2, tags.ACTIVE) == "active"
    assert gmsh.model.getPhysicalName(1, 122) == "active|active"
    assert gmsh.model.getPhysicalName(1, tags.BOTTOM) == "bottom"
    assert all(len(g) == 1 for g in facet_groups().values())
    json.dumps(dataclasses.asdict(rep))


def test_periodic_disk_across_left_face(session):
    r, cx = 3.0, 1.0
    p = Particles(Box((20.0, 20.0), periodic=True), centers=[[cx, 10.0]], radii=[r])
    rep = build_geometry(p)
    assert rel(rep.phase_volumes[tags.ACTIVE], math.pi * r * r) < REL
    assert len(gmsh.model.getEntitiesForPhysicalGroup(2, tags.ACTIVE)) == 2
    assert rel(rep.boundary_areas[tags.LEFT], 20.0) < REL
    assert rel(rep.boundary_areas[tags.RIGHT], 20.0) < REL
    # the chord of the disk lies on both lateral faces, in both tagged groups
    chord = 2 * math.sqrt(r * r - cx * cx)
    for t in (tags.LEFT, tags.RIGHT):
        solid = 0.0
        for c in gmsh.model.getEntitiesForPhysicalGroup(1, t):
            up, _ = gmsh.model.getAdjacencies(1, int(c))
            if set(up) & set(gmsh.model.getEntitiesForPhysicalGroup(2, tags.ACTIVE)):
                solid += gmsh.model.occ.getMass(1, int(c))
        assert rel(solid, chord) < REL
    assert rel(rep.interface_areas[112], 2 * math.pi * r) < REL
    assert all(len(g) == 1 for g in facet_groups().values())


def test_empty_box(session):
    p = Particles(Box((10.0, 5.0), periodic=True), centers=np.zeros((0, 2)), radii=[])
    rep, stats = build_and_mesh(p, MeshOptions(size=1.0))
    assert rep.phase_volumes == {tags.ELECTROLYTE: pytest.approx(50.0)}
    assert rep.interface_areas == {}
    assert stats.n_cells > 0 and stats.min_quality > 0.5


def test_mesh_2d_converges_and_is_deterministic(session):
    p = two_disks()
    r1, r2, d = 3.0, 2.0, 4.0
    x = radical_x(r1, r2, d)
    exact = math.pi * r1**2 - segment_area(r1, x) + math.pi * r2**2 - segment_area(r2, d - x)
    errors, counts = [], []
    for size in (1.0, 0.5, 0.5):
        # radius_factor large: the surface size is `size` itself
        opts = MeshOptions(size=size, radius_factor=10.0, neck_factor=10.0)
        rep, stats = build_and_mesh(p, opts)
        vols = mesh_phase_volumes()
        assert vols[tags.ELECTROLYTE] + vols[tags.ACTIVE] == pytest.approx(400.0, rel=1e-9)
        errors.append(abs(vols[tags.ACTIVE] - exact) / exact)
        counts.append((stats.n_nodes, stats.n_cells))
        assert stats.min_quality > 0.3
    assert errors[1] < 0.4 * errors[0]  # second order: ~1/4
    assert counts[1] == counts[2]  # same input, same mesh
    assert errors[1] == errors[2]


def neck_element_lengths():
    """Lengths of the mesh segments on the contact (122) curves."""
    out = []
    for c in gmsh.model.getEntitiesForPhysicalGroup(1, 122):
        _, _, nodes = gmsh.model.mesh.getElements(1, int(c))
        for n in nodes[0].reshape(-1, 2):
            a, b = (np.array(gmsh.model.mesh.getNode(int(k))[0]) for k in n)
            out.append(np.linalg.norm(a - b))
    return np.array(out)


def test_neck_refinement(session):
    p = two_disks()
    x = radical_x(3.0, 2.0, 4.0)
    a = math.sqrt(9 - x * x)
    coarse = build_and_mesh(p, MeshOptions(size=1.0, radius_factor=10, neck_factor=10))[1]
    lengths_coarse = neck_element_lengths()
    fine = build_and_mesh(p, MeshOptions(size=1.0, radius_factor=10, neck_factor=0.1))[1]
    lengths = neck_element_lengths()
    assert fine.n_cells > coarse.n_cells
    # the segments at the ends of the contact (the neck) have size ~ neck_factor * a
    assert lengths.min() < 1.5 * 0.1 * a < 0.5 * lengths_coarse.min()
    assert lengths.sum() == pytest.approx(2 * a, rel=1e-9)


def test_wall_clipping_and_contained_particle(session, caplog):
    r, cx = 3.0, 1.0
    # non-periodic: the disk is clipped by the left wall; the small disk inside it is ignored
    p = Particles(
        Box((20.0, 20.0), periodic=False),
        centers=[[cx, 10.0], [1.5, 10.5], [40.0, 10.0]],
        radii=[r, 1.0, 2.0],
    )
    with caplog.at_level(logging.WARNING, logger="electrofem.mesh"):
        rep = build_geometry(p)
    assert "particle 1 lies inside particle 0" in caplog.text
    assert rel(rep.phase_volumes[tags.ACTIVE], math.pi * r * r - segment_area(r, cx)) < REL
    assert rel(rep.boundary_areas[tags.LEFT], 20.0) < REL
    assert rep.n_volumes == 2


def test_mesh_needs_build(session):
    with pytest.raises(RuntimeError, match="build_geometry"):
        mesh_geometry(MeshOptions(), two_disks())


def test_mesh_rejects_other_particles(session):
    build_geometry(two_disks())
    other = Particles(Box((20.0, 20.0), periodic=False), centers=[[8.0, 10.0]], radii=[3.0])
    with pytest.raises(RuntimeError, match="not the ones"):
        mesh_geometry(MeshOptions(), other)


# --- 3D ----------------------------------------------------------------------------------------
def test_two_spheres_closed_form(session):
    r1, r2, d = 3.0, 2.0, 4.0
    p = Particles(
        Box((12.0, 10.0, 10.0), periodic=False),
        centers=[[4.0, 5.0, 5.0], [8.0, 5.0, 5.0]],
        radii=[r1, r2],
    )
    rep = build_geometry(p)
    x = radical_x(r1, r2, d)
    a2 = r1 * r1 - x * x
    assert rel(rep.interface_areas[122], math.pi * a2) < REL
    h1, h2 = r1 - x, r2 - (d - x)
    solid = 4 / 3 * math.pi * (r1**3 + r2**3) - cap_volume(r1, h1) - cap_volume(r2, h2)
    assert rel(rep.phase_volumes[tags.ACTIVE], solid) < REL
    assert rel(rep.phase_volumes[tags.ELECTROLYTE], 1200.0 - solid) < REL
    surface = 4 * math.pi * (r1**2 + r2**2) - 2 * math.pi * (r1 * h1 + r2 * h2)
    assert rel(rep.interface_areas[112], surface) < REL
    assert set(rep.boundary_areas) == {11, 12, 13, 14, 15, 16}
    assert all(len(g) == 1 for g in facet_groups().values())


def test_core_shell_sphere(session):
    r, t = 3.0, 0.5
    # a SECOND (support) core with an ACTIVE coating: core|shell = 123, shell|electrolyte = 112
    p = Particles(
        Box((10.0, 10.0, 10.0), periodic=False),
        centers=[[5.0, 5.0, 5.0]],
        radii=[r],
        phase=[tags.SECOND],
        shell_thickness=[t],
        shell_phase=[tags.ACTIVE],
    )
    rep = build_geometry(p)
    assert rel(rep.interface_areas[123], 4 * math.pi * (r - t) ** 2) < REL
    assert rel(rep.interface_areas[112], 4 * math.pi * r**2) < REL
    assert rel(rep.phase_volumes[tags.SECOND], 4 / 3 * math.pi * (r - t) ** 3) < REL
    assert rel(rep.phase_volumes[tags.ACTIVE], 4 / 3 * math.pi * (r**3 - (r - t) ** 3)) < REL
    assert gmsh.model.getPhysicalName(2, 123) == "active|second"
    assert all(len(g) == 1 for g in facet_groups().values())


def test_sphere_cut_by_bottom(session):
    r, zc = 2.0, 1.5  # 0.5 µm below z = 0
    p = Particles(Box((10.0, 10.0, 10.0), periodic=False), centers=[[5.0, 5.0, zc]], radii=[r])
    rep = build_geometry(p)
    assert rel(rep.phase_volumes[tags.ACTIVE], 4 / 3 * math.pi * r**3 - cap_volume(r, r - zc)) < REL
    assert rel(rep.boundary_areas[tags.BOTTOM], 100.0) < REL
    active = set(gmsh.model.getEntitiesForPhysicalGroup(3, tags.ACTIVE))
    cut = [
        s
        for s in gmsh.model.getEntitiesForPhysicalGroup(2, tags.BOTTOM)
        if set(gmsh.model.getAdjacencies(2, int(s))[0]) & active
    ]
    assert len(cut) == 1
    assert rel(gmsh.model.occ.getMass(2, int(cut[0])), math.pi * (r * r - zc * zc)) < REL
    assert all(len(g) == 1 for g in facet_groups().values())


def test_periodic_3d_scene_groups_and_mesh(session, caplog):
    """Contacts across a periodic corner, a wall cut and a core-shell particle; every facet in
    one group; meshing is deterministic and its volumes match the geometry."""
    box = Box((8.0, 8.0, 8.0), periodic=True)
    p = Particles(
        box,
        centers=[[0.5, 0.6, 4.0], [3.9, 0.8, 4.2], [5.0, 5.0, 1.2], [6.0, 5.5, 4.3]],
        radii=[1.8, 1.7, 1.5, 1.9],
        shell_thickness=[0.0, 0.0, 0.0, 0.4],
    )
    rep = build_geometry(p)
    assert tags.interface_tag(2, 2) in rep.interface_areas  # 0|1 contact
    assert tags.interface_tag(1, 3) in rep.interface_areas  # shell surface
    assert tags.interface_tag(2, 3) in rep.interface_areas  # core|shell
    # OCC's volume integration is good to ~1e-9 and depends on where the sphere seams lie
    assert sum(rep.phase_volumes.values()) == pytest.approx(box.volume, rel=1e-8)
    groups = facet_groups()
    assert all(len(g) == 1 for g in groups.values()), groups
    # the particle at the corner x=y=0 has four pieces
    assert rep.n_volumes >= 4 + 3 + 2 + 1
    opts = MeshOptions(size=1.0)
    with caplog.at_level(logging.INFO, logger="electrofem.mesh"):
        s1 = mesh_geometry(opts, p)
    vols = mesh_phase_volumes()
    for phase, v in rep.phase_volumes.items():
        assert vols[phase] == pytest.approx(v, rel=0.03)
    assert s1.min_quality > 0.0 and 0.3 < s1.mean_quality <= 1.0
    nodes1 = gmsh.model.mesh.getNodes()[1].copy()
    s2 = mesh_geometry(opts, p)
    assert (s2.n_nodes, s2.n_cells) == (s1.n_nodes, s1.n_cells)
    assert np.array_equal(gmsh.model.mesh.getNodes()[1], nodes1)
    build_geometry(p)  # rebuilt from scratch: same mesh again
    s3 = mesh_geometry(opts, p)
    assert (s3.n_nodes, s3.n_cells) == (s1.n_nodes, s1.n_cells)


def test_mesh_3d_converges(session):
    r = 2.0
    p = Particles(Box((6.0, 6.0, 6.0), periodic=False), centers=[[3.0, 3.0, 3.0]], radii=[r])
    exact = 4 / 3 * math.pi * r**3
    errors = []
    for size in (1.0, 0.5):
        build_and_mesh(p, MeshOptions(size=size, radius_factor=10, optimize=False))
        errors.append(abs(mesh_phase_volumes()[tags.ACTIVE] - exact) / exact)
    assert errors[1] < 0.4 * errors[0]


def _vertex_face_offsets(size):
    """Distance of every geometry vertex to its nearest face plane (0 for vertices on one)."""
    L = np.asarray(size)
    out = []
    for _, v in gmsh.model.getEntities(0):
        p = np.asarray(gmsh.model.getValue(0, v, []))
        out.append(float(np.min(np.minimum(np.abs(p), np.abs(L - p)))))
    return np.array(out)


def test_periodic_pack_has_no_vertex_next_to_a_face(session):
    """A laterally periodic 3D pack (r = 2.5 / 3.5 µm, porosity 0.40): no geometry vertex lies
    off a face plane by less than half the packing's clearance band (0.04 r_min = 0.1 µm).

    Such vertices were the start points OCC gives the contact circles that cross a face
    (at ``c +- rho D``, D from the plane normal only): on the 40 µm pack 116 of them sat
    0.0186 µm off a face, next to the circle's face crossing, and made its 8 cells of quality
    below 0.1. The packing now keeps them a band away (``ext/packing.pyx``,
    ``_circle_face``)."""
    from electrofem.microstructure import Electrode, Fixed, Layer, Population, generate

    pops = (
        Population(Fixed(2.5), volume_fraction=0.4),
        Population(Fixed(3.5), volume_fraction=0.6),
    )
    spec = Electrode(Box((20.0, 20.0, 20.0)), (Layer(1.0, 0.40, pops),), seed=3)
    p = generate(spec)
    assert p.box.periodic
    build_geometry(p)
    off = _vertex_face_offsets(p.box.size)
    near = off[(off > 1e-7) & (off < 0.05)]
    assert near.size == 0, np.sort(near)[:10]


def test_close_vertices_are_refined_around(session, caplog):
    """Two spheres whose neck crosses the wall x = 0 a few nm from the point where OCC starts
    the wall's circle (its default x direction for the normal -x: straight down, -z): two
    geometry vertices that close force a mesh edge that short. Refining to ``size_min``
    around them keeps the tetrahedra shaped (0.015 at 3 nm and 0.049 at 10 nm without it)."""
    from scipy.optimize import brentq

    ca, r = np.array([0.5, 5.0, 5.0]), 2.0
    rho = math.sqrt(r * r - ca[0] ** 2)  # the wall circle
    for gap in (0.003, 0.01):
        start_side = np.array([0.0, 5.0 + gap, 5.0 - math.sqrt(rho * rho - gap * gap)])

        def offset(beta, s=start_side):  # the neck plane lies radical_x(r, r, 3) = 1.5 out
            return np.dot([0.0, math.sin(beta), -math.cos(beta)], s - ca) - radical_x(r, r, 3)

        beta = brentq(offset, 0.01, 1.5)
        cb = ca + 3.0 * np.array([0.0, math.sin(beta), -math.cos(beta)])
        p = Particles(Box((10.0, 10.0, 10.0), periodic=False), [ca, cb], [r, r])
        build_geometry(p)
        points = [gmsh.model.getValue(0, t, []) for _, t in gmsh.model.getEntities(0)]
        nearest = min(
            np.linalg.norm(np.subtract(a, b)) for i, a in enumerate(points) for b in points[:i]
        )
        assert nearest == pytest.approx(gap, rel=0.05)  # the close pair is there
        with caplog.at_level(logging.INFO, logger="electrofem.mesh"):
            stats = mesh_geometry(MeshOptions(size=1.0), p)
        assert "geometry vertices closer than" in caplog.text
        assert stats.min_quality > 0.1, (gap, stats.min_quality)


def test_close_curves_are_refined_where_they_pass(session, caplog):
    """Two particles behind the wall y = 0 whose circles on the wall pass 5 nm apart, with no
    geometry vertex near: the narrow strip between the circles forces the wall's triangles
    flat (minimum quality 0.085 without the refinement). A Ball field of ``size_min`` where
    the curves pass keeps the tetrahedra shaped."""
    r_a, r_b, depth, gap = 5.65, 2.25, 0.3, 0.005
    a_a, a_b = math.sqrt(r_a**2 - depth**2), math.sqrt(r_b**2 - depth**2)  # the wall circles
    ca = np.array([8.0, -depth, 8.0])
    cb = ca + np.array([a_a + a_b + gap, 0.0, 0.0])
    p = Particles(Box((20.0, 20.0, 20.0), periodic=False), [ca, cb], [r_a, r_b])
    build_geometry(p)
    with caplog.at_level(logging.INFO, logger="electrofem.mesh"):
        stats = mesh_geometry(MeshOptions(size=1.0), p)
    assert "1 places where two curves pass closer than" in caplog.text
    assert stats.min_quality > 0.15, stats.min_quality


def test_an_occ_mesh_below_the_quality_goal_is_meshed_again(session, caplog, poor_occ_pack):
    """The OCC route's first mesh of ``poor_occ_pack`` has a cell of 0.094, below
    ``quality_warn``: the mesh is made again on the same geometry, with the sizes refined
    around its cells below 0.2 (``MeshOptions.mend_rounds``), and the minimum rises to ~0.23."""
    p, size = poor_occ_pack
    with caplog.at_level("INFO", logger="electrofem.mesh"):
        report, stats = build_and_mesh(p, MeshOptions(size=size, geometry_route="occ"))
    first = [r.getMessage() for r in caplog.records if "meshing again" in r.getMessage()]
    assert len(first) == 1, first
    assert float(first[0].split()[3]) < 0.1  # the first mesh's minimum: measured 0.0941
    assert stats.min_quality > 0.15  # measured 0.231
    assert stats.seconds_split["mend"] > 0
    assert sum(report.phase_volumes.values()) == pytest.approx(p.box.volume, rel=1e-6)
