"""The discrete route (electrofem.mesh.union, electrofem.mesh.discrete): the packing's surface
triangulated directly, against closed forms, the OCC route and its own topology rules."""

import dataclasses
import math

import gmsh
import numpy as np
import pytest

from electrofem import tags
from electrofem.mesh.discrete import regions
from electrofem.mesh.geometry import MeshOptions, build_and_mesh
from electrofem.mesh.plan import _plan
from electrofem.mesh.union import UnionSurface
from electrofem.microstructure import Electrode, Layer, LogNormal, Population, generate
from electrofem.microstructure.particles import Box, Particles

DISCRETE = MeshOptions(size=1.0, geometry_route="discrete")


def cap_volume(r, h):
    return math.pi * h * h * (3 * r - h) / 3


def surface_of(p, size=1.0):
    s = UnionSurface(_plan(p, quiet=True), p.box.size, None, size)
    return s, s.build()


def closed_edges(tri) -> bool:
    e = np.sort(np.concatenate([tri[:, [0, 1]], tri[:, [1, 2]], tri[:, [2, 0]]]), axis=1)
    return bool(np.all(np.unique(e, axis=0, return_counts=True)[1] == 2))


def test_surface_is_closed_and_its_nodes_are_on_the_exact_geometry():
    """Two overlapping spheres, one cut by the bottom face, one floating sphere: the pore and
    solid boundaries are each closed, every sphere node lies on its sphere, every
    face node on its plane (1e-10 µm), and the triple points are shared."""
    p = Particles(
        Box((10.0, 10.0, 10.0), periodic=False),
        centers=[[4.0, 5.0, 1.5], [6.5, 5.0, 2.5], [5.0, 5.0, 7.5]],
        radii=[2.0, 1.5, 1.2],
    )
    s, x = surface_of(p, size=0.8)
    kinds = ("sphere", "pore", "solid")
    by_kind = {k: [t for kind, _, t, _ in s.pieces if kind == k] for k in kinds}
    sphere = np.concatenate(by_kind["sphere"])
    assert closed_edges(np.concatenate([sphere, *by_kind["pore"]]))
    assert closed_edges(np.concatenate([sphere, *by_kind["solid"]]))
    for kind, owner, tri, _ in s.pieces:
        pts = x[np.unique(tri)]
        if kind == "sphere":
            d = np.linalg.norm(pts - s.c[owner], axis=1) - s.r[owner]
            assert np.max(np.abs(d)) < 1e-10
        elif len(tri):
            ax, side = divmod(owner, 2)
            assert np.max(np.abs(pts[:, ax] - side * 10.0)) < 1e-12
    # the bottom face's solid part is the regular polygon inscribed in the circle of radius
    # sqrt(r^2 - zc^2), with the circle's segments
    solid = [t for kind, owner, t, _ in s.pieces if kind == "solid" and owner == 4][0]
    a, b, c = x[solid[:, 0]], x[solid[:, 1]], x[solid[:, 2]]
    area = np.linalg.norm(np.cross(b - a, c - a), axis=1).sum() / 2
    (loop,) = s.arcs[(0, s.n + 4)]
    n = len(loop) - 1
    assert n >= 12
    assert area == pytest.approx(n / 2 * (4.0 - 1.5**2) * math.sin(2 * math.pi / n), rel=1e-12)


def test_pore_volume_converges_at_second_order(session):
    """One sphere in a box: the straight facets lose volume as h^2 (observed order -> 2)."""
    r = 3.0
    p = Particles(Box((10.0, 10.0, 10.0), periodic=False), [[5.0, 5.0, 5.0]], [r])
    exact = 4 / 3 * math.pi * r**3
    errors = []
    for h in (1.0, 0.5, 0.25):
        options = MeshOptions(size=h, radius_factor=h / r, geometry_route="discrete")
        rep, stats = build_and_mesh(p, options)
        assert stats.min_quality > 0.2
        errors.append(abs(rep.phase_volumes[tags.ACTIVE] - exact) / exact)
        assert rep.phase_volumes[tags.ELECTROLYTE] + rep.phase_volumes[tags.ACTIVE] == (
            pytest.approx(1000.0, rel=1e-12)
        )
    orders = np.log2(np.array(errors[:-1]) / np.array(errors[1:]))
    assert errors[-1] < 2e-3
    assert orders[0] > 1.5 and orders[-1] > 1.8, (errors, orders)  # 1.68, 1.99


