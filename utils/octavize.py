"""Octave networks from any network: a rewrite of an MXNet symbol graph.

:func:`rewrite` walks a network's graph in order and rebuilds it on ``(high, low)``
pairs with the octave-op helper (:mod:`octconv.utils.octave`), as a user would by hand:

- every convolution becomes an octave convolution (Eq. 4) whose output is split at the
  ratio its :class:`~octconv.utils.placement.Layer` gets from the policy (see
  :mod:`octconv.utils.placement`); a depthwise one keeps its input's split, a grouped one
  keeps its groups on every path. One that does not keep or halve the map's size (an
  unpadded 3x3, an even kernel) takes the general form of
  :func:`~octconv.utils.octave.octave_conv`, with the plain convolution's output size; a
  zero ``Pad`` read only by octave convolutions becomes their padding;
- BatchNorm, activations (PReLU with its slope split per part), element-wise arithmetic,
  dropout, pooling, nearest upsampling, bilinear resizing to a size, padding, spatial
  slicing, sums and channel concatenations act on each part (a single map meeting a pair
  is split first: channels sliced as the pair's, the low slice average-pooled); the low
  part of a padded, sliced or resized map is kept at half its high part;
- global pooling, and a mean or maximum over the spatial axes (a squeeze-excitation's),
  pool each part and join them into one map;
- what needs one tensor (flatten, a fully-connected layer, reshapes, ``expand_dims``,
  other reductions, a window that pools the whole map at ``data_shape``, adaptive pooling
  to a size other than 1x1, slices of channels, resizing by a scale, a graph output)
  gets the merged map ``concat(high, upsample(low))``, channels in their original order;
- an operator with a pair for input that is none of these raises ``ValueError`` naming
  the node and the operator.

A concatenation of pairs puts its inputs' high parts first: where each original channel
went is tracked (:mod:`octconv.utils.channel_order`), for the parameter slices of
``copy_weights`` and to merge maps in the original's channel order.

New parameters are named after the original's, the path or part inserted before the
suffix (``stage1_conv1_weight`` -> ``stage1_conv1_h2l_weight``, ``bn1_gamma`` ->
``bn1_h_gamma``), and keep its attributes (initializer, learning-rate and
weight-decay multipliers) but its shape.

:func:`convert` also checks the result: at ``data_shape`` and at the smallest input the
original takes, every node's output in the octave graph has the original's size (a pair:
its high part that size, its low part half of it, rounded up, and their channels the
original's). Where the original takes inputs so small that a map of one pixel would have to
halve, which MXNet's 2x2 pooling refuses, a second graph with the same parameters is made
for them (:attr:`Conversion.small_maps`).
"""
import json
import re
from collections import namedtuple

import numpy as np

from .channel_order import concat_orders, gather, joined, part_index
from .flops import attr_is_true, attr_tuple, infer_shape, node_shapes
from .octave import (check_ratio, concat_channels, crops_are_noops, downsample,
                     graph_options, half_grid, merge_pair, octave_axes, octave_conv,
                     octave_pool, plan_octave_conv, split_channels, upsample_like)
from .placement import POLICIES, Layer, is_depthwise, place

__all__ = ['Layer', 'POLICIES', 'Origin', 'Conversion', 'rewrite', 'convert',
           'smallest_input', 'sized', 'take']

Origin = namedtuple('Origin', ['name', 'index'])
Origin.__doc__ = """Where a parameter of the rewritten graph comes from: the original
parameter ``name`` and ``index``, a tuple with one entry per leading axis of the original's
array, each a slice or an integer array of the positions taken along that axis (``()``:
the whole array, an unchanged layer; ``None``: no part of it, as for the paths of a grouped
convolution). :func:`take` applies it."""

Conversion = namedtuple('Conversion', ['symbol', 'origins', 'smallest', 'graph_from',
                                       'small_maps', 'even_maps'])
Conversion.__doc__ = """What :func:`convert` returns. ``symbol``: the octave graph, which
takes ``data_shape`` and every square input from ``graph_from`` pixels up; ``origins``:
``{parameter: Origin}``; ``smallest``: the smallest square input the original takes (None
when it does not take the square of ``data_shape``'s smaller side; ``graph_from`` is then
None too); ``small_maps``: None when ``graph_from`` is ``smallest``, else the graph with
the same parameters that takes every input from ``smallest`` up; ``even_maps``: the graph
with the same parameters for the inputs on which every map of ``symbol`` has even sides
(:func:`~octconv.utils.octave.crops_are_noops`), without the crops and padding odd sides
need (None when ``symbol`` has none)."""

# Operators applied to each part alike (one data input, no parameters).
_UNARY = {'Activation', 'LeakyReLU', 'relu', 'sigmoid', 'tanh', 'softsign', 'clip',
          'Dropout', 'hard_sigmoid', 'exp', 'abs', 'square', 'sqrt', 'negative', 'identity',
          '_copy', 'BlockGrad', 'Cast', 'amp_cast', 'erf', 'log', 'reciprocal', 'ones_like',
          'zeros_like',
          '_plus_scalar', '_minus_scalar', '_rminus_scalar', '_mul_scalar', '_div_scalar',
          '_rdiv_scalar', '_power_scalar', '_maximum_scalar', '_minimum_scalar'}
