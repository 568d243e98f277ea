"""The octave-convolution graph, shared by the Symbol and the Gluon API.

Conventions used throughout the package
---------------------------------------
An octave feature map is a pair ``(high, low)``. ``high`` has shape
``(N, C_h, H, W)``; ``low`` has shape ``(N, C_l, ceil(H/2), ceil(W/2))``.
Either part may be absent (``None``); a part with 0 channels is absent. Channel
counts are pairs ``(C_h, C_l)`` where 0 means "no such part". Maps of video, 3-D
``(N, C, T, H, W)``, split the same way in space and keep every frame in both parts:
the low part is ``(N, C_l, T, ceil(H/2), ceil(W/2))``; maps of signals, 1-D
``(N, C, L)``, have a low part of length ``ceil(L/2)`` (:func:`octave_axes`).

For channels ``C`` and ratio ``a`` the split is ``C_l = int(a * C)``,
``C_h = C - C_l`` (paper, section 3.1). The four paths of one layer are named
``h2h``, ``h2l``, ``l2h`` and ``l2l`` (from-part to to-part), as in the
released checkpoints (``<layer>-h2l_weight``).

Paper Eq. 4, as built by :func:`octave_conv`::

    Y_H = conv(X_H, W_HH) + crop(upsample2x_nearest(conv(X_L, W_LH)), like=Y_H)
    Y_L = conv(X_L, W_LL) + conv(avgpool2x2(X_H), W_HL)

With stride 2 both inputs are first average-pooled 2x2 and the low->high path is
not upsampled. Average pooling uses the "full" (ceil) convention and divides
partial windows by the number of pixels they cover; for even sizes this is the
plain 2x2 average of the reference implementation, for odd sizes it keeps the
low map at ``ceil(H/2)`` so that every input size works.

The builders take ``F`` (``mxnet.sym`` or ``mxnet.nd``), so the same function
makes the Symbol networks and the Gluon ``hybrid_forward`` graphs.

Two graphs of the same function
-------------------------------
Every builder takes ``graph``, a :class:`Graph` (default :data:`OPTIMIZED`): the
``'optimized'`` graph, or ``'straightforward'`` (the graph as the equations read,
kept for checking). No builder reads any other input.
Same parameters, same outputs; the optimized one:

- sums two maps with ``elemwise_add`` (which MKLDNN runs in its own layout and
  fuses into the preceding convolution) instead of ``ElementWiseSum``;
- computes relu with the ``Activation`` operator (MKLDNN's) instead of ``relu``;
- leaves out the crops of odd sizes (and averages 2x2 windows without padding) when
  the model building the graph has checked that every map it makes has even sides
  (``Graph.even_sizes``, checked with :func:`crops_are_noops`).
"""
import json
import numbers
from collections import namedtuple

__all__ = ['PATHS', 'split_channels', 'check_ratio', 'PathSpec', 'OctaveSpec', 'PathGeometry',
           'plan_octave_conv', 'plan_octave_dense', 'general_geometry', 'octave_conv',
           'octave_dense',
           'downsample', 'upsample_like', 'merge_pair', 'shift', 'half_grid', 'octave_pool',
           'GRAPHS', 'Graph', 'OPTIMIZED', 'graph_options', 'crops_are_noops',
           'add', 'activation', 'sum_pairs', 'concat_pairs', 'concat_channels', 'UNCOUNTED']

GRAPHS = ('optimized', 'straightforward')


class Graph(namedtuple('Graph', ['mode', 'even_sizes', 'one_pixel_maps'])):
    """Which graph a builder makes: ``mode`` (one of :data:`GRAPHS`); ``even_sizes``, True
    when the caller has checked that every map has even sides (the optimized graph then
    leaves out the crops and the padding that odd sizes need); ``one_pixel_maps``, True
    when a map of one pixel must halve too (to itself): the 2x2 average then repeats the
    bottom row and right column first, an extra copy that MXNet's pooling cannot skip (it
    refuses a 2x2 window over a 1-pixel map)."""

    __slots__ = ()

    @property
    def skips_crops(self):
        """Whether crops (and padded pooling) are left out."""
        return self.mode == 'optimized' and self.even_sizes


Graph.__new__.__defaults__ = (False, False)


def graph_options(mode='optimized', even_sizes=False, one_pixel_maps=False):
    """The :class:`Graph` of ``mode`` ('optimized' or 'straightforward'); ValueError else."""
    if mode not in GRAPHS:
        raise ValueError('graph must be one of %s, got %r' % (', '.join(GRAPHS), mode))
    return Graph(mode, bool(even_sizes), bool(one_pixel_maps))


OPTIMIZED = Graph('optimized', False)


