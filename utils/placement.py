"""Where ``octavize`` puts OctConv: each convolution's ratio, read off the network's graph.

The ``'paper'`` policy (the default) places OctConv as the reference does in ResNet,
ResNeXt and MobileNet: the stem (a convolution with no convolution before it) reads the
image and stays vanilla, and so does the last stage: every layer whose output is at the
network's largest stride, or that only feeds layers that are (the input of the last
downsampling). ``'split-stem'`` splits the stem's output too (the reference's DenseNet).
``'all-layers'`` splits every convolution's output, the stem's and the last stage's too:
the paper's video networks (its Table 8 FLOPs follow from it, not from the image
placement). A function ``policy(layer) -> ratio`` decides each convolution itself. Layers
after global pooling (1-pixel maps: a squeeze-excitation's) have no low frequencies: every policy
leaves them vanilla, and a function that gives one a ratio is refused.
"""
import math
from collections import namedtuple

from .flops import attr_is_true, attr_tuple
from .octave import check_ratio, octave_axes

__all__ = ['Layer', 'POLICIES', 'Placement', 'place', 'is_depthwise']

POLICIES = ('paper', 'split-stem', 'all-layers')

Layer = namedtuple('Layer', ['name', 'kind', 'stride', 'last_stage'])
Layer.__doc__ = """A convolution as the policy sees it.

``name``: the node's name; ``kind``: ``'stem'`` (no convolution before it) or ``'conv'``
(depthwise convolutions keep their input's split and are not asked); ``stride``: its
output stride against the input (``inf`` after global pooling); ``last_stage``: whether
it belongs to the last stage (its output is at the largest stride, or only feeds layers
whose output is)."""

Placement = namedtuple('Placement', ['ratios', 'is_global'])
Placement.__doc__ = """``ratios``: ``{node index: ratio}`` of every convolution that is not
depthwise; ``is_global``: ``{node index: bool}``, whether the node pools each channel to
one value (global pooling, adaptive pooling to 1x1, a window over the whole map, or a
mean or maximum over every spatial axis)."""

# Reductions over the spatial axes that act as global pooling (a squeeze-excitation's
# ``F.mean(x, axis=(2, 3), keepdims=True)``).
_REDUCTIONS = ('mean', 'max', 'min', 'sum')
# Operators that change or need the spatial layout.
_SPATIAL = {'Convolution', 'Pooling', '_contrib_AdaptiveAvgPooling2D', 'FullyConnected',
            'Flatten', 'flatten'}


def _reduces_spatial_axes(node, rank):
    """Whether ``node`` (a reduction of a map of ``rank`` axes) reduces every spatial axis
    (2 and beyond) and only those."""
    if node['op'] not in _REDUCTIONS or rank < 3:
        return False
    attrs = node.get('attrs', {})
    axes = attr_tuple(attrs.get('axis'))
    if attr_is_true(attrs.get('exclude', 'False')) or not axes:
        return False
    return sorted(a % rank for a in axes) == list(range(2, rank))


def is_depthwise(node, in_channels):
    """Whether the convolution ``node`` reading ``in_channels`` channels is depthwise (one
    group per input channel, as many outputs as inputs)."""
    attrs = node.get('attrs', {})
    groups = int(attrs.get('num_group', 1))
    return groups > 1 and groups == in_channels == int(attrs['num_filter'])


