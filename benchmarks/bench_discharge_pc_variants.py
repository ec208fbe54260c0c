"""Variants of the discharge's block preconditioner on issue 16's electrode class.

    electrofem generate benchmarks/results/issue16_pc_variants/electrode.toml -o /tmp/pcv
    python benchmarks/bench_discharge_pc_variants.py /tmp/pcv/mesh.xdmf default C_lu P_lu smooth4

The electrode is issue 16's discharge class (L-S 5:5, porosity 0.40, 11.3 and 4.5 µm), 26 µm
wide instead of 50: 271 particles, 402 881 unknowns at h = 1.3 µm. Each variant runs
``bench_discharge_krylov.py``'s three 30 s steps at 18 A/m² from rest, on one rank, in this
process, one after the other. Each variant is a set of ``DischargeOptions.petsc_options``
and ``DischargeOptions`` fields (:data:`VARIANTS`) over the default iterative solver
(``electrochem/krylov.py``). Since the seventh part the default keeps its preconditioner
(``pc_rebuild_growth`` 1.5); ``rebuild`` sets it up for every Newton matrix, as the sixth
part's rows all did. The script
prints a JSON row per variant: Newton and linear iterations per step, linear iterations per
Newton step, seconds per Newton step, and the voltage.
The rows of BENCHMARKS.md are in ``benchmarks/results/issue16_pc_variants/rows.jsonl``.
"""

from __future__ import annotations

import json
import sys

from bench_discharge_krylov import STEPS, fixed_steps

#: ``DischargeOptions.petsc_options`` of each variant (the block PC's own prefix).
PETSC_VARIANTS = {
    "default": {},
    "thr0.05": {f"bordered_fieldsplit_{g}_pc_gamg_threshold": 0.05 for g in "PC"},
    "smooth3": {f"bordered_fieldsplit_{g}_mg_levels_ksp_max_it": 3 for g in "PC"},
    "smooth4": {f"bordered_fieldsplit_{g}_mg_levels_ksp_max_it": 4 for g in "PC"},
    "smooth6": {f"bordered_fieldsplit_{g}_mg_levels_ksp_max_it": 6 for g in "PC"},
    "C_smooth4": {"bordered_fieldsplit_C_mg_levels_ksp_max_it": 4},
    "P_lu": {
        "bordered_fieldsplit_P_pc_type": "lu",
        "bordered_fieldsplit_P_pc_factor_mat_solver_type": "mumps",
    },
    "C_lu": {
        "bordered_fieldsplit_C_pc_type": "lu",
        "bordered_fieldsplit_C_pc_factor_mat_solver_type": "mumps",
    },
}
#: The ``DischargeOptions`` of each variant.
VARIANTS = {k: {"petsc_options": v} for k, v in PETSC_VARIANTS.items()}
VARIANTS["rebuild"] = {"pc_rebuild_growth": 0.0}
VARIANTS["rebuild_smooth4"] = {"pc_rebuild_growth": 0.0, **VARIANTS["smooth4"]}


def main(argv: list[str]) -> None:
    import dolfinx_solver  # noqa: F401  (before dolfinx, as the package does)
    from mpi4py import MPI

    from electrofem.mesh import ElectrodeMesh
    from electrofem.physics.electrochem import DischargeOptions, HalfCell

    em = ElectrodeMesh.read(argv[0], MPI.COMM_WORLD)
    for name in argv[1:] or ["default"]:
        opts = DischargeOptions(
            current_density_A_m2=18.0, linear_solver="iterative", **VARIANTS[name]
        )
        with HalfCell(em, options=opts) as cell:
            secs = sum(fixed_steps(cell, name))
            steps = [(r.newton_iterations, r.linear_iterations) for r in cell.records[-STEPS:]]
            newton = sum(a for a, _ in steps)
            row = dict(
                v=name,
                dofs=cell.n_dofs,
                steps=steps,
                lin_per_newton=round(sum(b for _, b in steps) / newton, 1),
                s_per_newton=round(secs / newton, 2),
                V=cell.records[-1].voltage_V,
                pc_built=cell.preconditioner.built,
            )
        if MPI.COMM_WORLD.rank == 0:
            print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
