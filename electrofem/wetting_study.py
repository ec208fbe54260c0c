"""Deprecated import path: moved to :mod:`electrofem.studies.wetting`.

Re-exported here for one release, with a DeprecationWarning."""

import warnings

from .studies.wetting import (  # noqa: F401
    ARCHITECTURE_CASES,
    PAPER_CASES,
    PAPER_DT_SCHEDULE_S,
    RATIO_CASES,
    orderings,
    paper_step_options,
    run_wetting_study,
    wetting_config,
)

warnings.warn(
    "electrofem.wetting_study is deprecated; import from electrofem.studies.wetting",
    DeprecationWarning,
    stacklevel=2,
)
