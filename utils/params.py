"""Parameter files: read them, and check them against what a model needs (names and shapes)."""
import mxnet as mx

__all__ = ['CheckpointMismatch', 'read_parameter_file', 'check_parameters']


class CheckpointMismatch(ValueError):
    """A parameter file that does not belong to this model, ratio or options."""


def read_parameter_file(filename):
    """``{name: NDArray}`` of an MXNet parameter file, ``arg:``/``aux:`` prefixes removed.

    Raises :class:`CheckpointMismatch` when the file is not a parameter file.
    """
    try:
        loaded = mx.nd.load(filename)
    except mx.MXNetError as err:
        raise CheckpointMismatch('%s: not an MXNet parameter file (%s)'
                                 % (filename, str(err).splitlines()[0])) from None
    if not isinstance(loaded, dict):
        raise CheckpointMismatch('%s holds no named parameters' % filename)
    return {k.split(':', 1)[-1]: v for k, v in loaded.items()}


def check_parameters(loaded, expected, model, source, allow_missing=False, ignore_extra=False):
    """Compare ``loaded`` parameters (read from ``source``) with ``expected`` = ``{name: shape}``.

    Raises :class:`CheckpointMismatch` naming ``model``, ``source`` and the first
    parameter that is missing, unexpected or of another shape.
    """
    where = '%s cannot load %s' % (model, source)
    for name in sorted(expected):
        if name not in loaded:
            if not allow_missing:
                raise CheckpointMismatch('%s: parameter %s is missing from the file'
                                         % (where, name))
        elif tuple(loaded[name].shape) != tuple(expected[name]):
            raise CheckpointMismatch('%s: parameter %s has shape %s in the file, the model '
                                     'needs %s' % (where, name, tuple(loaded[name].shape),
                                                   tuple(expected[name])))
    extra = sorted(set(loaded) - set(expected))
    if extra and not ignore_extra:
        raise CheckpointMismatch('%s: the file has parameter %s, which the model does not have'
                                 % (where, extra[0]))
