"""Octave HybridBlocks: a drop-in for ``mxnet.gluon.nn`` on (high, low) pairs.

``import octconv.gluon.nn as nn`` gives ``Conv2D``, ``BatchNorm``,
``Activation``, ``AvgPool2D``, ``MaxPool2D``, ``SE`` and ``Adapter``. Each
block is called as ``block(x_high, x_low=None)`` and returns ``(high, low)``:
``high`` is (N, C_h, H, W), ``low`` is (N, C_l, ceil(H/2), ceil(W/2)); either
may be ``None``. Channel counts are ``(high, low)`` pairs where -1 (or 0)
marks an absent part; an int ``c`` means ``(c, -1)``. The graph of ``Conv2D``
comes from the same helper as the Symbol networks (``octconv.utils.octave``).

Parameter names follow the released checkpoints: ``conv.conv_h2l.weight``
structurally, ``<prefix>conv-h2l_weight`` once exported.
"""
import mxnet as mx
from mxnet.gluon import nn
from mxnet.gluon.block import HybridBlock

from ..utils.octave import (OPTIMIZED, PATHS, activation, merge_pair, octave_conv,
                            octave_pool, plan_octave_conv)

__all__ = ['OctaveBlock', 'Conv2D', 'BatchNorm', 'Activation', 'AvgPool2D', 'MaxPool2D', 'SE',
           'Adapter', 'to_pair']


class OctaveBlock(HybridBlock):
    """A block whose graph depends on ``graph`` (a :class:`~octconv.utils.octave.Graph`),
    :data:`~octconv.utils.octave.OPTIMIZED` unless its model sets another
    (:meth:`~octconv.gluon.base.OctaveModel.set_graph`)."""

    graph = OPTIMIZED


def to_pair(channels):
    """``(high, low)`` with -1 for an absent part, from an int or a pair (0 or -1 = absent)."""
    high, low = channels if isinstance(channels, (tuple, list)) else (channels, -1)
    return tuple(int(c) if c > 0 else -1 for c in (high, low))


def _value(F, param, like):
    """A parameter as ``F`` sees it: a variable when tracing, the array on ``like``'s device."""
    return param.var() if F is mx.sym else param.data(like.context)


class _PathWeights(HybridBlock):
    """The weight (and bias) of one path; holds parameters, computes nothing itself."""

    def __init__(self, weight_shape, use_bias, weight_initializer=None, bias_initializer='zeros',
                 **kwargs):
        super().__init__(**kwargs)
        with self.name_scope():
            self.weight = self.params.get('weight', shape=weight_shape, init=weight_initializer,
                                          allow_deferred_init=False)
            self.bias = (self.params.get('bias', shape=weight_shape[:1], init=bias_initializer)
                         if use_bias else None)


class Conv2D(OctaveBlock):
    """Octave 2-D convolution (paper Eq. 4).

    Parameters
    ----------
    channels, in_channels : int or (high, low)
        Output and input channels; -1 (or 0) marks an absent part. ``in_channels``
        must be given: it decides which paths exist.
    kernel_size, padding : int or pair
    strides : 1 or 2
        Stride 2 average-pools both parts before the convolutions.
    groups : int
        Grouped convolution on every path (``min(groups, out part)`` groups);
        ``groups == sum(in_channels)`` is depthwise (h2h and l2l only).
    use_bias : bool
        One bias per output part, on the path from the high part if it exists.
    enable_path : iterable of 'h2h', 'h2l', 'l2h', 'l2l'
        Leave a path out to switch it off.

    Call ``conv(x_high, x_low=None)`` -> ``(high, low)``.
    """

    def __init__(self, channels, kernel_size, strides=1, padding=0, in_channels=0, groups=1,
                 use_bias=True, enable_path=PATHS, weight_initializer=None,
                 bias_initializer='zeros', prefix=None, params=None):
        super().__init__(prefix=prefix, params=params)
        name = self.prefix.rstrip('_') or 'conv'
        self.spec = plan_octave_conv(name, in_channels, channels, kernel_size, stride=strides,
                                     pad=padding, groups=groups, use_bias=use_bias,
                                     enable=enable_path)
        with self.name_scope():
            for path, p in self.spec.paths.items():
                self.register_child(
                    _PathWeights(self.spec.weight_shape(path), p.use_bias,
                                 weight_initializer=weight_initializer,
                                 bias_initializer=bias_initializer, prefix='-%s_' % path),
                    'conv_' + path)

    def hybrid_forward(self, F, x_high, x_low=None):
        like = x_high if x_high is not None else x_low
        params = {}
        for path in self.spec.paths:
            weights = self._children['conv_' + path]
            params[path] = (_value(F, weights.weight, like),
                            None if weights.bias is None else _value(F, weights.bias, like))
        return octave_conv(F, self.spec, x_high, x_low, params, name='', graph=self.graph)

    def __repr__(self):
        s = self.spec
        return '%s(%s -> %s, kernel=%s, stride=%d, paths=%s)' % (
            type(self).__name__, s.in_channels, s.channels, s.kernel, s.stride,
            ','.join(s.paths))