def crops_are_noops(symbol, data_shape, data_name='data'):
    """Whether ``symbol``'s even-size graph (``Graph.even_sizes``) computes the same as
    ``symbol`` for an input ``data_name`` of ``data_shape`` (N, C, H, W), or a video's or a
    signal's: every ``slice_like`` crop keeps its input's shape and every padding-exclusive
    average pooling (:func:`downsample` of an odd side) has nothing to pad. ``True`` when
    there is neither.
    """
    import mxnet as mx
    nodes = json.loads(symbol.tojson())['nodes']
    crops = [node['name'] for node in nodes if node['op'] == 'slice_like']
    pools = [node for node in nodes if node['op'] == 'Pooling' and
             node.get('attrs', {}).get('count_include_pad') == 'False' and
             node.get('attrs', {}).get('pooling_convention') == 'full']
    if not crops and not pools:
        return True
    internals = symbol.get_internals()
    pairs = []
    for name in crops:
        crop = internals[name + '_output']
        pairs += [crop, crop.get_children()[0]]
    pooled = [internals[node['name'] + '_output'].get_children()[0] for node in pools]
    _, shapes, _ = mx.sym.Group(pairs + pooled).infer_shape(**{data_name: tuple(data_shape)})
    if shapes is None:
        raise ValueError('cannot infer shapes for %s=%s' % (data_name, tuple(data_shape)))
    crops_kept = all(tuple(shapes[i]) == tuple(shapes[i + 1]) for i in range(0, len(pairs), 2))
    return crops_kept and all(
        size % stride == 0
        for node, shape in zip(pools, shapes[len(pairs):])
        for size, stride in zip(shape[2:], _entries_of(node['attrs'].get('stride', '()'))))


def _entries_of(value):
    """The integers of an MXNet tuple attribute (``'(1, 2, 2)'``)."""
    return [int(item) for item in value.strip('()[] ').split(',') if item.strip()]


# Attribute on relu operators that the paper's FLOP convention leaves out (the
# reference computes them with ``relu``, which its counter does not see).
UNCOUNTED = {'__paper_flops__': '0'}


def activation(F, x, act_type='relu', counted=True, name=None, graph=OPTIMIZED):
    """``act_type`` of ``x`` ('relu', 'relu6', 'sigmoid', 'tanh', 'softrelu'), any shape.

    relu is the ``Activation`` operator in the optimized graph and ``relu`` in
    the straightforward one; ``counted=False`` marks it as left out of the
    paper's FLOP count (see :mod:`octconv.utils.flops`).
    """
    if act_type == 'relu6':
        return F.clip(x, 0, 6, name=name)
    if act_type != 'relu':
        return getattr(F, act_type)(x, name=name)
    if graph.mode == 'straightforward':
        if counted:
            return F.Activation(x, act_type='relu', name=name)
        return F.relu(x, name=name)
    kwargs = {}
    if not counted and getattr(F, '__name__', '').endswith('symbol'):
        kwargs['attr'] = dict(UNCOUNTED)
    return F.Activation(x, act_type='relu', name=name, **kwargs)


def sum_pairs(a, b):
    """The part-wise sum of two ``(high, low)`` pairs; an absent part (None) adds nothing."""
    return tuple(x if y is None else y if x is None else x + y for x, y in zip(a, b))


def concat_pairs(F, a, b):
    """The part-wise channel concatenation of two ``(high, low)`` pairs (None: absent)."""
    return tuple(y if x is None else x if y is None else concat_channels(F, (x, y))
                 for x, y in zip(a, b))


def concat_channels(F, parts, name=None):
    """``parts`` (N, C_i, H, W) concatenated along channels: (N, sum C_i, H, W).

    The maps are joined as (N, C_i, H*W) arrays: MXNet 1.9's MKLDNN concat of
    4-d maps fails in its backward pass ("could not construct a sub-memory")
    when channel counts are not whole SIMD blocks, as octave parts often are.
    """
    flat = [F.reshape(p, shape=(0, 0, -1)) for p in parts]
    joined = F.concat(*flat, dim=1, name=None if name is None else name + '_flat')
    return F.reshape_like(joined, parts[0], lhs_begin=2, rhs_begin=2, name=name)


def add(F, parts, name=None, graph=OPTIMIZED):
    """Sum of the maps in ``parts`` (``None`` entries skipped); ``None`` if all are."""
    parts = [p for p in parts if p is not None]
    if not parts:
        return None
    if len(parts) == 1:
        return parts[0]
    if len(parts) == 2 and graph.mode == 'optimized':
        return F.elemwise_add(*parts, name=name)
    return F.ElementWiseSum(*parts, name=name)


PATHS = ('h2h', 'h2l', 'l2h', 'l2l')

PathSpec = namedtuple('PathSpec', ['in_channels', 'channels', 'groups', 'use_bias'])
PathSpec.__doc__ = """One of the four convolutions of an octave layer.

``weight`` has shape ``(channels, in_channels // groups, *kernel)`` for a
convolution and ``(channels, in_channels)`` for a dense layer; ``bias`` has
shape ``(channels,)`` when ``use_bias``."""


