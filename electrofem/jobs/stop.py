"""Interrupts (Ctrl-C = SIGINT, ``timeout``/batch schedulers = SIGTERM) that end a run cleanly.

A :class:`StopSignal` made by the command line turns the two signals into a *request*. Inside a
time loop (:meth:`StopSignal.soft`) the request is honoured at the end of the current step:
every rank asks :meth:`StopSignal.requested` (one reduction, so all ranks stop at the same
step even if the signal reached them at different times), the job writes a checkpoint, marks
its status ``"interrupted"`` and raises :class:`Interrupted`. The command line prints one line
(``interrupted at step N, t = ...; resume with --restart``) and exits with 128 + the signal
number (130 for SIGINT, 143 for SIGTERM). Outside a loop (packing, meshing, a linear solve
that does not return) the signal raises :class:`Interrupted` at once; a second Ctrl-C always
does. PETSc's own signal handler is removed first, so SIGTERM no longer ends in PETSc's
"Caught signal 15" and ``MPI_Abort``.

The Python API installs nothing: a job given no ``stop`` object never checks.
"""

from __future__ import annotations

import signal
from contextlib import contextmanager

from mpi4py import MPI

#: The signals that request a stop.
SIGNALS = (signal.SIGINT, signal.SIGTERM)


class Interrupted(BaseException):  # noqa: N818 — like KeyboardInterrupt, not an error
    """A run stopped by a signal. ``exit_code`` is 128 + the signal number. A BaseException,
    so that no ``except Exception`` on the way swallows it."""

    def __init__(self, message: str, signum: int = signal.SIGINT):
        super().__init__(message)
        self.signum = int(signum)
        self.exit_code = 128 + self.signum


class StopSignal:
    """SIGINT/SIGTERM as a stop request (see the module docstring)."""

    def __init__(self):
        self.signum = 0
        self._soft = 0
        self._previous = {}

    def install(self) -> StopSignal:
        """Take over SIGINT and SIGTERM (and drop PETSc's handler if PETSc is loaded)."""
        try:
            from petsc4py import PETSc

            PETSc.Sys.popSignalHandler()
        except Exception:  # no PETSc, or its handler already gone
            pass
        for s in SIGNALS:
            self._previous[s] = signal.signal(s, self._handle)
        return self

    def uninstall(self) -> None:
        for s, h in self._previous.items():
            signal.signal(s, h)
        self._previous.clear()

    def _handle(self, signum, frame) -> None:
        again = self.signum != 0
        self.signum = signum
        if not self._soft or again:
            raise Interrupted(f"interrupted by {signal.Signals(signum).name}", signum)

    @contextmanager
    def soft(self):
        """Within this block a signal only requests a stop (honoured between steps)."""
        for sig in self._previous:  # again: a library (gmsh) may have replaced them meanwhile
            signal.signal(sig, self._handle)
        self._soft += 1
        try:
            yield self
        finally:
            self._soft -= 1

    def requested(self, comm=MPI.COMM_WORLD) -> int:
        """The signal number if a stop was requested on any rank, else 0 (collective)."""
        return int(comm.allreduce(int(self.signum), op=MPI.MAX))


def soft(stop: StopSignal | None):
    """``stop.soft()``, or a no-op context when there is no stop object."""
    if stop is None:
        from contextlib import nullcontext

        return nullcontext()
    return stop.soft()
