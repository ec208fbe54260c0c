"""Inputs of the microstructure stage: the particle CSV reader (row-numbered errors, property
test) and the resource estimate that refuses oversized requests before packing."""

import csv
import io
import math
import time

import numpy as np
import pytest

from electrofem import tags
from electrofem.microstructure import Box, MicrostructureError, Particles

BOX2 = Box((50.0, 60.0), periodic=False)


def write(tmp_path, text, name="particles.csv"):
    path = tmp_path / name
    path.write_text(text)
    return path


@pytest.mark.parametrize(
    "text, message",
    [
        # the case: x = 250 in a 50 µm box was dropped by the mesher, counted in summary
        (
            "x,y,r,phase\n10,10,2,2\n20,20,3,2\n250,20,3,2\n",
            r"particles.csv row 3 \(line 4\): particle at x = 250 lies entirely outside the box "
            r"\[0, 50\]",
        ),
        ("x,y,r\n10,10,2\n20,20\n", r"row 2 \(line 3\): 2 fields, the header has 3"),
        ("x,y,r\n10,10,2,5\n", r"row 1 \(line 2\): 4 fields, the header has 3"),
        ("x,y,r\n1,2,oops\n", r"row 1 \(line 2\): column 'r': 'oops' is not a number"),
        ("x,y,r\n1,nan,2\n", r"row 1 \(line 2\): column 'y': nan is not a finite number"),
        ("x,y,r\n1,2,inf\n", r"column 'r': inf is not a finite number"),
        ("x,y,r\n10,10,2\n1,2,-1\n", r"row 2 \(line 3\): column 'r': the radius must be > 0"),
        ("x,y,d\n1,2,0\n", r"column 'd': the diameter must be > 0"),
        ("x,y,r,phase\n10,10,2,plastic\n", r"column 'phase': 'plastic' is not a solid phase"),
        ("x,y,r,phase\n10,10,2,1\n", r"column 'phase': '1' is not a solid phase"),
        ("x,y,r\n25,30,26\n", r"column 'r': radius 26 µm is larger than the box allows"),
        ("x,y,r\n10,-1,2\n", r"particle centre at y = -1 lies outside the box height"),
        ("x,y,r\n10,500,2\n", r"particle at y = 500 lies entirely outside the box \[0, 60\]"),
        ("x,y,r\n-3,10,2\n", r"particle at x = -3 lies entirely outside"),
        ("x,y,r,shell_thickness\n10,10,2,2.5\n", r"column 'shell_thickness': must be in \[0, 2\)"),
        ("x,y,r,layer\n10,10,2,1.5\n", r"column 'layer': '1.5' is not an integer"),
        ("x,y,r,layer\n10,10,2,-4\n", r"column 'layer': must be -1 \(none\) or an index >= 0"),
        ("x,y,z,r\n1,2,3,1\n", r"header \(line 1\): column 'z' given but the box is 2D"),
        ("x,r\n1,2\n", r"header \(line 1\): the header needs columns x,y and r"),
        ("x,y,r,r\n1,2,3,1\n", r"column 'r' appears twice"),
        ("", r"empty file"),
        ("x,y,r\n\n", r"no particle rows"),
    ],
)
def test_csv_bad_rows_are_named(tmp_path, text, message):
    path = write(tmp_path, text)
    with pytest.raises(MicrostructureError, match=message) as err:
        Particles.from_csv(path, BOX2)
    assert "\n" not in str(err.value)
    assert str(path) in str(err.value)


def test_csv_out_of_box_rejected_also_with_periodic_sides(tmp_path):
    """Periodic sides wrap particles that cross them, not ones placed periods away."""
    path = write(tmp_path, "x,y,r\n-1,10,2\n51,20,2\n")
    p = Particles.from_csv(path, Box((50.0, 60.0)))
    assert np.allclose(p.centers[:, 0], [49.0, 1.0])
    write(tmp_path, "x,y,r\n-1,10,2\n51,20,2\n250,30,2\n")
    with pytest.raises(MicrostructureError, match=r"row 3 \(line 4\): particle at x = 250"):
        Particles.from_csv(path, Box((50.0, 60.0)))


