"""octconv: Octave Convolution ("Drop an Octave", Chen et al., ICCV 2019) for MXNet.

Subpackages: ``octconv.symbol`` (Symbol-API networks), ``octconv.gluon``
(Gluon blocks and models), ``octconv.train`` (training and scoring scripts),
``octconv.utils`` (the shared octave-op helper and tools).
"""
__version__ = '0.1.0'