def test_groups_and_volumes_match_the_occ_route(session):
    """With ``same_phase_contacts``, the same physical groups as the OCC route, with the
    active|active contact facets (every particle its own region), and phase volumes and
    areas within the facet error of the exact ones; without, the same but those facets."""
    r1, r2, d = 3.0, 2.0, 4.0
    p = Particles(
        Box((12.0, 10.0, 10.0), periodic=False),
        centers=[[4.0, 5.0, 5.0], [8.0, 5.0, 5.0]],
        radii=[r1, r2],
    )
    options = MeshOptions(size=0.5, geometry_route="discrete", same_phase_contacts=True)
    rep, _ = build_and_mesh(p, options)
    x = (d * d + r1 * r1 - r2 * r2) / (2 * d)
    h1, h2 = r1 - x, r2 - (d - x)
    solid = 4 / 3 * math.pi * (r1**3 + r2**3) - cap_volume(r1, h1) - cap_volume(r2, h2)
    surface = 4 * math.pi * (r1**2 + r2**2) - 2 * math.pi * (r1 * h1 + r2 * h2)
    # the facets are inscribed: a little less volume and area, by ~h^2 / (8 r) (~1 %)
    assert 0.985 * solid < rep.phase_volumes[tags.ACTIVE] < solid
    assert 0.985 * surface < rep.interface_areas[112] < surface
    # the contact disk, its circle divided in chords (7-12 a circle: a few % low)
    contact = math.pi * (r1 * r1 - x * x)
    assert set(rep.interface_areas) == {112, 122}
    assert 0.95 * contact < rep.interface_areas[122] < contact
    assert set(rep.boundary_areas) == {11, 12, 13, 14, 15, 16}
    groups = {(dim, tag) for dim, tag in gmsh.model.getPhysicalGroups()}
    assert groups == {(3, 1), (3, 2), (2, 112), (2, 122)} | {(2, t) for t in range(11, 17)}
    assert len(gmsh.model.getEntitiesForPhysicalGroup(3, tags.ACTIVE)) == 2  # a region each
    plain, _ = build_and_mesh(p, dataclasses.replace(options, same_phase_contacts=False))
    assert set(plain.interface_areas) == {112}
    assert len(gmsh.model.getEntitiesForPhysicalGroup(3, tags.ACTIVE)) == 1  # the cluster
    assert plain.phase_volumes[tags.ACTIVE] == pytest.approx(rep.phase_volumes[tags.ACTIVE], 1e-3)


