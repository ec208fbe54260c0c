"""Paper 002's rate study (Figure 2f/g) with the resolved 2D half cell: a thin wrapper over
``electrofem study examples/study_paper_rate.toml`` (see ``benchmarks/study_bench.py``).

    python benchmarks/bench_paper_discharge.py --workers 2             # the 18 cases, resumes
    python benchmarks/bench_paper_discharge.py --only preset=L-Dry-S --only box.height=138.4795 \
        --only discharge.c_rates=[1.0] --out benchmarks/results/paper_study_out_n1 --tag _n1

The study file holds the set-up (3 architectures x 2 loadings x 3 C-rates, 1 µm mesh; each
case one discharge from rest; the configs of the earlier ``electrofem.studies.rate``, as
``tests/test_paper_studies.py`` checks). The study folder (``--out``, default
``benchmarks/results/paper_study_out``, not versioned) holds the cases and the report; copied to
``benchmarks/results/``: ``bench_paper_discharge<tag>.json`` (every run with its event-
interpolated capacity, the table and the 1C order), ``bench_paper_discharge<tag>_table.csv``
(Figure 2f/g layout), ``paper_rate_capability<tag>.png`` and ``paper_maps<tag>/`` (the
end-of-discharge polarization map of every run).
"""

from study_bench import main

COPIES = {
    "rate.json": "bench_paper_discharge{tag}.json",
    "rate.csv": "bench_paper_discharge{tag}_table.csv",
    "rate.png": "paper_rate_capability{tag}.png",
    "maps": "paper_maps{tag}",
}

if __name__ == "__main__":
    raise SystemExit(main("study_paper_rate.toml", "paper_study_out", COPIES, doc=__doc__))