def test_csv_accepted_forms(tmp_path):
    """Names or ids for phases, d instead of r, blank lines, extra columns, a BOM, 3D."""
    text = "\ufeffx,y,d,phase,comment\n10,10,4,active,a\n\n20,20,6,3,b\n30,30,3,binder,\n"
    p = Particles.from_csv(write(tmp_path, text), BOX2)
    assert np.allclose(p.radii, [2.0, 3.0, 1.5])
    assert p.phase.tolist() == [tags.ACTIVE, tags.SECOND, tags.BINDER]
    assert p.layer.tolist() == [-1, -1, -1]
    box3 = Box((20.0, 20.0, 30.0))
    q = Particles.from_csv(write(tmp_path, "x,y,z,r,layer\n5,5,5,2,0\n", "p3.csv"), box3)
    assert q.centers.shape == (1, 3) and q.layer.tolist() == [0]


# --- property test: any row either loads or raises MicrostructureError -----------------------

hypothesis = pytest.importorskip("hypothesis")
st = hypothesis.strategies

COLUMNS = ["x", "y", "z", "r", "d", "phase", "shell_thickness", "shell_phase", "layer", "junk"]
VALUES = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.floats(-100, 100).map(lambda v: f"{v:.3g}"),
    st.integers(-5, 10).map(str),
    st.integers(-(2**70), 2**70).map(str),
    st.sampled_from(["", " ", "nan", "-inf", "1e400", "active", "second", "Binder", "air", "2.0"]),
    st.text(max_size=6),
)


PLAUSIBLE = {
    "x": st.floats(-3, 53).map(lambda v: f"{v:.4g}"),
    "y": st.floats(-3, 43).map(lambda v: f"{v:.4g}"),  # 3D depth
    "z": st.floats(0, 60).map(lambda v: f"{v:.4g}"),
    "r": st.floats(0.5, 6).map(lambda v: f"{v:.4g}"),
    "d": st.floats(1, 12).map(lambda v: f"{v:.4g}"),
    "phase": st.sampled_from(["2", "3", "4", "active", "binder"]),
    "shell_thickness": st.sampled_from(["0", "0.2"]),
    "shell_phase": st.sampled_from(["3", "second"]),
    "layer": st.sampled_from(["-1", "0", "1"]),
    "junk": st.text(max_size=4),
}


@st.composite
def csv_files(draw):
    """Header and rows: mostly plausible values with random bad ones, counts and columns."""
    dim = draw(st.sampled_from([2, 3]))
    axes = ["x", "y", "z"][:dim]
    header = draw(
        st.one_of(
            st.just([*axes, "r", "phase", "shell_thickness", "shell_phase", "layer"]),
            st.permutations([*axes, "d", "phase", "junk"]),
            st.lists(st.sampled_from(COLUMNS), min_size=0, max_size=7),
        )
    )
    # plausible values for the box, 50 x 60 or 50 x 40 x 60 µm (in 2D y is the height)
    keys = ["z" if (h == "y" and dim == 2) else h for h in header]
    rows = []
    for _ in range(draw(st.integers(0, 5))):
        row = [draw(PLAUSIBLE.get(k, st.text(max_size=4))) for k in keys]
        damage = draw(st.sampled_from(["none", "none", "value", "value", "drop", "add"]))
        if damage == "value" and row:
            row[draw(st.integers(0, len(row) - 1))] = draw(VALUES)
        elif damage == "drop" and row:
            del row[draw(st.integers(0, len(row) - 1))]
        elif damage == "add":
            row.append(draw(VALUES))
        rows.append(row)
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(header)
    writer.writerows(rows)
    periodic = draw(st.booleans())
    return dim, periodic, buf.getvalue()