class OctaveSpec(namedtuple('OctaveSpec', ['name', 'in_channels', 'channels', 'kernel',
                                           'stride', 'pad', 'paths', 'geometry',
                                           'plain_stride'])):
    """The plan of one octave layer: which paths exist and how each is shaped.

    ``in_channels`` and ``channels`` are ``(high, low)`` pairs (0 = absent),
    ``paths`` maps a path name (``'h2l'``...) to its :class:`PathSpec`,
    ``kernel`` is ``None`` for a dense (fully-connected) layer, else one value per spatial
    axis, as is ``pad``; ``stride`` is the stride of the axes the low part halves (1 or 2,
    :func:`octave_axes`) and ``plain_stride`` that of the others (a 3-D layer's time axis,
    taken by every path). ``geometry`` is ``None`` for a convolution that keeps the map's
    size (stride 1) or halves it (stride 2), the paper's form; else ``{path:
    PathGeometry}`` for the general form (see :func:`octave_conv`).
    """

    def weight_shape(self, path):
        """Shape of the weight of ``path``."""
        p = self.paths[path]
        if self.kernel is None:
            return (p.channels, p.in_channels)
        return (p.channels, p.in_channels // p.groups) + tuple(self.kernel)


OctaveSpec.__new__.__defaults__ = (None, ())

PathGeometry = namedtuple('PathGeometry', ['pad', 'begin'])
PathGeometry.__doc__ = """How a path of the general form runs: a stride-1 convolution
padded by ``pad`` (per axis) on its grid, whose output is cropped from ``begin`` (per
axis) to the size of the layer's output part."""


def check_ratio(ratio, where='ratio'):
    """``ratio`` as a float, or ``ValueError`` unless it is a number (a Python or numpy one)
    in [0, 1) (0: the vanilla network; -1, the reference's name for it, is accepted too)."""
    if isinstance(ratio, bool) or not isinstance(ratio, numbers.Real):
        raise ValueError('%s must be a number in [0, 1), got %r' % (where, ratio))
    ratio = float(ratio)
    if ratio != -1 and not 0 <= ratio < 1:
        raise ValueError('%s must be in [0, 1) (0 is the vanilla network), got %r'
                         % (where, ratio))
    return ratio


def split_channels(channels, ratio):
    """Split ``channels`` into ``(high, low)`` with ``low = int(ratio * channels)``.

    ``ratio=0`` (the vanilla network; or -1) gives ``(channels, 0)``.
    """
    check_ratio(ratio)
    low = int(ratio * channels) if ratio >= 0 else 0
    return (channels - low, low)


def _pair(value, what, name):
    if isinstance(value, (tuple, list)):
        if len(value) != 2:
            raise ValueError('layer %s: %s must be an int or a (high, low) pair, got %r'
                             % (name, what, value))
        high, low = value
    else:
        high, low = value, 0
    high, low = max(int(high), 0), max(int(low), 0)   # -1 (Gluon's "absent") -> 0
    return high, low


def _plan(name, in_channels, channels, groups, use_bias, enable, kernel, stride, pad):
    in_h, in_l = _pair(in_channels, 'in_channels', name)
    out_h, out_l = _pair(channels, 'channels', name)
    if in_h + in_l == 0:
        raise ValueError('layer %s: no input channels (in_channels=%r)' % (name, in_channels))
    if out_h + out_l == 0:
        raise ValueError('layer %s: no output channels (channels=%r)' % (name, channels))
    if groups < 1:
        raise ValueError('layer %s: groups must be >= 1, got %d' % (name, groups))
    unknown = set(enable) - set(PATHS)
    if unknown:
        raise ValueError('layer %s: unknown paths %s (valid: %s)'
                         % (name, sorted(unknown), ', '.join(PATHS)))
    depthwise = groups > 1 and groups == in_h + in_l
    if depthwise and (out_h, out_l) != (in_h, in_l):
        raise ValueError('layer %s: a depthwise layer (groups=%d = in_channels) needs '
                         'channels == in_channels, got channels=(%d, %d), in_channels=(%d, %d)'
                         % (name, groups, out_h, out_l, in_h, in_l))
    size = {'h': (in_h, out_h), 'l': (in_l, out_l)}
    paths = {}
    for path in PATHS:
        src, dst = path[0], path[2]
        cin, cout = size[src][0], size[dst][1]
        if cin == 0 or cout == 0 or path not in enable:
            continue
        if depthwise:
            if src != dst:
                continue
            g = cin
        else:
            g = min(cout, groups)
        if cin % g or cout % g:
            raise ValueError(
                'layer %s, path %s: groups=%d do not divide its channels (in %d, out %d); '
                'in_channels=(%d, %d), channels=(%d, %d), groups=%d'
                % (name, path, g, cin, cout, in_h, in_l, out_h, out_l, groups))
        paths[path] = g, cin, cout
    if not paths:
        raise ValueError('layer %s: no path connects in_channels=(%d, %d) to channels=(%d, %d) '
                         'with paths %s enabled' % (name, in_h, in_l, out_h, out_l, tuple(enable)))
    # One bias per output part: on the path from the high part when it exists.
    specs = {}
    for path, (g, cin, cout) in paths.items():
        twin = ('h2' if path[0] == 'l' else 'l2') + path[2]
        biased = use_bias and (path[0] == 'h' or twin not in paths)
        specs[path] = PathSpec(cin, cout, g, biased)
    return OctaveSpec(name, (in_h, in_l), (out_h, out_l), kernel, stride, pad, specs)


def plan_octave_conv(name, in_channels, channels, kernel, stride=1, pad=0, groups=1,
                     use_bias=False, enable=PATHS):
    """Plan an octave convolution and check it, before any graph is built.

    Parameters
    ----------
    name : str
        Layer name, used in error messages and as the prefix of path names.
    in_channels, channels : int or (high, low)
        Input and output channels; an int means ``(int, 0)``; 0 or -1 = absent.
    kernel, pad : int or a value per spatial axis ((k,), (kh, kw) or (kt, kh, kw))
        Any kernel and (symmetric) padding. Where the padding is ``(kernel - 1) / 2`` on
        every axis the low part halves the layer keeps the map's size (stride 1) or halves
        it (stride 2) and takes the paper's form; otherwise (an unpadded 3x3, an even
        kernel) the general form of :func:`octave_conv`, whose output has the size of the
        plain convolution's. A 3-D layer's time axis is taken by every path as it is.
    stride : 1 or 2 on the axes the low part halves (an int, or a value per axis; a 3-D
        layer's time axis may have any stride)
    groups : int
        Grouped convolution on every path with ``min(groups, out part)`` groups;
        ``groups == sum(in_channels)`` means depthwise (only h2h and l2l).
    use_bias : bool
        One bias per output part, on the path from the high part if it exists.
    enable : iterable of path names
        Switch off cross paths by leaving them out.

    Returns
    -------
    OctaveSpec

    Raises
    ------
    ValueError
        Naming the layer and the numbers, for groups that do not divide a
        path's channels, an unsupported stride, a general-form layer without its h2h path,
        or no path at all.
    """
    dims = 2 if isinstance(kernel, numbers.Integral) else len(tuple(kernel))
    kernel, pad, stride = (_ints(v, dims, what, name) for v, what in
                           ((kernel, 'kernel'), (pad, 'pad'), (stride, 'stride')))
    octave = octave_axes(dims)
    spatial = {stride[a] for a in octave}
    if spatial not in ({1}, {2}):
        raise ValueError('layer %s: octave convolution supports stride 1 or 2 (the same on '
                         'every axis the low part halves), got %r' % (name, stride))
    spec = _plan(name, in_channels, channels, groups, use_bias, tuple(enable),
                 kernel, spatial.pop(), pad)._replace(
        plain_stride=tuple(stride[a] for a in range(dims) if a not in octave))
    if all(kernel[a] - 1 == 2 * pad[a] for a in octave):
        return spec
    if 'h2h' not in spec.paths:
        raise ValueError('layer %s: kernel %s with padding %s changes the map\'s size; its '
                         'octave form crops every path to the h2h path\'s output, and this '
                         'layer has no h2h path' % (name, kernel, pad))
    return spec._replace(geometry=general_geometry(name, kernel, spec.stride, pad))


def general_geometry(name, kernel, stride, pad):
    """``{path: PathGeometry}`` of the general form of a layer of ``kernel``, ``stride`` (the
    stride of the axes the low part halves: 1 or 2) and ``pad`` (a value per axis; see
    :func:`octave_conv`). An axis the low part does not halve (a 3-D layer's time axis)
    keeps its padding on every path, from its first position.

    Positions are counted in pixels of the high input, each map being a grid of an origin
    and a spacing: the low input starts at 1/2 with spacing 2, 2x2 pooling moves the
    origin by half the spacing and doubles it, a stride-1 convolution padded by ``q`` moves
    it by ``spacing * ((k - 1) / 2 - q)``, nearest upsampling by minus a quarter of the
    spacing, which it halves. Each path (padded by ``q``, at least ``(k - 1) / 2`` rounded
    up, and ``pad``) is cropped from the whole number of its pixels nearest to the start of
    the output part it adds to: the plain convolution's output, or its 2x2 pooled grid.
    Checked for every size the plain convolution takes: each path covers its output part.
    """
    octave = octave_axes(len(kernel))
    per_axis = [_axis_geometry(name, k, stride, p) if axis in octave else
                {path: (p, 0) for path in ('l2h', 'h2l', 'l2l')}
                for axis, (k, p) in enumerate(zip(kernel, pad))]
    return {path: PathGeometry(tuple(axis[path][0] for axis in per_axis),
                               tuple(axis[path][1] for axis in per_axis))
            for path in ('l2h', 'h2l', 'l2l')}


def _axis_geometry(name, k, s, p):
    """``{path: (pad, begin)}`` for one axis (see :func:`general_geometry`)."""
    from fractions import Fraction as Q

    def down(grid):
        return grid[0] + grid[1] / 2, grid[1] * 2

    def conv(grid, q):
        return grid[0] + grid[1] * (Q(k - 1, 2) - q), grid[1]

    def up(grid):
        return grid[0] - grid[1] / 4, grid[1] / 2

    high_in, low_in = (Q(0), Q(1)), (Q(1, 2), Q(2))
    high_out = (Q(k - 1, 2) - p, Q(s))
    low_out = down(high_out)
    # each path: (its input grid and size as functions of the high input's size L, whether
    # it is upsampled after its convolution, the output part it adds to)
    half = lambda n: -(-n // 2)                                     # noqa: E731
    inputs = {'l2h': (low_in, half, s == 1, 'high'),
              'h2l': (down(high_in) if s == 1 else down(down(high_in)),
                      half if s == 1 else lambda n: half(half(n)), False, 'low'),
              'l2l': (low_in if s == 1 else down(low_in),
                      half if s == 1 else lambda n: half(half(n)), False, 'low')}
    smallest = max(k - 2 * p, 1)
    for q in range(max(-(-(k - 1) // 2), p), max(-(-(k - 1) // 2), p) + 3):
        plan = {}
        for path, (grid, size, upsampled, part) in inputs.items():
            out = conv(grid, q)
            if upsampled:
                out = up(out)
            target = high_out if part == 'high' else low_out
            plan[path] = (q, max(int((target[0] - out[0]) / out[1] + Q(1, 2)), 0))

        def covers(n):
            high = (n + 2 * p - k) // s + 1
            for path, (grid, size, upsampled, part) in inputs.items():
                length = size(n) + 2 * q - k + 1
                length = 2 * length if upsampled else length
                if length - plan[path][1] < (high if part == 'high' else half(high)):
                    return False
            return True
        if all(covers(n) for n in range(smallest, smallest + 32)):
            return plan
    raise ValueError('layer %s: kernel %d, stride %d, padding %d has no octave form (its '
                     'paths cannot cover the output at every size)' % (name, k, s, p))


def plan_octave_dense(name, in_channels, channels, use_bias=False, enable=PATHS):
    """Plan an octave fully-connected layer (the squeeze-excitation's FCs).

    Same conventions as :func:`plan_octave_conv`; each path is a dense layer
    over the flattened part, and the low part is not resized (the inputs are
    1x1 after global pooling).
    """
    return _plan(name, in_channels, channels, 1, use_bias, tuple(enable), None, 1, None)


def octave_axes(dims):
    """The spatial axes (counted from 0 among a map's ``dims`` spatial axes) that the low
    part halves: every axis of a 1-D or 2-D map, height and width of a 3-D one (every
    frame is kept)."""
    return (1, 2) if dims == 3 else tuple(range(dims))


def _ints(value, dims, what, name):
    """``value`` (an int or a tuple) as a tuple of ``dims`` ints; ValueError naming ``name``."""
    if isinstance(value, numbers.Integral):
        return (int(value),) * dims
    value = tuple(int(v) for v in value)
    if len(value) != dims:
        raise ValueError('layer %s: %s must be an int or %d values, got %r'
                         % (name, what, dims, value))
    return value


def _extend_end(F, x, extra, dims, name):
    """``x`` (N, C, *spatial, ``dims`` axes) with its last position along each axis the
    low part halves repeated ``extra`` times."""
    octave = octave_axes(dims)
    if dims >= 2:
        widths = (0, 0, 0, 0) + sum(((0, extra) if a in octave else (0, 0)
                                     for a in range(dims)), ())
        return F.pad(x, mode='edge', pad_width=widths, name=name)
    last = F.slice_axis(x, axis=2, begin=-1, end=None, name=name + '_last')
    return F.concat(*([x] + [last] * extra), dim=2, name=name)


def _window(dims, size):
    """A pooling window of ``size`` along the axes the low part halves, 1 along the others."""
    return tuple(size if a in octave_axes(dims) else 1 for a in range(dims))


def downsample(F, x, name=None, graph=OPTIMIZED, dims=2):
    """2x2 stride-2 average pooling, ceil convention: (N, C, H, W) -> (N, C, ceil(H/2), ceil(W/2));
    for ``dims`` 3, (N, C, T, H, W) -> (N, C, T, ceil(H/2), ceil(W/2)), and for ``dims`` 1,
    (N, C, L) -> (N, C, ceil(L/2)).

    An odd side pads one row or column, left out of the average. With
    ``graph.even_sizes`` nothing is padded and the padding-inclusive average
    (the same numbers) is used: MKLDNN trains the padding-exclusive one in its
    inference mode and logs "training with prop_kind is forward_scoring" for it. With
    ``graph.one_pixel_maps`` the bottom row and right column are repeated once and the
    whole windows averaged: the same numbers, and a 1-pixel map halves to itself.
    """
    window = _window(dims, 2)
    if graph.one_pixel_maps:
        x = _extend_end(F, x, 1, dims, None if name is None else name + '_edge')
        return F.Pooling(x, kernel=window, stride=window, pool_type='avg',
                         pooling_convention='valid', name=name)
    return F.Pooling(x, kernel=window, stride=window, pool_type='avg',
                     pooling_convention='full', count_include_pad=graph.skips_crops, name=name)


def upsample_like(F, x, like, name=None, graph=OPTIMIZED, dims=2):
    """Nearest 2x upsampling of ``x`` cropped to the spatial size of ``like``.

    ``x`` is (N, C, ceil(H/2), ceil(W/2)); the result is (N, C, H, W) where
    (H, W) is ``like``'s size. Without ``like``, or when ``graph`` skips crops, the
    result is (N, C, 2h, 2w). For ``dims`` 3 and 1 the axes the low part halves
    (:func:`octave_axes`) are upsampled by repeating each position twice.
    """
    axes = tuple(2 + a for a in octave_axes(dims))
    if dims == 2:
        up = F.UpSampling(x, scale=2, sample_type='nearest', num_args=1,
                          name=None if name is None else name + '_up')
    else:
        up = x
        for axis in axes:
            up = F.repeat(up, repeats=2, axis=axis,
                          name=None if name is None else '%s_up%d' % (name, axis))
    if like is None or graph.skips_crops:
        return up
    return F.slice_like(up, like, axes=axes, name=None if name is None else name + '_crop')


def merge_pair(F, high, low, name=None, graph=OPTIMIZED, dims=2):
    """One map (N, C_h + C_l, H, W) of the pair: ``high`` (N, C_h, H, W) followed by ``low``
    (N, C_l, ceil(H/2), ceil(W/2)) upsampled (nearest) to ``high``'s size; a lone part is
    returned as it is. ``dims``: the maps' spatial axes (3 for video)."""
    if low is None:
        return high
    if high is None:
        return low
    up = upsample_like(F, low, high, name=None if name is None else name + '_low', graph=graph,
                       dims=dims)
    return concat_channels(F, (high, up), name=name)


def shift(F, x, begin, name):
    """``x`` (N, C, *spatial) without its first ``begin[k]`` pixels along spatial axis ``k``
    (``x`` itself when ``begin`` is all 0)."""
    if not any(begin):
        return x
    return F.slice(x, begin=(None, None) + tuple(begin), end=(None,) * (2 + len(begin)),
                   name=name)


def half_grid(F, x, name=None, dims=2):
    """A cheap (N, 1, ceil(H/2), ceil(W/2)) view of ``x`` (N, C, H, W): the low-map size
    (for ``dims`` 3, (N, 1, T, ceil(H/2), ceil(W/2))).

    Used as the ``slice_like`` target that keeps a low map at half its high map.
    """
    return F.slice(x, begin=(None, 0) + (None,) * dims, end=(None, 1) + (None,) * dims,
                   step=(None, 1) + _window(dims, 2), name=name)


def octave_pool(F, x_high, x_low, name=None, graph=OPTIMIZED, **pool_kwargs):
    """``F.Pooling`` of both parts with the same settings; returns ``(high, low)``.

    The high part is pooled exactly as asked. When the pooling shrinks the map
    (stride > 1 on the axes the low part halves, not global), the low part is pooled as
    asked if that gives ``ceil(H'/2)`` of the pooled high size ``H'`` for every ``H``
    (3x3 windows of stride 2 and padding 1, ResNet's); else with the ceil convention and
    cropped to ``ceil(H'/2)``, so the pair stays consistent for odd sizes; for sizes
    divisible by 4 this is the same as pooling both parts as asked. A window wider than
    twice its padding plus 2 (3x3 without padding) would leave the low map short of that
    size: the low part is then first extended at its bottom and right edge by repeating
    the edge (exact for max pooling; for average pooling it changes only the windows at
    the edge); with ``graph.one_pixel_maps``, so is a low map that a 1-pixel map would
    leave narrower than the window. When ``graph`` skips crops the crop is left out. The
    number of spatial axes is the window's (``kernel``: a pair for 2-D maps, three values
    for video).
    """
    def pool(x, suffix, **overrides):
        if x is None:
            return None
        kwargs = dict(pool_kwargs, **overrides)
        return F.Pooling(x, name=None if name is None else '%s-%s' % (name, suffix), **kwargs)

    kernel = pool_kwargs.get('kernel', 1)
    dims = 2 if isinstance(kernel, numbers.Integral) else len(tuple(kernel))
    octave = octave_axes(dims)
    kernel, pad, stride = (_ints(pool_kwargs.get(key, default), dims, key, name)
                           for key, default in (('kernel', 1), ('pad', 0), ('stride', 1)))
    y_high = pool(x_high, 'h')
    shrinks = not pool_kwargs.get('global_pool', False) and max(stride[a] for a in octave) > 1
    if x_low is None or x_high is None or not shrinks:
        return y_high, pool(x_low, 'l')
    if pool_kwargs.get('pooling_convention', 'valid') == 'valid' and \
            all(_halves_exactly(kernel[a], stride[a], pad[a]) for a in octave):
        return y_high, pool(x_low, 'l')
    window = max(kernel[a] for a in octave)
    padding = max(pad[a] for a in octave)
    extra = window - 2 * padding - 2    # a wide unpadded window: the low map would come out short
    if graph.one_pixel_maps:            # and a window wider than a 1-pixel map: refused by MXNet
        extra = max(extra, window - 2 * padding - 1)
    if extra > 0:
        x_low = _extend_end(F, x_low, extra, dims, None if name is None else name + '-l_pad')
    y_low = pool(x_low, 'l', pooling_convention='full')
    if graph.skips_crops:
        return y_high, y_low
    # cropped along every axis: the ceil convention may leave the low part one frame longer
    # along a video's time axis, which it does not halve
    return y_high, F.slice_like(y_low, half_grid(F, y_high, dims=dims),
                                axes=tuple(range(2, 2 + dims)),
                                name=None if name is None else name + '-l_crop')


def _halves_exactly(kernel, stride, pad):
    """Whether pooling a map of ``ceil(H/2)`` with the floor convention gives ``ceil(H'/2)``
    for the pooled size ``H'`` of every ``H`` the pooling takes (checked up to where the
    sizes repeat with period ``4 * stride``)."""
    def pooled(size):
        return (size + 2 * pad - kernel) // stride + 1

    sizes = [size for size in range(1, kernel + 8 * stride + 1) if size + 2 * pad >= kernel]
    return all((size + 1) // 2 + 2 * pad >= kernel and
               pooled((size + 1) // 2) == (pooled(size) + 1) // 2 for size in sizes)


def octave_conv(F, spec, x_high, x_low, params, name=None, graph=OPTIMIZED):
    """Build Eq. 4 for one layer.

    Parameters
    ----------
    F : module
        ``mxnet.sym`` or ``mxnet.nd``.
    spec : OctaveSpec
        From :func:`plan_octave_conv`.
    x_high, x_low : Symbol, NDArray or None
        ``(N, C_h, H, W)`` and ``(N, C_l, ceil(H/2), ceil(W/2))``; must be
        present exactly when ``spec.in_channels`` says so.
    params : dict
        ``{path: (weight, bias_or_None)}`` for every path in ``spec.paths``.
    name : str, optional
        Prefix of the operator names (``<name>-h2l`` ...); ``spec.name`` by
        default. Gluon passes '' since its name scope already adds the prefix.
    graph : Graph
        The graph to build (:data:`OPTIMIZED` by default).

    Returns
    -------
    (y_high, y_low)
        ``(N, channels[0], H', W')`` and ``(N, channels[1], ceil(H'/2), ceil(W'/2))``
        with ``H' = H`` (stride 1) or ``ceil(H/2)`` (stride 2); a part with 0
        channels is ``None``.

    The general form (``spec.geometry``, a layer that does not keep or halve the map's
    size): ``h2h`` is the plain convolution itself, strided as asked, and its output size
    ``H'`` is the plain convolution's. Every other path runs at stride 1 on its grid as in
    the paper's form (the low input; the high input pooled 2x2; with stride 2, pooled once
    more), padded by its ``PathGeometry.pad``, ``l2h`` upsampled at stride 1, and is cropped
    from its ``PathGeometry.begin`` to its output part: ``H'`` for the high part,
    ``ceil(H'/2)`` for the low part.
    """
    _check_inputs(spec, x_high, x_low)
    name = spec.name if name is None else name
    paths = spec.paths
    dims = len(spec.kernel)

    def strides(octave_stride):
        """The stride per axis: ``octave_stride`` on the axes the low part halves, the
        layer's own on the others; None where it is 1 everywhere (no attribute)."""
        plain = iter(spec.plain_stride)
        values = tuple(octave_stride if a in octave_axes(dims) else next(plain)
                       for a in range(dims))
        return None if set(values) == {1} else values

    def conv(path, x, stride=strides(1), pad=spec.pad):
        p = paths[path]
        weight, bias = params[path]
        kw = dict(kernel=spec.kernel, pad=pad, num_filter=p.channels, num_group=p.groups,
                  no_bias=bias is None, name='%s-%s' % (name, path))
        if stride is not None:
            kw['stride'] = stride
        if bias is None:
            return F.Convolution(x, weight, **kw)
        return F.Convolution(x, weight, bias, **kw)

    def down(x, suffix):
        return downsample(F, x, name='%s-%s_down' % (name, suffix), graph=graph, dims=dims)

    if spec.geometry is not None:
        return _general_octave_conv(F, spec, x_high, x_low, conv, down, name, graph,
                                    strides(spec.stride))
    y = {}
    if spec.stride == 2 and x_high is not None:
        x_high = down(x_high, 'h')
    if 'h2h' in paths:
        y['h2h'] = conv('h2h', x_high)
    if 'h2l' in paths:
        y['h2l'] = conv('h2l', down(x_high, 'h2l'))
    if 'l2l' in paths:
        y['l2l'] = conv('l2l', x_low if spec.stride == 1 else down(x_low, 'l2l'))
    if 'l2h' in paths:
        # With stride 2 the low map already has the size of the high output.
        y['l2h'] = conv('l2h', x_low)
        if spec.stride == 1:
            y['l2h'] = upsample_like(F, y['l2h'], y.get('h2h', x_high), name='%s-l2h' % name,
                                     graph=graph, dims=dims)
    return (add(F, [y.get('h2h'), y.get('l2h')], '%s-h' % name, graph),
            add(F, [y.get('h2l'), y.get('l2l')], '%s-l' % name, graph))


def _general_octave_conv(F, spec, x_high, x_low, conv, down, name, graph, stride):
    """The general form of :func:`octave_conv` (``spec.geometry`` set); ``stride``, the
    plain convolution's per axis."""
    geometry, paths = spec.geometry, spec.paths
    dims = len(spec.kernel)
    axes = tuple(2 + a for a in octave_axes(dims))
    y = {'h2h': conv('h2h', x_high, stride=stride)}
    low_grid = half_grid(F, y['h2h'], name='%s-l_grid' % name, dims=dims) \
        if spec.channels[1] else None

    def cropped(path, x, like):
        x = shift(F, x, geometry[path].begin, name='%s-%s_shift' % (name, path))
        return F.slice_like(x, like, axes=axes, name='%s-%s_crop' % (name, path))

    if 'l2h' in paths:
        out = conv('l2h', x_low, pad=geometry['l2h'].pad)
        if spec.stride == 1:
            out = upsample_like(F, out, None, name='%s-l2h' % name, graph=graph, dims=dims)
        y['l2h'] = cropped('l2h', out, y['h2h'])
    if 'h2l' in paths:
        source = down(x_high, 'h2l')
        source = source if spec.stride == 1 else down(source, 'h2l2')
        y['h2l'] = cropped('h2l', conv('h2l', source, pad=geometry['h2l'].pad), low_grid)
    if 'l2l' in paths:
        source = x_low if spec.stride == 1 else down(x_low, 'l2l')
        y['l2l'] = cropped('l2l', conv('l2l', source, pad=geometry['l2l'].pad), low_grid)
    return (add(F, [y.get('h2h'), y.get('l2h')], '%s-h' % name, graph),
            add(F, [y.get('h2l'), y.get('l2l')], '%s-l' % name, graph))


def octave_dense(F, spec, x_high, x_low, params, graph=OPTIMIZED):
    """Fully-connected counterpart of :func:`octave_conv`.

    ``x_high`` (N, C_h, ...) and ``x_low`` (N, C_l, ...) are flattened; returns
    ``(y_high, y_low)`` of shapes (N, channels[0]) and (N, channels[1]),
    ``None`` for an absent part. ``params`` as in :func:`octave_conv`.
    """
    _check_inputs(spec, x_high, x_low)
    source = {'h': x_high, 'l': x_low}
    y = {}
    for path, p in spec.paths.items():
        weight, bias = params[path]
        args = (source[path[0]], weight) if bias is None else (source[path[0]], weight, bias)
        y[path] = F.FullyConnected(*args, num_hidden=p.channels, no_bias=bias is None,
                                   name='%s-%s' % (spec.name, path))
    return (add(F, [y.get('h2h'), y.get('l2h')], '%s-h' % spec.name, graph),
            add(F, [y.get('h2l'), y.get('l2l')], '%s-l' % spec.name, graph))


def _check_inputs(spec, x_high, x_low):
    for part, x, c in (('high', x_high, spec.in_channels[0]), ('low', x_low, spec.in_channels[1])):
        if (x is None) != (c == 0):
            raise ValueError('layer %s: the %s input is %s but in_channels=%r'
                             % (spec.name, part, 'missing' if x is None else 'given',
                                spec.in_channels))
