"""Shared helpers: the octave-op graph builder used by both APIs."""
from .octave import (PATHS, OctaveSpec, PathSpec, octave_conv, octave_dense, plan_octave_conv,
                     plan_octave_dense, split_channels)

__all__ = ['PATHS', 'OctaveSpec', 'PathSpec', 'octave_conv', 'octave_dense', 'plan_octave_conv',
           'plan_octave_dense', 'split_channels']
