"""Deprecated import path: moved to :mod:`electrofem.jobs.generate`.

Re-exported here for one release, with a DeprecationWarning."""

import warnings

from .jobs.generate import (  # noqa: F401
    PipelineError,
    build_particles,
    run_generate,
)

warnings.warn(
    "electrofem.pipeline is deprecated; import from electrofem.jobs.generate",
    DeprecationWarning,
    stacklevel=2,
)
from .jobs.source import MESH_SUFFIXES, load_source  # noqa: E402, F401
