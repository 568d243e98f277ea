"""The paper's theoretical figures ("Drop an Octave", ICCV 2019).

The published tables of released models are records beside their builders
(``octconv.symbol.released``, ``octconv.gluon.released``).
"""
__all__ = ['table1_flop_factor', 'CPU_MS', 'cpu_time_ratio']

# The paper's single-thread CPU inference times of ResNet-50 (Intel Skylake 2.0 GHz, ms): the
# TVM baseline, and TVM OctConv at each ratio.
CPU_MS = {0.: 115., 0.125: 116., 0.25: 99., 0.5: 74., 0.75: 61.}


def table1_flop_factor(ratio):
    """Paper table 1: an octave layer's FLOPs relative to vanilla, 1 - 3/4 a (2 - a)."""
    return 1 - 0.75 * ratio * (2 - ratio)


def cpu_time_ratio(ratio):
    """The paper's single-thread CPU time of Oct-ResNet-50 at ``ratio`` over the baseline's
    (TVM, Intel Skylake 2.0 GHz)."""
    return CPU_MS[ratio] / CPU_MS[0.]
