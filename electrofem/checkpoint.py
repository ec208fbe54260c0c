"""Deprecated import path: moved to :mod:`electrofem.jobs.output`.

Re-exported here for one release, with a DeprecationWarning."""

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
