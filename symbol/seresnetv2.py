"""Pre-activation ResNet (v2) with a squeeze-excitation block in every unit."""
from ..utils.octave import OPTIMIZED
from . import resnetv2
from .resnetv2 import STAGES

__all__ = ['STAGES', 'get_before_pool', 'get_linear', 'get_symbol']

_FIXED = dict(use_se=True, network='seresnetv2')


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
