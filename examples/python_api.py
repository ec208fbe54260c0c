"""Python API walk-through: generate the paper's three architectures and compare them.

python examples/python_api.py           (or: mpirun -n 2 python examples/python_api.py)
"""

from mpi4py import MPI

from electrofem.config import parse
from electrofem.jobs.generate import run_generate

for name in ("L-Dry-S", "Mix", "S-Dry-L"):
    cfg = parse(
        {
            "seed": 1,
            "preset": name,
            "porosity": 0.40,
            "box": {"width": 50.0, "height": 146.0},
            "mesh": {"size": 0.75},
        }
    )
    emesh, summary = run_generate(cfg, f"out/{name}", progress=False)
    if MPI.COMM_WORLD.rank == 0:
        print(
            f"{name:8s} porosity {summary['porosity']:.3f} per layer "
            f"{[round(p, 3) for p in summary['porosity_per_layer']]} loading "
            f"{summary['loading_mg_cm2']:.1f} mg/cm² cells {summary['mesh']['n_cells']}"
        )
