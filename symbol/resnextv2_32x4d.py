"""Pre-activation ResNeXt (v2), 32 groups of 4 channels in the first stage.

At ratios where 32 groups do not divide a part's channels (e.g. depth 50 at
ratio 0.125) building raises ``ValueError`` naming the layer.
"""
from .resnetv2 import STAGES, variant

__all__ = ['STAGES', 'get_before_pool', 'get_linear', 'get_symbol']

# 32x4d: 32 groups, twice the bottleneck width of the 64x1d ResNet.
get_before_pool, get_linear, get_symbol = variant(group=32, scaler=2.,
                                                  network='resnextv2_32x4d')
