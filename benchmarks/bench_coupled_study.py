"""Paper 002's rate study coupled with the infiltration (issue 13): a thin wrapper over
``electrofem study examples/study_paper_coupled.toml`` (see ``benchmarks/study_bench.py``).

    python benchmarks/bench_coupled_study.py --workers 2 --deadline 6000   # 6 electrodes, resumes
    python benchmarks/bench_coupled_study.py --report                      # only the table
    python benchmarks/bench_coupled_study.py --set mesh.size=1.0 --only preset=L-Dry-S \
        --only box.height=102.924 --set "discharge.c_rates=[1.0]" --out /tmp/coupled-h1 --tag _h1

Each electrode (3 architectures x 2 loadings, 2 µm mesh) is infiltrated to 1.1 x the filling
time, then discharged from rest at 1C, C/2, C/10 as the infiltration left it and, on the same
mesh, fully wetted (the configs of the earlier ``electrofem.studies.coupled``, as
``tests/test_paper_studies.py`` checks). Copied to ``benchmarks/results/``:
``coupled_study<tag>.json`` (rows, the 1C orderings) and ``coupled_study<tag>.csv``.
"""

from study_bench import main

COPIES = {"coupled.json": "coupled_study{tag}.json", "coupled.csv": "coupled_study{tag}.csv"}

if __name__ == "__main__":
    raise SystemExit(main("study_paper_coupled.toml", "coupled_study_out", COPIES, doc=__doc__))
