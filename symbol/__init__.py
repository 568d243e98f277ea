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
from . import densenet, resnetv2, resnextv2_32x4d, seresnetv2
from .ops import channels_for, octave, ops_for, plain

__all__ = ['NETWORKS', 'get_network', 'get_symbol', 'get_linear', 'list_networks',
           'octave', 'plain', 'ops_for', 'channels_for']

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
