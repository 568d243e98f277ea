"""Octave networks from any network: a rewrite of an MXNet symbol graph.

:func:`rewrite` walks a network's graph in order and rebuilds it on ``(high, low)``
pairs with the octave-op helper (:mod:`octconv.utils.octave`), as a user would by hand:

- every convolution becomes an octave convolution (Eq. 4) whose output is split at the
  ratio its :class:`Layer` gets from the policy; a depthwise one keeps its input's
  split, a grouped one keeps its groups on every path;
- BatchNorm, activations, element-wise arithmetic, dropout, pooling, nearest upsampling,
  sums and channel concatenations act on each part (a single map meeting a pair is split first:
  channels sliced as the pair's, the low slice average-pooled);
- an operator that needs one tensor (global pooling, flatten, a fully-connected layer,
  a graph output) gets the merged map ``concat(high, upsample(low))``; global pooling
  pools each part instead (the same numbers for even sizes, cheaper);
- an operator with a pair for input that is none of these raises ``ValueError`` naming
  the node and the operator.

Placement (the ``'paper'`` policy, the default), as the reference places OctConv in
ResNet, ResNeXt and MobileNet: the stem (a convolution with no convolution before it)
reads the image and stays vanilla, and the last stage runs at ratio 0: every layer
whose output is at the network's largest stride, or only feeds layers that are (the
input of the last downsampling). ``'split-stem'`` splits the stem's output too (the
reference's DenseNet). A function ``policy(layer) -> ratio`` decides each convolution
itself. Layers that keep ratio 0 with a single input are copied unchanged, names and
all, so that ratio 0 gives back the same graph.

New parameters are named after the original's, the path or part inserted before the
suffix (``stage1_conv1_weight`` -> ``stage1_conv1_h2l_weight``, ``bn1_gamma`` ->
``bn1_h_gamma``), and keep its attributes (initializer, learning-rate and
weight-decay multipliers) but its shape.
"""
import json
import math
from collections import namedtuple

from .flops import attr_is_true, attr_tuple, node_shapes
from .octave import (OPTIMIZED, check_ratio, concat_channels, downsample, merge_pair,
                     octave_conv, octave_pool, plan_octave_conv, split_channels)

__all__ = ['Layer', 'POLICIES', 'Origin', 'rewrite', 'split_like']

POLICIES = ('paper', 'split-stem')

Layer = namedtuple('Layer', ['name', 'kind', 'stride', 'last_stage'])
Layer.__doc__ = """A convolution as the policy sees it.

``name``: the node's name; ``kind``: ``'stem'`` (no convolution before it) or ``'conv'``
(depthwise convolutions keep their input's split and are not asked); ``stride``: its
output stride against the input (``inf`` after global pooling); ``last_stage``: whether
it belongs to the last stage (its output is at the largest stride, or only feeds layers
whose output is)."""

Origin = namedtuple('Origin', ['name', 'index'])
Origin.__doc__ = """Where a parameter of the rewritten graph comes from: the original
parameter ``name`` and ``index``, the tuple of slices of the original's array it
corresponds to (``()``: the whole array, an unchanged layer; ``None``: no part of it, as
for the paths of a grouped convolution)."""

# Operators applied to each part alike (one data input, no parameters).
_UNARY = {'Activation', 'LeakyReLU', 'relu', 'sigmoid', 'tanh', 'softsign', 'clip',
          'Dropout', 'hard_sigmoid', 'exp', 'abs', 'square', 'sqrt', 'negative', 'identity',
          '_copy', 'BlockGrad', 'Cast', 'amp_cast', 'erf', 'log', 'reciprocal',
          '_plus_scalar', '_minus_scalar', '_rminus_scalar', '_mul_scalar', '_div_scalar',
          '_rdiv_scalar', '_power_scalar', '_maximum_scalar', '_minimum_scalar'}