def test_a_floating_sphere_under_a_sealing_layer_and_a_pore_pocket(session, caplog):
    """Regions the OCC glue cannot place: a layer of spheres seals the box (two pore regions
    reach the box) and a sphere floats below it; eight spheres at a cube's corners close a pore
    pocket. Each region is meshed once: the cells fill the box (checked by build_and_mesh)
    and the solid volume is the OCC fragment's to the facet error."""
    layer = [[x, y, 15.0] for x in (1.0, 5.0, 9.0) for y in (1.0, 5.0, 9.0)]
    a = 1.8  # half the cube's side; a sqrt(2) < r < a sqrt(3) closes the pocket
    cube = [[5.0 + sx, 5.0 + sy, 25.0 + sz] for sx in (-a, a) for sy in (-a, a) for sz in (-a, a)]
    p = Particles(
        Box((10.0, 10.0, 32.0), periodic=False),
        layer + [[5.0, 5.0, 5.0]] + cube,
        [3.2] * 9 + [2.0] + [2.8] * 8,
    )
    s, x = surface_of(p)
    _, volumes = regions(x, s.pieces)
    pore = [shells for phase, shells in volumes if phase == 0]
    assert len(pore) == 3  # below the layer (with the floating sphere), above it, the pocket
    assert sorted(len(shells) for shells in pore) == [1, 2, 2]  # the pocket's cluster is a hole
    rep, _ = build_and_mesh(p, MeshOptions(size=1.0, geometry_route="discrete"))
    ref, _ = build_and_mesh(p, MeshOptions(size=1.0, geometry_route="fragment"))
    solid = ref.phase_volumes[tags.ACTIVE]  # exact (OCC)
    assert 0.98 * solid < rep.phase_volumes[tags.ACTIVE] < solid  # inscribed facets
    # with the one-phase contact faces: the layer's grid is exactly symmetric (four radical
    # planes through one line), where they are not made; the route leaves them out, says so
    # and meshes the same regions
    options = MeshOptions(size=1.0, geometry_route="discrete", same_phase_contacts=True)
    with caplog.at_level("WARNING", logger="electrofem.mesh"):
        again, _ = build_and_mesh(p, options)
    assert "could not be made" in caplog.text
    assert again.phase_volumes == pytest.approx(rep.phase_volumes, rel=1e-12)


def test_a_periodic_pack_is_closed_across_its_lateral_faces(session):
    """Images of particles that cross the lateral faces of a periodic box (a packing)."""
    pops = (Population(LogNormal(2.5, 0.3)),)
    spec = Electrode(Box((14.0, 14.0, 14.0), periodic=True), (Layer(1.0, 0.5, pops),), seed=2)
    p = generate(spec)
    rep, stats = build_and_mesh(p, MeshOptions(size=1.0, geometry_route="discrete"))
    ref, _ = build_and_mesh(p, MeshOptions(size=1.0))
    assert stats.min_quality > 0.1
    total = rep.phase_volumes[tags.ELECTROLYTE] + rep.phase_volumes[tags.ACTIVE]
    assert total == pytest.approx(14.0**3, rel=1e-12)
    solid = ref.phase_volumes[tags.ACTIVE]
    assert 0.98 * solid < rep.phase_volumes[tags.ACTIVE] < solid


@pytest.mark.parametrize(
    "kwargs, options, match",
    [
        ({"shell_thickness": [0.5, 0.5], "shell_phase": [3, 3]}, {}, "core-shell"),
    ],
)
def test_what_the_route_cannot_do_is_refused_by_name(session, kwargs, options, match):
    p = Particles(Box((10.0, 10.0, 10.0), periodic=False), [[3, 5, 5], [7, 5, 5]], [2, 2], **kwargs)
    with pytest.raises(ValueError, match=f"geometry_route = 'discrete'.*{match}"):
        build_and_mesh(p, MeshOptions(geometry_route="discrete", **options))


