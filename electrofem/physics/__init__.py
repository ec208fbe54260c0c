"""Solvers, one module each (dolfinx + PETSc)."""
