"""Exports of measured microstructure properties to other tools (PyBaMM)."""

from .pybamm import pybamm_parameters, write_pybamm_parameters

__all__ = ["pybamm_parameters", "write_pybamm_parameters"]