@hypothesis.settings(
    max_examples=200,
    deadline=None,
    derandomize=True,
    suppress_health_check=[hypothesis.HealthCheck.function_scoped_fixture],
)
@hypothesis.given(csv_files())
def test_csv_reader_loads_or_raises_microstructure_error(tmp_path, case):
    dim, periodic, text = case
    box = Box((50.0, 60.0) if dim == 2 else (50.0, 40.0, 60.0), periodic)
    path = tmp_path / "particles.csv"
    path.write_text(text, encoding="utf-8", errors="surrogatepass")
    try:
        p = Particles.from_csv(path, box)
    except MicrostructureError as err:
        assert "\n" not in str(err).strip()
        hypothesis.event("rejected")
        return
    hypothesis.event("loaded")
    # what loads is usable: finite, positive, inside the box, one particle per data row
    assert len(p) >= 1
    assert np.all(np.isfinite(p.centers)) and np.all(p.radii > 0)
    lo = p.centers - p.radii[:, None]
    hi = p.centers + p.radii[:, None]
    assert np.all(hi > 0) and np.all(lo < np.asarray(box.size))
    assert np.all((p.centers[:, -1] >= 0) & (p.centers[:, -1] <= box.height))
    assert set(p.phase.tolist()) <= set(tags.SOLID_PHASES)
    assert math.isfinite(float(np.sum(p.volumes())))


# --- resources: refuse oversized requests before packing (issue 12, item 4) -----------------


def test_resource_estimate_of_a_small_request_passes():
    from electrofem.microstructure import check_resources, estimate_resources, generate, preset

    spec = preset("L-S", width=50, height=80, porosity=0.45, seed=1)
    est = estimate_resources(spec, mesh_size_um=1.0)
    n = len(generate(spec))
    assert 0.8 * n < est["n_particles"] < 1.25 * n  # (radii are rescaled to the porosity)
    assert est["packing_bytes"] < 1e9 and est["mesh_cells"] > 0 and est["meshing_bytes"] < 1e9
    out = check_resources(spec, mesh_size_um=1.0)
    assert out["fits"] and out["memory_bytes"] > 0
    # 3D, lognormal sizes, two layers: the count the packer draws (before any packing)
    from electrofem.microstructure.layers import _sample_layers

    spec3 = preset("S-L", dim=3, width=60, depth=60, height=60, std_fraction=0.3, seed=2)
    n3 = len(_sample_layers(spec3, np.random.default_rng(2))["r"])
    est3 = check_resources(spec3)
    assert 0.9 * n3 < est3["n_particles"] < 1.1 * n3
    assert est3["mesh_cells"] is None and est3["largest"] == "packing"


def test_oversized_request_refused_quickly_naming_the_key():
    from electrofem.microstructure import check_resources, generate, preset

    # the issue: a 10 000 µm box of 1 µm particles grew past 6 GB in 100 s, then MemoryError
    big = preset(
        "Mix", dim=3, width=10_000, depth=10_000, height=146, large_diameter=1, small_diameter=1
    )
    t0 = time.perf_counter()
    with pytest.raises(MicrostructureError) as err:
        check_resources(big, memory_bytes=24 * 2**30)
    msg = str(err.value)
    assert msg.startswith("box.width: the request needs ~") and "\n" not in msg
    assert "particles" in msg and "(this machine has 24 GB)" in msg and "--force" in msg
    with pytest.raises(MicrostructureError, match="box.width"):
        generate(big)  # refused before drawing a single radius
    assert time.perf_counter() - t0 < 1.0
    # forced: a warning, the estimate back
    assert not check_resources(big, memory_bytes=24 * 2**30, force=True)["fits"]
    # a small box with a fine mesh: the mesh size is the key to change
    small = preset("L-S", dim=3, width=50, depth=50, height=60)
    with pytest.raises(MicrostructureError, match=r"^mesh\.size: .* mesh cells"):
        check_resources(small, mesh_size_um=0.1, memory_bytes=24 * 2**30)
    assert check_resources(small, mesh_size_um=2.0, memory_bytes=24 * 2**30)["fits"]
    # particles at hand (CSV): nothing is packed, the mesh is still estimated
    parts = Particles(BOX2, [[10.0, 10.0]], [2.0])
    assert check_resources(parts, mesh_size_um=0.5)["n_particles"] == 1
    with pytest.raises(MicrostructureError, match="mesh.size"):
        check_resources(parts, mesh_size_um=1e-4)
