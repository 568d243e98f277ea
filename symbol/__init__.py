"""Symbol-API networks of the paper's ablation (table A), vanilla or octave.

``get_symbol(network, depth, num_classes=1000, ratio=-1, **kw)`` builds one by
name; each network module also exposes ``get_before_pool``, ``get_linear`` and
``get_symbol(num_classes, depth, ratio=-1, dropout=0., use_fp16=False)``.
``ratio=-1`` is the vanilla network; ``ratio`` in [0, 1) the octave one.
"""
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


def get_symbol(network, depth, num_classes=1000, ratio=-1, **kwargs):
    """The training symbol (``softmax`` output) of ``network`` at ``depth`` and ``ratio``."""
    return get_network(network).get_symbol(num_classes, depth, ratio=ratio, **kwargs)


def get_linear(network, depth, num_classes=1000, ratio=-1, **kwargs):
    """The logits symbol (N, num_classes) of ``network`` at ``depth`` and ``ratio``."""
    return get_network(network).get_linear(num_classes, depth, ratio=ratio, **kwargs)
