"""Paper 002's wetting study (sections 2.1 and 2.5) on its 2D VOF domain: a thin wrapper over
``electrofem study examples/study_paper_wetting.toml`` (see ``benchmarks/study_bench.py``).

    python benchmarks/bench_wetting_study.py --workers 2 --tag _h2       # the 8 cases, resumes
    python benchmarks/bench_wetting_study.py --only preset=L-S,S-L --set mesh.size=1.0 \
        --set infiltration.stop_at_breakthrough=true --out /tmp/wetting-h1 --tag _perf_h1

The study file holds the set-up (L-S, Mix, S-L and L-Dry-S 3:7 ... 7:3; 50 x 146 µm, 2 µm
mesh, the paper's steps, each case to 1.1 x the filling time; the configs of the earlier
``electrofem.studies.wetting``, as ``tests/test_paper_studies.py`` checks). ``--set`` changes
the base (mesh size, ``infiltration.dt_schedule_s``, ...). Copied to ``benchmarks/results/``:
``wetting_study<tag>.json`` (rows and the paper's orderings), ``.csv`` and ``.png``.
"""

from study_bench import main

COPIES = {
    "wetting.json": "wetting_study{tag}.json",
    "wetting.csv": "wetting_study{tag}.csv",
    "wetting.png": "wetting_study{tag}.png",
}

if __name__ == "__main__":
    raise SystemExit(main("study_paper_wetting.toml", "wetting_study_out", COPIES, doc=__doc__))
