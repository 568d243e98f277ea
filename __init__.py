"""octconv: Octave Convolution ("Drop an Octave", Chen et al., ICCV 2019) for MXNet.

Subpackages: ``octconv.symbol`` (Symbol-API networks), ``octconv.gluon``
(Gluon blocks and models), ``octconv.train`` (training and scoring scripts),
``octconv.utils`` (the shared octave-op helper and tools).
"""
import octconv._compat  # noqa: F401  (before any mxnet import: numpy.bool for mxnet 1.9.1)

__version__ = '0.5.0'