def test_curved_cells_have_their_midpoints_on_the_spheres_and_circles(session):
    """``order = 2``: every surface midpoint of a sphere patch is on its sphere, every one on
    a neck or a face circle on both surfaces (1e-9 µm), but those pulled back to keep a cell
    valid; no cell is inverted (gmsh's bound minDetJac > 0); the solid volume through the
    quadratic cells is within 1e-4 of the exact one (measured -1.6e-5), where the straight
    cells lose 1.1 %."""
    r1, r2, d, r3, z3 = 3.0, 2.0, 4.0, 1.8, 1.0
    p = Particles(
        Box((12.0, 10.0, 10.0), periodic=False),
        centers=[[4.0, 5.0, 5.5], [8.0, 5.0, 5.5], [6.0, 5.0, z3]],
        radii=[r1, r2, r3],
    )
    x = (d * d + r1 * r1 - r2 * r2) / (2 * d)
    exact = (
        4 / 3 * math.pi * (r1**3 + r2**3 + r3**3)
        - cap_volume(r1, r1 - x)
        - cap_volume(r2, r2 - (d - x))
        - cap_volume(r3, r3 - z3)
    )
    straight, _ = build_and_mesh(p, MeshOptions(size=0.6, geometry_route="discrete"))
    assert -0.02 < straight.phase_volumes[tags.ACTIVE] / exact - 1 < -0.005
    rep, stats = build_and_mesh(p, MeshOptions(size=0.6, order=2, geometry_route="discrete"))
    _, etags, enodes = gmsh.model.mesh.getElements(3)
    assert np.min(gmsh.model.mesh.getElementQualities(etags[0], "minDetJac")) > 0
    ids, coords, _ = gmsh.model.mesh.getNodes()
    xyz = np.zeros((int(ids.max()) + 1, 3))
    xyz[ids.astype(np.int64)] = np.asarray(coords).reshape(-1, 3)
    tets = np.asarray(enodes[0], np.int64).reshape(-1, 10)
    uvw, weights = gmsh.model.mesh.getIntegrationPoints(11, "Gauss4")

    def volume(group):
        total = 0.0
        for v in gmsh.model.getEntitiesForPhysicalGroup(3, group):
            det = gmsh.model.mesh.getJacobians(11, uvw, tag=v)[1].reshape(-1, len(weights))
            total += float((det @ weights).sum())
        return total

    solid = volume(tags.ACTIVE)
    assert solid + volume(tags.ELECTROLYTE) == pytest.approx(1200.0, rel=1e-10)
    assert abs(solid / exact - 1) < 1e-4, solid / exact - 1
    centres = np.array([[4.0, 5.0, 5.5], [8.0, 5.0, 5.5], [6.0, 5.0, z3]])
    mids, on = [], []
    for k in gmsh.model.getEntitiesForPhysicalGroup(2, 112):
        _, tri = gmsh.model.mesh.getElementsByType(9, k)
        m = np.unique(np.asarray(tri, np.int64).reshape(-1, 6)[:, 3:])
        dist = np.abs(np.linalg.norm(xyz[m][:, None] - centres, axis=2) - [r1, r2, r3])
        mids.append(m)
        on.append((dist < 1e-9).sum(axis=1))
    on = np.concatenate(on)
    off = np.count_nonzero(on == 0)
    assert off <= stats.straightened_cells and off < 0.01 * len(on), (off, len(on))
    # the neck: on both spheres; the face circle: on the sphere and the plane z = 0
    neck = np.concatenate(mids)[on == 2]
    assert len(neck) >= 12 and np.allclose(xyz[neck, 0], 4.0 + x, atol=1e-9)
    face = np.concatenate(mids)[on == 1]
    assert np.count_nonzero(np.abs(xyz[face, 2]) < 1e-12) >= 12
    assert tets.shape[0] == stats.n_cells


def test_a_2d_box_is_refused(session):
    p = Particles(Box((10.0, 10.0), periodic=False), [[5, 5]], [2])
    with pytest.raises(ValueError, match="3D only"):
        build_and_mesh(p, DISCRETE)
    with pytest.raises(ValueError, match="electrolyte_only.*3D only"):
        build_and_mesh(p, MeshOptions(electrolyte_only=True))


def test_electrolyte_only_is_refused_where_it_cannot_be_made(session):
    """Only the discrete route meshes the pore alone; the OCC routes refuse the option, and
    two solid phases are refused by name."""
    for route in ("occ", "fragment"):
        with pytest.raises(ValueError, match="electrolyte_only.*discrete"):
            MeshOptions(geometry_route=route, electrolyte_only=True).validate()
    with pytest.raises(ValueError, match="electrolyte_only: must be true or false"):
        MeshOptions(electrolyte_only=1).validate()
    p = Particles(
        Box((10.0, 10.0, 10.0), periodic=False),
        [[3, 5, 5], [7, 5, 5]],
        [2, 2],
        phase=[tags.ACTIVE, tags.BINDER],
    )
    with pytest.raises(ValueError, match="electrolyte_only.*one phase"):
        build_and_mesh(p, MeshOptions(electrolyte_only=True))


