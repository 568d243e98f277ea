"""Pre-activation ResNeXt (v2), 32 groups of 4 channels in the first stage.

At ratios where 32 groups do not divide a part's channels (e.g. depth 50 at
ratio 0.125) building raises ``ValueError`` naming the layer.
"""
from ..utils.octave import OPTIMIZED
from . import resnetv2
from .resnetv2 import STAGES

__all__ = ['STAGES', 'get_before_pool', 'get_linear', 'get_symbol']

# 32x4d: 32 groups, twice the bottleneck width of the 64x1d ResNet.
_FIXED = dict(group=32, scaler=2., network='resnextv2_32x4d')


def get_before_pool(depth, ratio=-1, use_fp16=False, graph=OPTIMIZED):
    """See :func:`octconv.symbol.resnetv2.get_before_pool`."""
    return resnetv2.get_before_pool(depth, ratio, use_fp16, graph=graph, **_FIXED)


def get_linear(num_classes, depth, ratio=-1, dropout=0., use_fp16=False, graph=OPTIMIZED):
    """Logits (N, num_classes); see :func:`octconv.symbol.resnetv2.get_linear`."""
    return resnetv2.get_linear(num_classes, depth, ratio, dropout, use_fp16, graph=graph,
                               **_FIXED)


def get_symbol(num_classes, depth, ratio=-1, dropout=0., use_fp16=False, graph=OPTIMIZED):
    """The training symbol with ``softmax`` output."""
    return resnetv2.get_symbol(num_classes, depth, ratio, dropout, use_fp16, graph=graph,
                               **_FIXED)