def place(nodes, shapes, data_shape, policy, ratio):
    """The :class:`Placement` of a graph's ``nodes`` (its JSON nodes, with ``shapes``
    ``{(node, output): shape}`` at ``data_shape``) under ``policy`` at ``ratio``. A layer's
    stride is read off the height of its output (of a video, a frame's height; of a
    signal, its length)."""
    chosen = _policy(policy, ratio)
    size = data_shape[2 + octave_axes(len(data_shape) - 2)[0]]   # the height (a signal's length)
    consumers = {i: [] for i in range(len(nodes))}
    after_conv, after_global, is_global, stride = {}, {}, {}, {}
    for i, node in enumerate(nodes):
        sources = [e[0] for e in node['inputs']]
        for j in sources:
            consumers[j].append(i)
        after_conv[i] = any(after_conv[j] or nodes[j]['op'] == 'Convolution' for j in sources)
        shape = shapes[(i, 0)]
        reduced = len(shape) < 3 or all(s == 1 for s in shape[2:])
        after_global[i] = reduced and any(after_global[j] or is_global[j] for j in sources)
        is_global[i] = _is_global(nodes, shapes, i)
        if after_global[i] or is_global[i] or node['op'] in ('FullyConnected', 'Flatten',
                                                             'flatten'):
            stride[i] = math.inf
        elif 3 <= len(shape) <= 5:       # a map's height (its length), whatever its rank
            height = shape[2 + octave_axes(len(shape) - 2)[0]]
            stride[i] = 2 ** round(math.log2(size / height)) if height > 0 else math.inf
    spatial = [i for i, node in enumerate(nodes) if node['op'] in ('Convolution', 'Pooling')
               and stride.get(i, math.inf) < math.inf]
    largest = max((stride[i] for i in spatial), default=1)
    ratios = {}
    for i, node in enumerate(nodes):
        source = node['inputs'][0] if node['inputs'] else None
        if node['op'] != 'Convolution' or is_depthwise(node, _channels(shapes, source)):
            continue
        hits = _next_spatial(nodes, i, consumers)
        last = stride[i] >= largest or (
            bool(hits) and all(stride.get(j, math.inf) >= largest for j in hits))
        layer = Layer(node['name'], 'conv' if after_conv[i] else 'stem', stride[i], last)
        ratios[i] = chosen(layer)
    return Placement(ratios, is_global)


def _channels(shapes, entry):
    shape = shapes.get((entry[0], entry[1]), ())
    return shape[1] if len(shape) > 1 else 0


def _is_global(nodes, shapes, i):
    node = nodes[i]
    attrs = node.get('attrs', {})
    if node['op'] == 'Pooling':
        source = node['inputs'][0]
        before = shapes[(source[0], source[1])][2:]
        window = attr_tuple(attrs.get('kernel'))
        return attr_is_true(attrs.get('global_pool', 'False')) or (
            all(s == 1 for s in shapes[(i, 0)][2:]) and len(window) == len(before) and
            all(k >= s for k, s in zip(window, before)))
    if node['op'] == '_contrib_AdaptiveAvgPooling2D':
        return attr_tuple(attrs.get('output_size'), (1,)) in ((1,), (1, 1))
    if node['op'] in _REDUCTIONS:
        source = node['inputs'][0]
        return _reduces_spatial_axes(node, len(shapes[(source[0], source[1])]))
    return False


def _next_spatial(nodes, i, consumers):
    """The operators that change or need the spatial layout first reached from node ``i``
    through per-part ones."""
    hits, seen, todo = set(), set(), list(consumers[i])
    while todo:
        j = todo.pop()
        if j in seen:
            continue
        seen.add(j)
        if nodes[j]['op'] in _SPATIAL:
            hits.add(j)
        else:
            todo.extend(consumers[j])
    return hits


def _policy(policy, ratio):
    """``layer -> ratio`` of ``policy`` (None = 'paper', a name of :data:`POLICIES`, or a
    function), its results checked."""
    if policy is None or policy == 'paper':
        def chosen(layer):
            return 0. if layer.kind == 'stem' or layer.last_stage else ratio
    elif policy == 'split-stem':
        def chosen(layer):
            return 0. if layer.last_stage else ratio
    elif policy == 'all-layers':
        def chosen(layer):
            return 0. if layer.stride == math.inf else ratio
    elif callable(policy):
        chosen = policy
    else:
        raise ValueError('octavize: policy must be one of %s or a function of a Layer, got %r'
                         % (', '.join(POLICIES), policy))

    def checked(layer):
        value = chosen(layer)
        where = 'octavize: the policy\'s ratio for %s' % layer.name
        value = max(check_ratio(value, where), 0.)
        if value > 0 and layer.stride == math.inf:
            raise ValueError('%s is %s, but that layer works after global pooling (1-pixel '
                             'maps, stride inf), where there is no low frequency to split '
                             'off: return 0 for layers whose stride is inf'
                             % (where, value))
        return value
    return checked