_BINARY = {'elemwise_add', 'elemwise_sub', 'elemwise_mul', 'elemwise_div', 'broadcast_add',
           'broadcast_sub', 'broadcast_mul', 'broadcast_div', 'broadcast_plus',
           'broadcast_minus', 'broadcast_maximum', 'broadcast_minimum', '_Plus', '_Minus',
           '_Mul', '_Div', '_plus', '_minus', '_mul', '_div', '_maximum', '_minimum',
           'ElementWiseSum', 'add_n'}
# Operators that need one tensor: a pair is merged for them.
_MERGING = {'Flatten', 'flatten', 'FullyConnected', 'SoftmaxOutput', 'softmax', 'log_softmax',
            'SoftmaxActivation', 'Reshape', 'reshape', 'reshape_like', 'expand_dims', 'mean',
            'sum', 'max', 'min', 'norm', 'Pooling', '_contrib_AdaptiveAvgPooling2D', 'slice',
            'slice_axis', '_contrib_BilinearResize2D'}
# Global reductions done on each part (a mean or maximum of the merged map is the joined
# means or maxima of the parts).
_PART_REDUCTIONS = ('mean', 'max', 'min')


class _Value(namedtuple('_Value', ['high', 'low', 'channels', 'order'])):
    """A node's output in the rewritten graph: a single map (``low`` None, channels
    ``(C, 0)``) or a pair ``(high, low)`` with channels ``(C_h, C_l)`` and ``order``, the
    original channel at each position (None: in order; see
    :mod:`octconv.utils.channel_order`)."""

    @property
    def is_pair(self):
        return self.low is not None


_Value.__new__.__defaults__ = (None,)


def _nearest_upsampling(node):
    """Whether ``node`` is a nearest-neighbour ``UpSampling`` (which keeps a pair's low
    part at half its high part when applied to both)."""
    return node['op'] == 'UpSampling' and node.get('attrs', {}).get('sample_type') == 'nearest'


def _operator(op):
    """The ``mx.sym`` function of the operator named ``op`` in a graph's JSON."""
    import mxnet as mx
    if op.startswith('_contrib_') and hasattr(mx.sym.contrib, op[len('_contrib_'):]):
        return getattr(mx.sym.contrib, op[len('_contrib_'):])
    for module in (mx.sym, mx.sym._internal):
        if hasattr(module, op):
            return getattr(module, op)
    raise ValueError('octavize: no mx.sym operator %r' % op)


def _call(op, inputs, name, attrs):
    """``op`` on the symbols ``inputs`` with the node's string ``attrs`` (``__x__`` ones as
    symbol attributes)."""
    kwargs = {k: v for k, v in attrs.items() if not k.startswith('__')}
    extra = {k: v for k, v in attrs.items() if k.startswith('__')}
    if extra:
        kwargs['attr'] = extra
    return _operator(op)(*inputs, name=name, **kwargs)


def _outputs_mean_var(attrs):
    """Whether a BatchNorm of ``attrs`` also outputs its batch's mean and variance."""
    return attr_is_true(attrs.get('output_mean_var', 'False'))


def _entries(value):
    """An MXNet tuple attribute with ``None`` entries (``'(0, 0, 1, None)'``) as a list."""
    return [None if item.strip() == 'None' else int(item)
            for item in re.findall(r'-?\d+|None', str(value))]


# Parameter name endings that initializers read (``Initializer`` dispatches on them).
_SUFFIXES = ('running_mean', 'running_var', 'moving_mean', 'moving_var', 'weight', 'bias',
             'gamma', 'beta', 'alpha')


def _part_name(name, part):
    """``a_b_weight`` -> ``a_b_<part>_weight``, ``bn_running_mean`` ->
    ``bn_<part>_running_mean``: the parameter of ``part`` of ``name``."""
    suffix = next((s for s in _SUFFIXES if name.endswith('_' + s)), name.rpartition('_')[2])
    stem = name[:-len(suffix) - 1]
    return '%s_%s_%s' % (stem, part, suffix) if stem else '%s_%s' % (name, part)


def take(array, index):
    """The part of the numpy ``array`` that ``index`` (an :class:`Origin`'s) names, one
    leading axis after the other."""
    for axis, positions in enumerate(index):
        array = array[(slice(None),) * axis + (positions,)]
    return array


def _mxnet_message(err):
    """The line of an MXNet error that says what failed (not its traceback)."""
    lines = [line.strip() for line in str(err).splitlines() if line.strip()]
    for line in lines:
        if 'Error in operator' in line or 'Check failed' in line:
            return line
    return next((line for line in reversed(lines) if not line.startswith(('File ', '['))),
                lines[-1] if lines else type(err).__name__)