@pytest.mark.parametrize("gap", [0.005, 0.05])
def test_two_face_circles_passing_close_leave_the_surface_closed(session, gap):
    """Two particles behind the wall y = 0 whose circles on the wall pass ``gap`` apart: a
    thin face triangle next to the pair of arcs has its centroid on the wrong side of one of
    them; the pieces the arc chords separate are classified as a whole (union.vote)."""
    r_a, r_b, depth = 5.65, 2.25, 0.3
    a_a, a_b = math.sqrt(r_a**2 - depth**2), math.sqrt(r_b**2 - depth**2)
    ca = np.array([8.0, -depth, 8.0])
    p = Particles(
        Box((20.0, 20.0, 20.0), periodic=False),
        [ca, ca + np.array([a_a + a_b + gap, 0.0, 0.0])],
        [r_a, r_b],
    )
    s, x = surface_of(p, size=1.0)
    sphere = np.concatenate([t for kind, _, t, _ in s.pieces if kind == "sphere"])
    for side in ("pore", "solid"):
        assert closed_edges(np.concatenate([sphere, *[t for k, _, t, _ in s.pieces if k == side]]))
    _, stats = build_and_mesh(p, MeshOptions(size=1.0, geometry_route="discrete"))
    assert stats.min_quality > 0.1


def test_auto_takes_the_discrete_route_for_large_packings(session, monkeypatch, caplog):
    """``geometry_route = "auto"``: the discrete route from AUTO_DISCRETE_PARTICLES particles
    on (when it can mesh them, two phases too), OCC below it and when ``"occ"`` is asked."""
    import json
    import logging

    from electrofem.mesh import build as build_module
    from electrofem.mesh.occ import ATTRIBUTE

    def route(p, name="auto"):
        build_and_mesh(p, MeshOptions(size=1.5, geometry_route=name))
        return json.loads(gmsh.model.getAttribute(ATTRIBUTE)[0])["route"]

    box = Box((10.0, 10.0, 10.0), periodic=False)
    one = Particles(box, [[3, 5, 5], [6.5, 5, 5]], [2, 2])
    two = Particles(box, [[3, 5, 5], [6.5, 5, 5]], [2, 2], phase=[tags.ACTIVE, tags.BINDER])
    assert route(one) == "glue"  # 2 particles < 1000
    monkeypatch.setattr(build_module, "AUTO_DISCRETE_PARTICLES", 2)
    with caplog.at_level(logging.INFO, logger="electrofem.mesh"):
        assert route(one) == "discrete"
    assert "the discrete route" in caplog.text
    assert route(one, "occ") == "glue"
    assert route(two) == "discrete"  # two phases: contact faces between them


def test_auto_falls_back_to_occ_when_the_discrete_route_fails(session, monkeypatch, caplog):
    """A failure of the discrete route that ``"auto"`` chose (a surface that does not close,
    HXT failing) meshes by OCC with a warning; asked for by name, it raises."""
    import json
    import logging

    from electrofem.mesh import build as build_module
    from electrofem.mesh.occ import ATTRIBUTE
    from electrofem.mesh.union import SurfaceError

    def fail(*args, **kwargs):
        raise SurfaceError("discrete surface: 3 arc chords stay out of the triangulation")

    monkeypatch.setattr(build_module, "AUTO_DISCRETE_PARTICLES", 2)
    monkeypatch.setattr(build_module, "build_and_mesh_discrete", fail)
    p = Particles(Box((10.0, 10.0, 10.0), periodic=False), [[3, 5, 5], [6.5, 5, 5]], [2, 2])
    with caplog.at_level(logging.WARNING, logger="electrofem.mesh"):
        _, stats = build_and_mesh(p, MeshOptions(size=1.5))
    assert "meshing by OCC instead" in caplog.text and stats.n_cells > 1000
    assert json.loads(gmsh.model.getAttribute(ATTRIBUTE)[0])["route"] == "glue"
    with pytest.raises(SurfaceError, match="arc chords"):
        build_and_mesh(p, MeshOptions(size=1.5, geometry_route="discrete"))


