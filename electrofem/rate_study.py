"""Deprecated import path: moved to :mod:`electrofem.studies.rate`.

Re-exported here for one release, with a DeprecationWarning."""

import warnings

from .studies.rate import (  # noqa: F401
    PAPER_ARCHITECTURES,
    PAPER_C_RATES,
    PAPER_LOADINGS_MG_CM2,
    PAPER_POROSITY,
    event_capacity,
    paper_config,
    paper_thickness_um,
    rate_study_table,
    run_rate_study,
)

warnings.warn(
    "electrofem.rate_study is deprecated; import from electrofem.studies.rate",
    DeprecationWarning,
    stacklevel=2,
)
