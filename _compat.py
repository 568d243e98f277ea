"""Lets ``mxnet==1.9.1`` import on numpy 1.24+ and Python 3.12+; imported by
``octconv/__init__.py`` before any module of the package imports mxnet.

- numpy 1.24 removed ``numpy.bool``, the alias of the builtin ``bool`` that numpy
  1.23 still had and that mxnet 1.9.1 reads at import. It is defined again as that
  same builtin, so nothing computes differently.
- Python 3.12 removed ``distutils``, which mxnet imports: ``setuptools`` (a
  dependency on 3.12+) provides it; nothing is patched for it here.

An installed octconv also puts a start-up hook in site-packages
(``octconv-mxnet-compat.pth``, see ``startup/``) that does the same just before any
``import mxnet``, so scripts that import mxnet first work too; this module covers
octconv run from its source tree.
"""
import numpy

if 'bool' not in vars(numpy):
    numpy.bool = bool