_BINARY = {'elemwise_add', 'elemwise_sub', 'elemwise_mul', 'elemwise_div', 'broadcast_add',
           'broadcast_sub', 'broadcast_mul', 'broadcast_div', 'broadcast_plus',
           'broadcast_minus', 'broadcast_maximum', 'broadcast_minimum', '_Plus', '_Minus',
           '_Mul', '_Div', '_plus', '_minus', '_mul', '_div', '_maximum', '_minimum',
           'ElementWiseSum', 'add_n'}
# Operators that need one tensor: a pair is merged for them.
_MERGING = {'Flatten', 'flatten', 'FullyConnected', 'SoftmaxOutput', 'softmax', 'log_softmax',
            'SoftmaxActivation', 'Reshape', 'reshape', 'mean', 'sum', 'max', 'min', 'norm'}
_SPATIAL = {'Convolution', 'Pooling', '_contrib_AdaptiveAvgPooling2D', 'FullyConnected',
            'Flatten', 'flatten'}


class _Value(namedtuple('_Value', ['high', 'low', 'channels'])):
    """A node's output in the rewritten graph: a single map (``low`` None, channels
    ``(C, 0)``) or a pair ``(high, low)`` with channels ``(C_h, C_l)``."""

    @property
    def is_pair(self):
        return self.low is not None


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


# Parameter name endings that initializers read (``Initializer`` dispatches on them).
_SUFFIXES = ('running_mean', 'running_var', 'moving_mean', 'moving_var', 'weight', 'bias',
             'gamma', 'beta')


def _part_name(name, part):
    """``a_b_weight`` -> ``a_b_<part>_weight``, ``bn_running_mean`` ->
    ``bn_<part>_running_mean``: the parameter of ``part`` of ``name``."""
    suffix = next((s for s in _SUFFIXES if name.endswith('_' + s)), name.rpartition('_')[2])
    stem = name[:-len(suffix) - 1]
    return '%s_%s_%s' % (stem, part, suffix) if stem else '%s_%s' % (name, part)


def split_like(F, x, count, channels, spatial, name):
    """The pair of the single map ``x`` (N, ``count``, h, w) to combine with a pair of
    ``channels`` (C_h, C_l): its channels sliced [0, C_h) and [C_h, C_h + C_l) (a single
    channel, ``count`` 1, is shared by both parts); the low slice average-pooled 2x2 unless
    ``spatial`` is False (a 1x1 map that broadcasts)."""
    total = sum(channels)
    high = low = x
    if count > 1:
        high = F.slice_axis(x, axis=1, begin=0, end=channels[0], name=name + '_split_h')
        low = F.slice_axis(x, axis=1, begin=channels[0], end=total, name=name + '_split_l')
    if spatial:
        low = downsample(F, low, name=name + '_split_down')
    return high, low


