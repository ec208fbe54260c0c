"""Deprecated import path: moved to :mod:`electrofem.jobs.transport`. This module re-exports it for one
release and warns (DeprecationWarning)."""

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
