"""The stem input and the classification head shared by every Symbol network."""
import mxnet as mx
import numpy as np

from .ops import single

__all__ = ['data_input', 'float32_output', 'classifier', 'softmax_output', 'check_depth']


def check_depth(network, depth, table):
    """Raise ``ValueError`` for a depth the network has no stage table for."""
    if depth not in table:
        raise ValueError('%s has no depth %r; valid depths: %s'
                         % (network, depth, ', '.join(str(d) for d in sorted(table))))
    return table[depth]


def data_input(use_fp16=False):
    """The ``data`` variable (N, 3, H, W), cast to float16 when ``use_fp16``."""
    data = mx.sym.Variable(name='data')
    return mx.sym.Cast(data=data, dtype=np.float16) if use_fp16 else data


def float32_output(data, use_fp16=False):
    """Cast back to float32 after a float16 body."""
    return mx.sym.Cast(data=data, dtype=np.float32) if use_fp16 else data


def classifier(before_pool, num_classes, dropout=0.):
    """Global average pool, flatten, optional dropout, FC ``classifier``: (N, num_classes)."""
    if num_classes < 1:
        raise ValueError('num_classes must be >= 1, got %r' % num_classes)
    before_pool = single(before_pool, 'the classifier')
    pool = mx.sym.Pooling(data=before_pool, pool_type='avg', kernel=(7, 7), stride=(1, 1),
                          global_pool=True, name='global-pool')
    flat = mx.sym.Flatten(data=pool, name='flatten')
    if dropout > 0:
        flat = mx.sym.Dropout(data=flat, p=dropout)
    return mx.sym.FullyConnected(data=flat, num_hidden=num_classes, name='classifier')


def softmax_output(logits):
    """``SoftmaxOutput`` named ``softmax`` (the training symbol)."""
    return mx.sym.SoftmaxOutput(data=logits, name='softmax')
