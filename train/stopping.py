"""SIGINT and SIGTERM acted on at safe points, never lost.

A handler that raises from wherever the main thread happens to be can lose the
signal: Python runs handlers inside finalizers too (``__del__`` of NDArrays,
iterators, progress bars), and an exception raised there is printed as
"Exception ignored in ..." and dropped. :class:`StopSignals` only records the
signal; the training loop calls :meth:`StopSignals.check` at safe points (each
batch, around the opening of an iterator, after a checkpoint), which raises
:class:`Stopped`. A second signal ends the process at once with the signal's
default action.
"""
import contextlib
import os
import signal

__all__ = ['Stopped', 'StopSignals', 'STOP_SIGNALS', 'never']

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class Stopped(KeyboardInterrupt):
    """SIGINT or SIGTERM arrived; ``signum`` says which."""

    def __init__(self, signum):
        super().__init__(signum)
        self.signum = signum


class StopSignals:
    """A context manager that records SIGINT / SIGTERM while it is entered.

    ``check()`` raises :class:`Stopped` once a signal has been recorded; calling it
    costs one attribute read. The first signal is recorded only; a second one
    (of either kind) restores the default action and re-sends itself, so the
    process ends at once. On exit the previous handlers are restored.
    """

    def __init__(self, signals=STOP_SIGNALS):
        self.signals = tuple(signals)
        self.received = None
        self._previous = {}
        self._immediate = False

    def __enter__(self):
        self._previous = {sig: signal.signal(sig, self._record) for sig in self.signals}
        return self

    def __exit__(self, *exc):
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous = {}
        return False

    def _record(self, signum, frame):
        if self.received is not None:
            signal.signal(signum, signal.SIG_DFL)
            os.kill(os.getpid(), signum)
            return
        self.received = signum
        if self._immediate:
            raise Stopped(signum)

    @contextlib.contextmanager
    def immediate(self):
        """Within this block a signal also raises :class:`Stopped` at once: for pure-Python
        work that is safe to stop anywhere (a scan of the data files). The signal stays
        recorded, so a later :meth:`check` still raises if a finalizer swallowed it."""
        self._immediate = True
        try:
            self.check()
            yield
        finally:
            self._immediate = False

    def check(self):
        """Raise :class:`Stopped` if a signal has arrived; a safe point."""
        if self.received is not None:
            raise Stopped(self.received)


def never():
    """The ``check`` of a run that nothing can stop (library calls, tests)."""
