"""Paper 002's rate study (Figure 2f/g) through the Python API, at a reduced size.

    python examples/paper_rate_study.py [OUTDIR]            # ~6 min on one core
    mpirun -n 2 python examples/paper_rate_study.py OUTDIR

The same API as ``benchmarks/bench_paper_discharge.py`` (which runs the whole study: three
architectures x two loadings x three C-rates at 1 µm): here the three architectures at the high
loading (29.6 mg/cm², 138.5 µm thick at porosity 0.55, see
:func:`electrofem.studies.rate.paper_thickness_um`) at 1C only, on a 1.5 µm mesh. Each run
writes its own job directory (``discharge.json``, CSV, XDMF fields with ``j_interface``,
``concentration_map.png``); the table is printed.
"""

import logging
import sys

from mpi4py import MPI

from electrofem.studies.rate import (
    paper_thickness_um,
    rate_study_table,
    run_rate_study,
)


def main(outdir="paper-rate-study") -> None:
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    loading = 29.6
    h = paper_thickness_um(loading, porosity=0.55, density_g_cm3=4.75)
    if MPI.COMM_WORLD.rank == 0:
        print(f"{loading} mg/cm² at porosity 0.55 -> electrode thickness {h:.1f} µm")
    results = run_rate_study(
        outdir,
        architectures=("L-Dry-S", "Mix", "S-Dry-L"),
        loadings_mg_cm2=(loading,),
        c_rates=(1.0,),
        mesh_size_um=1.5,
    )
    if MPI.COMM_WORLD.rank == 0:
        for row in rate_study_table(results):
            print(
                f"{row['architecture']:8s} {row['loading_mg_cm2']:g} mg/cm²: "
                f"1C {row['1C_mAh_g']:.1f} mAh/g ({row['1C_stop']})"
            )


if __name__ == "__main__":
    main(*sys.argv[1:])
