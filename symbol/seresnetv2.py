"""Pre-activation ResNet (v2) with a squeeze-excitation block in every unit."""
from .resnetv2 import STAGES, variant

__all__ = ['STAGES', 'get_before_pool', 'get_linear', 'get_symbol']

get_before_pool, get_linear, get_symbol = variant(use_se=True, network='seresnetv2')
