"""The glued 3D construction (electrofem.mesh.glue) against the box fragment.

The two routes must give the same geometry: the same phase volumes, interface and box-face
areas, and physical groups. The glued route's pore is a discrete volume made from the faces'
shells; closed pockets, floating clusters and a pore split in two are the cases where the
shells must be told apart, and the mesh must then fill the box exactly.
"""

import json
import logging
import math

import gmsh
import numpy as np
import pytest

from electrofem import tags
from electrofem.mesh.geometry import MeshOptions, build_geometry, mesh_geometry
from electrofem.mesh.occ import ATTRIBUTE
from electrofem.microstructure.particles import Box, Particles


def route_used() -> str:
    return json.loads(gmsh.model.getAttribute(ATTRIBUTE)[0])["route"]


def pore_entities() -> list[int]:
    return [int(v) for v in gmsh.model.getEntitiesForPhysicalGroup(3, tags.ELECTROLYTE)]


def solid_entities() -> list[int]:
    """Every volume that is not pore."""
    pore = pore_entities()
    return [v for _, v in gmsh.model.getEntities(3) if v not in pore]


def meshed_volume(entity: int) -> float:
    node_tags, coords, _ = gmsh.model.mesh.getNodes()
    xyz = np.zeros((int(node_tags.max()) + 1, 3))
    xyz[node_tags.astype(int)] = coords.reshape(-1, 3)
    _, _, nodes = gmsh.model.mesh.getElements(3, entity)
    p = xyz[np.concatenate(nodes).astype(int).reshape(-1, 4)]
    return float(np.abs(np.linalg.det(p[:, 1:] - p[:, :1])).sum() / 6)


def assert_same_report(a, b, rel=1e-8):
    assert a.phase_volumes.keys() == b.phase_volumes.keys()
    assert a.interface_areas.keys() == b.interface_areas.keys()
    assert a.boundary_areas.keys() == b.boundary_areas.keys()
    for name in ("phase_volumes", "interface_areas", "boundary_areas"):
        for k, v in getattr(a, name).items():
            assert v == pytest.approx(getattr(b, name)[k], rel=rel, abs=1e-9), (name, k)


def cage(box=20.0, d=4.0, r=3.5):
    """Six overlapping spheres at +-d on the axes around the box centre: a floating cluster
    that closes a pore pocket of radius d - r around the centre (no window: r > 0.816 d)."""
    c = np.full(3, box / 2)
    centers = [c + s * d * np.eye(3)[a] for a in range(3) for s in (-1, 1)]
    return centers, [r] * 6


def test_routes_agree_on_a_periodic_scene_with_shells_and_wall_cuts(session):
    """Periodic images, a core-shell particle and contacts across a corner: same report."""
    p = Particles(
        Box((8.0, 8.0, 8.0), periodic=True),
        centers=[[0.5, 0.6, 4.0], [3.9, 0.8, 4.2], [5.0, 5.0, 1.2], [6.0, 5.5, 4.3]],
        radii=[1.8, 1.7, 1.5, 1.9],
        shell_thickness=[0.0, 0.0, 0.0, 0.4],
    )
    glued = build_geometry(p)
    assert route_used() == "glue"
    fragmented = build_geometry(p, route="fragment")
    assert route_used() == "fragment"
    assert_same_report(glued, fragmented)


def test_routes_agree_on_a_generated_pack(session):
    from electrofem.microstructure import Electrode, Layer, LogNormal, Population, generate

    spec = Electrode(
        Box((24.0, 24.0, 24.0), periodic=False),
        (Layer(1.0, 0.45, (Population(LogNormal(3.0, 0.3)),)),),
        seed=4,
    )
    p = generate(spec)
    glued = build_geometry(p)
    assert route_used() == "glue"
    fragmented = build_geometry(p, route="fragment")
    assert_same_report(glued, fragmented)


def test_a_floating_cluster_and_its_closed_pocket_are_meshed(session):
    """The cage is a hole in the pore around it, and its pocket a pore volume of its own:
    the mesh fills the box (checked by mesh_geometry), and the pocket's cells have the volume
    they have on the box fragment's mesh (the flat facets add ~10 % to this 1 µm³ pocket)."""
    centers, radii = cage()
    p = Particles(Box((20.0, 20.0, 20.0), periodic=False), centers=centers, radii=radii)
    options = MeshOptions(size=2.0, radius_factor=0.2)
    fragmented = build_geometry(p, route="fragment")
    pocket = min(gmsh.model.occ.getMass(3, v) for v in pore_entities())
    assert len(pore_entities()) == 2 and 0 < pocket < 4.0
    mesh_geometry(options, p)
    reference = sorted(meshed_volume(v) for v in pore_entities())
    glued = build_geometry(p)
    assert route_used() == "glue"
    assert len(pore_entities()) == 2
    assert_same_report(glued, fragmented)
    mesh_geometry(options, p)
    meshed = sorted(meshed_volume(v) for v in pore_entities())
    assert meshed[0] == pytest.approx(reference[0], rel=0.02)
    assert meshed[0] == pytest.approx(pocket, rel=0.15)
    assert sum(meshed) == pytest.approx(sum(reference), rel=1e-3)


def sealing_layer(floating: bool) -> Particles:
    """Nine overlapping spheres that seal the cross-section of a 10 x 10 x 30 box at z = 15
    (the pore is cut in two), and optionally a sphere floating below them."""
    centers = [[x, y, 15.0] for x in (1.0, 5.0, 9.0) for y in (1.0, 5.0, 9.0)]
    radii = [3.2] * 9
    if floating:
        centers.append([5.0, 5.0, 5.0])
        radii.append(2.0)
    return Particles(Box((10.0, 10.0, 30.0), periodic=False), centers=centers, radii=radii)


