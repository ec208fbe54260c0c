"""Deprecated: the infiltration job is :mod:`electrofem.jobs.infiltrate` and its options are
:class:`electrofem.physics.vof.InfiltrationOptions` (``InfiltrationJobOptions`` is that class).
This alias goes after one release."""

import warnings

warnings.warn(
    "electrofem.infiltration_job is deprecated: use electrofem.jobs.infiltrate "
    "(run_infiltration) and electrofem.physics.vof.InfiltrationOptions",
    DeprecationWarning,
    stacklevel=2,
)

from .jobs.infiltrate import InfiltrationReport, run_infiltration  # noqa: E402
from .jobs.infiltrate_metrics import DEFINITIONS  # noqa: E402
from .physics.vof.options import (  # noqa: E402
    PARAMETER_SOURCES,
    InfiltrationOptions,
    option_names,
)

InfiltrationJobOptions = InfiltrationOptions

__all__ = [
    "DEFINITIONS",
    "PARAMETER_SOURCES",
    "InfiltrationJobOptions",
    "InfiltrationReport",
    "option_names",
    "run_infiltration",
]
