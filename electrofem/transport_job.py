"""Deprecated import path: moved to :mod:`electrofem.jobs.transport`.

Re-exported here for one release, with a DeprecationWarning."""

import warnings

from .jobs.transport import (  # noqa: F401
    TransportReport,
    run_transport,
)

warnings.warn(
    "electrofem.transport_job is deprecated; import from electrofem.jobs.transport",
    DeprecationWarning,
    stacklevel=2,
)
