"""Start-up hook installed with octconv (through ``octconv-mxnet-compat.pth``): lets
``import mxnet`` work in any order in this environment.

mxnet 1.9.1 reads ``numpy.bool``, which numpy 1.24 removed. Importing numpy at every
interpreter start would slow every Python program in the environment, so this only
puts a finder first on ``sys.meta_path`` that waits for ``import mxnet``: just before
mxnet loads, it defines ``numpy.bool`` as the builtin ``bool`` (what numpy 1.23's alias
was) and removes itself. It never changes what mxnet or numpy computes.
"""
import sys


class MXNetNumpyBool:
    """A meta-path finder that finds nothing; it prepares numpy when mxnet is imported."""

    def find_spec(self, name, path=None, target=None):
        if name == 'mxnet':
            if self in sys.meta_path:
                sys.meta_path.remove(self)
            import numpy
            if 'bool' not in vars(numpy):
                numpy.bool = bool
        return None


def install():
    """Put the finder first on ``sys.meta_path`` (once)."""
    if 'mxnet' not in sys.modules and not any(isinstance(f, MXNetNumpyBool)
                                              for f in sys.meta_path):
        sys.meta_path.insert(0, MXNetNumpyBool())