def test_a_pore_its_cells_do_not_fill_is_reported(caplog):
    """The check behind the coarse-mesh warning (BENCHMARKS.md, issue 14 eighth part: at
    h = 4 µm on the τ pack the pore's cells fill 3.9e-5 of the box less than its triangles
    enclose): silent when the cells fill the enclosed volume, a warning naming the gap
    otherwise."""
    from electrofem.mesh.discrete import _check_embedded, _enclosed
    from electrofem.mesh.options import GeometryReport

    x = np.array([[0.0, 0, 0], [1, 0, 0], [0, 1, 0], [0, 0, 1]])
    tri = np.array([[0, 2, 1], [0, 1, 3], [0, 3, 2], [1, 2, 3]])  # outward
    enclosed = _enclosed(x, [("pore", 0, tri)], [(0, [[0]])])
    assert enclosed == pytest.approx(1 / 6, rel=1e-14)
    for filled, warned in ((1 / 6, False), (1 / 6 - 1e-3, True)):
        caplog.clear()
        report = GeometryReport(n_volumes=1, phase_volumes={tags.ELECTROLYTE: filled})
        with caplog.at_level("WARNING", logger="electrofem.mesh"):
            _check_embedded(report, enclosed, box_volume=1.0)
        assert ("not embedded" in caplog.text) == warned, caplog.text
    assert "0.001 µm³ less" in caplog.text


def test_a_row_point_keeps_off_the_other_arc_at_a_box_edge(session):
    """A sphere crossing two side faces near their edge (periodic image): the arcs on the two
    faces meet at the edge with chords of 0.25 and 0.61 µm. A row point off the short
    chord was as near to the corner (long chord's guard) as to the short chord's end, and the
    nearest-point test read the short guard: it sat 0.01 µm off the long chord, and a cell
    of quality 0.038 formed there (OCC: 0.197). A row point now also keeps a quarter of a
    chord off every arc chord (union.OFF_CHORD). (bench_discrete_phases.py, seed 7.)"""
    pops = tuple(
        Population(LogNormal(m, 0.3), phase=p, volume_fraction=1 / 3)
        for m, p in ((2.4376432, tags.ACTIVE), (2.8458207, tags.SECOND), (2.6635285, tags.BINDER))
    )
    side = 15.351243139943552
    spec = Electrode(Box((side,) * 3, periodic=True), (Layer(1.0, 0.5090216, pops),), seed=7)
    p = generate(spec)
    _, stats = build_and_mesh(p, MeshOptions(size=1.124132067237757, geometry_route="discrete"))
    assert stats.min_quality > 0.15  # measured 0.201


def test_a_mesh_below_the_quality_goal_is_meshed_again_refined_around_its_poor_cells(
    session, caplog, poor_neck_pack
):
    """The first mesh of ``poor_neck_pack`` has a cell of 0.0975, below ``quality_warn``
    (0.1), with its four nodes on the surface where a neck is finer than the sizes around
    it. The route meshes again with the sizes refined around the cells below 0.2
    (``mend_rounds``), and the minimum rises to ~0.2."""
    p, size = poor_neck_pack
    options = MeshOptions(size=size, geometry_route="discrete", mend_rounds=0)
    _, first = build_and_mesh(p, options)
    assert first.min_quality < 0.1  # the case still needs the mend: measured 0.0975
    assert "mend" not in first.seconds_split
    with caplog.at_level("INFO", logger="electrofem.mesh"):
        report, mended = build_and_mesh(p, dataclasses.replace(options, mend_rounds=2))
    assert "meshing again with the sizes refined" in caplog.text
    assert mended.min_quality > 0.15  # measured 0.199
    assert mended.seconds_split["mend"] > 0
    assert first.n_cells < mended.n_cells < 1.2 * first.n_cells  # measured +9.6 %
    assert sum(report.phase_volumes.values()) == pytest.approx(p.box.volume, rel=1e-9)
