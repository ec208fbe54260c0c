"""Post-processing of electrode meshes and transport results (MPI-collective, Cython kernels).

* :func:`phase_volumes`, :func:`interface_areas` -- measures per cell / facet tag (µm³, µm²);
* :func:`specific_surface_area` -- ``a_s`` in 1/m;
* :func:`sia` -- specific interface area ``S_12 / (m_1 + m_2)`` per pair of solids, m²/g;
* :func:`through_thickness_profiles` -- per-slab porosity, a_s, SIA and local tortuosity
  (:class:`Profiles`);
* :func:`event_capacity` -- the discharge capacity at the end-of-discharge event (mAh/g).
"""

from ..microstructure.measure import DEFAULT_DENSITY_G_CM3
from .capacity import event_capacity, event_capacity_csv
from .interfaces import interface_areas, phase_volumes, sia, specific_surface_area
from .profiles import Profiles, through_thickness_profiles

__all__ = [
    "DEFAULT_DENSITY_G_CM3",
    "Profiles",
    "event_capacity",
    "event_capacity_csv",
    "interface_areas",
    "phase_volumes",
    "sia",
    "specific_surface_area",
    "through_thickness_profiles",
]