class _Rewriter:
    """One pass over a graph's nodes (see the module); :meth:`run` returns the new heads."""

    def __init__(self, symbol, ratio, data_shape, policy, data_name, one_pixel_maps=False,
                 even_sizes=False):
        import mxnet as mx
        self.F = mx.sym
        self.graph = graph_options('optimized', even_sizes=even_sizes,
                                   one_pixel_maps=one_pixel_maps)
        self.dims = len(data_shape) - 2         # the spatial axes of the maps octave pairs hold
        self.octave = octave_axes(self.dims)
        self.ratio = max(check_ratio(ratio), 0.)
        self.symbol = symbol
        graph = json.loads(symbol.tojson())
        self.nodes, self.heads = graph['nodes'], graph['heads']
        self.data_name = data_name
        self.shapes = original_shapes(symbol, data_shape, data_name)
        self.consumers = {i: [] for i in range(len(self.nodes))}
        for i, node in enumerate(self.nodes):
            for entry in node['inputs']:
                self.consumers[entry[0]].append(i)
        placement = place(self.nodes, self.shapes, data_shape, policy, self.ratio)
        self.ratios, self.is_global = placement.ratios, placement.is_global
        self.origins = {}
        self.values = {}
        self.folded = {}
        self.internals = symbol.get_internals()
        self.positions = {name: k for k, name in enumerate(self.internals.list_outputs())}

    # -- the walk ---------------------------------------------------------------------------
    def run(self):
        """The rewritten graph (its outputs merged, in the original's order)."""
        import mxnet as mx
        for i, node in enumerate(self.nodes):
            if node['op'] == 'null':
                self.values[(i, 0)] = _Value(self.internals[self.positions[node['name']]],
                                             None, (self._channels(i), 0))
                continue
            inputs = [self.values[(e[0], e[1])] for e in node['inputs']]
            for k, value in enumerate(self._node(i, node, inputs)):
                self.values[(i, k)] = value
        heads = [self._single(self.values[(i, k)], self.nodes[i]['name'])
                 for i, k, _ in self.heads]
        symbol = heads[0] if len(heads) == 1 else mx.sym.Group(heads)
        variables = {node['name'] for node in self.nodes if node['op'] == 'null'}
        for name in symbol.list_arguments() + symbol.list_auxiliary_states():
            if name not in self.origins and name in variables and name != self.data_name:
                self.origins[name] = Origin(name, ())
        return symbol

    def _channels(self, i, k=0):
        shape = self.shapes.get((i, k), ())
        return shape[1] if len(shape) > 1 else 0

    def _single(self, value, name):
        """The one map of ``value``: a pair merged, channels in their original order."""
        if not value.is_pair:
            return value.high
        if value.order is None:
            return merge_pair(self.F, value.high, value.low, name + '_merge', graph=self.graph,
                              dims=self.dims)
        up = upsample_like(self.F, value.low, value.high, name=name + '_merge_low',
                           graph=self.graph, dims=self.dims)
        return joined(self.F, value.high, up, value.channels, value.order, name + '_merge')

    def _copy(self, i, node, inputs):
        """The node as it was, on single inputs (pairs merged first)."""
        symbols = [self._single(v, '%s_in%d' % (node['name'], k)) for k, v in enumerate(inputs)]
        if node['op'] == 'BatchNorm' and not _outputs_mean_var(node.get('attrs', {})):
            return [_Value(self._bn(symbols, node['name'], node.get('attrs', {})), None,
                           (self._channels(i), 0))]
        out = _call(node['op'], symbols, node['name'], node.get('attrs', {}))
        count = len(out.list_outputs())
        return [_Value(out[k] if count > 1 else out, None, (self._channels(i, k), 0))
                for k in range(count)]

    def _node(self, i, node, inputs):
        op = node['op']
        if op == 'Convolution':
            return [self._convolution(i, node, inputs)]
        if op == 'Pad' and self._folds(i, inputs[0]):
            self.folded[i] = tuple(before for before, _ in self._pad_widths(node))
            return [inputs[0]]
        if not any(v.is_pair for v in inputs):
            return self._copy(i, node, inputs)
        attrs = node.get('attrs', {})
        if op == 'BatchNorm':
            return [self._batch_norm(node, inputs)]
        if op == 'LeakyReLU' and attrs.get('act_type') == 'prelu':
            return [self._prelu(node, inputs)]
        if (op in _UNARY or _nearest_upsampling(node)) and len(node['inputs']) == 1:
            return [self._per_part(node, inputs)]
        if op in _BINARY:
            return [self._per_part(node, self._alike(node, inputs))]
        if op in ('Concat', 'concat'):
            return [self._concat(node, inputs)]
        if op == 'Pad':
            return [self._pad(node, inputs[0])]
        if op == 'Pooling' and not (self.is_global[i] and
                                    not attr_is_true(attrs.get('global_pool', 'False'))) or \
                op == '_contrib_AdaptiveAvgPooling2D' and self.is_global[i]:
            return [self._pooling(i, node, inputs)]
        if op in _PART_REDUCTIONS and self.is_global[i]:
            return [self._reduction(node, inputs[0])]
        if op in ('slice', 'slice_axis') and self._spatial_slice(node, inputs[0]) is not None:
            return [self._slice(node, inputs[0])]
        if op == '_contrib_BilinearResize2D' and self._resizes_to_size(node, inputs):
            return [self._resize(node, inputs)]
        if op in _MERGING:
            return self._copy(i, node, inputs)
        raise ValueError('octavize: node %s (operator %s) takes an octave (high, low) pair '
                         'and has no octave form; octavize converts convolutions, BatchNorm, '
                         'activations, element-wise arithmetic, pooling, padding, spatial '
                         'slices, nearest upsampling, bilinear resizing, concatenation and '
                         'dropout, and merges the pair for flatten, fully-connected layers, '
                         'reshapes and reductions' % (node['name'], op))

    def _per_part(self, node, inputs):
        """``node``'s operator on the high parts and on the low parts."""
        attrs = node.get('attrs', {})
        parts = []
        for part, index in (('h', 0), ('l', 1)):
            symbols = [v.high if index == 0 else v.low for v in inputs]
            parts.append(_call(node['op'], symbols, '%s_%s' % (node['name'], part), attrs))
        return _Value(parts[0], parts[1], inputs[0].channels, inputs[0].order)

    # -- splitting and re-splitting maps ----------------------------------------------------
    def _split(self, x, count, channels, order, spatial, name):
        """The single map ``x`` (N, ``count``, ...), channels in the original order, as a
        pair of ``channels`` and ``order`` (a single channel, ``count`` 1, is shared by both
        parts); the low part average-pooled 2x2 unless ``spatial`` is False (a 1x1 map that
        broadcasts)."""
        F = self.F
        high = low = x
        if count > 1 and order is None:
            high = F.slice_axis(x, axis=1, begin=0, end=channels[0], name=name + '_split_h')
            low = F.slice_axis(x, axis=1, begin=channels[0], end=sum(channels),
                               name=name + '_split_l')
        elif count > 1:
            high = gather(F, x, order[:channels[0]], name + '_split_h')
            low = gather(F, x, order[channels[0]:], name + '_split_l')
        if spatial:
            low = downsample(F, low, name=name + '_split_down', graph=self.graph, dims=self.dims)
        return _Value(high, low, channels, order)

    def _as_pair(self, value, like, name):
        """``value`` (a pair) as a pair of ``like``'s channels and order: its parts' channels
        reordered when each part holds the same channels, else merged and split again."""
        if value.channels == like.channels and value.order == like.order:
            return value
        mine = [set(np.ravel(np.arange(sum(value.channels))[part_index(
            value.channels, value.order, p)])) for p in (0, 1)]
        theirs = [set(np.ravel(np.arange(sum(like.channels))[part_index(
            like.channels, like.order, p)])) for p in (0, 1)]
        if mine != theirs:
            single = self._single(value, name)
            return self._split(single, sum(value.channels), like.channels, like.order, True,
                               name)
        position = {channel: k for k, channel in enumerate(
            value.order or range(sum(value.channels)))}
        wanted = like.order or tuple(range(sum(like.channels)))
        start = value.channels[0]
        high = gather(self.F, value.high, [position[c] for c in wanted[:start]], name + '_h')
        low = gather(self.F, value.low, [position[c] - start for c in wanted[start:]],
                     name + '_l')
        return _Value(high, low, like.channels, like.order)

    def _alike(self, node, inputs):
        """The inputs of an element-wise operator as pairs of the first pair's split."""
        like = next(v for v in inputs if v.is_pair)
        out = []
        for k, (value, entry) in enumerate(zip(inputs, node['inputs'])):
            name = '%s_in%d' % (node['name'], k)
            if value.is_pair:
                out.append(self._as_pair(value, like, name))
                continue
            shape = self.shapes[(entry[0], entry[1])]
            spatial = len(shape) >= 3 and any(s > 1 for s in shape[2:])
            count = shape[1] if len(shape) > 1 else 1
            if count not in (1, sum(like.channels)):
                raise ValueError('octavize: node %s (operator %s) combines a map of %d channels '
                                 'with an octave pair of %d' % (node['name'], node['op'],
                                                                count, sum(like.channels)))
            out.append(self._split(value.high, count, like.channels, like.order, spatial, name))
        return out

    # -- operators with parameters ----------------------------------------------------------
    def _new_param(self, original, part, shape, index):
        """A variable for ``part`` of the parameter node ``original`` (its attributes
        but shape), recorded with its origin."""
        source = self.nodes[original]
        name = _part_name(source['name'], part)
        attrs = {k: v for k, v in source.get('attrs', {}).items() if k != '__shape__'}
        self.origins[name] = Origin(source['name'], index)
        return self.F.var(name, shape=shape, attr=attrs or None)

    def _batch_norm(self, node, inputs):
        value = inputs[0]
        outs = []
        for k, (part, x) in enumerate((('h', value.high), ('l', value.low))):
            window = (part_index(value.channels, value.order, k),)
            params = [self._new_param(entry[0], part, (value.channels[k],), window)
                      for entry in node['inputs'][1:]]
            outs.append(self._bn([x] + params, '%s_%s' % (node['name'], part),
                                 node.get('attrs', {})))
        return _Value(outs[0], outs[1], value.channels, value.order)

    def _bn(self, inputs, name, attrs):
        """BatchNorm of ``inputs`` (the map, then gamma, beta and the running statistics).
        A video map (N, C, T, H, W) is normalised as the (N, C, T*H, W) map it reshapes to,
        the same statistics over the same values: MXNet 1.9.1's oneDNN BatchNorm backward
        fails on 5-D maps that follow a convolution ("Check failed: !is_view",
        apache/mxnet#20858), and the 4-D view trains."""
        x = inputs[0]
        if self.dims != 3 or int(attrs.get('axis', 1)) not in (1, -4) or \
                _outputs_mean_var(attrs):
            return _call('BatchNorm', inputs, name, attrs)
        flat = self.F.reshape(x, shape=(0, 0, -1, 0), name=name + '_4d')
        out = _call('BatchNorm', [flat] + inputs[1:], name, attrs)
        return self.F.reshape_like(out, x, name=name + '_5d')

    def _prelu(self, node, inputs):
        """PReLU on each part, its slope split per part (one slope shared by every channel
        stays one)."""
        value, entry = inputs[0], node['inputs'][1]
        shared = int(np.prod(self.shapes[(entry[0], entry[1])])) == 1
        outs = []
        for k, (part, x) in enumerate((('h', value.high), ('l', value.low))):
            window = (part_index(value.channels, value.order, k),)
            slope = inputs[1].high if shared else self._new_param(
                entry[0], part, (value.channels[k],), window)
            outs.append(_call('LeakyReLU', [x, slope], '%s_%s' % (node['name'], part),
                              node.get('attrs', {})))
        return _Value(outs[0], outs[1], value.channels, value.order)

    def _convolution(self, i, node, inputs):
        attrs = node.get('attrs', {})
        value = inputs[0]
        channels_out = int(attrs['num_filter'])
        groups = int(attrs.get('num_group', 1))
        depthwise = is_depthwise(node, sum(value.channels))
        ratio = None if depthwise else self.ratios[i]
        if not value.is_pair and (depthwise or ratio == 0):
            return self._copy(i, node, inputs)[0]
        name = node['name']
        kernel = attr_tuple(attrs.get('kernel'))
        stride = attr_tuple(attrs.get('stride'), (1,) * len(kernel))
        pad = attr_tuple(attrs.get('pad'), (0,) * len(kernel))
        pad = tuple(p + w for p, w in zip(pad, self.folded.get(node['inputs'][0][0],
                                                                (0,) * len(kernel))))
        if len(kernel) != self.dims or set(attr_tuple(attrs.get('dilate'), (1,))) != {1}:
            raise ValueError('octavize: node %s (operator Convolution): only convolutions '
                             'without dilation over the %d spatial axes of the input have an '
                             'octave form (kernel %s, dilate %s)'
                             % (name, self.dims, attrs.get('kernel'), attrs.get('dilate', '1')))
        out = value.channels if depthwise else split_channels(channels_out, ratio)
        use_bias = not attr_is_true(attrs.get('no_bias', 'False'))
        spec = plan_octave_conv(name, value.channels, out, kernel, stride=stride, pad=pad,
                                groups=groups, use_bias=use_bias)
        weight, bias = node['inputs'][1][0], (node['inputs'][2][0] if use_bias else None)
        order_out = value.order if depthwise else None
        windows_in = [part_index(value.channels, value.order, k) for k in (0, 1)]
        windows_out = [part_index(out, order_out, k) for k in (0, 1)]
        params = {}
        for path, p in spec.paths.items():
            source, target = 'hl'.index(path[0]), 'hl'.index(path[2])
            copyable = groups == 1 or depthwise
            window = ((windows_out[target],) + (() if depthwise else (windows_in[source],))
                      if copyable else None)
            params[path] = (
                self._new_param(weight, path, spec.weight_shape(path), window),
                None if not p.use_bias else
                self._new_param(bias, path, (p.channels,),
                                None if window is None else window[:1]))
        high, low = octave_conv(self.F, spec, value.high, value.low, params, name=name,
                                graph=self.graph)
        if low is None:
            return _Value(high, None, (out[0], 0))
        return _Value(high, low, out, order_out)

    # -- joining, pooling, reducing ---------------------------------------------------------
    def _concat(self, node, inputs):
        dim = int(node.get('attrs', {}).get('dim', 1))
        if dim != 1:
            raise ValueError('octavize: node %s (operator %s) joins octave pairs along axis '
                             '%d; only channel concatenation (axis 1) has an octave form'
                             % (node['name'], node['op'], dim))
        pairs = []
        for k, value in enumerate(inputs):
            if not value.is_pair:
                count = value.channels[0]
                value = self._split(value.high, count, split_channels(count, self.ratio),
                                    None, True, '%s_in%d' % (node['name'], k))
            pairs.append(value)
        parts = []
        for part, index in (('h', 0), ('l', 1)):
            present = [(v.high, v.low)[index] for v in pairs if v.channels[index]]
            parts.append(present[0] if len(present) == 1 else
                         concat_channels(self.F, present, name='%s_%s' % (node['name'], part)))
        channels = tuple(sum(v.channels[k] for v in pairs) for k in (0, 1))
        return _Value(parts[0], parts[1], channels,
                      concat_orders([(v.channels, v.order) for v in pairs]))

    def _pooling(self, i, node, inputs):
        value = inputs[0]
        attrs = node.get('attrs', {})
        name = node['name']
        if self.is_global[i]:              # each part pooled, then joined: one (N, C, 1, 1)
            parts = [_call(node['op'], [x], '%s_%s' % (name, part), attrs)
                     for part, x in (('h', value.high), ('l', value.low))]
            return _Value(joined(self.F, parts[0], parts[1], value.channels, value.order,
                                 name), None, (sum(value.channels), 0))
        kwargs = {k: v for k, v in attrs.items() if not k.startswith('__')}
        for key in ('kernel', 'stride', 'pad'):
            if key in kwargs:
                kwargs[key] = attr_tuple(kwargs[key])
        for key in ('count_include_pad', 'cudnn_off', 'global_pool'):
            if key in kwargs:
                kwargs[key] = attr_is_true(kwargs[key])
        high, low = octave_pool(self.F, value.high, value.low, name=name, graph=self.graph,
                                **kwargs)
        return _Value(high, low, value.channels, value.order)

    def _reduction(self, node, value):
        """A mean, maximum or minimum over every spatial axis: of each part, joined."""
        keep = attr_is_true(node.get('attrs', {}).get('keepdims', 'False'))
        parts = [_call(node['op'], [x], '%s_%s' % (node['name'], part), node.get('attrs', {}))
                 for part, x in (('h', value.high), ('l', value.low))]
        return _Value(joined(self.F, parts[0], parts[1], value.channels, value.order,
                             node['name'], spatial=keep), None, (sum(value.channels), 0))

    # -- padding, slicing, resizing ---------------------------------------------------------
    def _pad_widths(self, node):
        """The (before, after) widths of a ``Pad`` node per spatial axis; ValueError when it
        pads the batch or channel axis."""
        widths = attr_tuple(node.get('attrs', {}).get('pad_width'))
        if any(widths[:4]):
            raise ValueError('octavize: node %s (operator Pad) pads the batch or channel axis '
                             '(pad_width %s); only spatial padding has an octave form'
                             % (node['name'], widths))
        return [(widths[k], widths[k + 1]) for k in range(4, len(widths), 2)]

    def _folds(self, i, value):
        """Whether the ``Pad`` node ``i`` is a symmetric zero padding read only by octave
        convolutions, which then take it as their own padding."""
        attrs = self.nodes[i].get('attrs', {})
        widths = attr_tuple(attrs.get('pad_width'))
        if attrs.get('mode', 'constant') != 'constant' or \
                float(attrs.get('constant_value', 0)) != 0 or any(widths[:4]) or \
                any(widths[k] != widths[k + 1] for k in range(4, len(widths), 2)):
            return False
        for j in self.consumers[i]:
            node = self.nodes[j]
            if node['op'] != 'Convolution' or node['inputs'][0][0] != i:
                return False
            if not value.is_pair and (is_depthwise(node, sum(value.channels)) or
                                      self.ratios.get(j, 0) == 0):
                return False
        return True

    def _pad(self, node, value):
        """Padding of each part: the high part as asked, the low part by half (rounded up),
        then cropped to half the padded high part."""
        widths = self._pad_widths(node)
        attrs = dict(node.get('attrs', {}))
        high = _call('Pad', [value.high], node['name'] + '_h', attrs)
        attrs['pad_width'] = str(tuple([0] * 4 + [-(-w // 2) if axis in self.octave else w
                                                  for axis, pair in enumerate(widths)
                                                  for w in pair]))
        low = _call('Pad', [value.low], node['name'] + '_l_wide', attrs)
        return _Value(high, self._half_of(low, high, node['name'] + '_l'), value.channels,
                      value.order)

    def _half_of(self, low, high, name):
        """``low`` cropped to half of ``high``'s size, rounded up."""
        return self.F.slice_like(low, half_grid(self.F, high, name=name + '_grid',
                                                dims=self.dims),
                                 axes=tuple(2 + a for a in self.octave), name=name)

    def _spatial_slice(self, node, value):
        """``(begin, end)`` per spatial axis of a step-1 slice of the spatial axes only, else
        None (a slice that the merged map takes)."""
        attrs = node.get('attrs', {})
        rank = 2 + self.dims
        if node['op'] == 'slice_axis':
            axis = int(attrs['axis']) % rank
            if axis < 2:
                return None
            bounds = [(0, None)] * self.dims
            end = attrs.get('end', 'None')
            bounds[axis - 2] = (int(attrs['begin']), None if end == 'None' else int(end))
            return bounds
        begin, end = _entries(attrs.get('begin')), _entries(attrs.get('end'))
        step = _entries(attrs.get('step', '()'))
        begin += [None] * (rank - len(begin))
        end += [None] * (rank - len(end))
        if any(s not in (None, 1) for s in step) or any(b not in (None, 0) for b in begin[:2]) \
                or any(e is not None for e in end[:2]):
            return None
        return [(begin[k] or 0, end[k]) for k in range(2, rank)]

    def _slice(self, node, value):
        """A slice of the spatial axes: the high part as asked; the low part from half the
        start (rounded down) to half the end (rounded up) along the axes it halves, as asked
        along the others (a video's time), cropped to half the high part."""
        bounds = self._spatial_slice(node, value)

        def low_bound(begin, end):
            return (begin // 2 if begin >= 0 else -(-(-begin) // 2),
                    None if end is None or end < 0 else -(-end // 2))
        high = _call(node['op'], [value.high], node['name'] + '_h', node.get('attrs', {}))
        halves = [low_bound(*pair) if axis in self.octave else pair
                  for axis, pair in enumerate(bounds)]
        low = self.F.slice(value.low, begin=(None, None) + tuple(b for b, _ in halves),
                           end=(None, None) + tuple(e for _, e in halves),
                           name=node['name'] + '_l_wide')
        return _Value(high, self._half_of(low, high, node['name'] + '_l'), value.channels,
                      value.order)

    def _resizes_to_size(self, node, inputs):
        """Whether a bilinear resize goes to a given height and width, or to the size of
        another map (not by a scale)."""
        attrs = node.get('attrs', {})
        mode = attrs.get('mode', 'size')
        if mode == 'like':
            return len(inputs) == 2
        return mode == 'size' and 'scale_height' not in attrs and 'scale_width' not in attrs \
            and int(attrs.get('height', 1)) > 1 and int(attrs.get('width', 1)) > 1

    def _resize(self, node, inputs):
        """Bilinear resizing of each part: the high part to the size asked, the low part to
        half of it (rounded up)."""
        value, attrs, name = inputs[0], dict(node.get('attrs', {})), node['name']
        if attrs.get('mode') == 'like':
            like = inputs[1]
            high_like = like.high
            low_like = like.low if like.is_pair else half_grid(self.F, like.high,
                                                               name=name + '_l_grid')
            high = _call(node['op'], [value.high, high_like], name + '_h', attrs)
            low = _call(node['op'], [value.low, low_like], name + '_l', attrs)
        else:
            high = _call(node['op'], [value.high], name + '_h', attrs)
            attrs['height'] = str(-(-int(attrs['height']) // 2))
            attrs['width'] = str(-(-int(attrs['width']) // 2))
            low = _call(node['op'], [value.low], name + '_l', attrs)
        return _Value(high, low, value.channels, value.order)

    # -- checking ---------------------------------------------------------------------------
    def check(self, data_shape):
        """ValueError unless, for an input of ``data_shape``, every node's output has the
        original's size (a pair: high part that size, low part half of it rounded up where
        the low part halves, channels adding up)."""
        import mxnet as mx
        from mxnet.base import MXNetError
        want = original_shapes(self.symbol, data_shape, self.data_name)
        keys, symbols = [], []
        for key, value in self.values.items():
            if self.nodes[key[0]]['op'] != 'null' and key[0] not in self.folded:
                keys.append(key)
                symbols += [value.high] + ([value.low] if value.is_pair else [])
        try:
            _, shapes, _ = infer_shape(mx.sym.Group(symbols),
                                       **{self.data_name: tuple(data_shape)})
        except MXNetError as err:
            raise ValueError('octavize: the octave network cannot take %s of shape %s, which '
                             'the original takes: %s' % (self.data_name, tuple(data_shape),
                                                         _mxnet_message(err))) from None
        shapes = iter(shapes)
        for key in keys:
            value, original = self.values[key], tuple(want[key])
            got = [tuple(next(shapes))] + ([tuple(next(shapes))] if value.is_pair else [])
            if not value.is_pair:
                ok = got[0] == original
            else:
                high, low = got
                ok = len(original) == 2 + self.dims and high[0] == original[0] and \
                    high[2:] == original[2:] and high[1] + low[1] == original[1] and \
                    low[2:] == tuple(-(-n // 2) if axis in self.octave else n
                                     for axis, n in enumerate(original[2:]))
            if not ok:
                node = self.nodes[key[0]]
                raise ValueError('octavize: node %s (operator %s) gives %s in the octave '
                                 'network for %s of shape %s, where the original gives %s; it '
                                 'has no octave form' % (node['name'], node['op'], ' and '.join(
                                     'x'.join(map(str, s)) for s in got), self.data_name,
                                     tuple(data_shape), 'x'.join(map(str, original))))


def original_shapes(symbol, data_shape, data_name='data'):
    """``{(node, output): shape}`` of ``symbol``'s graph for an input of ``data_shape``;
    ValueError if the network cannot take it."""
    from mxnet.base import MXNetError
    internals = symbol.get_internals()
    try:
        _, shapes, _ = infer_shape(internals, **{data_name: tuple(data_shape)})
    except MXNetError as err:
        raise ValueError('octavize: the network cannot take %s of shape %s: %s' % (
            data_name, tuple(data_shape), _mxnet_message(err))) from None
    if shapes is None:
        raise ValueError('octavize: the shapes of the network are not known from %s of shape %s'
                         % (data_name, tuple(data_shape)))
    nodes = json.loads(symbol.tojson())['nodes']
    return node_shapes(nodes, internals.list_outputs(), shapes)


def _takes(symbol, data_shape, data_name):
    """Whether every node of ``symbol`` has a shape without empty axes for ``data_shape``."""
    from mxnet.base import MXNetError
    try:
        _, shapes, _ = infer_shape(symbol.get_internals(), **{data_name: tuple(data_shape)})
    except MXNetError:
        return False
    return shapes is not None and all(all(s > 0 for s in shape) for shape in shapes)


def sized(data_shape, side):
    """``data_shape`` with ``side`` for the axes the low part halves (a square image, a
    video of square frames with the same number of frames, a signal of that length)."""
    dims = len(data_shape) - 2
    return tuple(data_shape[:2]) + tuple(side if a in octave_axes(dims) else n
                                         for a, n in enumerate(tuple(data_shape)[2:]))


def smallest_input(symbol, data_shape, data_name='data', low=1):
    """The smallest side ``s`` from ``low`` up to ``data_shape``'s smallest side (along the
    axes the low part halves) such that ``symbol`` takes :func:`sized` ``(data_shape, s)``
    (and every larger size up to there, assumed rather than checked); None when it does not
    take that smallest side."""
    dims = len(data_shape) - 2
    high = min(tuple(data_shape)[2 + a] for a in octave_axes(dims))
    if not _takes(symbol, sized(data_shape, high), data_name):
        return None
    while low < high:
        middle = (low + high) // 2
        if _takes(symbol, sized(data_shape, middle), data_name):
            high = middle
        else:
            low = middle + 1
    return high


def _check_arguments(symbol, ratio, data_shape, data_name):
    import mxnet as mx
    if not isinstance(symbol, mx.sym.Symbol):
        raise TypeError('octavize: the Symbol API converts an mx.sym.Symbol, got %s%s'
                        % (type(symbol).__name__, ' (for a Gluon block use '
                           'octconv.gluon.octavize)' if isinstance(symbol, mx.gluon.Block)
                           else ''))
    check_ratio(ratio, 'octavize: ratio')
    if isinstance(data_shape, (str, bytes)) or not hasattr(data_shape, '__len__'):
        raise TypeError('octavize: data_shape must be a tuple (N, C, H, W), got %r'
                        % (data_shape,))
    if len(tuple(data_shape)) not in (3, 4, 5) or \
            not all(isinstance(s, (int, np.integer)) and s > 0 for s in data_shape):
        raise ValueError('octavize: data_shape must be (N, C, H, W) of positive integers (or '
                         '(N, C, T, H, W) for video, (N, C, L) for signals), got %r'
                         % (tuple(data_shape),))
    if data_name not in symbol.list_arguments():
        inputs = [name for name in symbol.list_arguments()
                  if not name.endswith(('_weight', '_bias', '_gamma', '_beta'))]
        raise ValueError('octavize: the network has no input %r (its inputs: %s); pass '
                         'data_name=' % (data_name, ', '.join(inputs) or 'none'))


def rewrite(symbol, ratio, data_shape, policy=None, data_name='data', one_pixel_maps=False):
    """The octave version of ``symbol`` (any MXNet graph reading ``data_name`` of
    ``data_shape`` (N, C, H, W)), and ``{parameter name: Origin}`` for each of its
    parameters. Returns ``(symbol, origins)``; the outputs are single maps (pairs merged).
    ``one_pixel_maps`` builds the graph that also halves maps of one pixel (see
    :class:`~octconv.utils.octave.Graph`). ValueError names a ratio outside [0, 1), a shape
    the network cannot take, or the node and operator that has no octave form; TypeError
    a ``symbol`` that is not a Symbol or a ``data_shape`` that is not a tuple."""
    _check_arguments(symbol, ratio, data_shape, data_name)
    rewriter = _Rewriter(symbol, ratio, tuple(data_shape), policy, data_name, one_pixel_maps)
    return rewriter.run(), rewriter.origins


def convert(symbol, ratio, data_shape, policy=None, data_name='data'):
    """:func:`rewrite`, checked: the :class:`Conversion` of ``symbol``. Its graph is checked
    at ``data_shape`` and at the smallest input the original takes (each node's output the
    original's size, or ValueError naming the node); where the original takes inputs too
    small for the graph, the graph for them is made too (``small_maps``)."""
    _check_arguments(symbol, ratio, data_shape, data_name)
    data_shape = tuple(data_shape)

    def square(side):
        return sized(data_shape, side)
    fast = _Rewriter(symbol, ratio, data_shape, policy, data_name)
    octave = fast.run()
    even = _even_maps(symbol, octave, ratio, data_shape, policy, data_name)
    smallest = smallest_input(symbol, data_shape, data_name)
    if smallest is None:
        fast.check(data_shape)
        return Conversion(octave, fast.origins, None, None, None, even)
    graph_from = smallest_input(octave, data_shape, data_name, low=smallest)
    if graph_from == smallest:
        fast.check(data_shape)
        fast.check(square(smallest))
        return Conversion(octave, fast.origins, smallest, smallest, None, even)
    small = _Rewriter(symbol, ratio, data_shape, policy, data_name, one_pixel_maps=True)
    small_maps = small.run()
    small.check(square(smallest))
    small.check(data_shape)
    if graph_from is None:            # data_shape itself is too small for the first graph
        return Conversion(small_maps, small.origins, smallest, smallest, None, None)
    fast.check(data_shape)
    fast.check(square(graph_from))
    return Conversion(octave, fast.origins, smallest, graph_from, small_maps, even)


def _even_maps(symbol, octave, ratio, data_shape, policy, data_name):
    """The even-size graph of the octave graph ``octave`` (None when it is ``octave``
    itself: nothing to leave out), checked at ``data_shape`` when its maps are even there."""
    even = _Rewriter(symbol, ratio, data_shape, policy, data_name, even_sizes=True)
    graph = even.run()
    if graph.tojson() == octave.tojson():
        return None
    if crops_are_noops(octave, data_shape, data_name):
        even.check(data_shape)
    return graph
