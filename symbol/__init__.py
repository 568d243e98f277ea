"""Symbol-API networks of the paper's ablation (table A), vanilla or octave.

``get_symbol(network, depth, num_classes=1000, ratio=0, **kw)`` builds one by
name; each network module also exposes ``get_before_pool``, ``get_linear`` and
``get_symbol(num_classes, depth, ratio=0, dropout=0., use_fp16=False)``.
``ratio=0`` is the vanilla network (-1, the reference's name for it, is accepted too);
``ratio`` in (0, 1) the octave one.
The registry's functions also take ``graph`` ('optimized', the default, or
'straightforward') and ``data_shape`` to specialise the graph to one input size
(see :func:`get_symbol`).
"""
from ..utils.octave import crops_are_noops, graph_options
from ..utils.octavize import convert
from . import densenet, resnetv2, resnextv2_32x4d, seresnetv2
from .ops import channels_for, octave, ops_for, plain

__all__ = ['NETWORKS', 'get_network', 'get_symbol', 'get_linear', 'list_networks',
           'octave', 'plain', 'ops_for', 'channels_for', 'octavize']

NETWORKS = {'resnetv2': resnetv2,
            'seresnetv2': seresnetv2,
            'resnextv2_32x4d': resnextv2_32x4d,
            'densenet': densenet}


def list_networks():
    """``{network name: sorted depths}``."""
    return {name: sorted(module.STAGES) for name, module in NETWORKS.items()}


def get_network(network):
    """The module of ``network``; ``ValueError`` listing the names for an unknown one."""
    try:
        return NETWORKS[network]
    except (KeyError, TypeError):
        raise ValueError('unknown network %r; valid networks: %s'
                         % (network, ', '.join(sorted(NETWORKS)))) from None


def get_symbol(network, depth, num_classes=1000, ratio=0, data_shape=None, graph='optimized',
               **kwargs):
    """The training symbol (``softmax`` output) of ``network`` at ``depth`` and ``ratio``.

    ``graph``: 'optimized' or 'straightforward' (the graph as the equations read).
    With ``data_shape`` (N, C, H, W) the optimized graph is specialised to that
    size: when every map has even sides the crops odd sizes need are left out
    (the symbol then takes only sizes with that property, e.g. multiples of 64).
    """
    return _built(get_network(network).get_symbol, data_shape, graph, num_classes, depth,
                  ratio=ratio, **kwargs)


def get_linear(network, depth, num_classes=1000, ratio=0, data_shape=None, graph='optimized',
               **kwargs):
    """The logits symbol (N, num_classes) of ``network`` at ``depth`` and ``ratio``.

    ``data_shape`` and ``graph`` as in :func:`get_symbol`.
    """
    return _built(get_network(network).get_linear, data_shape, graph, num_classes, depth,
                  ratio=ratio, **kwargs)


def _built(build, data_shape, mode, *args, **kwargs):
    graph = graph_options(mode)
    symbol = build(*args, graph=graph, **kwargs)
    if data_shape is None or mode != 'optimized' or not crops_are_noops(symbol, data_shape):
        return symbol
    return build(*args, graph=graph_options(mode, even_sizes=True), **kwargs)


def octavize(symbol, ratio, data_shape=(1, 3, 224, 224), policy=None, data_name='data'):
    """The octave version of any Symbol network ``symbol`` reading ``data_name`` (N, C, H, W)
    at ``ratio`` (0 gives back the same graph), placed as decided at ``data_shape``: a
    Symbol that takes ``data_shape`` and every larger input.

    ``policy``: None or ``'paper'`` (the stem and the last stage vanilla),
    ``'split-stem'``, or a function of a :class:`~octconv.utils.placement.Layer` giving its
    ratio. New parameters are named after the original's (``conv1_h2l_weight``) and keep
    its attributes, so an initializer treats them alike. The outputs are single maps, in
    the original's order. A Module is bound at one size: pass it as ``data_shape``. The
    graph is checked at ``data_shape`` and at the smallest input the original takes; where
    that input is smaller than what this graph takes (``smallest_input`` of
    :mod:`octconv.utils.octavize` tells both), a ``data_shape`` that small gives the graph
    made for it. See :mod:`octconv.utils.octavize`; TypeError names an argument that is not
    a Symbol or a tuple, ValueError a ratio outside [0, 1), a missing input, a shape the
    network cannot take, or the node and operator that has no octave form.
    """
    return convert(symbol, ratio, data_shape, policy, data_name).symbol
