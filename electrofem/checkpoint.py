"""Deprecated import path: moved to :mod:`electrofem.jobs.output`. This module re-exports it for one
release and warns (DeprecationWarning)."""

import warnings

from .jobs.output import (  # noqa: F401
    json_default,
    read_checkpoint,
    write_checkpoint,
)

warnings.warn(
    "electrofem.checkpoint is deprecated; import from electrofem.jobs.output",
    DeprecationWarning,
    stacklevel=2,
)
