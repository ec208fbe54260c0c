"""Sweeps of jobs.

* :mod:`~electrofem.studies.spec`, :mod:`~electrofem.studies.cases`,
  :mod:`~electrofem.studies.runner`, :mod:`~electrofem.studies.db`,
  :mod:`~electrofem.studies.report`, :mod:`~electrofem.studies.surrogate`: the general
  ``electrofem study`` runner (a study file, one folder per case, parallel workers, a SQLite
  results database, a Gaussian-process surrogate);
* :mod:`~electrofem.studies.figures`: paper 002's tables and figures (``[report] figure``);
  its studies are the files ``examples/study_paper_{rate,wetting,coupled}.toml``.
"""

from .db import load_results

__all__ = ["load_results"]