class _Rewriter:
    """One pass over a graph's nodes (see the module); :meth:`run` returns the new heads."""

    def __init__(self, symbol, ratio, data_shape, policy, data_name):
        import mxnet as mx
        self.F = mx.sym
        self.ratio = 0. if check_ratio(ratio) == -1 else float(ratio)
        self.policy = _policy(policy, self.ratio)
        graph = json.loads(symbol.tojson())
        self.nodes, self.heads = graph['nodes'], graph['heads']
        self.data_name = data_name
        self.shapes = _shapes(symbol, self.nodes, data_shape, data_name)
        self.origins = {}
        self.values = {}
        self.internals = symbol.get_internals()
        self._placement(data_shape)

    # -- placement ------------------------------------------------------------------------
    def _placement(self, data_shape):
        """Per node: its output stride, whether it pools globally (``is_global``), whether
        a convolution or a global pooling comes before it, and the policy's ratio for every
        convolution."""
        size = data_shape[2]
        consumers = {i: [] for i in range(len(self.nodes))}
        after_conv, after_global, self.is_global, self.stride = {}, {}, {}, {}
        for i, node in enumerate(self.nodes):
            sources = [e[0] for e in node['inputs']]
            for j in sources:
                consumers[j].append(i)
            after_conv[i] = any(after_conv[j] or self.nodes[j]['op'] == 'Convolution'
                                for j in sources)
            shape = self.shapes[(i, 0)]
            reduced = len(shape) != 4 or shape[2] * shape[3] == 1
            after_global[i] = reduced and any(after_global[j] or self.is_global[j]
                                              for j in sources)
            self.is_global[i] = self._is_global(i)
            if after_global[i] or self.is_global[i] or node['op'] in (
                    'FullyConnected', 'Flatten', 'flatten'):
                self.stride[i] = math.inf
            elif len(shape) == 4 and shape[2] > 0:
                self.stride[i] = 2 ** round(math.log2(size / shape[2]))
        spatial = [i for i, node in enumerate(self.nodes) if node['op'] in
                   ('Convolution', 'Pooling') and self.stride.get(i, math.inf) < math.inf]
        largest = max((self.stride[i] for i in spatial), default=1)
        self.ratios = {}
        for i, node in enumerate(self.nodes):
            if node['op'] != 'Convolution' or self._is_depthwise(i):
                continue
            hits = self._next_spatial(i, consumers)
            last = self.stride[i] >= largest or (
                bool(hits) and all(self.stride.get(j, math.inf) >= largest for j in hits))
            layer = Layer(node['name'], 'conv' if after_conv[i] else 'stem', self.stride[i],
                          last)
            self.ratios[i] = self.policy(layer)

    def _is_depthwise(self, i):
        """Whether the convolution ``i`` is depthwise (one group per input channel, as many
        outputs as inputs)."""
        attrs = self.nodes[i].get('attrs', {})
        source = self.nodes[i]['inputs'][0]
        channels = self._channels(source[0], source[1])
        groups = int(attrs.get('num_group', 1))
        return groups > 1 and groups == channels == int(attrs['num_filter'])

    def _is_global(self, i):
        """Whether node ``i`` pools each channel to one value (global pooling, adaptive
        pooling to 1x1, or a window over the whole map)."""
        node = self.nodes[i]
        attrs = node.get('attrs', {})
        if node['op'] == 'Pooling':
            source = node['inputs'][0]
            before = self.shapes[(source[0], source[1])][2:]
            window = attr_tuple(attrs.get('kernel'))
            return attr_is_true(attrs.get('global_pool', 'False')) or (
                tuple(self.shapes[(i, 0)][2:]) == (1, 1) and len(window) == len(before) and
                all(k >= s for k, s in zip(window, before)))
        if node['op'] == '_contrib_AdaptiveAvgPooling2D':
            return attr_tuple(attrs.get('output_size'), (1,)) in ((1,), (1, 1))
        return False

    def _next_spatial(self, i, consumers):
        """The operators that change or need the spatial layout first reached from node
        ``i`` through per-part ones."""
        hits, seen, todo = set(), set(), list(consumers[i])
        while todo:
            j = todo.pop()
            if j in seen:
                continue
            seen.add(j)
            if self.nodes[j]['op'] in _SPATIAL:
                hits.add(j)
            else:
                todo.extend(consumers[j])
        return hits

    # -- the walk ---------------------------------------------------------------------------
    def run(self):
        """The rewritten graph's outputs (pairs merged), in the original's order."""
        for i, node in enumerate(self.nodes):
            if node['op'] == 'null':
                self.values[(i, 0)] = _Value(self.internals[node['name']], None,
                                             (self._channels(i), 0))
                continue
            inputs = [self.values[(e[0], e[1])] for e in node['inputs']]
            outputs = self._node(i, node, inputs)
            for k, value in enumerate(outputs):
                self.values[(i, k)] = value
        heads = []
        for i, k, _ in self.heads:
            value = self.values[(i, k)]
            heads.append(self._single(value, self.nodes[i]['name']))
        return heads

    def _channels(self, i, k=0):
        shape = self.shapes.get((i, k), ())
        return shape[1] if len(shape) > 1 else 0

    def _single(self, value, name):
        return merge_pair(self.F, value.high, value.low, name + '_merge')

    def _copy(self, i, node, inputs):
        """The node as it was, on single inputs (pairs merged first)."""
        symbols = [self._single(v, '%s_in%d' % (node['name'], k)) for k, v in enumerate(inputs)]
        out = _call(node['op'], symbols, node['name'], node.get('attrs', {}))
        for source in node['inputs']:
            if self.nodes[source[0]]['op'] == 'null':
                name = self.nodes[source[0]]['name']
                if name != self.data_name:
                    self.origins[name] = Origin(name, ())
        count = len(out.list_outputs())
        return [_Value(out[k] if count > 1 else out, None, (self._channels(i, k), 0))
                for k in range(count)]

    def _node(self, i, node, inputs):
        op = node['op']
        if op == 'Convolution':
            return [self._convolution(i, node, inputs)]
        if not any(v.is_pair for v in inputs):
            return self._copy(i, node, inputs)
        if op == 'BatchNorm':
            return [self._batch_norm(node, inputs)]
        if (op in _UNARY or _nearest_upsampling(node)) and len(node['inputs']) == 1:
            return [self._per_part(node, inputs)]
        if op in _BINARY:
            return [self._per_part(node, self._alike(node, inputs))]
        if op in ('Concat', 'concat'):
            return [self._concat(node, inputs)]
        if op == 'Pooling' or op == '_contrib_AdaptiveAvgPooling2D':
            return [self._pooling(i, node, inputs)]
        if op in _MERGING:
            return self._copy(i, node, inputs)
        raise ValueError('octavize: node %s (operator %s) takes an octave (high, low) pair '
                         'and has no octave form; octavize converts convolutions, BatchNorm, '
                         'activations, element-wise arithmetic, pooling, nearest upsampling, '
                         'concatenation and dropout, and merges the pair for flatten, '
                         'fully-connected and global pooling' % (node['name'], op))

    def _per_part(self, node, inputs):
        """``node``'s operator on the high parts and on the low parts."""
        attrs = node.get('attrs', {})
        parts = []
        for part, index in (('h', 0), ('l', 1)):
            symbols = [v.high if index == 0 else v.low for v in inputs]
            parts.append(_call(node['op'], symbols, '%s_%s' % (node['name'], part), attrs))
        return _Value(parts[0], parts[1], inputs[0].channels)

    def _alike(self, node, inputs):
        """The inputs of an element-wise operator as pairs of the first pair's split."""
        like = next(v for v in inputs if v.is_pair)
        out = []
        for k, (value, entry) in enumerate(zip(inputs, node['inputs'])):
            if value.is_pair and value.channels == like.channels:
                out.append(value)
                continue
            symbol = self._single(value, '%s_in%d' % (node['name'], k))
            shape = self.shapes[(entry[0], entry[1])]
            spatial = len(shape) == 4 and shape[2] * shape[3] > 1
            count = shape[1] if len(shape) > 1 else 1
            if count not in (1, sum(like.channels)):
                raise ValueError('octavize: node %s (operator %s) combines a map of %d channels '
                                 'with an octave pair of %d' % (node['name'], node['op'],
                                                                count, sum(like.channels)))
            high, low = split_like(self.F, symbol, count, like.channels, spatial,
                                   '%s_in%d' % (node['name'], k))
            out.append(_Value(high, low, like.channels))
        return out

    def _concat(self, node, inputs):
        dim = int(node.get('attrs', {}).get('dim', 1))
        if dim != 1:
            raise ValueError('octavize: node %s (operator %s) joins octave pairs along axis '
                             '%d; only channel concatenation (axis 1) has an octave form'
                             % (node['name'], node['op'], dim))
        pairs = []
        for k, value in enumerate(inputs):
            if not value.is_pair:
                split = split_channels(value.channels[0], self.ratio)
                high, low = split_like(self.F, value.high, value.channels[0], split, True,
                                       '%s_in%d' % (node['name'], k))
                value = _Value(high, low, split)
            pairs.append(value)
        parts = []
        for part, index in (('h', 0), ('l', 1)):
            present = [(v.high, v.low)[index] for v in pairs if v.channels[index]]
            parts.append(present[0] if len(present) == 1 else
                         concat_channels(self.F, present, name='%s_%s' % (node['name'], part)))
        return _Value(parts[0], parts[1], tuple(sum(v.channels[k] for v in pairs)
                                                for k in (0, 1)))

    def _pooling(self, i, node, inputs):
        value = inputs[0]
        attrs = node.get('attrs', {})
        name = node['name']
        if self.is_global[i]:              # each part pooled, then joined: one (N, C, 1, 1)
            parts = [_call(node['op'], [x], '%s_%s' % (name, part), attrs)
                     for part, x in (('h', value.high), ('l', value.low))]
            return _Value(concat_channels(self.F, parts, name=name), None,
                          (sum(value.channels), 0))
        if node['op'] != 'Pooling':
            raise ValueError('octavize: node %s (operator %s) pools an octave pair to a size '
                             'other than 1x1; it has no octave form' % (name, node['op']))
        kwargs = {k: v for k, v in attrs.items() if not k.startswith('__')}
        for key in ('kernel', 'stride', 'pad'):
            if key in kwargs:
                kwargs[key] = attr_tuple(kwargs[key])
        for key in ('count_include_pad', 'cudnn_off', 'global_pool'):
            if key in kwargs:
                kwargs[key] = attr_is_true(kwargs[key])
        high, low = octave_pool(self.F, value.high, value.low, name=name, graph=OPTIMIZED,
                                **kwargs)
        return _Value(high, low, value.channels)

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
        attrs = node.get('attrs', {})
        outs = []
        offsets = (0, value.channels[0], sum(value.channels))
        for k, (part, x) in enumerate((('h', value.high), ('l', value.low))):
            window = (slice(offsets[k], offsets[k + 1]),)
            params = [self._new_param(entry[0], part, (value.channels[k],), window)
                      for entry in node['inputs'][1:]]
            outs.append(_call('BatchNorm', [x] + params, '%s_%s' % (node['name'], part),
                              attrs))
        return _Value(outs[0], outs[1], value.channels)

    def _convolution(self, i, node, inputs):
        attrs = node.get('attrs', {})
        value = inputs[0]
        channels_out = int(attrs['num_filter'])
        groups = int(attrs.get('num_group', 1))
        depthwise = self._is_depthwise(i)
        ratio = None if depthwise else self.ratios[i]
        if not value.is_pair and (depthwise or ratio == 0):
            return self._copy(i, node, inputs)[0]
        name = node['name']
        kernel = attr_tuple(attrs.get('kernel'))
        stride = attr_tuple(attrs.get('stride'), (1,) * len(kernel))
        pad = attr_tuple(attrs.get('pad'), (0,) * len(kernel))
        if len(kernel) != 2 or attr_tuple(attrs.get('dilate'), (1, 1)) not in ((1, 1), (1,)):
            raise ValueError('octavize: node %s (operator Convolution): only 2-D convolutions '
                             'without dilation have an octave form (kernel %s, dilate %s)'
                             % (name, attrs.get('kernel'), attrs.get('dilate', '(1, 1)')))
        self._check_same_size(i, node, stride)
        out = value.channels if depthwise else split_channels(channels_out, ratio)
        use_bias = not attr_is_true(attrs.get('no_bias', 'False'))
        spec = plan_octave_conv(name, value.channels, out, kernel, stride=stride, pad=pad,
                                groups=groups, use_bias=use_bias)
        weight, bias = node['inputs'][1][0], (node['inputs'][2][0] if use_bias else None)
        bounds_in = {'h': slice(0, value.channels[0]), 'l': slice(value.channels[0], None)}
        bounds_out = {'h': slice(0, out[0]), 'l': slice(out[0], None)}
        params = {}
        for path, p in spec.paths.items():
            copyable = groups == 1 or depthwise
            window = ((bounds_out[path[2]],) + (() if depthwise else (bounds_in[path[0]],))
                      if copyable else None)
            params[path] = (
                self._new_param(weight, path, spec.weight_shape(path), window),
                None if not p.use_bias else
                self._new_param(bias, path, (p.channels,),
                                None if window is None else window[:1]))
        high, low = octave_conv(self.F, spec, value.high, value.low, params, name=name,
                                graph=OPTIMIZED)
        if low is None:
            return _Value(high, None, (out[0], 0))
        return _Value(high, low, out)

    def _check_same_size(self, i, node, stride):
        """An octave convolution keeps the map's size (stride 1) or halves it, rounding up
        (stride 2): ValueError naming the layer when the original does neither."""
        source = node['inputs'][0]
        before = self.shapes[(source[0], source[1])][2:]
        after = self.shapes[(i, 0)][2:]
        expected = tuple(before) if max(stride) == 1 else tuple(-(-s // 2) for s in before)
        if max(stride) > 2 or tuple(after) != expected:
            raise ValueError('octavize: node %s (operator Convolution) maps %s to %s with '
                             'stride %s; an octave convolution keeps the size (stride 1) or '
                             'halves it (stride 2, padding (kernel - 1) / 2)'
                             % (node['name'], 'x'.join(map(str, before)),
                                'x'.join(map(str, after)), stride))


def _shapes(symbol, nodes, data_shape, data_name):
    """``{(node, output): shape}`` for an input of ``data_shape``; ValueError if the network
    cannot take it."""
    from mxnet.base import MXNetError
    internals = symbol.get_internals()
    try:
        _, shapes, _ = internals.infer_shape(**{data_name: tuple(data_shape)})
    except MXNetError as err:
        raise ValueError('octavize: the network cannot take %s of shape %s: %s' % (
            data_name, tuple(data_shape), str(err).strip().splitlines()[0])) from None
    if shapes is None:
        raise ValueError('octavize: the shapes of the network are not known from %s of shape %s'
                         % (data_name, tuple(data_shape)))
    return node_shapes(nodes, internals.list_outputs(), shapes)


def _policy(policy, ratio):
    """``layer -> ratio`` of ``policy`` (None = 'paper', a name of :data:`POLICIES`, or a
    function), its results checked."""
    if policy is None or policy == 'paper':
        def chosen(layer):
            return 0. if layer.kind == 'stem' or layer.last_stage else ratio
    elif policy == 'split-stem':
        def chosen(layer):
            return 0. if layer.last_stage else ratio
    elif callable(policy):
        chosen = policy
    else:
        raise ValueError('octavize: policy must be one of %s or a function of a Layer, got %r'
                         % (', '.join(POLICIES), policy))

    def checked(layer):
        value = chosen(layer)
        return max(check_ratio(value, 'octavize: the policy\'s ratio for %s' % layer.name), 0.)
    return checked


def rewrite(symbol, ratio, data_shape, policy=None, data_name='data'):
    """The octave version of ``symbol`` (any MXNet graph reading ``data_name`` of
    ``data_shape`` (N, C, H, W)), and ``{parameter name: Origin}`` for each of its
    parameters. Returns ``(symbol, origins)``; the outputs are single maps (pairs merged).
    ValueError names a ratio outside [0, 1), a shape the network cannot take, or the node
    and operator that has no octave form."""
    import mxnet as mx
    check_ratio(ratio, 'octavize: ratio')
    if len(tuple(data_shape)) != 4:
        raise ValueError('octavize: data_shape must be (N, C, H, W), got %r' % (data_shape,))
    rewriter = _Rewriter(symbol, ratio, data_shape, policy, data_name)
    heads = rewriter.run()
    return (heads[0] if len(heads) == 1 else mx.sym.Group(heads)), rewriter.origins
