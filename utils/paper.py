"""The paper's theoretical figures ("Drop an Octave", ICCV 2019).

The published tables of released models are records beside their builders
(``octconv.symbol.released``, ``octconv.gluon.released``).
"""
__all__ = ['table1_flop_factor']


def table1_flop_factor(ratio):
    """Paper table 1: an octave layer's FLOPs relative to vanilla, 1 - 3/4 a (2 - a)."""
    return 1 - 0.75 * ratio * (2 - ratio)
