"""Every tag number electrofem writes, in one place.

Cell tags (``ElectrodeMesh.cell_tags``) are phase ids. Facet tags (``ElectrodeMesh.facet_tags``)
are either a box face or an interface between two phases. These numbers are stable: they are part
of the file format.

=========================  =====  ===========================================
name                       value  meaning
=========================  =====  ===========================================
``ELECTROLYTE``            1      pore space / electrolyte
``ACTIVE``                 2      active material (e.g. NMC)
``SECOND``                 3      second solid (coating shell, catalyst support)
``BINDER``                 4      carbon-binder domain (CBD)
``BOTTOM``                 11     z = 0 (2D: y = 0): current collector
``TOP``                    12     z = H (2D: y = H): separator side
``LEFT`` / ``RIGHT``       13/14  x = 0 / x = Lx
``FRONT`` / ``BACK``       15/16  y = 0 / y = Ly (3D only)
``interface_tag(a, b)``    100+   facets between phases a and b: ``100 + 10*min + max``
=========================  =====  ===========================================

Examples: electrolyte|active = 112, active|active contact = 122, active|second = 123,
second|second contact = 133, electrolyte|second = 113.
"""

ELECTROLYTE = 1
ACTIVE = 2
SECOND = 3
BINDER = 4

PHASES = {"electrolyte": ELECTROLYTE, "active": ACTIVE, "second": SECOND, "binder": BINDER}
SOLID_PHASES = (ACTIVE, SECOND, BINDER)

BOTTOM = 11
TOP = 12
LEFT = 13
RIGHT = 14
FRONT = 15
BACK = 16

BOUNDARIES = {
    "bottom": BOTTOM,
    "top": TOP,
    "left": LEFT,
    "right": RIGHT,
    "front": FRONT,
    "back": BACK,
}


def phase_name(phase: int) -> str:
    """Name of a phase id (``'active'`` for 2)."""
    for name, value in PHASES.items():
        if value == phase:
            return name
    raise ValueError(f"unknown phase id {phase}")


def phase_id(phase: int | str) -> int:
    """Phase id from a name or an id, with a clear error for unknown ones."""
    if isinstance(phase, str):
        try:
            return PHASES[phase.lower()]
        except KeyError:
            raise ValueError(f"unknown phase {phase!r}; known: {sorted(PHASES)}") from None
    if int(phase) not in PHASES.values():
        raise ValueError(f"unknown phase id {phase}; known: {sorted(PHASES.values())}")
    return int(phase)


def interface_tag(a: int, b: int) -> int:
    """Facet tag of the interface between phases ``a`` and ``b`` (symmetric)."""
    lo, hi = sorted((phase_id(a), phase_id(b)))
    return 100 + 10 * lo + hi


def interface_phases(tag: int) -> tuple[int, int]:
    """Inverse of :func:`interface_tag`."""
    if not 100 < tag < 200:
        raise ValueError(f"{tag} is not an interface tag")
    return (tag - 100) // 10, (tag - 100) % 10


def interface_name(tag: int) -> str:
    """``'electrolyte|active'`` for 112."""
    a, b = interface_phases(tag)
    return f"{phase_name(a)}|{phase_name(b)}"


def facet_name(tag: int) -> str:
    """``'bottom'`` for 11, ``'electrolyte|active'`` for 112."""
    for name, value in BOUNDARIES.items():
        if value == tag:
            return name
    return interface_name(tag)
