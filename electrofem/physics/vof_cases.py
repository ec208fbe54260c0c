"""Deprecated: moved to :mod:`electrofem.physics.vof.cases` (this alias goes after one release)."""

import warnings

warnings.warn(
    "electrofem.physics.vof_cases moved to electrofem.physics.vof.cases",
    DeprecationWarning,
    stacklevel=2,
)

from .vof.cases import CHANNEL, box_mesh, static_drop, washburn_rate  # noqa: E402, F401