class BatchNorm(HybridBlock):
    """``nn.BatchNorm`` on each part (children ``bn_h``, ``bn_l``; names ``<prefix>-h_gamma``).

    ``in_channels`` is (high, low) with -1 for an absent part; other keyword
    arguments go to ``mxnet.gluon.nn.BatchNorm`` (momentum, epsilon, center, scale,
    use_global_stats, gamma_initializer...).
    """

    def __init__(self, in_channels=0, prefix=None, params=None, **kwargs):
        super().__init__(prefix=prefix, params=params)
        counts = to_pair(in_channels)
        if counts == (-1, -1):
            raise ValueError('BatchNorm %s: give in_channels as (high, low), got %r'
                             % (self.prefix, in_channels))
        self._parts = {}
        with self.name_scope():
            for part, count in zip('hl', counts):
                if count > 0:
                    self._parts[part] = 'bn_' + part
                    self.register_child(nn.BatchNorm(in_channels=count, prefix='-%s_' % part,
                                                     **kwargs), 'bn_' + part)

    def hybrid_forward(self, F, x_high, x_low=None):
        return tuple(None if x is None else self._children[self._parts[part]](x)
                     for part, x in zip('hl', (x_high, x_low)))


class Activation(OctaveBlock):
    """The same activation on each part: 'relu', 'relu6', 'sigmoid', 'tanh', 'softrelu'...

    Operators are named ``<prefix>-h`` and ``<prefix>-l``.
    """

    def __init__(self, activation='relu', prefix=None, params=None):
        super().__init__(prefix=prefix, params=params)
        self.activation = activation

    def _apply(self, F, x, part):
        return activation(F, x, self.activation, counted=False, name='-' + part,
                          graph=self.graph)

    def hybrid_forward(self, F, x_high, x_low=None):
        return tuple(None if x is None else self._apply(F, x, part)
                     for x, part in zip((x_high, x_low), 'hl'))


class _Pool2D(OctaveBlock):
    pool_type = None

    def __init__(self, pool_size, strides=None, padding=0, ceil_mode=False,
                 count_include_pad=False, in_channels=0, **kwargs):
        super().__init__(**kwargs)
        pair = (lambda v: (v, v) if isinstance(v, int) else tuple(v))
        self._kwargs = dict(kernel=pair(pool_size), stride=pair(strides or pool_size),
                            pad=pair(padding), pool_type=self.pool_type,
                            pooling_convention='full' if ceil_mode else 'valid')
        if self.pool_type == 'avg':
            self._kwargs['count_include_pad'] = count_include_pad

    def hybrid_forward(self, F, x_high, x_low=None):
        return octave_pool(F, x_high, x_low, name='', graph=self.graph, **self._kwargs)


class AvgPool2D(_Pool2D):
    """Average pooling of each part; the low part stays at half the high part for odd sizes.

    ``count_include_pad`` defaults to False, as in the reference.
    """

    pool_type = 'avg'


class MaxPool2D(_Pool2D):
    """Max pooling of each part; the low part stays at half the high part for odd sizes."""

    pool_type = 'max'


class SE(OctaveBlock):
    """Squeeze-and-excitation over both parts.

    Global average pooling of each part, concatenated; 1x1 conv ``conv1`` to
    ``channels`` with relu; 1x1 convs ``conv2_h`` / ``conv2_l`` back to each part
    with sigmoid; the parts are rescaled by their gates.
    """

    def __init__(self, channels, in_channels=0, prefix=None, params=None):
        super().__init__(prefix=prefix, params=params)
        high, low = to_pair(in_channels)
        if high < 0 and low < 0:
            raise ValueError('SE %s: give in_channels as (high, low), got %r'
                             % (prefix, in_channels))
        self._parts = {}
        with self.name_scope():
            self.conv1 = nn.Conv2D(channels, kernel_size=1, in_channels=max(high, 0) + max(low, 0),
                                   prefix='-conv1_')
            for part, count in (('h', high), ('l', low)):
                if count > 0:
                    self._parts[part] = 'conv2_' + part
                    self.register_child(nn.Conv2D(count, kernel_size=1, in_channels=channels,
                                                  prefix='-conv2-%s_' % part), 'conv2_' + part)

    def hybrid_forward(self, F, x_high, x_low=None):
        present = [(part, x) for part, x in zip('hl', (x_high, x_low)) if x is not None]
        pooled = [F.Pooling(x, kernel=(1, 1), global_pool=True, pool_type='avg')
                  for _, x in present]
        merged = pooled[0] if len(pooled) == 1 else F.concat(*pooled, dim=1)
        squeezed = activation(F, self.conv1(merged), counted=False, graph=self.graph)
        out = {part: F.broadcast_mul(x, F.sigmoid(self._children[self._parts[part]](squeezed)))
               for part, x in present}
        return out.get('h'), out.get('l')


class Adapter(OctaveBlock):
    """Merges a pair into one map: the low part upsampled to the high size, concatenated.

    Returns (N, C_h + C_l, H, W); a lone part is returned as it is.
    """

    def hybrid_forward(self, F, x_high, x_low=None):
        return merge_pair(F, x_high, x_low, graph=self.graph)