def test_a_pore_cut_in_two_is_two_glued_volumes(session):
    p = sealing_layer(floating=False)
    glued = build_geometry(p)
    assert route_used() == "glue"
    assert len(pore_entities()) == 2
    fragmented = build_geometry(p, route="fragment")
    assert_same_report(glued, fragmented)


def test_a_hole_in_one_of_two_pore_regions_falls_back_to_the_fragment(session, caplog):
    """Which of the two regions holds the floating sphere is not told by the faces: the
    geometry is built with the box fragment, with a warning."""
    p = sealing_layer(floating=True)
    with caplog.at_level(logging.WARNING, logger="electrofem.mesh"):
        rep = build_geometry(p)
    assert route_used() == "fragment"
    assert "fragmenting the box instead" in caplog.text
    assert sum(rep.phase_volumes.values()) == pytest.approx(300.0 * 10, rel=1e-8)
    mesh_geometry(MeshOptions(size=2.0, radius_factor=0.3), p)


def test_route_is_checked(session):
    with pytest.raises(ValueError, match="geometry_route"):
        MeshOptions(geometry_route="glue").validate()
    centers, radii = cage()
    p = Particles(Box((20.0, 20.0, 20.0), periodic=False), centers=centers, radii=radii)
    with pytest.raises(ValueError, match="route"):
        build_geometry(p, route="glued")


def test_mesh_must_fill_the_box(session, monkeypatch):
    """mesh_geometry measures its cells (on their vertices: they tile the box whatever the
    facets do) and refuses a mesh that leaves part of the box out."""
    from electrofem.mesh import sizing

    centers, radii = cage()
    p = Particles(Box((20.0, 20.0, 20.0), periodic=False), centers=centers, radii=radii)
    build_geometry(p)
    mesh_geometry(MeshOptions(size=2.0, radius_factor=0.3), p)
    types, _, nodes = gmsh.model.mesh.getElements(3)
    node_tags, coords, _ = gmsh.model.mesh.getNodes()
    assert sizing._cells_measure(3, types, nodes, node_tags, coords) == pytest.approx(
        8000.0, rel=1e-12
    )
    gap = pore_entities()
    monkeypatch.setattr(sizing, "_cells_measure", lambda *_: 8000.0 - meshed_volume(gap[-1]))
    with pytest.raises(RuntimeError, match="cells fill"):
        mesh_geometry(MeshOptions(size=2.0, radius_factor=0.3), p)


def test_an_empty_box_is_one_glued_pore_volume(session):
    p = Particles(Box((10.0, 5.0, 6.0), periodic=False), centers=np.zeros((0, 3)), radii=[])
    rep = build_geometry(p)
    assert route_used() == "glue" and len(pore_entities()) == 1
    assert rep.phase_volumes == {tags.ELECTROLYTE: pytest.approx(300.0, rel=1e-12)}
    assert rep.boundary_areas[tags.TOP] == pytest.approx(50.0, rel=1e-12)
    stats = mesh_geometry(MeshOptions(size=1.0), p)
    assert stats.n_cells > 0 and stats.min_quality > 0.3


def test_piece_volumes_by_the_cone_rule_are_exact(session):
    """Two equal core-shell spheres overlap across the plane x = 5 and cross the wall y = 0
    (the caps do not meet): each shell piece is the ball minus both caps minus its core, each
    core is whole. The glued report's active (core) and shell volumes come from the faces'
    areas (glue.piece_volume), and must match the closed form and OCC's volume integral."""
    from electrofem.mesh.glue import piece_volume

    r, t, y, d = 2.5, 0.8, 1.9, 2.0

    def cap(h):
        return math.pi * h * h * (3 * r - h) / 3

    p = Particles(
        Box((10.0, 10.0, 10.0), periodic=False),
        centers=[[3.0, y, 5.0], [7.0, y, 5.0]],
        radii=[r, r],
        shell_thickness=[t, t],
    )
    report = build_geometry(p)
    assert route_used() == "glue"
    core = 4 / 3 * math.pi * (r - t) ** 3
    shell = 4 / 3 * math.pi * r**3 - cap(r - y) - cap(r - d) - core
    assert sum(report.phase_volumes.values()) == pytest.approx(1000.0, rel=1e-12)
    vols = {p_: v for p_, v in report.phase_volumes.items() if p_ != tags.ELECTROLYTE}
    assert sorted(vols.values()) == pytest.approx(sorted([2 * core, 2 * shell]), rel=1e-7)
    # piece by piece against OCC, and never the fallback
    plane = (np.array([5.0, y, 5.0]), np.array([1.0, 0.0, 0.0]))
    solids = solid_entities()
    left = [v for v in solids if gmsh.model.occ.getCenterOfMass(3, v)[0] < 4.5]
    assert len(left) == 2
    for v in left:
        occ_volume = gmsh.model.occ.getMass(3, v)
        is_core = occ_volume < core * 1.01
        got = piece_volume(
            v,
            [3.0, y, 5.0],
            r - t if is_core else r,
            None if is_core else r - t,
            [plane],
            (10.0, 10.0, 10.0),
            lambda s: gmsh.model.occ.getMass(2, s),
        )
        assert got == pytest.approx(occ_volume, rel=1e-7)
