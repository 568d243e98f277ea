"""``inflate``: a 2-D network's parameter values carried into its 3-D (video) version.

The paper's video networks start from ImageNet-trained octave ResNet-50s, inflated as
I3D inflates a 2-D network: each 2-D kernel (O, I, kh, kw) repeated over the ``kt``
frames of its 3-D kernel and divided by ``kt``; every other parameter (BatchNorm's, the
1x1x1 kernels) copied as it is. A static clip then gives every 3-D layer, away from the
first and last frames that the temporal zero padding reaches, the 2-D layer's output on
the frame; a C2D network (no temporal kernel) gives the 2-D network's output exactly.
Parameters are paired by where they sit in the two graphs
(:mod:`octconv.utils.inflation`), so the 2-D network may be hand-built (the released
models' names) and the 3-D one converted by ``octavize``.
"""
import mxnet as mx
import numpy as np

from ..utils.flops import infer_shape, trace_block
from ..utils.inflation import inflated_shape, pair_parameters

__all__ = ['inflate']


def inflate(net_2d, net_3d, skip='nonlocal', image_shape=(1, 3, 224, 224),
            clip_shape=(1, 3, 32, 224, 224)):
    """Set the parameters of ``net_3d`` (a Gluon HybridBlock taking (N, C, T, H, W)) from
    those of ``net_2d`` (taking (N, C, H, W)), the same network with 2-D layers, octave or
    not (an octave network's (high, low) pairs have the same split in both): kernels
    inflated, other values copied. Layers of ``net_3d`` whose parameter names match the
    regular expression ``skip`` (GluonCV's non-local blocks) keep their values, and so does
    a classifier with a different number of classes. ``image_shape`` and ``clip_shape``
    are the inputs the parameter shapes are inferred at (nothing is computed).

    Returns ``[(3-D name, 2-D name or None, how)]``, ``how`` one of ``'inflated'``,
    ``'copied'``, ``'kept'`` (the classifier) and ``'skipped'``. ValueError names a
    parameter of ``net_2d`` that was never initialised, or one that has no counterpart.
    """
    symbol_2d, _ = trace_block(net_2d)
    symbol_3d, _ = trace_block(net_3d)
    params_2d = {p.name: p for p in net_2d.collect_params().values()}
    params_3d = {p.name: p for p in net_3d.collect_params().values()}
    shapes_2d = _shapes(symbol_2d, image_shape, params_2d)
    shapes_3d = _shapes(symbol_3d, clip_shape, params_3d)
    report = []
    for name_3d, name_2d in pair_parameters(symbol_2d, shapes_2d, symbol_3d, shapes_3d, skip):
        param, shape = params_3d[name_3d], shapes_3d[name_3d]
        if name_2d is None:
            report.append((name_3d, None, 'skipped'))
            continue
        values = _values(params_2d[name_2d], shapes_2d[name_2d])
        if len(shape) == 5 and values.ndim == 4 and inflated_shape(values.shape, shape):
            frames = shape[2]
            values = np.repeat(values[:, :, None], frames, axis=2) / frames
            how = 'inflated'
        elif inflated_shape(values.shape, shape):      # the same values, maybe reshaped
            values = values.reshape(shape)              # (a classifier: 1x1 conv <-> dense)
            how = 'copied'
        else:                       # a classifier for another number of classes
            report.append((name_3d, name_2d, 'kept'))
            continue
        _set(param, values)
        report.append((name_3d, name_2d, how))
    return report


def _shapes(symbol, data_shape, params):
    """``{parameter: shape}`` of the parameters ``params`` in ``symbol`` at ``data_shape``."""
    args, _, aux = infer_shape(symbol, data=tuple(data_shape))
    if args is None:
        raise ValueError('inflate: cannot infer the parameter shapes at data %s'
                         % (tuple(data_shape),))
    names = symbol.list_arguments() + symbol.list_auxiliary_states()
    return {name: tuple(shape) for name, shape in zip(names, args + aux) if name in params}


def _values(param, shape):
    """The values of the 2-D ``param`` (of ``shape``); one initialised and waiting for its
    first batch is given its values now."""
    if param._data is None and param._deferred_init:
        param.shape = shape
        param._finish_deferred_init()
    if param._data is None:
        raise ValueError('inflate: the 2-D parameter %s has no values (initialise or load '
                         'the 2-D network first)' % param.name)
    return param.data(param.list_ctx()[0]).asnumpy()


def _set(param, values):
    """Give ``param`` ``values``, initialising it first when it has none yet."""
    if param._data is None:
        param.shape = values.shape
        if param._deferred_init:
            param._finish_deferred_init()
        else:
            param.initialize(ctx=mx.cpu())
    param.set_data(mx.nd.array(values, dtype=values.dtype))      # on every device
