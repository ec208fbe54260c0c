"""Deprecated import path: moved to :mod:`electrofem.jobs.discharge`.

Re-exported here for one release, with a DeprecationWarning."""

import warnings

from .jobs.discharge import (  # noqa: F401
    DischargeReport,
    PhaseResult,
    run_discharge,
)

warnings.warn(
    "electrofem.discharge_job is deprecated; import from electrofem.jobs.discharge",
    DeprecationWarning,
    stacklevel=2,
)
from .jobs.output import CHECKPOINT_DIR  # noqa: E402, F401
from .physics.electrochem import ONE_C_MA_G, rate_label, theoretical_capacity  # noqa: E402, F401
from .physics.electrochem import DischargeOptions as DischargeJobOptions  # noqa: E402, F401
