"""Sweeps of jobs.

* :mod:`~electrofem.studies.spec`, :mod:`~electrofem.studies.cases`,
  :mod:`~electrofem.studies.runner`, :mod:`~electrofem.studies.db`,
  :mod:`~electrofem.studies.report`, :mod:`~electrofem.studies.surrogate`: the general
  ``electrofem study`` runner (a study file, one folder per case, parallel workers, a SQLite
  results database, a Gaussian-process surrogate);
* :mod:`~electrofem.studies.series`, :mod:`~electrofem.studies.rate`,
  :mod:`~electrofem.studies.wetting`, :mod:`~electrofem.studies.coupled`: paper 002's studies.
"""

from .db import load_results

__all__ = ["load_results"]
