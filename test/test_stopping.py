"""SIGINT / SIGTERM are recorded and acted on at safe points, so none is ever lost."""
import gc
import os
import signal
import sys
import time

import pytest

from octconv.train.stopping import StopSignals, Stopped


class _SignalsWhenCollected:
    """Sends ``signum`` to this process from its finalizer and lets the handler run there."""

    def __init__(self, signum):
        self.signum = signum

    def __del__(self):
        os.kill(os.getpid(), self.signum)
        time.sleep(0.05)


def test_a_raising_handler_loses_a_signal_delivered_in_a_finalizer(monkeypatch):
    """Why the trainer only records signals: Python drops what a finalizer raises (it goes
    to ``sys.unraisablehook``, "Exception ignored in ...")."""
    dropped = []
    monkeypatch.setattr(sys, 'unraisablehook', dropped.append)

    def raise_at_once(signum, frame):
        raise Stopped(signum)
    previous = signal.signal(signal.SIGTERM, raise_at_once)
    try:
        _SignalsWhenCollected(signal.SIGTERM)        # collected here; nothing propagates
        gc.collect()
    finally:
        signal.signal(signal.SIGTERM, previous)
    assert [d.exc_type for d in dropped] == [Stopped]


def test_a_signal_delivered_in_a_finalizer_is_acted_on_at_the_next_safe_point():
    with StopSignals() as stops:
        _SignalsWhenCollected(signal.SIGTERM)
        gc.collect()
        assert stops.received == signal.SIGTERM
        with pytest.raises(Stopped) as stopped:
            stops.check()
    assert stopped.value.signum == signal.SIGTERM
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL      # handlers restored


def test_inside_immediate_a_signal_raises_at_once_and_stays_recorded():
    with StopSignals() as stops:
        stops.check()                           # nothing yet
        with pytest.raises(Stopped):
            with stops.immediate():
                os.kill(os.getpid(), signal.SIGINT)
                time.sleep(1)
        with pytest.raises(Stopped):
            stops.check()
