"""Regenerate the reference meshes shipped in meshes/ (used by tests and examples).

    python meshes/make_reference.py [NAME ...]

They are deliberately coarse (small files): porosity on the 3D mesh is ~1-2 % off the exact
value; use a finer ``mesh.size`` for quantitative work.
"""

from pathlib import Path

from electrofem.config import parse
from electrofem.jobs.generate import run_generate

HERE = Path(__file__).parent

CASES = {
    # paper 002 architectures, 2D, a 50 x 60 µm window, L:S = 5:5
    # ("gap" contacts: a 2D section with overlapping contacts has closed pore pockets)
    "ls_2d": {
        "preset": "L-Dry-S",
        "box": {"width": 50.0, "height": 60.0},
        "contacts": {"mode": "gap"},
        "mesh": {"size": 1.0},
    },
    "sl_2d": {
        "preset": "S-Dry-L",
        "box": {"width": 50.0, "height": 60.0},
        "contacts": {"mode": "gap"},
        "mesh": {"size": 1.0},
    },
    # small 3D bidisperse box: 4.5 and 7 µm spheres, 1:1 by volume
    "bi_3d": {
        "box": {"width": 16.0, "depth": 16.0, "height": 16.0},
        "layers": [
            {
                "porosity": 0.45,
                "particles": [
                    {
                        "distribution": "mixture",
                        "diameters": [7.0, 4.5],
                        "volume_fractions": [0.5, 0.5],
                    }
                ],
            }
        ],
        "mesh": {"size": 1.5, "radius_factor": 0.5, "optimize": False},
    },
}


def main():
    import sys
    import tempfile

    for name, cfg in CASES.items():
        if len(sys.argv) > 1 and name not in sys.argv[1:]:
            continue
        cfg = {"seed": 1, **({"porosity": 0.45} if "preset" in cfg else {}), **cfg}
        with tempfile.TemporaryDirectory() as tmp:
            run_generate(parse(cfg), tmp, progress=False, picture=False)
            for suffix in (".xdmf", ".h5", ".json"):
                src = Path(tmp) / f"mesh{suffix}"
                data = src.read_bytes()
                if suffix == ".xdmf":
                    data = data.replace(b"mesh.h5", f"{name}.h5".encode())
                (HERE / f"{name}{suffix}").write_bytes(data)
        print("wrote", name)


if __name__ == "__main__":
    main()
