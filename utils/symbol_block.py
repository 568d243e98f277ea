"""Gluon blocks of MXNet symbols, built without MXNet's "Cannot decide type" warning."""
import contextlib
import warnings

__all__ = ['symbol_block', 'quiet_untyped_input']


@contextlib.contextmanager
def quiet_untyped_input():
    """For the duration, MXNet 1.9.1's warning that a symbol's input has no type yet
    ("Cannot decide type", given whenever a ``SymbolBlock`` is built) is not shown: a
    block's input takes the type of its first batch, so the warning says nothing."""
    with warnings.catch_warnings():
        warnings.filterwarnings('ignore', message='Cannot decide type')
        yield


def symbol_block(symbol, params=None):
    """A ``SymbolBlock`` of ``symbol`` with its one input ``data`` (N, C, H, W) and its
    outputs, sharing ``params`` (a ``ParameterDict``) if given, built without the warning
    of :func:`quiet_untyped_input`."""
    import mxnet as mx
    with quiet_untyped_input():
        return mx.gluon.SymbolBlock(symbol, mx.sym.var('data'), params=params)
